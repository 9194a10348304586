package main

// A graphql-transport-ws client for the end-to-end subscription tests
// (e2e_subscriptions_test.go), speaking to the real server over a real
// WebSocket, as graphql-ws clients do.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/deploygraph/deploygraph/graph"
	"github.com/deploygraph/deploygraph/store"
)

// wsWait bounds every wait for something that must happen; it is only
// reached when the server is broken.
const wsWait = 20 * time.Second

// wsMessage is one graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsClient is a connection that has been acknowledged. A goroutine reads
// it, answering pings as graphql-ws does, unless the client was opened
// stalled.
type wsClient struct {
	conn *websocket.Conn
	msgs chan wsMessage
	done chan struct{} // closed when reading stopped; err says why
	err  error
}

func wsURL(s *testServer) string { return "ws" + strings.TrimPrefix(s.url, "http") + "/graphql" }

// wsDial opens a connection and sends connection_init with payload. It
// returns the close error when the server refuses the connection.
func wsDial(t testing.TB, s *testServer, payload map[string]any, header http.Header) (*websocket.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, wsURL(s), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
	if err != nil {
		if resp != nil {
			return nil, &wsRefused{status: resp.StatusCode}
		}
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	if got := conn.Subprotocol(); got != "graphql-transport-ws" {
		t.Fatalf("subprotocol: got %q", got)
	}
	raw, _ := json.Marshal(payload)
	if err := wsWrite(ctx, conn, wsMessage{Type: "connection_init", Payload: raw}); err != nil {
		return nil, err
	}
	var ack wsMessage
	if err := wsRead(ctx, conn, &ack); err != nil {
		return nil, err
	}
	if ack.Type != "connection_ack" {
		t.Fatalf("got %s, want connection_ack", ack.Type)
	}
	return conn, nil
}

type wsRefused struct{ status int }

func (e *wsRefused) Error() string { return http.StatusText(e.status) }

func wsWrite(ctx context.Context, conn *websocket.Conn, m wsMessage) error {
	data, _ := json.Marshal(m)
	return conn.Write(ctx, websocket.MessageText, data)
}

func wsRead(ctx context.Context, conn *websocket.Conn, m *wsMessage) error {
	_, data, err := conn.Read(ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, m)
}

// wsConnect connects as token ("" for anonymous) and starts reading.
func wsConnect(t testing.TB, s *testServer, token string) *wsClient {
	t.Helper()
	payload := map[string]any{}
	if token != "" {
		payload["authorization"] = "Bearer " + token
	}
	conn, err := wsDial(t, s, payload, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	c := &wsClient{conn: conn, msgs: make(chan wsMessage, 10000), done: make(chan struct{})}
	go c.read()
	return c
}

func (c *wsClient) read() {
	defer close(c.done)
	for {
		var m wsMessage
		if c.err = wsRead(context.Background(), c.conn, &m); c.err != nil {
			return
		}
		if m.Type == "ping" {
			wsWrite(context.Background(), c.conn, wsMessage{Type: "pong"})
			continue
		}
		c.msgs <- m
	}
}

// subscribe starts an operation with the given id.
func (c *wsClient) subscribe(t testing.TB, id, query string, vars map[string]any) {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err := wsWrite(context.Background(), c.conn, wsMessage{ID: id, Type: "subscribe", Payload: payload}); err != nil {
		t.Fatalf("subscribe %s: %v", id, err)
	}
}

// next returns the next message, failing the test when none comes.
func (c *wsClient) next(t testing.TB) wsMessage {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-c.done:
		select {
		case m := <-c.msgs:
			return m
		default:
		}
		t.Fatalf("connection closed: %v", c.err)
	case <-time.After(wsWait):
		t.Fatal("no message came")
	}
	return wsMessage{}
}

// nextData returns the data of the next message, which must be a "next"
// without errors for operation id.
func (c *wsClient) nextData(t testing.TB, id string) map[string]any {
	t.Helper()
	m := c.next(t)
	var r struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
	}
	json.Unmarshal(m.Payload, &r)
	if m.Type != "next" || m.ID != id || len(r.Errors) > 0 {
		t.Fatalf("got %s %s %s, want data for %s", m.Type, m.ID, m.Payload, id)
	}
	return r.Data
}

// nextError returns the codes of the errors that end operation id: an
// "error" message, or a "next" with errors followed by "complete".
func (c *wsClient) nextError(t testing.TB, id string) []string {
	t.Helper()
	m := c.next(t)
	var errs []gqlError
	switch m.Type {
	case "error":
		json.Unmarshal(m.Payload, &errs)
	case "next":
		var r struct {
			Data   map[string]any `json:"data"`
			Errors []gqlError     `json:"errors"`
		}
		json.Unmarshal(m.Payload, &r)
		for _, v := range r.Data {
			if v != nil {
				t.Fatalf("got data %s, want an error for %s", m.Payload, id)
			}
		}
		errs = r.Errors
		if end := c.next(t); end.Type != "complete" || end.ID != id {
			t.Fatalf("after the error: got %s %s, want complete", end.Type, end.ID)
		}
	default:
		t.Fatalf("got %s %s %s, want an error for %s", m.Type, m.ID, m.Payload, id)
	}
	if m.ID != id || len(errs) == 0 {
		t.Fatalf("got %s for %q: %s, want errors for %s", m.Type, m.ID, m.Payload, id)
	}
	codes := make([]string, len(errs))
	for i, e := range errs {
		codes[i], _ = e.Extensions["code"].(string)
	}
	return codes
}

// expectNothing asserts that no message is waiting now. Tests call it only
// after a later event has arrived on another subscription of the same
// connection or after a synchronising event, so that it proves absence
// without sleeping.
func (c *wsClient) expectNothing(t testing.TB) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("unexpected %s %s %s", m.Type, m.ID, m.Payload)
	default:
	}
}

// wsCloseStatus is the close code of a connection's read or dial error
// (-1 when it ended without one).
func wsCloseStatus(t testing.TB, err error) websocket.StatusCode {
	t.Helper()
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// waitSubscribers waits until the server has n subscriptions open, so that
// a test writes only once its subscribers listen.
func waitSubscribers(t testing.TB, s *testServer, n int) {
	t.Helper()
	waitFor(t, wsWait, fmt.Sprintf("%d subscribers", n), func() bool { return s.store.Subscribers() == n })
}

// startGraphServer imports doc into a fresh store and serves the GraphQL
// handler alone with opts, for tests that need other settings than the
// server's.
func startGraphServer(t testing.TB, doc any, opts graph.Options) *testServer {
	t.Helper()
	dir := t.TempDir()
	s, _ := openServer(t, config{db: filepath.Join(dir, "deploygraph.db"), adminToken: rootToken, importFile: writeDoc(t, dir, "import.json", doc)}, store.Options{})
	srv := httptest.NewServer(graph.NewHandler(s.store, opts))
	t.Cleanup(srv.Close) // before the store closes: cleanups run last first
	s.url = srv.URL
	return s
}
