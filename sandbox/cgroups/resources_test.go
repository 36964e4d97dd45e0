package cgroups

import (
	"reflect"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func ptr[T any](v T) *T { return &v }

func TestFromCRI(t *testing.T) {
	tests := []struct {
		name string
		in   *runtimeapi.LinuxContainerResources
		want *Resources
	}{
		{name: "nil", in: nil, want: &Resources{}},
		{name: "empty", in: &runtimeapi.LinuxContainerResources{}, want: &Resources{}},
		{
			name: "everything",
			in: &runtimeapi.LinuxContainerResources{
				CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512,
				MemoryLimitInBytes: 256 << 20, MemorySwapLimitInBytes: 512 << 20,
				OomScoreAdj: 999, CpusetCpus: "0-1", CpusetMems: "0",
				HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}, nil},
				Unified:        map[string]string{"memory.high": "200M"},
			},
			want: &Resources{
				CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUSetCPUs: "0-1", CPUSetMems: "0",
				MemoryLimit: 256 << 20, MemorySwapLimit: 512 << 20,
				HugepageLimits: map[string]uint64{"2MB": 4 << 20},
				Unified:        map[string]string{"memory.high": "200M"},
			},
		},
		{
			name: "unlimited values",
			in:   &runtimeapi.LinuxContainerResources{CpuQuota: -1, MemoryLimitInBytes: -1, MemorySwapLimitInBytes: -1},
			want: &Resources{CPUQuota: -1, MemoryLimit: -1, MemorySwapLimit: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromCRI(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFromCRIInvalid(t *testing.T) {
	type lcr = runtimeapi.LinuxContainerResources
	tests := []struct {
		name string
		in   *lcr
	}{
		{"negative shares", &lcr{CpuShares: -2}},
		{"negative period", &lcr{CpuPeriod: -1}},
		{"tiny period", &lcr{CpuPeriod: 999}},
		{"huge period", &lcr{CpuPeriod: 1000001}},
		{"tiny quota", &lcr{CpuQuota: 999}},
		{"quota -2", &lcr{CpuQuota: -2}},
		{"memory -2", &lcr{MemoryLimitInBytes: -2}},
		{"swap below memory", &lcr{MemoryLimitInBytes: 100 << 20, MemorySwapLimitInBytes: 50 << 20}},
		{"swap without memory", &lcr{MemorySwapLimitInBytes: 50 << 20}},
		{"swap -2", &lcr{MemorySwapLimitInBytes: -2}},
		{"cpuset garbage", &lcr{CpusetCpus: "0-a"}},
		{"cpuset reversed", &lcr{CpusetCpus: "3-1"}},
		{"cpuset empty item", &lcr{CpusetMems: "0,,1"}},
		{"hugepage traversal", &lcr{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "../../x", Limit: 1}}}},
		{"hugepage no unit", &lcr{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2048", Limit: 1}}}},
		{"hugepage twice", &lcr{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "2MB"}}}},
		{"unified traversal", &lcr{Unified: map[string]string{"../memory.max": "1"}}},
		{"unified slash", &lcr{Unified: map[string]string{"pod/memory.max": "1"}}},
		{"unified procs", &lcr{Unified: map[string]string{"cgroup.procs": "1"}}},
		{"unified kill", &lcr{Unified: map[string]string{"cgroup.kill": "1"}}},
		{"unified no dot", &lcr{Unified: map[string]string{"memory": "1"}}},
		{"unified NUL", &lcr{Unified: map[string]string{"memory.high": "1\x00"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromCRI(tt.in)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("FromCRI = %+v, %v; want an invalid argument error", got, err)
			}
		})
	}
}

func TestPodResources(t *testing.T) {
	type lcr = runtimeapi.LinuxContainerResources
	tests := []struct {
		name                string
		overhead, resources *lcr
		want                *Resources
	}{
		{name: "both nil", want: &Resources{}},
		{
			name:      "limits and overhead add up",
			overhead:  &lcr{CpuShares: 102, CpuQuota: 10000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20},
			resources: &lcr{CpuShares: 1024, CpuQuota: 200000, CpuPeriod: 100000, MemoryLimitInBytes: 1 << 30},
			want:      &Resources{CPUShares: 1126, CPUQuota: 210000, CPUPeriod: 100000, MemoryLimit: 1<<30 + 64<<20},
		},
		{
			name:      "overhead quota scaled to the pod's period",
			overhead:  &lcr{CpuQuota: 5000, CpuPeriod: 50000},
			resources: &lcr{CpuQuota: 20000, CpuPeriod: 200000},
			want:      &Resources{CPUQuota: 40000, CPUPeriod: 200000},
		},
		{
			name:      "no pod limit stays no limit",
			overhead:  &lcr{CpuShares: 10, CpuQuota: 10000, MemoryLimitInBytes: 64 << 20},
			resources: &lcr{CpuShares: 2},
			want:      &Resources{CPUShares: 12},
		},
		{
			name:      "shares capped, hugepages summed, swap grows with memory",
			overhead:  &lcr{CpuShares: 262144, MemoryLimitInBytes: 1 << 20, HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 2 << 20}}},
			resources: &lcr{CpuShares: 1024, MemoryLimitInBytes: 1 << 20, MemorySwapLimitInBytes: 2 << 20, HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}}},
			want:      &Resources{CPUShares: 262144, MemoryLimit: 2 << 20, MemorySwapLimit: 3 << 20, HugepageLimits: map[string]uint64{"2MB": 6 << 20}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PodResources(tt.overhead, tt.resources)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if _, err := PodResources(&runtimeapi.LinuxContainerResources{CpuQuota: 5}, nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("invalid overhead: err = %v", err)
	}
}

func TestToOCI(t *testing.T) {
	tests := []struct {
		name string
		in   *Resources
		want *specs.LinuxResources
	}{
		{name: "nil", in: nil, want: nil},
		{name: "empty", in: &Resources{}, want: &specs.LinuxResources{}},
		{
			name: "everything",
			in: &Resources{
				CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUSetCPUs: "0-1", CPUSetMems: "0",
				MemoryLimit: 1 << 20, MemorySwapLimit: 2 << 20, PidsLimit: 100,
				HugepageLimits: map[string]uint64{"2MB": 1, "1GB": 2},
				Unified:        map[string]string{"memory.high": "1M"},
			},
			want: &specs.LinuxResources{
				CPU:            &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0-1", Mems: "0"},
				Memory:         &specs.LinuxMemory{Limit: ptr[int64](1 << 20), Swap: ptr[int64](2 << 20)},
				Pids:           &specs.LinuxPids{Limit: ptr[int64](100)},
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "1GB", Limit: 2}, {Pagesize: "2MB", Limit: 1}},
				Unified:        map[string]string{"memory.high": "1M"},
			},
		},
		{
			name: "only shares, unlimited memory",
			in:   &Resources{CPUShares: 2, MemoryLimit: -1},
			want: &specs.LinuxResources{
				CPU:    &specs.LinuxCPU{Shares: ptr[uint64](2)},
				Memory: &specs.LinuxMemory{Limit: ptr[int64](-1)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.ToOCI(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCPUSharesToWeight(t *testing.T) {
	tests := []struct{ shares, want uint64 }{
		{0, 0}, {1, 1}, {2, 1}, {3, 2}, {102, 17}, {512, 59}, {1024, 100}, {2048, 174},
		{10240, 639}, {262143, 10000}, {262144, 10000}, {1 << 40, 10000},
	}
	for _, tt := range tests {
		if got := CPUSharesToWeight(tt.shares); got != tt.want {
			t.Errorf("CPUSharesToWeight(%d) = %d; want %d", tt.shares, got, tt.want)
		}
	}
	// Agree with the conversion runc's and containerd's libraries use, everywhere.
	for s := uint64(0); s <= 270000; s++ {
		if got, want := CPUSharesToWeight(s), cgroup2.ConvertCPUSharesToCgroupV2Value(s); got != want {
			t.Fatalf("CPUSharesToWeight(%d) = %d; cgroup2 says %d", s, got, want)
		}
	}
}
