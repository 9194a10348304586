package store

import (
	"errors"
	"fmt"
)

// Code classifies a domain error; the API maps each code to its error code
// in one place.
type Code string

// Error codes returned by the store.
const (
	ENotFound           Code = "not_found"
	EForbidden          Code = "forbidden"
	EUnauthenticated    Code = "unauthenticated"
	EInvalid            Code = "invalid"
	EFailedPrecondition Code = "failed_precondition"
	EConflict           Code = "conflict"
	EInternal           Code = "internal"
)

// Error is a domain error whose message is safe to show to the caller.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrorCode returns the code of the first *Error in err's chain, or
// EInternal when there is none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Errorf builds a domain error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return Errorf(EInvalid, format, args...)
}

func notFound(what string) error {
	return Errorf(ENotFound, "%s not found", what)
}
