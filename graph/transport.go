package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
	writeJSON(w, responses(ctx))
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

// rawParams are the request's parameters as JSON values; null is the same
// as absent.
type rawParams struct {
	Query         json.RawMessage `json:"query"`
	OperationName json.RawMessage `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

func paramsFromBody(body io.Reader) (rawParams, error) {
	var p rawParams
	data, err := io.ReadAll(body)
	if err != nil {
		return p, requestError("The request body could not be read")
	}
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) || json.Unmarshal(data, &p) != nil {
		return p, requestError("The request body is not a JSON object")
	}
	return p, nil
}

// paramsFromURL reads a GET's parameters: query and operationName as plain
// strings, variables and extensions as JSON.
func paramsFromURL(rawQuery string) (rawParams, error) {
	var p rawParams
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, requestError("The URL's query string cannot be decoded")
	}
	str := func(name string) json.RawMessage {
		if !values.Has(name) {
			return nil
		}
		b, _ := json.Marshal(values.Get(name))
		return b
	}
	p.Query, p.OperationName = str("query"), str("operationName")
	if v := values.Get("variables"); v != "" {
		p.Variables = json.RawMessage(v)
	}
	if v := values.Get("extensions"); v != "" {
		p.Extensions = json.RawMessage(v)
	}
	return p, nil
}

func (p rawParams) decode(out *graphql.RawParams) error {
	if err := decodeString(p.Query, &out.Query); err != nil {
		return requestError("The query must be a string")
	}
	if err := decodeString(p.OperationName, &out.OperationName); err != nil {
		return requestError("The operationName must be a string")
	}
	if err := decodeObject(p.Variables, &out.Variables); err != nil {
		return requestError("The variables must be a JSON object")
	}
	if err := decodeObject(p.Extensions, &out.Extensions); err != nil {
		return requestError("The extensions must be a JSON object")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func decodeString(raw json.RawMessage, out *string) error {
	if isNull(raw) {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// decodeObject decodes a JSON object keeping numbers exact (json.Number), as
// gqlgen's own transports do.
func decodeObject(raw json.RawMessage, out *map[string]any) error {
	if isNull(raw) {
		return nil
	}
	raw = bytes.TrimSpace(raw)
	if !bytes.HasPrefix(raw, []byte("{")) {
		return errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return err
	}
	if dec.More() {
		return errNotObject
	}
	return nil
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
