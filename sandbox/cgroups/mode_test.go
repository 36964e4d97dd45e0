package cgroups

import (
	"errors"
	"os"
	"testing"

	cgroupsv3 "github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestDetectModeFake(t *testing.T) {
	const (
		tmpfs = unix.TMPFS_MAGIC
		v1    = unix.CGROUP_SUPER_MAGIC
		v2    = unix.CGROUP2_SUPER_MAGIC
	)
	tests := []struct {
		name  string
		types map[string]int64 // path → filesystem magic; missing paths fail statfs
		want  Mode
	}{
		{"unified", map[string]int64{"/r": v2}, ModeUnified},
		{"hybrid", map[string]int64{"/r": tmpfs, "/r/unified": v2, "/r/memory": v1}, ModeHybrid},
		{"legacy", map[string]int64{"/r": tmpfs, "/r/memory": v1, "/r/cpu": v1}, ModeLegacy},
		{"legacy, unified dir not cgroup2", map[string]int64{"/r": tmpfs, "/r/unified": tmpfs, "/r/pids": v1}, ModeLegacy},
		{"v1 hierarchy at the root", map[string]int64{"/r": v1}, ModeLegacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := detectMode("/r", fakeStatfs(tt.types))
			if err != nil || got != tt.want {
				t.Fatalf("detectMode = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	for name, types := range map[string]map[string]int64{
		"missing root":    {},
		"nothing mounted": {"/r": tmpfs, "/r/memory": tmpfs},
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := detectMode("/r", fakeStatfs(types)); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Fatalf("detectMode = %v, %v; want a failed precondition", got, err)
			}
		})
	}
}

func fakeStatfs(types map[string]int64) statfsType {
	return func(path string) (int64, error) {
		if m, ok := types[path]; ok {
			return m, nil
		}
		return 0, os.ErrNotExist
	}
}

// TestDetectModeHost checks the real statfs path against containerd's own detection
// on this machine's /sys/fs/cgroup.
func TestDetectModeHost(t *testing.T) {
	want := map[cgroupsv3.CGMode]Mode{
		cgroupsv3.Legacy: ModeLegacy, cgroupsv3.Hybrid: ModeHybrid, cgroupsv3.Unified: ModeUnified,
	}[cgroupsv3.Mode()]
	if want == ModeUnknown {
		t.Skip("no cgroup hierarchy mounted at /sys/fs/cgroup")
	}
	got, err := DetectMode("")
	if err != nil || got != want {
		t.Fatalf("DetectMode = %v, %v; containerd says %v", got, err, want)
	}
	t.Logf("this node: %v", got)
}

func TestModeString(t *testing.T) {
	for m, s := range map[Mode]string{ModeUnknown: "unknown", ModeLegacy: "v1", ModeHybrid: "hybrid", ModeUnified: "v2"} {
		if m.String() != s {
			t.Errorf("%d.String() = %q; want %q", m, m.String(), s)
		}
	}
}
