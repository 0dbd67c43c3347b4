package aisle

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
)

// MessageUnavailable is what callers are told when a dependency (PostgreSQL,
// Redis, Kafka) cannot be reached: nothing about which one or why, which
// belongs in logs, only that retrying later is the remedy.
const MessageUnavailable = "a service Aisle depends on is unavailable; retry later"

// IsUnavailable reports whether err says that a dependency could not be
// reached, dropped the connection or cannot serve now, as opposed to a bad
// request or a bug: the drivers (pgx, go-redis, franz-go) surface the first
// two as network errors, end of stream or a reset, somewhere in the chain;
// the third is a server's answer about its own state (see serverBusy). The
// caller's own cancellation or deadline is not: context.DeadlineExceeded is
// a net.Error too, but it says the caller stopped waiting, not that a
// dependency is down.
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
		errors.Is(err, syscall.EPIPE) ||
		serverBusy(err)
}

// Redis error replies (their first word) that describe the server, not the
// command: loading its data after a restart, a replica or a cluster in
// failover (a redirect reaches the caller only once go-redis has followed
// as many as it follows: the slot map is still moving), out of memory,
// unable to persist, refusing our credentials.
var redisStates = []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "MOVED", "ASK",
	"NOREPLICAS", "MISCONF", "OOM", "NOAUTH", "WRONGPASS", "NOPERM"}

// PostgreSQL SQLSTATE classes (their first two characters) that describe
// the server or the session, not the statement's data: connection
// exceptions (08), invalid authorization (28), no such database (3D),
// transaction rollbacks such as a deadlock, which a retry resolves (40),
// insufficient resources (53), operator intervention such as a shutdown,
// a start-up or a statement timeout (57), system errors (58) and internal
// errors (XX). Lock timeouts (55P03) too.
var postgresStates = []string{"08", "28", "3D", "40", "53", "57", "58", "XX"}

// serverBusy reports whether err carries a Redis or PostgreSQL server error
// that says the server cannot serve now. The drivers' error types are
// recognised by their methods (go-redis's RedisError, pgconn's SQLState),
// so that this package imports neither driver.
func serverBusy(err error) bool {
	var redisErr interface {
		error
		RedisError()
	}
	if errors.As(err, &redisErr) {
		msg := redisErr.Error()
		word, _, _ := strings.Cut(msg, " ")
		return slices.Contains(redisStates, word) || strings.HasPrefix(msg, "ERR max number of clients reached")
	}
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		code := pgErr.SQLState()
		return len(code) == 5 && (slices.Contains(postgresStates, code[:2]) || code == "55P03")
	}
	return false
}
