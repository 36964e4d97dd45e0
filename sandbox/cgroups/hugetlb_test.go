package cgroups

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestHugetlbAvailability covers the probe on every layout, including this CI node's:
// hybrid with hugetlb only on the unified tree, where runc (limiting through v1) cannot
// set a hugepage limit.
func TestHugetlbAvailability(t *testing.T) {
	tests := []struct {
		name   string
		mode   Mode
		layout func(t *testing.T, root string)
		want   bool
	}{
		{"v2 with hugetlb", ModeUnified, func(t *testing.T, root string) {
			fakeCgroupDir(t, root, "cpu memory pids hugetlb")
		}, true},
		{"v2 without hugetlb", ModeUnified, func(t *testing.T, root string) {
			fakeCgroupDir(t, root, "cpu memory pids")
		}, false},
		{"v1 with a hugetlb mount", ModeLegacy, func(t *testing.T, root string) {
			mkdirs(t, root, "memory", "cpu", "hugetlb")
		}, true},
		{"v1 without one", ModeLegacy, func(t *testing.T, root string) {
			mkdirs(t, root, "memory", "cpu")
		}, false},
		{"hybrid, hugetlb only on the unified tree", ModeHybrid, func(t *testing.T, root string) {
			mkdirs(t, root, "memory", "cpu")
			fakeCgroupDir(t, filepath.Join(root, unifiedDir), "hugetlb")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tt.layout(t, root)
			m, err := NewManager(Options{Root: root, Mode: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.HugetlbAvailable(); got != tt.want {
				t.Fatalf("HugetlbAvailable = %v, want %v", got, tt.want)
			}
			in := &Resources{MemoryLimit: 1 << 20, HugepageLimits: map[string]uint64{"2MB": 0}}
			out := m.WithoutUnavailable(in)
			if gotKept := len(out.HugepageLimits) == 1; gotKept != tt.want {
				t.Fatalf("hugepage limits kept = %v, want %v", gotKept, tt.want)
			}
			if out.MemoryLimit != in.MemoryLimit || len(in.HugepageLimits) != 1 {
				t.Fatalf("other settings changed or input modified: in %+v out %+v", in, out)
			}
			if m.WithoutUnavailable(nil) != nil {
				t.Fatal("nil resources became non-nil")
			}
			if spec := out.ToOCI(); !tt.want && !reflect.DeepEqual(spec.HugepageLimits, []specs.LinuxHugepageLimit(nil)) {
				t.Fatalf("OCI spec still limits hugepages: %+v", spec.HugepageLimits)
			}
		})
	}
}

func mkdirs(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(root, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
