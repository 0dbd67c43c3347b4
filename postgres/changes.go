package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// FollowChanges keeps this process's catalog caches coherent with catalog
// events applied by any process: it LISTENs for the changes ApplyEvents
// announces in its transactions and forgets what they name, so serving
// sees a change as soon as it is committed, not after a TTL. It runs until
// ctx is done. LISTEN needs a session of its own: directURL must reach
// PostgreSQL itself, not a pooler in transaction mode. After a lost
// connection it reconnects (backing off up to 5 s) and forgets everything,
// since changes may have been missed meanwhile. listening, when not nil,
// is called each time LISTEN is in place.
func (db *DB) FollowChanges(ctx context.Context, directURL string, listening func()) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.followChanges(ctx, directURL, func() {
			backoff = 100 * time.Millisecond
			if listening != nil {
				listening()
			}
		})
		if ctx.Err() != nil {
			break
		}
		db.log.WarnContext(ctx, "catalog change feed lost; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

// changesIdleCheck is how long the change feed waits for a notification
// before checking that its connection still answers.
const changesIdleCheck = 30 * time.Second

// followChanges listens on one connection until it fails or ctx is done.
func (db *DB) followChanges(ctx context.Context, directURL string, listening func()) error {
	conn, err := pgx.Connect(ctx, directURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Whatever changed before LISTEN took effect went unannounced to us.
	db.ids.forget(change{All: true})
	db.assortments.listen()
	defer db.assortments.deaf()
	listening()
	for {
		// A connection cut off without a reset (a network partition)
		// never reports an error: after a quiet spell, check it answers.
		wait, cancel := context.WithTimeout(ctx, changesIdleCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		if err != nil && ctx.Err() == nil && wait.Err() == context.DeadlineExceeded {
			ping, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
			err = conn.Ping(ping)
			cancel()
			if err == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		var ch change
		if err := json.Unmarshal([]byte(n.Payload), &ch); err != nil {
			ch = change{All: true}
		}
		db.forget(ch)
	}
}

// forget drops from this process's caches what a change names.
func (db *DB) forget(ch change) {
	db.ids.forget(ch)
	db.assortments.forget(ch)
}
