package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// TestDeviceNodes makes a directory of device nodes (the same numbers as /dev/null and
// /dev/zero) and checks what the CRI's devices turn into.
func TestDeviceNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	mk := func(rel string, minor uint32) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
			t.Fatal(err)
		}
	}
	mk("dri/card0", 3)
	mk("dri/by-path/render", 5)
	if err := os.WriteFile(filepath.Join(dir, "dri/not-a-device"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(dir, "dri/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		devs    []*runtimeapi.Device
		want    []string // container path:minor
		invalid bool
	}{
		{"one node", []*runtimeapi.Device{{HostPath: filepath.Join(dir, "dri/card0"), ContainerPath: "/dev/x", Permissions: "rw"}}, []string{"/dev/x:3"}, false},
		{"node keeps its path", []*runtimeapi.Device{{HostPath: "/dev/null"}}, []string{"/dev/null:3"}, false},
		{"directory", []*runtimeapi.Device{{HostPath: filepath.Join(dir, "dri"), ContainerPath: "/dev/dri"}},
			[]string{"/dev/dri/by-path/render:5", "/dev/dri/card0:3"}, false},
		{"missing", []*runtimeapi.Device{{HostPath: filepath.Join(dir, "nope")}}, nil, true},
		{"not a device", []*runtimeapi.Device{{HostPath: filepath.Join(dir, "plain")}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, err := deviceNodes(tc.devs, false)
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range nodes {
				if n.Type != "c" || n.Major != 1 {
					t.Errorf("%s: type %s major %d", n.ContainerPath, n.Type, n.Major)
				}
				got = append(got, n.ContainerPath+":"+strconv.FormatInt(n.Minor, 10))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("nodes %v, want %v", got, tc.want)
			}
		})
	}
}
