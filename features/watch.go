package features

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// watcher is what a change subscription tells its owner.
type watcher struct {
	// subscribed runs when Redis confirms the subscription; again is true
	// when it was confirmed before on the same connection (go-redis
	// reconnected, and changes in between may never be announced).
	subscribed func(again bool)
	// message runs with each message's payload.
	message func(payload string)
	// left runs when a confirmed subscription ends.
	left func()
}

// watchLoop subscribes to channel until ctx is done, subscribing again
// after failures with a growing delay. It returns nil when ctx is done, and
// an error only when the first subscription fails, so that a Redis outage at
// start is reported.
func (s *Store) watchLoop(ctx context.Context, channel string, w watcher) error {
	delay := resubscribeMinDelay
	for first := true; ; first = false {
		confirmed, err := s.watchOnce(ctx, channel, w)
		switch {
		case ctx.Err() != nil:
			return nil
		case first && !confirmed:
			return fmt.Errorf("subscribe to %s: %w", channel, err)
		case confirmed:
			delay = resubscribeMinDelay
		default:
			delay = min(2*delay, resubscribeMaxDelay)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// watchOnce runs one subscription to channel until it fails or ctx is done,
// and says whether Redis confirmed it.
func (s *Store) watchOnce(ctx context.Context, channel string, w watcher) (confirmed bool, err error) {
	ps := s.rdb.Subscribe(ctx, channel)
	defer ps.Close()
	// A blocked receive does not watch ctx; closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer func() {
		if confirmed && w.left != nil {
			w.left()
		}
	}()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, changesPingAfter)
		var netErr net.Error
		switch {
		case err == nil:
			pinged = false
		case !errors.As(err, &netErr) || !netErr.Timeout():
			return confirmed, err
		case pinged:
			return confirmed, fmt.Errorf("no answer to a ping within %s: %w", changesPingAfter, err)
		default:
			if err := ps.Ping(ctx); err != nil {
				return confirmed, fmt.Errorf("ping: %w", err)
			}
			pinged = true
			continue
		}
		switch msg := msg.(type) {
		case *redis.Subscription:
			if w.subscribed != nil {
				w.subscribed(confirmed)
			}
			confirmed = true
		case *redis.Message:
			w.message(msg.Payload)
		}
	}
}
