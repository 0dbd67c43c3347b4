package aisle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestIsUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("list stores: %w", refused), true},
		{fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{fmt.Errorf("write: %w", syscall.ECONNRESET), true},
		{errors.New("syntax error at or near SELECT"), false},
		{Errorf(ENOTFOUND, "store %q not found", "s-9"), false},
		{context.Canceled, false},
		// The caller stopped waiting: not a sign that a dependency is down,
		// though DeadlineExceeded is a net.Error.
		{fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{nil, false},
		// A server that answers but cannot serve now: Redis loading its data
		// after a restart, a replica after a failover, a cluster without a
		// quorum; PostgreSQL starting up, shutting down, out of connections.
		{fmt.Errorf("apply: %w", redisError("LOADING Redis is loading the dataset in memory")), true},
		{redisError("READONLY You can't write against a read only replica."), true},
		{redisError("CLUSTERDOWN The cluster is down"), true},
		{redisError("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		// Finding (the soak): a read during a failover that go-redis had
		// redirected as often as it follows redirects surfaced as INTERNAL.
		{redisError("MOVED 3999 127.0.0.1:6381"), true},
		{redisError("ASK 3999 127.0.0.1:6381"), true},
		{redisError("OOM command not allowed when used memory > 'maxmemory'."), true},
		{redisError("ERR max number of clients reached"), true},
		{fmt.Errorf("record orders: %w", pgError("57P03")), true}, // the database system is starting up
		{pgError("08006"), true},                                  // connection failure
		{pgError("53300"), true},                                  // too many connections
		{pgError("40P01"), true},                                  // deadlock: retry
		// Refusals of the request itself.
		{redisError("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{redisError("ERR Error running script: attempt to compare nil with number"), false},
		{fmt.Errorf("record orders: %w", pgError("22021")), false}, // invalid byte sequence: NUL in text
		{pgError("23505"), false},
		{pgError("42P01"), false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// redisError and pgError look like the drivers' server errors (go-redis's
// redis.Error, pgconn.PgError) by the methods IsUnavailable asks for.
type redisError string

func (e redisError) Error() string { return string(e) }
func (e redisError) RedisError()   {}

type pgError string

func (e pgError) Error() string    { return "ERROR: something (SQLSTATE " + string(e) + ")" }
func (e pgError) SQLState() string { return string(e) }
