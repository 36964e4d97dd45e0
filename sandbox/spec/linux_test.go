package spec

import (
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cgroups"
)

func TestWithNamespaces(t *testing.T) {
	mnt := specs.LinuxNamespace{Type: specs.MountNamespace}
	for _, tc := range []struct {
		name                string
		net, ipc, uts, paus string
		pid                 PIDMode
		want                map[specs.LinuxNamespaceType]string // type -> path; absent = no entry
		wantErr             bool
	}{
		{"pod namespaces, own pid", "/run/n", "/run/i", "/run/u", "", PIDContainer,
			map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/run/n", specs.IPCNamespace: "/run/i", specs.UTSNamespace: "/run/u", specs.PIDNamespace: ""}, false},
		{"pod pid", "/run/n", "/run/i", "/run/u", "/proc/7/ns/pid", PIDPod,
			map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/run/n", specs.IPCNamespace: "/run/i", specs.UTSNamespace: "/run/u", specs.PIDNamespace: "/proc/7/ns/pid"}, false},
		{"all host", "", "", "", "", PIDHost, map[specs.LinuxNamespaceType]string{}, false},
		{"host net only", "", "/run/i", "/run/u", "", PIDContainer,
			map[specs.LinuxNamespaceType]string{specs.IPCNamespace: "/run/i", specs.UTSNamespace: "/run/u", specs.PIDNamespace: ""}, false},
		{"relative path", "run/n", "", "", "", PIDHost, nil, true},
		{"pod pid without path", "", "", "", "", PIDPod, nil, true},
		{"bad mode", "", "", "", "", PIDMode(9), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantErr, WithNamespaces(tc.net, tc.ipc, tc.uts, tc.pid, tc.paus))
			if s == nil {
				return
			}
			got := map[specs.LinuxNamespaceType]string{}
			sawMount := false
			for _, n := range s.Linux.Namespaces {
				if n == mnt {
					sawMount = true
					continue
				}
				if _, dup := got[n.Type]; dup {
					t.Errorf("duplicate %s namespace", n.Type)
				}
				got[n.Type] = n.Path
			}
			if !sawMount {
				t.Error("mount namespace lost")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("namespaces %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWithResources(t *testing.T) {
	dev := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	keepDevices := func(s *specs.Spec) error {
		s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{dev}}
		return nil
	}
	s, err := Build(keepDevices, WithResources(&cgroups.Resources{CPUShares: 512, MemoryLimit: 1 << 20, PidsLimit: 10}))
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if *r.CPU.Shares != 512 || *r.Memory.Limit != 1<<20 || r.Pids.Limit == nil || *r.Pids.Limit != 10 || len(r.Devices) != 1 {
		t.Errorf("resources %+v", r)
	}
	if _, err := Build(WithResources(&cgroups.Resources{CPUPeriod: 5})); !errdefs.IsInvalidArgument(err) {
		t.Errorf("err = %v, want invalid argument for period 5", err)
	}
	s, err = Build(keepDevices, WithResources(nil))
	if err != nil || s.Linux.Resources == nil || len(s.Linux.Resources.Devices) != 1 || s.Linux.Resources.CPU != nil {
		t.Errorf("nil resources: %+v %v", s.Linux.Resources, err)
	}
	s, _ = Build(WithResources(nil))
	if s.Linux.Resources != nil {
		t.Errorf("nil resources on a bare spec: %+v", s.Linux.Resources)
	}
}

func TestWithCgroupsPath(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{"/kubepods/pod1/c1", false},
		{"kubepods.slice:cri-berth:c1", false},
		{"", false},
		{"kubepods/c1", true},
	} {
		s, err := Build(WithCgroupsPath(tc.in))
		if tc.wantErr {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%q: err = %v, want invalid argument", tc.in, err)
			}
			continue
		}
		if err != nil || s.Linux.CgroupsPath != tc.in {
			t.Errorf("%q: got %q, %v", tc.in, s.Linux.CgroupsPath, err)
		}
	}
}
