package nri

import (
	"reflect"
	"testing"

	nriapi "github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// baseSpec is a container spec as sandbox/spec makes it, reduced to what the
// adjustments below touch.
func baseSpec() *specs.Spec {
	oom := 0
	return &specs.Spec{
		Process: &specs.Process{
			Args:        []string{"/bin/sh", "-c", "sleep 1"},
			Env:         []string{"PATH=/bin", "KEEP=1", "DROP=1"},
			OOMScoreAdj: &oom,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}},
		},
		Annotations: map[string]string{"keep": "1", "drop": "1"},
		Linux: &specs.Linux{
			CgroupsPath: "/berth/pod/ctr",
			Devices:     []specs.LinuxDevice{{Path: "/dev/old", Type: "c", Major: 1, Minor: 3}},
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/run/ns/net"}},
		},
	}
}

func TestAdjustSpec(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name   string
		adjust func(a *nriapi.ContainerAdjustment)
		check  func(t *testing.T, s *specs.Spec)
	}{{
		name: "env: add, replace and remove",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.AddEnv("NEW", "x")
			a.AddEnv("KEEP", "2")
			a.RemoveEnv("DROP")
		},
		check: func(t *testing.T, s *specs.Spec) {
			want := []string{"PATH=/bin", "KEEP=2", "NEW=x"}
			if !reflect.DeepEqual(s.Process.Env, want) {
				t.Errorf("env = %q, want %q", s.Process.Env, want)
			}
		},
	}, {
		name: "annotations: add and remove",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.AddAnnotation("nri.example/added", "yes")
			a.RemoveAnnotation("drop")
		},
		check: func(t *testing.T, s *specs.Spec) {
			want := map[string]string{"keep": "1", "nri.example/added": "yes"}
			if !reflect.DeepEqual(s.Annotations, want) {
				t.Errorf("annotations = %v, want %v", s.Annotations, want)
			}
		},
	}, {
		name:   "args replaced",
		adjust: func(a *nriapi.ContainerAdjustment) { a.SetArgs([]string{"/bin/true"}) },
		check: func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Args, []string{"/bin/true"}) {
				t.Errorf("args = %q", s.Process.Args)
			}
		},
	}, {
		name: "mounts: add one, replace one at the same destination",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.AddMount(&nriapi.Mount{Destination: "/extra", Type: "bind", Source: "/srv/extra", Options: []string{"rbind", "rw"}})
			a.RemoveMount("/data")
			a.AddMount(&nriapi.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs"})
		},
		check: func(t *testing.T, s *specs.Spec) {
			got := map[string]string{}
			for _, m := range s.Mounts {
				got[m.Destination] = m.Type
			}
			want := map[string]string{"/proc": "proc", "/data": "tmpfs", "/extra": "bind"}
			if !reflect.DeepEqual(got, want) || len(s.Mounts) != 3 {
				t.Errorf("mounts = %+v, want destinations %v", s.Mounts, want)
			}
		},
	}, {
		name: "hooks appended",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.AddHooks(&nriapi.Hooks{
				CreateRuntime: []*nriapi.Hook{{Path: "/usr/bin/hook", Args: []string{"hook", "create"}}},
				Poststop:      []*nriapi.Hook{{Path: "/usr/bin/hook", Args: []string{"hook", "stop"}}},
			})
		},
		check: func(t *testing.T, s *specs.Spec) {
			if s.Hooks == nil || len(s.Hooks.CreateRuntime) != 1 || len(s.Hooks.Poststop) != 1 ||
				s.Hooks.CreateRuntime[0].Path != "/usr/bin/hook" {
				t.Errorf("hooks = %+v", s.Hooks)
			}
		},
	}, {
		name: "devices: added with their cgroup rule, removed",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.AddDevice(&nriapi.LinuxDevice{Path: "/dev/nri0", Type: "c", Major: 10, Minor: 200, FileMode: nriapi.FileMode(0o666)})
			a.RemoveDevice("/dev/old")
		},
		check: func(t *testing.T, s *specs.Spec) {
			if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/nri0" || s.Linux.Devices[0].Major != 10 {
				t.Errorf("devices = %+v", s.Linux.Devices)
			}
		},
	}, {
		name: "resources: cpu, memory, hugepages, unified",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.SetLinuxCPUShares(512)
			a.SetLinuxCPUQuota(50000)
			a.SetLinuxCPUPeriod(100000)
			a.SetLinuxCPUSetCPUs("0")
			a.SetLinuxMemoryLimit(64 << 20)
			a.AddLinuxHugepageLimit("2MB", 4<<20)
			a.AddLinuxUnified("memory.high", "max")
		},
		check: func(t *testing.T, s *specs.Spec) {
			r := s.Linux.Resources
			if r == nil || r.CPU == nil || r.Memory == nil {
				t.Fatalf("resources = %+v", r)
			}
			if !reflect.DeepEqual(r.CPU.Shares, u64(512)) || !reflect.DeepEqual(r.CPU.Quota, i64(50000)) ||
				!reflect.DeepEqual(r.CPU.Period, u64(100000)) || r.CPU.Cpus != "0" {
				t.Errorf("cpu = %+v", r.CPU)
			}
			if !reflect.DeepEqual(r.Memory.Limit, i64(64<<20)) {
				t.Errorf("memory = %+v", r.Memory)
			}
			if len(r.HugepageLimits) != 1 || r.HugepageLimits[0].Limit != 4<<20 {
				t.Errorf("hugepages = %+v", r.HugepageLimits)
			}
			if r.Unified["memory.high"] != "max" {
				t.Errorf("unified = %v", r.Unified)
			}
		},
	}, {
		name: "rlimits, cgroups path, OOM score",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.AddRlimit("RLIMIT_NOFILE", 1024, 512)
			a.SetLinuxCgroupsPath("/nri/moved")
			a.SetLinuxOomScoreAdj(func() *int { v := 500; return &v }())
		},
		check: func(t *testing.T, s *specs.Spec) {
			want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}}
			if !reflect.DeepEqual(s.Process.Rlimits, want) {
				t.Errorf("rlimits = %+v", s.Process.Rlimits)
			}
			if s.Linux.CgroupsPath != "/nri/moved" {
				t.Errorf("cgroups path = %q", s.Linux.CgroupsPath)
			}
			if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 500 {
				t.Errorf("oom score adj = %v", s.Process.OOMScoreAdj)
			}
		},
	}, {
		name: "seccomp policy set",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.SetLinuxSeccompPolicy(&nriapi.LinuxSeccomp{
				DefaultAction: "SCMP_ACT_ALLOW",
				Syscalls:      []*nriapi.LinuxSyscall{{Names: []string{"mkdir"}, Action: "SCMP_ACT_ERRNO"}},
			})
		},
		check: func(t *testing.T, s *specs.Spec) {
			sc := s.Linux.Seccomp
			if sc == nil || sc.DefaultAction != specs.ActAllow || len(sc.Syscalls) != 1 || sc.Syscalls[0].Names[0] != "mkdir" {
				t.Errorf("seccomp = %+v", sc)
			}
		},
	}, {
		name: "namespaces and sysctls",
		adjust: func(a *nriapi.ContainerAdjustment) {
			a.AddOrReplaceNamespace(&nriapi.LinuxNamespace{Type: "network", Path: "/run/ns/other"})
			a.RemoveNamespace(&nriapi.LinuxNamespace{Type: "pid"})
			a.SetLinuxSysctl("net.ipv4.ip_forward", "1")
		},
		check: func(t *testing.T, s *specs.Spec) {
			want := []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/run/ns/other"}}
			if !reflect.DeepEqual(s.Linux.Namespaces, want) {
				t.Errorf("namespaces = %+v", s.Linux.Namespaces)
			}
			if s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
				t.Errorf("sysctl = %v", s.Linux.Sysctl)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			a := &nriapi.ContainerAdjustment{}
			tc.adjust(a)
			if err := AdjustSpec(s, a); err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestAdjustSpecNilAndEmpty(t *testing.T) {
	s := baseSpec()
	if err := AdjustSpec(s, nil); err != nil {
		t.Fatal(err)
	}
	if err := AdjustSpec(s, &nriapi.ContainerAdjustment{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, baseSpec()) {
		t.Errorf("an empty adjustment changed the spec: %+v", s)
	}
}

func TestAdjustSpecRejectsUnknownNamespace(t *testing.T) {
	a := &nriapi.ContainerAdjustment{}
	a.AddOrReplaceNamespace(&nriapi.LinuxNamespace{Type: "bogus"})
	if err := AdjustSpec(baseSpec(), a); err == nil {
		t.Fatal("an unknown namespace type was accepted")
	}
}
