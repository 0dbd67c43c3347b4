package features

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// watcher is what a change subscription tells its owner.
type watcher struct {
	// subscribed runs when Redis confirms the subscription of every channel;
	// again is true when they were confirmed before (go-redis reconnected,
	// and changes in between may never be announced).
	subscribed func(again bool)
	// message runs with each message's payload.
	message func(payload string)
	// left runs when a confirmed subscription ends.
	left func()
}

// bucketChannels returns the shard channel of each bucket, named
// name + ":" + the bucket's hash tag.
func bucketChannels(name string) []string {
	out := make([]string, Buckets)
	for b := range out {
		out[b] = name + ":{" + strconv.Itoa(b) + "}"
	}
	return out
}

// watchLoop subscribes to the shard channels until ctx is done, subscribing
// again after failures with a growing delay. It returns nil when ctx is
// done, and an error only when the first subscription fails, so that a
// Redis outage at start is reported.
func (s *Store) watchLoop(ctx context.Context, channels []string, w watcher) error {
	delay := resubscribeMinDelay
	for first := true; ; first = false {
		confirmed, err := s.watchOnce(ctx, channels, w)
		switch {
		case ctx.Err() != nil:
			return nil
		case first && !confirmed:
			return fmt.Errorf("subscribe to %s…: %w", channels[0], err)
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

// received is what one subscription connection read.
type received struct {
	conn int // index of the connection
	msg  any
	err  error
}

// watchOnce runs one subscription to channels until it fails or ctx is
// done, and says whether Redis confirmed all of it. On one server it is one
// connection; on a cluster one per master that serves some of the channels,
// each subscribed channel by channel (a cluster takes one slot per
// SSUBSCRIBE). A channel whose slot moves to another master is unsubscribed
// by Redis, which ends the subscription: the next one follows the slot.
func (s *Store) watchOnce(ctx context.Context, channels []string, w watcher) (confirmed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	groups, err := s.channelsByMaster(ctx, channels)
	if err != nil {
		return false, err
	}
	subs := make([]*redis.PubSub, len(groups))
	for i, g := range groups {
		subs[i] = s.rdb.SSubscribe(ctx, g[0])
		for _, ch := range g[1:] {
			if err := subs[i].SSubscribe(ctx, ch); err != nil {
				for _, ps := range subs[:i+1] {
					_ = ps.Close()
				}
				return false, err
			}
		}
	}
	out := make(chan received)
	var readers sync.WaitGroup
	for i, ps := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			readSubscription(ctx, i, ps, out)
		}()
	}
	defer func() {
		cancel()
		for _, ps := range subs {
			_ = ps.Close() // a blocked receive does not watch ctx; closing ends it
		}
		readers.Wait()
		if confirmed && w.left != nil {
			w.left()
		}
	}()

	counts := make([]int, len(groups)) // channels confirmed per connection
	complete := 0                      // connections with all their channels confirmed
	for {
		var r received
		select {
		case <-ctx.Done():
			return confirmed, ctx.Err()
		case r = <-out:
		}
		if r.err != nil {
			return confirmed, r.err
		}
		switch msg := r.msg.(type) {
		case *redis.Subscription:
			if msg.Kind != "ssubscribe" {
				return confirmed, fmt.Errorf("redis ended the subscription to %s (%s)", msg.Channel, msg.Kind)
			}
			if counts[r.conn] == len(groups[r.conn]) {
				// go-redis subscribes again after reconnecting.
				counts[r.conn] = 0
				complete--
			}
			if counts[r.conn]++; counts[r.conn] == len(groups[r.conn]) {
				if complete++; complete == len(groups) {
					if w.subscribed != nil {
						w.subscribed(confirmed)
					}
					confirmed = true
				}
			}
		case *redis.Message:
			// Before every channel is confirmed, changes in the others are
			// missed: the owner reads again when subscribed runs.
			if confirmed {
				w.message(msg.Payload)
			}
		}
	}
}

// readSubscription sends what ps receives to out until it fails or ctx is
// done; its last send is the error.
func readSubscription(ctx context.Context, conn int, ps *redis.PubSub, out chan<- received) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, changesPingAfter)
		var netErr net.Error
		switch {
		case err == nil:
			pinged = false
		case !errors.As(err, &netErr) || !netErr.Timeout():
			sendReceived(ctx, out, received{conn: conn, err: err})
			return
		case pinged:
			sendReceived(ctx, out, received{conn: conn, err: fmt.Errorf("no answer to a ping within %s: %w", changesPingAfter, err)})
			return
		default:
			if err := ps.Ping(ctx); err != nil {
				sendReceived(ctx, out, received{conn: conn, err: fmt.Errorf("ping: %w", err)})
				return
			}
			pinged = true
			continue
		}
		if !sendReceived(ctx, out, received{conn: conn, msg: msg}) {
			return
		}
	}
}

func sendReceived(ctx context.Context, out chan<- received, r received) bool {
	select {
	case out <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

// channelsByMaster groups channels by the master that serves their slot;
// on one server they are one group.
func (s *Store) channelsByMaster(ctx context.Context, channels []string) ([][]string, error) {
	c, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return [][]string{channels}, nil
	}
	shards, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("read the cluster's slots: %w", err)
	}
	pipe := c.Pipeline()
	slots := make([]*redis.IntCmd, len(channels))
	for i, ch := range channels {
		slots[i] = pipe.ClusterKeySlot(ctx, ch)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read the slots of the change channels: %w", err)
	}
	byMaster := map[string][]string{}
	var masters []string
	for i, ch := range channels {
		slot := int(slots[i].Val())
		addr := ""
		for _, sh := range shards {
			if sh.Start <= slot && slot <= sh.End && len(sh.Nodes) > 0 {
				addr = sh.Nodes[0].Addr
			}
		}
		if addr == "" {
			return nil, fmt.Errorf("no master serves slot %d of %s", slot, ch)
		}
		if byMaster[addr] == nil {
			masters = append(masters, addr)
		}
		byMaster[addr] = append(byMaster[addr], ch)
	}
	groups := make([][]string, len(masters))
	for i, m := range masters {
		groups[i] = byMaster[m]
	}
	return groups, nil
}
