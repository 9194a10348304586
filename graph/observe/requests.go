package observe

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// RequestIDHeader carries the request id: a client may send one (letters,
// digits, '.', '_', '-', up to 64), and every response carries it.
const RequestIDHeader = "X-Request-Id"

// Outcomes of a request.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
)

// OperationNone is the operation type of a request that never named a
// valid operation (it did not parse, or never reached GraphQL).
const OperationNone = "none"

// request is what one request has shown of itself so far. The GraphQL
// handler fills it while the middleware that made it waits.
type request struct {
	mu      sync.Mutex
	graphQL bool
	opName  string
	opType  string
	codes   []string // one per error, in order
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

// GraphQLRequest marks the request as a GraphQL request, which the GraphQL
// request metrics count.
func GraphQLRequest(ctx context.Context) {
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.graphQL = true
		r.mu.Unlock()
	}
}

// NoteOperation records the operation the request runs.
func NoteOperation(ctx context.Context, name, opType string) {
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.opName, r.opType = name, opType
		r.mu.Unlock()
	}
}

// NoteError records an error the response carries, by its extensions.code.
func NoteError(ctx context.Context, code string) {
	if code == "" {
		code = "UNKNOWN"
	}
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.codes = append(r.codes, code)
		r.mu.Unlock()
	}
}

// Middleware gives every request an id (in the X-Request-Id response
// header), logs one line when it has been answered, and counts GraphQL
// requests in m.
//
// IMPORTANT: the line holds the method, the path without its query string,
// the status, the operation's name and type, the duration and the error
// codes; never headers (tokens), query strings or variables (secrets).
func Middleware(logger *slog.Logger, m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		rec := &request{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestKey{}, rec)))
		d := time.Since(start)

		status := sw.status()
		rec.mu.Lock()
		graphQL, opName, opType, codes := rec.graphQL, rec.opName, rec.opType, slices.Clone(rec.codes)
		rec.mu.Unlock()
		if opType == "" {
			opType = OperationNone
		}
		outcome := OutcomeOK
		if len(codes) > 0 || (status >= 400 && status != http.StatusNotModified) {
			outcome = OutcomeError
		}
		attrs := []slog.Attr{
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.String("outcome", outcome),
		}
		if graphQL {
			attrs = append(attrs, slog.String("operation_type", opType))
			if opName != "" {
				attrs = append(attrs, slog.String("operation", truncate(opName, 100)))
			}
			m.observeRequest(opType, outcome, codes, d)
		}
		if len(codes) > 0 {
			attrs = append(attrs, slog.Any("error_codes", distinct(codes)))
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// validRequestID accepts a client's id only if it is short and plain, so
// that it cannot forge log lines or carry anything large.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func distinct(codes []string) []string {
	var out []string
	for _, c := range codes {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// statusWriter remembers the status of the response. It stays a Hijacker
// and a Flusher, which WebSocket and streaming transports need.
type statusWriter struct {
	http.ResponseWriter
	mu   sync.Mutex
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.setStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) setStatus(code int) {
	w.mu.Lock()
	if w.code == 0 {
		w.code = code
	}
	w.mu.Unlock()
}

func (w *statusWriter) status() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response cannot be hijacked")
	}
	w.setStatus(http.StatusSwitchingProtocols)
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Operations is the gqlgen extension that tells the request's log line and
// metrics which operation ran and which error codes it answered with.
type Operations struct{}

var (
	_ graphql.HandlerExtension     = Operations{}
	_ graphql.OperationInterceptor = Operations{}
	_ graphql.ResponseInterceptor  = Operations{}
)

func (Operations) ExtensionName() string                   { return "Observe" }
func (Operations) Validate(graphql.ExecutableSchema) error { return nil }

func (Operations) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil {
		NoteOperation(ctx, oc.Operation.Name, string(oc.Operation.Operation))
	}
	return next(ctx)
}

func (Operations) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		for _, e := range resp.Errors {
			code, _ := e.Extensions["code"].(string)
			NoteError(ctx, code)
		}
	}
	return resp
}
