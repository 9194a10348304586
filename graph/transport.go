package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Response media types (GraphQL over HTTP).
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// httpTransport is GraphQL over HTTP (https://graphql.github.io/graphql-over-http/)
// for GET and POST: it reads the request's parameters, answers in the media
// type the client accepts, and picks the status code from the kind of error.
//
//   - A request that is not a GraphQL request (bad JSON, a parameter of the
//     wrong type, no query): 400 BAD_REQUEST.
//   - A document that does not parse or validate, or variables that do not
//     coerce: 200 with application/json, 400 with
//     application/graphql-response+json; never a data entry.
//   - An operation over a limit: 422 COMPLEXITY_LIMIT_EXCEEDED.
//   - A mutation over GET: 405, also when its query comes from the persisted
//     query cache.
//   - Anything that executes: 200, with field errors beside the data.
type httpTransport struct{}

var _ graphql.Transport = httpTransport{}

func (httpTransport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && (r.Method == http.MethodGet || r.Method == http.MethodPost)
}

func (httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	mediaType, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		writeError(w, r, http.StatusNotAcceptable, CodeBadRequest,
			"The server answers with application/graphql-response+json or application/json only")
		return
	}
	start := graphql.Now()
	params, err := readParams(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	w.Header().Set("Content-Type", mediaType)
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		for _, e := range errs {
			if _, ok := e.Extensions["code"]; !ok {
				// gqlgen's own request errors (a persisted query hash that
				// does not match, an unknown operation name) have no code.
				errcode.Set(e, CodeBadRequest)
			}
		}
		w.WriteHeader(requestErrorStatus(errs, mediaType))
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		writeJSON(w, errorResponse{Errors: resp.Errors, Extensions: resp.Extensions})
		return
	}
	switch op := opCtx.Operation.Operation; {
	case r.Method == http.MethodGet && op != ast.Query:
		// A GET must not change anything: a link or an image tag could
		// send one. The operation is checked here, after a persisted query
		// has been looked up, so a cached mutation cannot run over GET.
		w.Header().Set("Allow", "POST")
		writeError(w, r, http.StatusMethodNotAllowed, CodeBadRequest, "Mutations must be sent with POST")
		return
	case op == ast.Subscription:
		writeError(w, r, http.StatusBadRequest, CodeBadRequest, "Subscriptions are served over WebSocket only")
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeResponse(w, responses(ctx))
}

// writeResponse writes an executed operation's response. Its data is
// gqlgen's own JSON, copied as it is (HTML-escaped, as encoding/json does)
// rather than checked and compacted again by encoding/json: a page of 50
// deployments is 20 KiB of it.
func writeResponse(w io.Writer, resp *graphql.Response) {
	if resp.Label != "" || resp.Path != nil || resp.HasNext != nil {
		writeJSON(w, resp) // parts of incremental delivery, which this transport never sends
		return
	}
	b := responseBodies.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= maxKeptBody {
			b.Reset()
			responseBodies.Put(b)
		}
	}()
	b.Grow(len(resp.Data) + 64)
	b.WriteByte('{')
	if len(resp.Errors) > 0 {
		errs, err := json.Marshal(resp.Errors)
		if err != nil {
			writeJSON(w, resp)
			return
		}
		b.WriteString(`"errors":`)
		b.Write(errs)
		b.WriteByte(',')
	}
	b.WriteString(`"data":`)
	switch {
	case len(resp.Data) == 0:
		b.WriteString("null")
	case needsHTMLEscape(resp.Data):
		json.HTMLEscape(b, resp.Data)
	default:
		b.Write(resp.Data)
	}
	if len(resp.Extensions) > 0 {
		ext, err := json.Marshal(resp.Extensions)
		if err != nil {
			writeJSON(w, resp)
			return
		}
		b.WriteString(`,"extensions":`)
		b.Write(ext)
	}
	b.WriteByte('}')
	w.Write(b.Bytes())
}

// responseBodies keep the buffers that responses are assembled in, for
// the next: the writer copies what it is given before Write returns. A
// buffer grown past maxKeptBody is left to the collector.
var responseBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxKeptBody = 1 << 20

// needsHTMLEscape reports whether json.HTMLEscape would change data: only
// '<', '>', '&' and U+2028, U+2029 (which start with 0xE2) are escaped.
// Most answers have none, and a search for each byte is far quicker than
// HTMLEscape's walk through every one.
func needsHTMLEscape(data []byte) bool {
	for _, c := range []byte{'<', '>', '&', 0xE2} {
		if bytes.IndexByte(data, c) >= 0 {
			return true
		}
	}
	return false
}

// errorResponse is a response to a request that did not execute: it has no
// data entry at all, not even null.
type errorResponse struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// requestErrorStatus is the status of a response to a request that failed
// before execution.
func requestErrorStatus(errs gqlerror.List, mediaType string) int {
	for _, e := range errs {
		if status, ok := refusalStatus[codeOf(e)]; ok {
			return status
		}
	}
	// Parse and validation failures: application/json keeps 200 for every
	// well-formed request, application/graphql-response+json says 400.
	if mediaType == mediaGraphQLResponse && errcode.GetErrorKind(errs) == errcode.KindProtocol {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// negotiate picks the response media type from an Accept header: the
// supported type with the highest quality, application/json when the header
// is missing or accepts anything. ok is false when nothing supported is
// acceptable.
func negotiate(accept string) (mediaType string, ok bool) {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON, true
	}
	bestQ := 0.0
	for part := range strings.SplitSeq(accept, ",") {
		t, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil {
				continue
			}
		}
		var candidate string
		switch t {
		case mediaGraphQLResponse:
			candidate = mediaGraphQLResponse
		case mediaJSON, "application/*", "*/*":
			candidate = mediaJSON
		default:
			continue
		}
		if q > bestQ {
			mediaType, bestQ = candidate, q
		}
	}
	return mediaType, bestQ > 0
}

// readParams reads a GraphQL request's parameters from the URL of a GET or
// the JSON body of a POST, checking each one's type. A request without a
// query is refused unless it names a persisted query.
func readParams(r *http.Request) (*graphql.RawParams, error) {
	var (
		p   rawParams
		err error
	)
	if r.Method == http.MethodGet {
		p, err = paramsFromURL(r.URL.RawQuery)
	} else {
		p, err = paramsFromBody(r.Body)
	}
	if err != nil {
		return nil, err
	}
	params := &graphql.RawParams{}
	if err := p.decode(params); err != nil {
		return nil, err
	}
	if strings.TrimSpace(params.Query) == "" && params.Extensions["persistedQuery"] == nil {
		return nil, requestError("The request has no query")
	}
	return params, nil
}

// rawParams are the request's parameters as decoded JSON values (numbers
// kept exact, as json.Number, as gqlgen's own transports do); null is the
// same as absent. Reading the body is one decoding pass: the types are
// checked on the values.
type rawParams struct {
	Query         any `json:"query"`
	OperationName any `json:"operationName"`
	Variables     any `json:"variables"`
	Extensions    any `json:"extensions"`
}

func paramsFromBody(body io.Reader) (rawParams, error) {
	var p rawParams
	data, err := bodyBytes(body)
	if err != nil {
		return p, requestError("The request body could not be read")
	}
	keep := len(data) <= keptBodies.maxBytes && !bytes.Contains(data, []byte("mutation"))
	if keep {
		if kept, ok := keptBodies.Get(context.Background(), string(data)); ok {
			return kept.clone(), nil
		}
	}
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) || decodeJSON(data, &p) != nil {
		return p, requestError("The request body is not a JSON object")
	}
	if keep {
		keptBodies.Add(context.Background(), string(data), p.clone())
	}
	return p, nil
}

// keptBodies are the parameters decoded from recent request bodies, by the
// body's bytes. Dashboards send the same query with the same variables
// again and again, and decoding its JSON (the query string above all, its
// line breaks escaped) is about a fifteenth of a small query's work.
// Decoding depends on the bytes alone, so handlers may share them. Bodies
// that mention a mutation are not kept: they rarely repeat. Callers get a
// copy, so that nothing they do to its values reaches the next request.
var keptBodies = newBoundedCache(256, 16<<10, func(body string, _ rawParams) int { return len(body) })

// clone copies p's objects and arrays; strings, numbers, booleans and null
// are values that nothing changes.
func (p rawParams) clone() rawParams {
	p.Variables, p.Extensions = cloneJSON(p.Variables), cloneJSON(p.Extensions)
	return p
}

func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = cloneJSON(e)
		}
		return s
	}
	return v
}

// bodyBytes is the whole of body, taken as it is when checkRequest has
// read it already.
func bodyBytes(body io.Reader) ([]byte, error) {
	if b, ok := body.(readBody); ok {
		return b.data, nil
	}
	return io.ReadAll(body)
}

// decodeJSON decodes one JSON value, and nothing after it, into v.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errNotObject
	}
	return nil
}

// paramsFromURL reads a GET's parameters: query and operationName as plain
// strings, variables and extensions as JSON.
func paramsFromURL(rawQuery string) (rawParams, error) {
	var p rawParams
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, requestError("The URL's query string cannot be decoded")
	}
	if values.Has("query") {
		p.Query = values.Get("query")
	}
	if values.Has("operationName") {
		p.OperationName = values.Get("operationName")
	}
	for _, param := range []struct {
		name string
		out  *any
	}{{"variables", &p.Variables}, {"extensions", &p.Extensions}} {
		text := strings.TrimSpace(values.Get(param.name))
		if text == "" {
			continue
		}
		if !strings.HasPrefix(text, "{") && text != "null" || decodeJSON([]byte(text), param.out) != nil {
			return p, requestError("The " + param.name + " must be a JSON object")
		}
	}
	return p, nil
}

func (p rawParams) decode(out *graphql.RawParams) error {
	var ok bool
	if out.Query, ok = asString(p.Query); !ok {
		return requestError("The query must be a string")
	}
	if out.OperationName, ok = asString(p.OperationName); !ok {
		return requestError("The operationName must be a string")
	}
	if out.Variables, ok = asObject(p.Variables); !ok {
		return requestError("The variables must be a JSON object")
	}
	if out.Extensions, ok = asObject(p.Extensions); !ok {
		return requestError("The extensions must be a JSON object")
	}
	return nil
}

// asString reads a string parameter; null or absent is "".
func asString(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	}
	return "", false
}

// asObject reads an object parameter; null or absent is nil.
func asObject(v any) (map[string]any, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case map[string]any:
		return v, true
	}
	return nil, false
}

type requestError string

func (e requestError) Error() string { return string(e) }

const errNotObject = requestError("not a JSON object")

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"errors":[{"message":"Internal server error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`)
	}
	w.Write(b)
}
