package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// ErrUnauthorized is matched by errors of endpoints that refused our credentials
// (HTTP 401 or 403). The registry's own message is kept in the error text.
// It is of class errdefs.ErrPermissionDenied.
var ErrUnauthorized = fmt.Errorf("unauthorized: %w", errdefs.ErrPermissionDenied)

// classified keeps an error's text and chain, and adds a class to match with errors.Is.
type classified struct {
	err   error
	class error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.class} }

func withClass(err, class error) error { return &classified{err: err, class: class} }

// classify maps an error of one request to a class. ctx is the caller's context, wctx
// the request's (with the stall watchdog).
func classify(ctx, wctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return err
		}
		return withClass(err, cerr)
	}
	if se, ok := errStalled(wctx); ok {
		return se
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch code := te.StatusCode; {
		case code == http.StatusNotFound:
			return withClass(err, errdefs.ErrNotFound)
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return withClass(err, ErrUnauthorized)
		case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
			return withClass(err, errdefs.ErrUnavailable)
		}
		return err
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		return withClass(err, errdefs.ErrUnavailable)
	}
	return err
}

// CanFallThrough reports whether err, returned by ep, lets the caller try the next
// endpoint: the endpoint cannot serve the content (unreachable, 404, 408, 429, 5xx,
// stalled), or it is a mirror that refused our credentials. Integrity errors, a
// registry's own 401/403 and context errors are final.
func CanFallThrough(err error, ep Endpoint) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, errdefs.ErrNotFound), errors.Is(err, errdefs.ErrUnavailable):
		return true
	}
	return ep.Mirror && errors.Is(err, ErrUnauthorized)
}
