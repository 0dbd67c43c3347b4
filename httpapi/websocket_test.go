package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
)

// stalledConn is a websocket whose peer reads nothing: writes block until
// the connection is closed.
type stalledConn struct {
	transport.WebsocketConn // other methods are not called
	block                   bool
	once                    sync.Once
	closed                  chan struct{}
}

func (s *stalledConn) WriteJSON(any) error {
	if !s.block {
		return nil
	}
	<-s.closed
	return net.ErrClosed
}

func (s *stalledConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// A write the peer does not take within writeTimeout cuts the connection
// off, so a stalled reader cannot pin the connection and its operations.
func TestWriteTimeoutCutsOffStalledPeer(t *testing.T) {
	t.Parallel()
	ws := &websockets{writeTimeout: 50 * time.Millisecond}
	stalled := &stalledConn{block: true, closed: make(chan struct{})}
	c := &wsConn{ws: ws, inner: stalled, active: map[string]context.CancelFunc{}}
	written := make(chan error, 1)
	go func() { written <- c.WriteJSON(map[string]string{"type": "ping"}) }()
	select {
	case err := <-written:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked write returned %v, want the connection closed", err)
		}
	case <-time.After(time.Second):
		t.Fatalf("a write the peer does not take is still blocked after 1s (write timeout %s)", ws.writeTimeout)
	}

	reading := &stalledConn{closed: make(chan struct{})}
	c = &wsConn{ws: ws, inner: reading, active: map[string]context.CancelFunc{}}
	if err := c.WriteJSON(map[string]string{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ws.writeTimeout)
	select {
	case <-reading.closed:
		t.Error("a connection whose writes complete was closed")
	default:
	}
}

func TestCheckOriginDefaults(t *testing.T) {
	t.Parallel()
	if err := ValidateOriginPatterns(DefaultAllowedOrigins); err != nil {
		t.Fatal(err)
	}
	if err := ValidateOriginPatterns([]string{"app.example.com", "[::1"}); err == nil {
		t.Error("a malformed pattern was accepted")
	}
	ws := newWebsockets(Config{})
	for origin, ok := range map[string]bool{
		"":                         true,
		"http://api.example:8080":  true, // same origin
		"http://localhost:5173":    true,
		"http://LOCALHOST":         true,
		"http://127.0.0.1:3000":    true,
		"http://[::1]:3000":        true,
		"https://evil.example":     false,
		"http://localhost.evil.io": false,
		"file://":                  false,
	} {
		r := httptest.NewRequest(http.MethodGet, "http://api.example:8080/graphql", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if err := ws.checkOrigin(r); (err == nil) != ok {
			t.Errorf("Origin %q: %v, want allowed %v", origin, err, ok)
		}
	}
}

// An idle connection's read loop waits for its next message outside
// coder/websocket's reader (wsidle.go): resting in coder/websocket's
// frames, about 2.4 KiB deep, its stack would stay at 8 KiB; resting in
// the shallow wait, it shrinks to 4 KiB.
func TestIdleWebsocketWaitsOutsideCoderReader(t *testing.T) {
	t.Parallel()
	tr := newWebsockets(Config{}).transport(func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		return ctx, nil, nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tr.Do(w, r, nil) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const conns = 6
	// One client sends connection_init with the upgrade request, before
	// the 101 answer: the bytes net/http has read are the websocket's.
	early, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	initFrame := maskedTextFrame(`{"type":"connection_init"}`)
	if _, err := early.Write(append([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"), initFrame...)); err != nil {
		t.Fatal(err)
	}
	_ = early.SetReadDeadline(time.Now().Add(30 * time.Second))
	answer := make([]byte, 0, 512)
	for !strings.Contains(string(answer), "connection_ack") {
		buf := make([]byte, 512)
		n, err := early.Read(buf)
		if err != nil {
			t.Fatalf("the client that sent connection_init with its upgrade request got %q, then %v; want connection_ack", answer, err)
		}
		answer = append(answer, buf[:n]...)
	}
	for range conns - 1 {
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Subprotocols: []string{transportWSProtocol}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`)); err != nil {
			t.Fatal(err)
		}
		if _, ack, err := conn.Read(ctx); err != nil || !strings.Contains(string(ack), "connection_ack") {
			t.Fatalf("connection_init answered with %s, %v; want connection_ack", ack, err)
		}
	}
	// The read loops, of this test's server only (no other test of the
	// package opens websockets), and where each rests.
	resting := func() (inCoder, inWait int) {
		var dump bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&dump, 2); err != nil {
			t.Fatal(err)
		}
		for _, g := range strings.Split(dump.String(), "\n\n") {
			if !strings.Contains(g, "httpapi.(*wsConn).serve") {
				continue
			}
			if strings.Contains(g, "coder/websocket.(*Conn).reader") {
				inCoder++
			}
			if strings.Contains(g, "httpapi.socketIdleWait") {
				inWait++
			}
		}
		return inCoder, inWait
	}
	for {
		inCoder, inWait := resting()
		if inWait == conns && inCoder == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("of %d idle connections, %d wait for a message in the shallow wait and %d inside coder/websocket's reader", conns, inWait, inCoder)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// maskedTextFrame is one client text frame (RFC 6455 §5.2; a client's
// frames are masked) of a payload under 126 bytes.
func maskedTextFrame(payload string) []byte {
	mask := [4]byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(payload))}, mask[:]...)
	for i := range len(payload) {
		frame = append(frame, payload[i]^mask[i%4])
	}
	return frame
}
