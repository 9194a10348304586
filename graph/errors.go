package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/deploygraph/deploygraph/store"
)

// Error codes in extensions.code (SPEC section 4).
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodePrecondition    = "FAILED_PRECONDITION"
	CodeConflict        = "CONFLICT"
	// CodeComplexityLimit is gqlgen's code for an operation over the
	// complexity limit; the depth and alias limits use it too.
	CodeComplexityLimit = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeBadRequest      = "BAD_REQUEST"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
)

// codes maps each store error code to its API code: the one place where
// domain errors become API errors.
var codes = map[store.Code]string{
	store.EUnauthenticated:    CodeUnauthenticated,
	store.EForbidden:          CodeForbidden,
	store.ENotFound:           CodeNotFound,
	store.EInvalid:            CodeBadUserInput,
	store.EFailedPrecondition: CodePrecondition,
	store.EConflict:           CodeConflict,
}

// refusalStatus is the HTTP status of a request refused before it is
// executed, by its API code; other refusals are internal errors (500).
var refusalStatus = map[string]int{
	CodeUnauthenticated: http.StatusUnauthorized,
	CodeForbidden:       http.StatusForbidden,
	CodeBadRequest:      http.StatusBadRequest,
	CodeComplexityLimit: http.StatusUnprocessableEntity,
}

// codeOf is the API code of a presented error.
func codeOf(e *gqlerror.Error) string {
	code, _ := e.Extensions["code"].(string)
	return code
}

// presentError gives every error a code. Domain errors keep their message;
// anything unexpected is logged and shown as a bare internal error.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	gqlErr := graphql.DefaultErrorPresenter(ctx, err)
	var domain *store.Error
	if errors.As(err, &domain) {
		code, ok := codes[domain.Code]
		if ok {
			gqlErr.Message = domain.Message
			setCode(gqlErr, code)
			return gqlErr
		}
	}
	if _, ok := gqlErr.Extensions["code"]; ok {
		return gqlErr // gqlgen's own: parse and validation failures
	}
	slog.ErrorContext(ctx, "request failed", "error", err.Error(), "path", gqlErr.Path.String())
	gqlErr.Message = "Internal server error"
	setCode(gqlErr, CodeInternal)
	return gqlErr
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// recoverPanic turns a resolver panic into an internal error.
func recoverPanic(ctx context.Context, p any) error {
	slog.ErrorContext(ctx, "resolver panic", "panic", p)
	return errors.New("internal error")
}

func errNotFound(what string) error {
	return store.Errorf(store.ENotFound, "%s not found", what)
}

func errForbidden() error {
	return store.Errorf(store.EForbidden, "You are not allowed to do this")
}

func errInvalid(format string, args ...any) error {
	return store.Errorf(store.EInvalid, format, args...)
}
