package aisle

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// MessageUnavailable is what callers are told when a dependency (PostgreSQL,
// Redis, Kafka) cannot be reached: nothing about which one or why, which
// belongs in logs, only that retrying later is the remedy.
const MessageUnavailable = "a service Aisle depends on is unavailable; retry later"

// IsUnavailable reports whether err says that a dependency could not be
// reached or dropped the connection, as opposed to a bad request or a bug:
// the drivers (pgx, go-redis, franz-go) all surface these as network
// errors, end of stream or a reset, somewhere in the chain. The caller's own
// cancellation or deadline is not: context.DeadlineExceeded is a net.Error
// too, but it says the caller stopped waiting, not that a dependency is down.
func IsUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
