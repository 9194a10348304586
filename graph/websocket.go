package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

	"github.com/deploygraph/deploygraph/store"
)

// WebSocket settings.
const (
	defaultKeepAlive = 25 * time.Second
	// initTimeout bounds the wait for connection_init after the upgrade.
	initTimeout = 10 * time.Second

	// Close codes: graphql-transport-ws asks for 4403 when connection_init
	// is refused; 1008 (policy violation) ends a connection that reads its
	// events too slowly.
	closeForbidden   = 4403
	closeInternal    = 1011
	closeTooSlow     = 1008
	closeTooSlowText = "Too many undelivered events: the client reads too slowly"
	// 1001 (going away) ends every connection when the server shuts down.
	closeGoingAway     = 1001
	closeGoingAwayText = "The server is shutting down"
)

// isWebSocketUpgrade reports whether r asks to open a WebSocket. Such a
// request lives as long as its connection: it must not go through a
// handler that bounds a request's duration or buffers its response.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// websocketTransport serves subscriptions (and any other operation) over
// graphql-transport-ws, and the older graphql-ws protocol.
func websocketTransport(s *store.Store, keepAlive time.Duration) transport.Websocket {
	if keepAlive == 0 {
		keepAlive = defaultKeepAlive
	}
	return transport.Websocket{
		// The origin was checked before the upgrade (Options.RequestOriginAllowed),
		// so the library's own same-origin check must not refuse what that
		// allowed.
		Implementation:        socketAcceptor{transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{InsecureSkipVerify: true}}},
		InitFunc:              initSocket(s),
		InitTimeout:           initTimeout,
		KeepAlivePingInterval: keepAlive, // graphql-ws
		PingPongInterval:      keepAlive, // graphql-transport-ws: a client that stops answering pings is disconnected
	}
}

// socket is one WebSocket connection, as its subscriptions need it: who
// authenticated it, and a way to close it that does not wait for a write
// stuck on a client that stopped reading.
type socket struct {
	mu     sync.Mutex
	conn   transport.WebsocketConn
	secret string // the token connection_init gave; "" when anonymous
}

type socketKey struct{}

func withSocket(ctx context.Context) context.Context {
	return context.WithValue(ctx, socketKey{}, &socket{})
}

// socketFrom returns the connection an operation runs on; nil over HTTP.
func socketFrom(ctx context.Context) *socket {
	s, _ := ctx.Value(socketKey{}).(*socket)
	return s
}

func (s *socket) token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret
}

// close starts the closing handshake without waiting for it: the
// connection is torn down within seconds even if the client never reads.
func (s *socket) close(code int, reason string) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.WriteClose(code, reason)
	}
}

// socketAcceptor accepts connections and records each in its request's
// socket.
type socketAcceptor struct {
	transport.CoderWebsocketImplementation
}

func (a socketAcceptor) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := a.CoderWebsocketImplementation.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	if s := socketFrom(r.Context()); s != nil {
		s.mu.Lock()
		s.conn = conn
		s.mu.Unlock()
	}
	return conn, nil
}

// initSocket authenticates a connection from its connection_init payload:
// {"authorization": "Bearer <token>"} (or {"PRIVATE-TOKEN": "<token>"}).
// No token is anonymous; a token that does not authenticate refuses the
// connection.
func initSocket(s *store.Store) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		secret, ok := tokenFromPayload(payload)
		viewer, err := viewerFor(ctx, s, secret, ok)
		if err != nil {
			// IMPORTANT: return ctx, never nil, with the error: gqlgen reads
			// the close code from it, and a nil one panics instead of
			// closing the connection.
			refusal, code := presentError(ctx, err), closeInternal
			if codeOf(refusal) == CodeUnauthenticated {
				code = closeForbidden
			}
			return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), refusal.Message), nil, refusal
		}
		if sock := socketFrom(ctx); sock != nil {
			sock.mu.Lock()
			sock.secret = secret
			sock.mu.Unlock()
		}
		return WithViewer(ctx, viewer), nil, nil
	}
}

// tokenFromPayload reads the token of a connection_init payload with the
// rules of the HTTP headers (see tokenOf); a key is there even when its
// value is not a string.
func tokenFromPayload(p transport.InitPayload) (string, bool) {
	authorization, hasAuthorization := payloadString(p, "authorization", "Authorization")
	privateToken, hasPrivateToken := payloadString(p, "PRIVATE-TOKEN", "private-token")
	return tokenOf(authorization, hasAuthorization, privateToken, hasPrivateToken)
}

func payloadString(p transport.InitPayload, keys ...string) (string, bool) {
	for _, key := range keys {
		if v, present := p[key]; present {
			s, _ := v.(string)
			return s, true
		}
	}
	return "", false
}

// socketExtension runs every operation sent over a WebSocket with the
// connection's viewer and, for each response (each event of a
// subscription), fresh dataloaders: a connection lives for hours, and
// cached lookups would show old data.
type socketExtension struct{ r *Resolver }

var (
	_ graphql.HandlerExtension    = socketExtension{}
	_ graphql.ResponseInterceptor = socketExtension{}
)

func (socketExtension) ExtensionName() string                   { return "WebSockets" }
func (socketExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e socketExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if socketFrom(ctx) != nil {
		ctx = WithOperation(ctx, e.r.loaders)
	}
	return next(ctx)
}

// subscribe streams the events of a project that keep accepts, once the
// caller may read the project's contents. Access is checked again for
// every event, as it is then: a subscriber who lost it gets the error and
// the stream ends.
func (r *Resolver) subscribe(ctx context.Context, projectRef string, keep func(store.Event) bool) (<-chan *store.Event, error) {
	p, acc, err := projectByRef(WithOperation(ctx, r.loaders), r.Store, projectRef)
	if err == nil {
		err = mayReadContents(acc)
	}
	if err != nil {
		return nil, err
	}
	// Counted before the store knows of it, so that whoever sees the
	// subscriber in the store finds it in the metric too.
	ended := r.Metrics.SubscriptionStarted()
	sub := r.Store.Subscribe(p.ID)
	out := make(chan *store.Event)
	r.streams.Add(1)
	go func() {
		defer r.streams.Add(-1)
		defer ended()
		r.deliver(ctx, sub, p.ID, keep, out)
	}()
	return out, nil
}

func (r *Resolver) deliver(ctx context.Context, sub *store.Subscription, projectID int64, keep func(store.Event) bool, out chan<- *store.Event) {
	defer close(out)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case batch, ok := <-sub.Events():
			if !ok {
				r.ended(ctx, sub.Err())
				return
			}
			checked := false // access, once per committed transaction
			for _, e := range batch {
				if !keep(e) {
					continue
				}
				if !checked {
					if err := r.mayRead(ctx, projectID); err != nil {
						transport.AddSubscriptionError(ctx, presentError(ctx, err))
						return
					}
					checked = true
				}
				select {
				case out <- &e:
				case <-sub.Done():
					r.ended(ctx, sub.Err())
					return
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// ended handles a subscription the store ended. A client that fell too far
// behind is disconnected: its connection is stuck on writes it does not
// read, so an error message would never reach it.
func (r *Resolver) ended(ctx context.Context, err error) {
	sock := socketFrom(ctx)
	switch {
	case sock == nil:
	case errors.Is(err, store.ErrSubscriberTooSlow):
		sock.close(closeTooSlow, closeTooSlowText)
	case errors.Is(err, store.ErrStoreClosed):
		sock.close(closeGoingAway, closeGoingAwayText)
	}
}

// mayRead checks, with fresh reads, that the subscriber may still read
// the project's contents: their token still authenticates and the project
// is still readable to them.
func (r *Resolver) mayRead(ctx context.Context, projectID int64) error {
	v := ViewerFrom(ctx)
	if sock := socketFrom(ctx); sock != nil && sock.token() != "" {
		u, err := r.Store.Authenticate(ctx, sock.token())
		if err != nil {
			return err
		}
		v = store.Viewer{User: u}
	}
	p, level, err := readProjectAccess(ctx, r.Store, v, projectID, nil)
	_, acc, err := visibleProject(v, p, level, err)
	if err != nil {
		return err
	}
	return mayReadContents(acc)
}
