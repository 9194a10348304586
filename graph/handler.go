package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/deploygraph/deploygraph/store"
)

// Options configure the GraphQL endpoint.
type Options struct {
	Introspection bool
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// CheckOrigin decides whether a browser page may open a WebSocket from
	// the request's Origin. Nil means SameOrigin; the allowed cross-origin
	// pages (-cors-origins) are added by wrapping it.
	CheckOrigin func(r *http.Request) bool
	// KeepAlive is how often an idle WebSocket is pinged; 0 means 25 s.
	KeepAlive time.Duration
}

// NewHandler serves GraphQL at a single path: over HTTP, POST with a JSON
// body and GET for queries; over a WebSocket (GET with Upgrade),
// subscriptions.
func NewHandler(s *store.Store, opts Options) http.Handler {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.CheckOrigin == nil {
		opts.CheckOrigin = SameOrigin
	}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{Store: s}}))
	srv.AddTransport(websocketTransport(s, opts.KeepAlive))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(socketExtension{s})
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)
	overHTTP := authenticate(s, checkRequest(opts.MaxBodyBytes, srv))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsWebSocketUpgrade(r) {
			// Any other Upgrade header (h2c, …) is ignored: this is a plain
			// HTTP request.
			r.Header.Del("Upgrade")
			overHTTP.ServeHTTP(w, r)
			return
		}
		if !opts.CheckOrigin(r) {
			writeError(w, http.StatusForbidden, CodeForbidden, "WebSocket connections from this origin are not allowed")
			return
		}
		// Authentication comes with connection_init (see initSocket).
		srv.ServeHTTP(w, r.WithContext(withSocket(r.Context())))
	})
}

// authenticate resolves the request's token into a viewer and gives the
// request its own dataloaders. A token that does not authenticate fails the
// whole request: it is never treated as anonymous.
func authenticate(s *store.Store, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var viewer store.Viewer
		if secret, ok := tokenFrom(r); ok {
			u, err := s.Authenticate(ctx, secret)
			if err != nil {
				status, code := http.StatusUnauthorized, CodeUnauthenticated
				if store.ErrorCode(err) != store.EUnauthenticated {
					status, code = http.StatusInternalServerError, CodeInternal
				}
				writeError(w, status, code, publicMessage(err))
				return
			}
			viewer.User = u
		}
		ctx = WithLoaders(WithViewer(ctx, viewer), NewLoaders(s))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// tokenFrom reads `Authorization: Bearer <token>` or `PRIVATE-TOKEN`.
func tokenFrom(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		token, _ := bearerToken(h)
		return token, true // an Authorization header we cannot use is a bad token, not anonymity
	}
	if t := r.Header.Get("PRIVATE-TOKEN"); t != "" {
		return strings.TrimSpace(t), true
	}
	return "", false
}

// bearerToken reads "Bearer <token>"; ok is false for anything else.
func bearerToken(h string) (token string, ok bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// checkRequest refuses requests that are not GraphQL requests with a
// BAD_REQUEST error, before gqlgen sees them: every error carries a code.
func checkRequest(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			query := r.URL.Query().Get("query")
			if query == "" {
				writeError(w, http.StatusBadRequest, CodeBadRequest, "A GET request needs a query parameter")
				return
			}
			if mutates(query, r.URL.Query().Get("operationName")) {
				// A GET must not change anything: a link or an image tag
				// could send one.
				w.Header().Set("Allow", "POST")
				writeError(w, http.StatusMethodNotAllowed, CodeBadRequest, "Mutations must be sent with POST")
				return
			}
		case http.MethodPost:
			mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mediaType != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, CodeBadRequest, "A POST request needs Content-Type: application/json")
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					writeError(w, http.StatusRequestEntityTooLarge, CodeBadRequest, "The request body is larger than the limit")
					return
				}
				writeError(w, http.StatusBadRequest, CodeBadRequest, "The request body could not be read")
				return
			}
			var req struct {
				Query any `json:"query"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				writeError(w, http.StatusBadRequest, CodeBadRequest, "The request body is not a JSON object")
				return
			}
			if q, ok := req.Query.(string); !ok || strings.TrimSpace(q) == "" {
				writeError(w, http.StatusBadRequest, CodeBadRequest, "The request has no query")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, CodeBadRequest, "Use GET or POST")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// mutates reports whether the operation a GET request would run is a
// mutation; a document that does not parse is left to the executor's own
// error.
func mutates(query, operationName string) bool {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return false
	}
	for _, op := range doc.Operations {
		if (operationName == "" || op.Name == operationName) && op.Operation != ast.Query {
			return true
		}
	}
	return false
}

// writeError answers a request that never reached execution.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []*gqlerror.Error{{
		Message: message, Extensions: map[string]any{"code": code},
	}}})
}

// publicMessage is an error's message when it is a domain error, and a bare
// statement otherwise.
func publicMessage(err error) string {
	var e *store.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal server error"
}
