package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"syscall"
)

// socketIdleWait returns a function that waits until conn has bytes to
// read (or is closed, or fails), unless r has some buffered already or
// early (the bytes sent before the upgrade, nil if none) has some left;
// nil when conn is not a socket it can wait on.
//
// The read loop waits with it between messages instead of inside
// coder/websocket's Read. A goroutine's stack shrinks by half at a GC
// only when less than a quarter of it is in use, and coder/websocket's
// frames down to the poller rest about 2.4 KiB deep, which keeps every
// connection's goroutine at 8 KiB once a message has grown it there;
// waiting here rests under 1 KiB deep, so its stack shrinks to 4 KiB.
// A peer's websocket ping (not graphql-transport-ws's) is answered inside
// coder/websocket, whose reader then waits for the next message itself.
func socketIdleWait(conn net.Conn, r *bufio.Reader, early *bytes.Reader) func() error {
	sc, ok := conn.(syscall.Conn)
	if !ok || !canPeek {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() error {
		if r.Buffered() > 0 || early != nil && early.Len() > 0 {
			return nil
		}
		if err := raw.Read(readable); err != nil {
			return fmt.Errorf("websocket: wait for the next message: %w", err)
		}
		return nil
	}
}
