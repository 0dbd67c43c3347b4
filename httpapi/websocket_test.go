package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
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
