package sandbox

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNRIFromSpec(t *testing.T) {
	oom := -500
	tests := []struct {
		name string
		spec *specs.Spec
	}{
		{"no spec", nil},
		{"empty spec", &specs.Spec{}},
		{"no seccomp, no resources, no hooks", &specs.Spec{Process: &specs.Process{Args: []string{"sh"}}, Linux: &specs.Linux{}}},
		{"full", &specs.Spec{
			Process: &specs.Process{
				Args: []string{"sh"}, Env: []string{"A=1"}, OOMScoreAdj: &oom,
				Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 2, Soft: 1}},
			},
			Hooks:  &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}},
			Mounts: []specs.Mount{{Destination: "/proc", Type: "proc"}},
			Linux: &specs.Linux{
				Seccomp:    &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
				Resources:  &specs.LinuxResources{},
				Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := nriFromSpec(tc.spec)
			if c == nil {
				t.Fatal("nil container")
			}
			if tc.name != "full" {
				return
			}
			if c.GetLinux().GetOomScoreAdj().GetValue() != -500 || len(c.GetRlimits()) != 1 ||
				c.GetLinux().GetSeccompPolicy().GetDefaultAction() != string(specs.ActErrno) || len(c.GetEnv()) != 1 {
				t.Errorf("container = %v", c)
			}
		})
	}
}

func TestCRIResources(t *testing.T) {
	req := &runtimeapi.LinuxContainerResources{CpuShares: 256, MemoryLimitInBytes: 128 << 20, OomScoreAdj: 100}
	limit, shares := int64(112<<20), uint64(512)
	tests := []struct {
		name string
		res  *specs.LinuxResources
		want *runtimeapi.LinuxContainerResources
	}{
		{"nothing applied: the request", nil, req},
		{"memory changed", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
			&runtimeapi.LinuxContainerResources{CpuShares: 256, MemoryLimitInBytes: 112 << 20, OomScoreAdj: 100}},
		{"cpu changed, cpuset set", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares, Cpus: "0"}},
			&runtimeapi.LinuxContainerResources{CpuShares: 512, CpusetCpus: "0", MemoryLimitInBytes: 128 << 20, OomScoreAdj: 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := criResources(req, tc.res); !proto.Equal(got, tc.want) {
				t.Errorf("criResources = %v, want %v", got, tc.want)
			}
		})
	}
	if req.MemoryLimitInBytes != 128<<20 {
		t.Error("criResources changed the request")
	}
}
