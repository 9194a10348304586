package graph

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deploygraph/deploygraph/graph/observe"
	"github.com/deploygraph/deploygraph/store"
)

// Options configure the GraphQL endpoint. Zero values take the defaults.
type Options struct {
	// Introspection allows __schema and __type, and "Did you mean …?"
	// suggestions in validation errors.
	Introspection bool
	// MaxBodyBytes bounds a request body (1 MiB).
	MaxBodyBytes int64
	// MaxDepth bounds how deeply fields nest (15).
	MaxDepth int
	// MaxComplexity bounds an operation's cost, where every connection
	// multiplies its children by its page size (5000).
	MaxComplexity int
	// MaxAliases bounds the aliased fields of an operation (30).
	MaxAliases int
	// MaxTokens bounds the size of a document for the parser (15000).
	MaxTokens int
	// CORSOrigins are the browser origins, such as https://app.example.com,
	// that may call the API from another site. None by default.
	CORSOrigins []string
	// CheckOrigin decides whether a browser page may open a WebSocket from
	// the request's Origin. Nil means RequestOriginAllowed: no Origin, the
	// server's own, or one of CORSOrigins.
	CheckOrigin func(r *http.Request) bool
	// KeepAlive is how often an idle WebSocket is pinged; 0 means 25 s.
	KeepAlive time.Duration
	// Metrics, when set, receive the dataloaders' batch sizes. The
	// request metrics and log lines come from observe.Middleware.
	Metrics *observe.Metrics
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxComplexity <= 0 {
		o.MaxComplexity = DefaultMaxComplexity
	}
	if o.MaxAliases <= 0 {
		o.MaxAliases = DefaultMaxAliases
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	if o.CheckOrigin == nil {
		o.CheckOrigin = o.RequestOriginAllowed
	}
	return o
}

// persistedQueries is how many queries the automatic persisted query cache
// keeps, and maxPersistedQueryBytes the longest query it keeps: together they
// bound its memory.
const (
	persistedQueries       = 1000
	maxPersistedQueryBytes = 32 << 10
)

// NewHandler serves GraphQL at a single path: over HTTP, POST with a JSON
// body and GET for queries; over a WebSocket (GET with Upgrade),
// subscriptions.
func NewHandler(s *store.Store, opts Options) *Handler {
	opts = opts.withDefaults()
	resolver := &Resolver{Store: s, Metrics: opts.Metrics}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: resolver, Complexity: complexity()}))
	srv.AddTransport(websocketTransport(s, opts.KeepAlive))
	srv.AddTransport(httpTransport{})
	srv.SetQueryCache(&queryCache{LRU: lru.New[*ast.QueryDocument](queryCacheSize)})
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.SetParserTokenLimit(opts.MaxTokens)
	srv.SetDisableSuggestion(!opts.Introspection)
	srv.SetValidationRulesFn(validationRules(opts.Introspection))
	srv.Use(extension.AutomaticPersistedQuery{Cache: newPersistedQueryCache(persistedQueries, maxPersistedQueryBytes)})
	srv.Use(operationLimits{MaxDepth: opts.MaxDepth, MaxAliases: opts.MaxAliases, MaxComplexity: opts.MaxComplexity})
	srv.Use(extension.FixedComplexityLimit(opts.MaxComplexity))
	srv.Use(socketExtension{resolver})
	srv.Use(observe.Operations{})
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)
	overHTTP := opts.cors(authenticate(s, opts.Metrics, checkRequest(opts.MaxBodyBytes, srv)))
	return &Handler{resolver: resolver, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions { // a CORS preflight asks nothing of GraphQL
			observe.GraphQLRequest(r.Context())
		}
		if !IsWebSocketUpgrade(r) {
			// Any other Upgrade header (h2c, …) is ignored: this is a plain
			// HTTP request.
			r.Header.Del("Upgrade")
			overHTTP.ServeHTTP(w, r)
			return
		}
		if !opts.CheckOrigin(r) {
			writeError(w, r, http.StatusForbidden, CodeForbidden, "WebSocket connections from this origin are not allowed")
			return
		}
		// Authentication comes with connection_init (see initSocket).
		srv.ServeHTTP(w, r.WithContext(withSocket(r.Context())))
	})}
}

// Handler is the GraphQL endpoint.
type Handler struct {
	http.Handler
	resolver *Resolver
}

// Drain ends every subscription at shutdown: each WebSocket is closed with
// 1001 (going away), and new subscriptions end at once. It returns when
// the last subscription has sent its close, or when ctx ends.
func (h *Handler) Drain(ctx context.Context) error {
	h.resolver.Store.EndSubscriptions()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for h.resolver.streams.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// Dashboards send the same few queries again and again: parsing and
// validating them is a good part of a small request's cost, so the
// validated documents of recent queries are kept.
const (
	queryCacheSize     = 1000
	maxCachedQueryText = 16 << 10
)

// queryCache keeps only queries of ordinary size, so that a thousand large
// distinct queries cannot fill the memory.
type queryCache struct {
	*lru.LRU[*ast.QueryDocument]
}

func (c *queryCache) Add(ctx context.Context, query string, doc *ast.QueryDocument) {
	if len(query) <= maxCachedQueryText {
		c.LRU.Add(ctx, query, doc)
	}
}

// authenticate resolves the request's token into a viewer and gives the
// request its own dataloaders. A token that does not authenticate fails the
// whole request: it is never treated as anonymous.
func authenticate(s *store.Store, m *observe.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		viewer, err := viewerOf(s, r)
		if err != nil {
			writeRefusal(w, r, err)
			return
		}
		ctx := WithLoaders(WithViewer(r.Context(), viewer), NewLoaders(s, m.ObserveBatch))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// viewerOf resolves the request's token into a viewer: anonymous without a
// token, an error for a token that does not authenticate.
func viewerOf(s *store.Store, r *http.Request) (store.Viewer, error) {
	var viewer store.Viewer
	if secret, ok := tokenFrom(r); ok {
		u, err := s.Authenticate(r.Context(), secret)
		if err != nil {
			return viewer, err
		}
		viewer.User = u
	}
	return viewer, nil
}

// refusals are the HTTP statuses of requests refused before any work:
// without a valid token, or without the right.
var refusals = map[store.Code]struct {
	status int
	code   string
}{
	store.EUnauthenticated: {http.StatusUnauthorized, CodeUnauthenticated},
	store.EForbidden:       {http.StatusForbidden, CodeForbidden},
}

// writeRefusal answers a request refused outside GraphQL execution; any
// error but a refusal is an internal one.
func writeRefusal(w http.ResponseWriter, r *http.Request, err error) {
	if refusal, ok := refusals[store.ErrorCode(err)]; ok {
		writeError(w, r, refusal.status, refusal.code, publicMessage(err))
		return
	}
	slog.Error("request failed", "error", err.Error())
	writeError(w, r, http.StatusInternalServerError, CodeInternal, "Internal server error")
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

// checkRequest refuses, before gqlgen sees them, requests that cannot be
// GraphQL requests: methods other than GET and POST, POST bodies that are not
// application/json (so that an HTML form cannot send one) and bodies over
// the limit.
func checkRequest(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost:
			mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mediaType != "application/json" {
				writeError(w, r, http.StatusUnsupportedMediaType, CodeBadRequest, "A POST request needs Content-Type: application/json")
				return
			}
			if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") {
				writeError(w, r, http.StatusUnsupportedMediaType, CodeBadRequest, "A POST request body must be UTF-8")
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					writeError(w, r, http.StatusRequestEntityTooLarge, CodeBadRequest, "The request body is larger than the limit")
					return
				}
				writeError(w, r, http.StatusBadRequest, CodeBadRequest, "The request body could not be read")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, r, http.StatusMethodNotAllowed, CodeBadRequest, "Use GET or POST")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeError answers a request that never reached execution.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	observe.NoteError(r.Context(), code)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(status)
	writeJSON(w, errorResponse{Errors: gqlerror.List{{Message: message, Extensions: map[string]any{"code": code}}}})
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
