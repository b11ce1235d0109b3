package election

import (
	"errors"
	"fmt"
)

// Code classifies a domain error. The gRPC layer maps codes to status codes
// in one table; nothing else inspects error strings.
type Code int

const (
	// CodeInvalid: the input is malformed or breaks a rule.
	CodeInvalid Code = iota + 1
	// CodeNotFound: the named election, unit, device or record does not exist.
	CodeNotFound
	// CodeConflict: the input contradicts something already recorded.
	CodeConflict
	// CodeFailedPrecondition: the request is valid but not in this state.
	CodeFailedPrecondition
	// CodePermissionDenied: the caller may not do this.
	CodePermissionDenied
	// CodeUnauthenticated: the caller's identity could not be checked.
	CodeUnauthenticated
	// CodeTooLarge: the input exceeds a documented limit.
	CodeTooLarge
	// CodeUnavailable: the service cannot answer now; retrying later may work.
	CodeUnavailable
	// CodeResourceExhausted: the server ran out of something it needs to
	// store the input (disk space); the same input will be taken once the
	// operator has made room, so retrying later is right.
	CodeResourceExhausted
)

var codeNames = map[Code]string{
	CodeInvalid:            "invalid",
	CodeNotFound:           "not found",
	CodeConflict:           "conflict",
	CodeFailedPrecondition: "failed precondition",
	CodePermissionDenied:   "permission denied",
	CodeUnauthenticated:    "unauthenticated",
	CodeTooLarge:           "too large",
	CodeUnavailable:        "unavailable",
	CodeResourceExhausted:  "resource exhausted",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Error is a domain error: a code, the field at fault if any, and a message
// written for the person who has to fix the input.
type Error struct {
	Code  Code
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

// Errorf returns an *Error with the given code and field.
func Errorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or 0.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
