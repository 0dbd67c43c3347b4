//go:build !linux

package httpapi

// canPeek is false where readable is not written: the read loop waits in
// coder/websocket.
const canPeek = false

func readable(uintptr) bool { return true }
