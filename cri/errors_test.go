package cri

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nil", nil, codes.OK},
		{"wrapped not found", fmt.Errorf("image %q: %w", "x", errdefs.ErrNotFound), codes.NotFound},
		{"classified invalid", errdefs.InvalidArgument("bad ref"), codes.InvalidArgument},
		{"already exists", fmt.Errorf("pod: %w", errdefs.ErrAlreadyExists), codes.AlreadyExists},
		{"failed precondition", errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
		{"deadline", fmt.Errorf("pull: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"canceled", context.Canceled, codes.Canceled},
		{"registry refused credentials", fmt.Errorf("pull: %w", errdefs.ErrPermissionDenied), codes.PermissionDenied},
		{"digest mismatch", fmt.Errorf("layer: %w", errdefs.ErrDataLoss), codes.DataLoss},
		{"grpc status kept", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		{"unclassified is internal, never unknown", errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(toStatus(tt.err)); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
		})
	}
}
