// Package errdefs holds the error classes that cross package boundaries in berth.
//
// Domain packages (image, sandbox, network) wrap one of these sentinels with context
// (fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)); the cri package maps them to
// gRPC codes in exactly one place. Nothing here knows about gRPC.
package errdefs

import (
	"context"
	"errors"
)

// The error classes. Each one maps to one gRPC code in cri.
var (
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrResourceExhausted  = errors.New("resource exhausted")
	ErrUnimplemented      = errors.New("not implemented")
	// ErrPermissionDenied: a remote party (a registry) refused our credentials.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrDataLoss: content did not match its digest; nothing of it was kept.
	ErrDataLoss = errors.New("content corrupted")
)

// IsNotFound reports whether err is, or wraps, ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsInvalidArgument reports whether err is, or wraps, ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsAlreadyExists reports whether err is, or wraps, ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsDeadline reports whether err comes from a context whose deadline passed.
func IsDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// InvalidArgument wraps ErrInvalidArgument with a message.
func InvalidArgument(msg string) error { return &classified{msg: msg, class: ErrInvalidArgument} }

// NotFound wraps ErrNotFound with a message.
func NotFound(msg string) error { return &classified{msg: msg, class: ErrNotFound} }

// classified is an error whose text is only the message (no ": not found" suffix) but
// which still matches its class with errors.Is.
type classified struct {
	msg   string
	class error
}

func (e *classified) Error() string        { return e.msg }
func (e *classified) Is(target error) bool { return target == e.class }

// FailedPrecondition wraps ErrFailedPrecondition with a message.
func FailedPrecondition(msg string) error {
	return &classified{msg: msg, class: ErrFailedPrecondition}
}

// IsFailedPrecondition reports whether err is of class ErrFailedPrecondition.
func IsFailedPrecondition(err error) bool { return errors.Is(err, ErrFailedPrecondition) }
