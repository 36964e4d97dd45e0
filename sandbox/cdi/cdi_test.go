package cdi

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestRequested(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     *runtimeapi.ContainerConfig
		want    []string
		invalid bool
	}{
		{"none", &runtimeapi.ContainerConfig{}, nil, false},
		{"field", &runtimeapi.ContainerConfig{CDIDevices: []*runtimeapi.CDIDevice{{Name: "vendor.com/gpu=0"}, {Name: "vendor.com/gpu=1"}}},
			[]string{"vendor.com/gpu=0", "vendor.com/gpu=1"}, false},
		{"annotations after field, once each", &runtimeapi.ContainerConfig{
			CDIDevices: []*runtimeapi.CDIDevice{{Name: "vendor.com/gpu=0"}},
			Annotations: map[string]string{
				"cdi.k8s.io/b":   "vendor.com/nic=eth1",
				"cdi.k8s.io/a":   "vendor.com/gpu=0,vendor.com/gpu=2",
				"other.io/thing": "not=cdi",
			},
		}, []string{"vendor.com/gpu=0", "vendor.com/gpu=2", "vendor.com/nic=eth1"}, false},
		{"unqualified field", &runtimeapi.ContainerConfig{CDIDevices: []*runtimeapi.CDIDevice{{Name: "gpu0"}}}, nil, true},
		{"no vendor domain", &runtimeapi.ContainerConfig{CDIDevices: []*runtimeapi.CDIDevice{{Name: "=gpu0"}}}, nil, true},
		{"bad annotation", &runtimeapi.ContainerConfig{Annotations: map[string]string{"cdi.k8s.io/x": "vendor.com/gpu"}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Requested(tc.cfg)
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("Requested = %v, %v; want InvalidArgument", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Requested = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// WriteTestSpec writes a CDI spec to dir declaring berth.test/null=<name> for each
// name: a character device with /dev/null's numbers made at hostDir/<name>, seen in
// the container at /dev/berth-<name>, plus an environment variable for the spec.
func writeTestSpec(t *testing.T, dir, hostDir string, names ...string) {
	t.Helper()
	devs := ""
	for i, n := range names {
		host := filepath.Join(hostDir, n)
		if err := unix.Mknod(host, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			devs += ","
		}
		devs += `{"name":"` + n + `","containerEdits":{"deviceNodes":[{"path":"/dev/berth-` + n + `","hostPath":"` + host + `"}]}}`
	}
	data := `{"cdiVersion":"0.6.0","kind":"berth.test/null","devices":[` + devs + `],"containerEdits":{"env":["BERTH_CDI=1"]}}`
	if err := os.WriteFile(filepath.Join(dir, "berth-test.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInject(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	specDir, hostDir := t.TempDir(), t.TempDir()
	r, err := New([]string{filepath.Join(specDir, "missing"), specDir})
	if err != nil {
		t.Fatal(err)
	}
	// Written after New: each Inject rescans.
	writeTestSpec(t, specDir, hostDir, "a", "b")
	for _, tc := range []struct {
		name     string
		devices  []string
		wantDevs []string
		wantErr  error
	}{
		{"nothing", nil, nil, nil},
		{"one", []string{"berth.test/null=a"}, []string{"/dev/berth-a"}, nil},
		{"two", []string{"berth.test/null=a", "berth.test/null=b"}, []string{"/dev/berth-a", "/dev/berth-b"}, nil},
		{"unknown", []string{"berth.test/null=a", "berth.test/null=zz"}, nil, errdefs.ErrNotFound},
		{"unknown vendor", []string{"other.test/null=a"}, nil, errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
			err := r.Inject(s, tc.devices)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Inject = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range s.Linux.Devices {
				if d.Type != "c" || d.Major != 1 || d.Minor != 3 {
					t.Errorf("device %+v", d)
				}
				got = append(got, d.Path)
			}
			if !slices.Equal(got, tc.wantDevs) {
				t.Errorf("devices %v, want %v", got, tc.wantDevs)
			}
			if len(tc.devices) > 0 && !slices.Contains(s.Process.Env, "BERTH_CDI=1") {
				t.Errorf("env %v lacks the spec's BERTH_CDI=1", s.Process.Env)
			}
			if len(tc.wantDevs) > 0 && (s.Linux.Resources == nil || len(s.Linux.Resources.Devices) != len(tc.wantDevs)) {
				t.Errorf("device cgroup rules %+v, want one per device", s.Linux.Resources)
			}
		})
	}
}

func TestInjectWithoutResolver(t *testing.T) {
	var r *Resolver
	if err := r.Inject(&specs.Spec{}, nil); err != nil {
		t.Errorf("no devices: %v", err)
	}
	if err := r.Inject(&specs.Spec{}, []string{"berth.test/null=a"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("err = %v, want NotFound", err)
	}
}
