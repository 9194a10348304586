package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
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
	// MaxRunningQueries bounds how many queries run at once; the others
	// wait their turn (see queryTurns). Twice GOMAXPROCS by default.
	MaxRunningQueries int
	// CORSOrigins are the browser origins, such as https://app.example.com,
	// that may call the API from another site. None by default.
	CORSOrigins []string
	// KeepAlive is how often an idle WebSocket is pinged; 0 means 25 s.
	KeepAlive time.Duration
	// Metrics, when set, receive the dataloaders' batch sizes. The
	// request metrics and log lines come from observe.Middleware.
	Metrics *observe.Metrics
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = maxBodyBytes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxComplexity <= 0 {
		o.MaxComplexity = DefaultMaxComplexity
	}
	if o.MaxRunningQueries <= 0 {
		o.MaxRunningQueries = DefaultMaxRunningQueries()
	}
	return o
}

// NewHandler serves GraphQL at a single path: over HTTP, POST with a JSON
// body and GET for queries; over a WebSocket (GET with Upgrade),
// subscriptions.
func NewHandler(s *store.Store, opts Options) *Handler {
	opts = opts.withDefaults()
	resolver := &Resolver{Store: s, Metrics: opts.Metrics}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: newResolverRoot(resolver), Complexity: complexity()}))
	srv.AddTransport(websocketTransport(s, opts.KeepAlive))
	srv.AddTransport(httpTransport{})
	srv.SetQueryCache(newBoundedCache(cachedQueries, maxCachedQueryBytes, func(query string, _ *ast.QueryDocument) int { return len(query) }))
	use := func(ext graphql.HandlerExtension) {
		// Fields that only read a struct field bypass field middleware (see
		// graph/generate), so there must be none.
		if _, ok := ext.(graphql.FieldInterceptor); ok {
			panic(fmt.Sprintf("graph: extension %s intercepts fields, which the generated code does not run for plain fields", ext.ExtensionName()))
		}
		srv.Use(ext)
	}
	if opts.Introspection {
		use(extension.Introspection{})
	}
	srv.SetParserTokenLimit(maxTokens)
	srv.SetValidationRulesFn(validationRules(opts.Introspection))
	use(extension.AutomaticPersistedQuery{Cache: newBoundedCache(persistedQueries, maxPersistedQueryBytes, func(_, query string) int { return len(query) })})
	use(newOperationCost(operationLimits{MaxDepth: opts.MaxDepth, MaxAliases: maxAliases, MaxComplexity: opts.MaxComplexity}))
	use(socketExtension{resolver})
	use(observe.Operations{})
	// Inside observe.Operations, which notes a response's error codes: a
	// query whose request ends while it waits for its turn is counted as
	// the error it answers.
	use(newQueryTurns(opts.MaxRunningQueries, opts.Metrics))
	use(querySnapshot{s}) // begun in the query's turn, ended before the next query's
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)
	overHTTP := withDeadline(requestTimeout, opts.cors(authenticate(resolver, checkRequest(opts.MaxBodyBytes, srv))))
	return &Handler{resolver: resolver, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions { // a CORS preflight asks nothing of GraphQL
			observe.GraphQLRequest(r.Context())
		}
		if !isWebSocketUpgrade(r) {
			// Any other Upgrade header (h2c, …) is ignored: this is a plain
			// HTTP request.
			r.Header.Del("Upgrade")
			overHTTP.ServeHTTP(w, r)
			return
		}
		if !opts.RequestOriginAllowed(r) {
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

// authenticate resolves the request's token into a viewer and gives the
// request its own dataloaders. A token that does not authenticate fails the
// whole request: it is never treated as anonymous.
func authenticate(resolver *Resolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		viewer, err := viewerOf(resolver.Store, r)
		if err != nil {
			writeRefusal(w, r, err)
			return
		}
		ctx := WithOperation(WithViewer(r.Context(), viewer), resolver.loaders)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// viewerOf resolves the request's token into a viewer.
func viewerOf(s *store.Store, r *http.Request) (store.Viewer, error) {
	secret, ok := tokenFrom(r)
	return viewerFor(r.Context(), s, secret, ok)
}

// viewerFor resolves a token into a viewer: anonymous without one (ok
// false), an error for one that does not authenticate.
func viewerFor(ctx context.Context, s *store.Store, secret string, ok bool) (store.Viewer, error) {
	var viewer store.Viewer
	if ok {
		u, err := s.Authenticate(ctx, secret)
		if err != nil {
			return viewer, err
		}
		viewer.User = u
	}
	return viewer, nil
}

// writeRefusal answers a request refused outside GraphQL execution, such
// as one whose token does not authenticate; any error but a refusal is an
// internal one.
func writeRefusal(w http.ResponseWriter, r *http.Request, err error) {
	e := presentError(r.Context(), err)
	if status, ok := refusalStatus[codeOf(e)]; ok {
		writeError(w, r, status, codeOf(e), e.Message)
		return
	}
	writeError(w, r, http.StatusInternalServerError, CodeInternal, "Internal server error")
}

// tokenFrom reads `Authorization: Bearer <token>` or `PRIVATE-TOKEN`.
func tokenFrom(r *http.Request) (string, bool) {
	authorization, privateToken := r.Header.Get("Authorization"), r.Header.Get("PRIVATE-TOKEN")
	return tokenOf(authorization, authorization != "", privateToken, privateToken != "")
}

// tokenOf picks the token from an Authorization value ("Bearer <token>")
// or else a PRIVATE-TOKEN value, each given with whether it was sent. A
// value sent without a usable token is a bad token (""), never anonymity:
// Authenticate refuses it like any other.
func tokenOf(authorization string, hasAuthorization bool, privateToken string, hasPrivateToken bool) (string, bool) {
	if hasAuthorization {
		token, _ := bearerToken(authorization)
		return token, true
	}
	if hasPrivateToken {
		return strings.TrimSpace(privateToken), true
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
			r.Body = readBody{Reader: bytes.NewReader(body), data: body}
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, r, http.StatusMethodNotAllowed, CodeBadRequest, "Use GET or POST")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readBody is a request body that checkRequest has read whole (to hold it
// to the size limit before anything else is answered); the transport takes
// its bytes as they are instead of reading them again.
type readBody struct {
	*bytes.Reader
	data []byte
}

func (readBody) Close() error { return nil }

// writeError answers a request that never reached execution.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	observe.NoteError(r.Context(), code)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(status)
	writeJSON(w, errorResponse{Errors: gqlerror.List{{Message: message, Extensions: map[string]any{"code": code}}}})
}
