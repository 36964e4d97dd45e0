package cgroups

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestReadCgroup(t *testing.T) {
	const rel = "kubepods/pod1/ctr1"
	tests := []struct {
		name  string
		v2    bool
		files map[string]string
		want  Sample
	}{{
		name: "v1",
		files: map[string]string{
			"cpuacct/" + rel + "/cpuacct.usage":                 "3000000000\n",
			"cpuacct/" + rel + "/cpuacct.stat":                  "user 150\nsystem 50\n",
			"cpu/" + rel + "/cpu.stat":                          "nr_periods 10\nnr_throttled 4\nthrottled_time 2000000000\n",
			"cpu/" + rel + "/cpu.shares":                        "1024\n",
			"cpu/" + rel + "/cpu.cfs_period_us":                 "100000\n",
			"cpu/" + rel + "/cpu.cfs_quota_us":                  "20000\n",
			"memory/" + rel + "/memory.usage_in_bytes":          "1000\n",
			"memory/" + rel + "/memory.max_usage_in_bytes":      "2000\n",
			"memory/" + rel + "/memory.stat":                    "cache 300\nrss 400\nmapped_file 50\nswap 7\npgfault 11\npgmajfault 1\ntotal_pgfault 22\ntotal_pgmajfault 2\ntotal_inactive_file 100\n",
			"memory/" + rel + "/memory.kmem.usage_in_bytes":     "60\n",
			"memory/" + rel + "/memory.failcnt":                 "3\n",
			"memory/" + rel + "/memory.limit_in_bytes":          "67108864\n",
			"memory/" + rel + "/memory.memsw.limit_in_bytes":    "9223372036854771712\n",
			"memory/" + rel + "/memory.soft_limit_in_bytes":     "9223372036854771712\n",
			"memory/" + rel + "/memory.oom_control":             "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
			"pids/" + rel + "/pids.current":                     "5\n",
			"pids/" + rel + "/pids.max":                         "max\n",
			"blkio/" + rel + "/blkio.throttle.io_service_bytes": "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
			"blkio/" + rel + "/blkio.throttle.io_serviced":      "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
		},
		want: Sample{
			CPUUsage: 3e9, CPUUser: 1.5e9, CPUSystem: 0.5e9, Periods: 10, Throttled: 4, ThrottledNanos: 2e9,
			CPUShares: 1024, CPUPeriod: 100000, CPUQuota: 20000,
			MemUsage: 1000, MemMaxUsage: 2000, MemWorkingSet: 900, MemCache: 300, MemRSS: 400, MemMapped: 50, MemSwap: 7,
			MemKernel: 60, MemFailcnt: 3, OOMKills: 2, MemLimit: 64 << 20,
			Pgfault: 11, Pgmajfault: 1, HierPgfault: 22, HierPgmajfault: 2, Tasks: 5,
			IO: []IODevice{{Major: 8, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
		},
	}, {
		name: "v2",
		v2:   true,
		files: map[string]string{
			rel + "/cpu.stat":            "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 500000\n",
			rel + "/cpu.weight":          "100\n",
			rel + "/cpu.max":             "max 100000\n",
			rel + "/memory.current":      "1000\n",
			rel + "/memory.peak":         "1500\n",
			rel + "/memory.stat":         "anon 400\nfile 300\nfile_mapped 50\ninactive_file 1200\nkernel_stack 10\nslab 20\npgfault 11\npgmajfault 1\n",
			rel + "/memory.swap.current": "7\n",
			rel + "/memory.events":       "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
			rel + "/memory.max":          "max\n",
			rel + "/memory.swap.max":     "1048576\n",
			rel + "/memory.low":          "4096\n",
			rel + "/pids.current":        "2\n",
			rel + "/pids.max":            "100\n",
			rel + "/io.stat":             "259:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
		},
		want: Sample{
			CPUUsage: 3e9, CPUUser: 2e9, CPUSystem: 1e9, Periods: 10, Throttled: 4, ThrottledNanos: 5e8,
			CPUShares: 2 + 99*262142/9999, CPUPeriod: 100000,
			MemUsage: 1000, MemMaxUsage: 1500, MemCache: 300, MemRSS: 400, MemMapped: 50, MemSwap: 7,
			MemKernel: 30, MemFailcnt: 3, OOMKills: 1, MemSwapLimit: 1 << 20, MemReservation: 4096,
			Pgfault: 11, Pgmajfault: 1, HierPgfault: 11, HierPgmajfault: 1, Tasks: 2, TasksMax: 100,
			IO: []IODevice{{Major: 259, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
		},
	}, {
		name: "missing files are zeros",
		want: Sample{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				mustWrite(t, filepath.Join(root, name), content)
			}
			var got *Sample
			if tt.v2 {
				got = readV2(filepath.Join(root, rel))
			} else {
				got = readV1(root, rel)
			}
			got.ProcsFile = ""
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// TestSampleMissing: a cgroup that is not there is NotFound, for stats and metrics
// alike, on both layouts.
func TestSampleMissing(t *testing.T) {
	_, v2 := fakeV2(t, "cpu memory pids")
	if _, err := v2.Sample("kubepods/absent"); !errdefs.IsNotFound(err) {
		t.Errorf("v2 Sample of a missing cgroup = %v; want NotFound", err)
	}
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "pids/.keep"), "")
	mustWrite(t, filepath.Join(root, "memory/kubepods/there/memory.usage_in_bytes"), "4096\n")
	v1, err := NewManager(Options{Root: root, Mode: ModeLegacy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v1.Sample("kubepods/absent"); !errdefs.IsNotFound(err) {
		t.Errorf("v1 Sample of a missing cgroup = %v; want NotFound", err)
	}
	got, err := v1.ContainerStats("kubepods/there")
	if err != nil || got.MemoryUsageBytes != 4096 {
		t.Errorf("v1 ContainerStats = %+v, %v; want 4096 bytes", got, err)
	}
}
