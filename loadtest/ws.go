package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// Message is one graphql-transport-ws message.
type Message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Socket is one graphql-transport-ws connection, acknowledged by the server.
type Socket struct {
	conn *websocket.Conn
}

// Dial opens a graphql-transport-ws connection to the server at httpURL
// (http://host:port), authenticated with key in the connection_init
// payload, and waits for connection_ack.
func Dial(ctx context.Context, httpURL, key string) (*Socket, error) {
	conn, _, err := websocket.Dial(ctx, strings.Replace(httpURL, "http", "ws", 1)+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
	})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	init := map[string]any{"type": "connection_init"}
	if key != "" {
		init["payload"] = map[string]any{"Authorization": "Bearer " + key}
	}
	if err := wsjson.Write(ctx, conn, init); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("connection_init: %w", err)
	}
	var ack Message
	if err := wsjson.Read(ctx, conn, &ack); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("wait for connection_ack: %w", err)
	}
	if ack.Type != "connection_ack" {
		conn.CloseNow()
		return nil, fmt.Errorf("want connection_ack, got %q %s", ack.Type, ack.Payload)
	}
	return &Socket{conn: conn}, nil
}

// Subscribe starts operation id.
func (s *Socket) Subscribe(ctx context.Context, id, query string, variables map[string]any) error {
	return wsjson.Write(ctx, s.conn, map[string]any{
		"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": variables},
	})
}

// Read calls handle with every message but ping and pong (it answers pings)
// until the connection ends or ctx is done, and returns why. handle runs on
// Read's goroutine and must not block.
func (s *Socket) Read(ctx context.Context, handle func(msg Message, at time.Time)) error {
	for {
		var msg Message
		if err := wsjson.Read(ctx, s.conn, &msg); err != nil {
			return err
		}
		switch msg.Type {
		case "ping":
			if err := wsjson.Write(ctx, s.conn, map[string]any{"type": "pong"}); err != nil {
				return err
			}
		case "pong":
		default:
			handle(msg, time.Now())
		}
	}
}

// Close says goodbye with a normal closure, waiting at most a few seconds
// for the server's answer.
func (s *Socket) Close() error {
	return s.conn.Close(websocket.StatusNormalClosure, "load run over")
}
