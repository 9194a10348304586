package graph

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/deploygraph/deploygraph/graph/model"
	"github.com/deploygraph/deploygraph/graph/observe"
	"github.com/deploygraph/deploygraph/store"
)

// Limits (SPEC section 8); the server's flags set depth and complexity.
const (
	DefaultMaxDepth      = 15
	DefaultMaxComplexity = 5000
	maxAliases           = 30
	maxBodyBytes         = 1 << 20
	// maxTokens bounds the lexer: a longer document fails to parse before
	// any of it is validated.
	maxTokens = 15000
	// requestTimeout bounds an HTTP request (not a WebSocket).
	requestTimeout = 30 * time.Second
)

// withDeadline bounds a request to timeout without a goroutine or a
// buffer per request (http.TimeoutHandler has both, a sizeable share of a
// small request's cost). The request's context ends at the deadline, and
// every wait of a request observes it: loaders, store reads, the queue for
// a commit. A body that trickles in fails at the deadline too. A handler
// that only comes to answer after its deadline answers 503 with
// timeoutBody instead; one that started answering in time finishes.
func withDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(timeout)
		// Not every writer can (httptest's cannot); the context still ends.
		_ = http.NewResponseController(w).SetReadDeadline(deadline)
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		defer cancel()
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, ctx: ctx, deadline: deadline}, r.WithContext(ctx))
	})
}

// deadlineWriter replaces an answer that starts after the deadline by the
// timeout error.
type deadlineWriter struct {
	http.ResponseWriter
	ctx      context.Context
	deadline time.Time
	started  bool
	late     bool
}

func (w *deadlineWriter) WriteHeader(status int) {
	if w.start() {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	if !w.start() {
		return 0, http.ErrHandlerTimeout
	}
	return w.ResponseWriter.Write(b)
}

// start reports whether the handler's answer goes out: once it has begun
// in time, the rest of it does too.
func (w *deadlineWriter) start() bool {
	if w.started {
		return !w.late
	}
	w.started = true
	// The clock, not ctx: the body's read deadline may fail a read a moment
	// before the context's timer has fired.
	if time.Now().Before(w.deadline) {
		return true
	}
	w.late = true
	observe.NoteError(w.ctx, CodeInternal)
	h := w.ResponseWriter.Header()
	clear(h)
	h.Set("Content-Type", mediaJSON)
	w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w.ResponseWriter, timeoutBody)
	return false
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errTookTooLong is the error of a request that ran out of time.
func errTookTooLong() *gqlerror.Error {
	return &gqlerror.Error{Message: "The request took too long", Extensions: map[string]any{"code": CodeInternal}}
}

// timeoutBody answers a request that ran out of time.
var timeoutBody = func() string {
	var b strings.Builder
	writeJSON(&b, errorResponse{Errors: gqlerror.List{errTookTooLong()}})
	return b.String()
}()

func init() {
	// A refused operation is a request error, not a field error: it never
	// starts executing (and over WebSocket it ends the operation).
	errcode.RegisterErrorType(CodeComplexityLimit, errcode.KindProtocol)
}

// complexity weighs every connection by the size of the page it asks for, so
// that nested connections multiply: 100 deployments with 100 merge requests
// each cost 100 × 100 times a merge request's fields. Other fields cost 1
// plus their children (gqlgen's default).
func complexity() ComplexityRoot {
	var c ComplexityRoot
	c.Query.Projects = func(child int, _ *string, _ *bool, first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	c.Query.Nodes = func(child int, ids []string) int {
		return saturatingAdd(1, saturatingMul(child, len(ids)))
	}
	c.Project.Environments = func(child int, _, _ *string, _ []store.EnvironmentState, _ []store.EnvironmentTier,
		first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	c.Project.Deployments = func(child int, _ *model.DeploymentOrderBy, _ *model.SortDirection, _, _, _, _ *time.Time,
		_ *store.DeploymentStatus, _ []store.DeploymentStatus, _, _, _ *string, first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	c.Environment.Deployments = func(child int, _ *model.DeploymentOrderBy, _ *model.SortDirection, _, _, _, _ *time.Time,
		_ *store.DeploymentStatus, _ []store.DeploymentStatus, _, _ *string, first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	c.MergeRequest.Deployments = c.Environment.Deployments
	c.Project.MergeRequests = func(child int, _ *store.MergeRequestState, _ *model.MergeRequestOrderBy, _ *model.SortDirection,
		_ []string, _, _, _, _ *string, _, _, _, _ *time.Time, _ *bool, first *int, _ *string, last *int, _ *string) int {
		return connectionCost(child, first, last)
	}
	c.Deployment.MergeRequests = c.Project.MergeRequests
	return c
}

// connectionCost is 1 plus a connection's children times the number of items
// its page can hold: first or last (the smaller of the two when both are
// given), 20 by default. A size the resolver refuses costs as a page of 1 or
// 100.
func connectionCost(child int, first, last *int) int {
	n := store.DefaultPageSize
	switch {
	case first != nil && last != nil:
		n = min(*first, *last)
	case first != nil:
		n = *first
	case last != nil:
		n = *last
	}
	return saturatingAdd(1, saturatingMul(child, min(max(n, 1), store.MaxPageSize)))
}

// operationLimits refuses, before anything runs, an operation whose fields
// nest deeper than MaxDepth or that has more than MaxAliases aliases. Fields
// named __* (introspection) add no depth: gqlparser bounds introspection's
// own. operationCost checks it before gqlgen's complexity limit: it also
// refuses an operation whose expanded fields alone exceed MaxComplexity,
// which that limit's walk (it expands every fragment spread anew) could
// take long to find.
type operationLimits struct {
	MaxDepth, MaxAliases, MaxComplexity int
}

func (l operationLimits) check(op *ast.OperationDefinition) *gqlerror.Error {
	if op == nil {
		return nil
	}
	m := measureSelections(op.SelectionSet)
	switch {
	case m.depth > l.MaxDepth:
		return limitError(op, "The query is nested %d levels deep, more than the limit of %d", m.depth, l.MaxDepth)
	case m.aliases > l.MaxAliases:
		return limitError(op, "The query has %d aliases, more than the limit of %d", m.aliases, l.MaxAliases)
	case m.fields > l.MaxComplexity:
		// Every field costs at least 1, so this is a lower bound of the
		// complexity. Checking it first keeps fragments that spread one
		// another many times from making the complexity walk itself costly.
		return limitError(op, "operation has complexity at least %d, which exceeds the limit of %d", m.fields, l.MaxComplexity)
	}
	return nil
}

func limitError(op *ast.OperationDefinition, format string, args ...any) *gqlerror.Error {
	err := gqlerror.ErrorPosf(op.Position, format, args...)
	errcode.Set(err, CodeComplexityLimit)
	return err
}

// measure is what a selection set asks for once its fragments are expanded.
type measure struct {
	depth   int // levels of nested fields
	aliases int // aliased fields
	fields  int // fields, but none under __schema
}

// measureSelections expands fragments once each: a fragment spread many times
// is measured once and its counts multiplied, so that the walk stays linear in
// the document's size. Counts saturate instead of overflowing.
func measureSelections(set ast.SelectionSet) measure {
	w := measurer{memo: map[string]measure{}, visiting: map[string]bool{}}
	return w.selections(set)
}

type measurer struct {
	memo     map[string]measure
	visiting map[string]bool
}

func (w measurer) selections(set ast.SelectionSet) measure {
	var m measure
	for _, sel := range set {
		var inner measure
		switch s := sel.(type) {
		case *ast.Field:
			inner = w.field(s)
		case *ast.InlineFragment:
			inner = w.selections(s.SelectionSet)
		case *ast.FragmentSpread:
			inner = w.fragment(s)
		}
		m.depth = max(m.depth, inner.depth)
		m.aliases = saturatingAdd(m.aliases, inner.aliases)
		m.fields = saturatingAdd(m.fields, inner.fields)
	}
	return m
}

func (w measurer) field(f *ast.Field) measure {
	m := w.selections(f.SelectionSet)
	if f.Alias != "" && f.Alias != f.Name {
		m.aliases = saturatingAdd(m.aliases, 1)
	}
	if f.Name == "__schema" {
		m.fields = 0 // as gqlgen's complexity, which does not walk it
	} else {
		m.fields = saturatingAdd(m.fields, 1)
	}
	if strings.HasPrefix(f.Name, "__") {
		m.depth = 0
	} else {
		m.depth++
	}
	return m
}

func (w measurer) fragment(s *ast.FragmentSpread) measure {
	if m, ok := w.memo[s.Name]; ok {
		return m
	}
	if s.Definition == nil || w.visiting[s.Name] {
		return measure{} // unknown or cyclic: validation has refused it already
	}
	w.visiting[s.Name] = true
	m := w.selections(s.Definition.SelectionSet)
	w.visiting[s.Name] = false
	w.memo[s.Name] = m
	return m
}

const maxInt = int(^uint(0) >> 1)

// saturatingAdd adds two counts (never negative), stopping at maxInt.
func saturatingAdd(a, b int) int {
	if a > maxInt-b {
		return maxInt
	}
	return a + b
}

// saturatingMul multiplies two counts (never negative), stopping at maxInt.
func saturatingMul(a, b int) int {
	if a != 0 && b > maxInt/a {
		return maxInt
	}
	return a * b
}

// validationRules are gqlparser's rules, without the "Did you mean …?"
// suggestions (which reveal the schema) and refusing introspection when it
// is turned off.
func validationRules(introspection bool) func() *rules.Rules {
	return func() *rules.Rules {
		r := rules.NewDefaultRules()
		if introspection {
			return r
		}
		for _, quiet := range []core.Rule{
			rules.FieldsOnCorrectTypeRuleWithoutSuggestions,
			rules.KnownArgumentNamesRuleWithoutSuggestions,
			rules.KnownTypeNamesRuleWithoutSuggestions,
			rules.ScalarLeafsRuleWithoutSuggestions,
			rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
		} {
			r.ReplaceRule(strings.TrimSuffix(quiet.Name, "WithoutSuggestions"), quiet.RuleFunc)
		}
		r.AddRule(noIntrospection.Name, noIntrospection.RuleFunc)
		return r
	}
}

// noIntrospection refuses __schema and __type; __typename stays allowed.
var noIntrospection = core.Rule{
	Name: "NoIntrospection",
	RuleFunc: func(observers *core.Events, addError core.AddErrFunc) {
		observers.OnField(func(_ *core.Walker, field *ast.Field) {
			if field.Name == "__schema" || field.Name == "__type" {
				addError(core.Message("Introspection is disabled on this server"), core.At(field.Position))
			}
		})
	},
}
