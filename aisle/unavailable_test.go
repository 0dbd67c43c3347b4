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
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
