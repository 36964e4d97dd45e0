package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type requestIDKey struct{}

// RequestID returns the id the interceptors gave to the call ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// gate answers Unavailable until the daemon has finished recovering its state, so that
// kubelet retries instead of acting on a half-loaded view. Version always passes: it is
// how clients probe the socket.
type gate struct{ open atomic.Bool }

func (g *gate) check(method string) error {
	if g.open.Load() || strings.HasSuffix(method, "/Version") {
		return nil
	}
	return status.Error(codes.Unavailable, "berthd is starting: state recovery has not finished")
}

// quiet reports whether a method is polled so often (kubelet relists every second) that
// its success is logged at debug level only.
func quiet(method string) bool {
	name := method[strings.LastIndexByte(method, '/')+1:]
	return strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Stream") ||
		strings.HasSuffix(name, "Status") || strings.HasSuffix(name, "Stats") ||
		name == "Version" || name == "ImageFsInfo" || name == "RuntimeConfig"
}

type interceptors struct {
	log  *slog.Logger
	gate *gate
}

func (i *interceptors) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	id := newRequestID()
	ctx = context.WithValue(ctx, requestIDKey{}, id)
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = i.panicked(info.FullMethod, id, r)
		}
		i.logCall(ctx, info.FullMethod, id, start, err)
	}()
	if err := i.gate.check(info.FullMethod); err != nil {
		return nil, err
	}
	resp, err = handler(ctx, req)
	return resp, toStatus(err)
}

func (i *interceptors) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	id := newRequestID()
	ctx := context.WithValue(ss.Context(), requestIDKey{}, id)
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = i.panicked(info.FullMethod, id, r)
		}
		i.logCall(ctx, info.FullMethod, id, start, err)
	}()
	if err := i.gate.check(info.FullMethod); err != nil {
		return err
	}
	return toStatus(handler(srv, &streamWithContext{ServerStream: ss, ctx: ctx}))
}

func (i *interceptors) panicked(method, id string, r any) error {
	i.log.Error("panic in CRI handler", "method", method, "request_id", id,
		"panic", r, "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s (request %s)", method, id)
}

func (i *interceptors) logCall(ctx context.Context, method, id string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch {
	case code == codes.OK && quiet(method):
		level = slog.LevelDebug
	case code == codes.Internal || code == codes.Unknown:
		level = slog.LevelError
	case code != codes.OK && code != codes.NotFound:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", method[strings.LastIndexByte(method, '/')+1:]),
		slog.String("request_id", id),
		slog.Duration("duration", time.Since(start)),
		slog.String("code", code.String()),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	i.log.LogAttrs(ctx, level, "cri call", attrs...)
}

// streamWithContext carries the request id into streaming handlers.
type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *streamWithContext) Context() context.Context { return s.ctx }
