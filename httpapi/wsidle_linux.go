package httpapi

import "syscall"

const canPeek = true

// readable is syscall.RawConn.Read's callback: true (stop waiting) once
// the socket has a byte to read, has reached its end or failed; false
// (wait for the poller) while reading would block. MSG_PEEK leaves the
// byte to coder/websocket.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN
}
