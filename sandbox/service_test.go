package sandbox

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/registrar"
)

// TestRunPodAfterClose: once Close began, RunPod starts no create, fails Unavailable
// (kubelet retries against the next berthd) and leaves the name free.
func TestRunPodAfterClose(t *testing.T) {
	s := testService(t)
	s.names = registrar.New()
	s.Close(context.Background())
	cfg := basePodConfig()
	if _, err := s.RunPod(context.Background(), cfg, ""); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("RunPod after Close = %v, want Unavailable", err)
	}
	if id, ok := s.names.Lookup(nameKey(cfg.Metadata)); ok {
		t.Fatalf("name still reserved by %s", id)
	}
}
