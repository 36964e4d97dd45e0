package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFiles makes a fake cgroupfs (or /proc) under dir: path → content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadCgroup(t *testing.T) {
	const rel = "kubepods/pod1/ctr1"
	tests := []struct {
		name  string
		v2    bool
		files map[string]string
		want  cgroupSample
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
		want: cgroupSample{
			cpuUsage: 3e9, cpuUser: 1.5e9, cpuSystem: 0.5e9, periods: 10, throttled: 4, throttledNanos: 2e9,
			cpuShares: 1024, cpuPeriod: 100000, cpuQuota: 20000,
			memUsage: 1000, memMaxUsage: 2000, memWorkingSet: 900, memCache: 300, memRSS: 400, memMapped: 50, memSwap: 7,
			memKernel: 60, memFailcnt: 3, oomKills: 2, memLimit: 64 << 20,
			pgfault: 11, pgmajfault: 1, hierPgfault: 22, hierPgmajfault: 2, tasks: 5,
			io: []ioDevice{{major: 8, readBytes: 4096, writeBytes: 8192, reads: 1, writes: 2}},
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
		want: cgroupSample{
			cpuUsage: 3e9, cpuUser: 2e9, cpuSystem: 1e9, periods: 10, throttled: 4, throttledNanos: 5e8,
			cpuShares: 2 + 99*262142/9999, cpuPeriod: 100000,
			memUsage: 1000, memMaxUsage: 1500, memCache: 300, memRSS: 400, memMapped: 50, memSwap: 7,
			memKernel: 30, memFailcnt: 3, oomKills: 1, memSwapLimit: 1 << 20, memReservation: 4096,
			pgfault: 11, pgmajfault: 1, hierPgfault: 11, hierPgmajfault: 1, tasks: 2, tasksMax: 100,
			io: []ioDevice{{major: 259, readBytes: 4096, writeBytes: 8192, reads: 1, writes: 2}},
		},
	}, {
		name: "missing files are zeros",
		want: cgroupSample{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, tt.files)
			var got *cgroupSample
			if tt.v2 {
				got = readCgroupV2(filepath.Join(root, rel))
			} else {
				got = readCgroupV1(root, rel)
			}
			got.procsFile = ""
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestReadProcCounts(t *testing.T) {
	proc := t.TempDir()
	writeFiles(t, proc, map[string]string{
		"procs":       "10\n20\n30\n", // 30 exited before it was read
		"10/task/10":  "",
		"10/task/11":  "",
		"20/task/20":  "",
		"10/limits":   "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n",
		"10/fd/.keep": "",
		"20/fd/.keep": "",
	})
	for _, fd := range []struct{ pid, fd, target string }{
		{"10", "0", "/dev/null"}, {"10", "3", "socket:[1234]"}, {"20", "1", "pipe:[5]"}, {"20", "4", "socket:[99]"},
	} {
		if err := os.Symlink(fd.target, filepath.Join(proc, fd.pid, "fd", fd.fd)); err != nil {
			t.Fatal(err)
		}
	}
	for _, pid := range []string{"10", "20"} {
		os.Remove(filepath.Join(proc, pid, "fd", ".keep"))
	}
	got := readProcCounts(proc, filepath.Join(proc, "procs"))
	want := procCounts{processes: 2, threads: 3, fds: 4, sockets: 2, nofileSoft: 1024}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseNetDevCounters(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string][16]uint64
		wantErr bool
	}{{
		name: "eth0 without lo",
		in: "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n" +
			"    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n" +
			"  eth0: 100 10 1 2 0 0 0 0 200 20 3 4 0 0 0 0\n",
		want: map[string][16]uint64{"eth0": {100, 10, 1, 2, 0, 0, 0, 0, 200, 20, 3, 4}},
	}, {
		name:    "short line",
		in:      "h\nh\neth0: 1 2 3\n",
		wantErr: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetDevCounters(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d interfaces, want %d", len(got), len(tt.want))
			}
			for _, c := range got {
				if tt.want[c.name] != c.v {
					t.Errorf("%s: got %v, want %v", c.name, c.v, tt.want[c.name])
				}
			}
		})
	}
}

// TestMetricLabels checks that every metric berth makes has as many label values as
// its descriptor has keys, that each described metric is made, and that every
// descriptor has help and keys (what kubelet and critest rely on).
func TestMetricLabels(t *testing.T) {
	s := &Service{}
	descs := map[string]int{}
	for _, d := range s.MetricDescriptors() {
		if d.GetHelp() == "" || len(d.GetLabelKeys()) == 0 {
			t.Errorf("%s: empty help or label keys", d.GetName())
		}
		if _, dup := descs[d.GetName()]; dup {
			t.Errorf("%s described twice", d.GetName())
		}
		descs[d.GetName()] = len(d.GetLabelKeys())
	}
	tests := []struct {
		name string
		in   containerInputs
	}{
		{"empty", containerInputs{labels: []string{"c", "/id", "img", "id"}, cg: &cgroupSample{}}},
		{"full", containerInputs{
			labels:  []string{"c", "/id", "img", "id"},
			cg:      &cgroupSample{cpuQuota: 20000, io: []ioDevice{{major: 8}, {major: 8, minor: 1}}},
			fs:      layerUsage{device: "/dev/sda1", major: 8, minor: 1},
			started: time.Unix(100, 0), now: time.Unix(200, 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			made := map[string]bool{}
			for _, m := range tt.in.metrics() {
				n, ok := descs[m.GetName()]
				if !ok {
					t.Errorf("%s is not described", m.GetName())
				}
				if len(m.GetLabelValues()) != n {
					t.Errorf("%s: %d label values, descriptor has %d keys", m.GetName(), len(m.GetLabelValues()), n)
				}
				if m.GetMetricType() != metricTypes[m.GetName()] {
					t.Errorf("%s: type %v", m.GetName(), m.GetMetricType())
				}
				made[m.GetName()] = true
			}
			for _, m := range networkMetrics(tt.in.labels, []netDevCounters{{name: "eth0"}, {name: "eth1"}}) {
				if len(m.GetLabelValues()) != descs[m.GetName()] {
					t.Errorf("%s: %d label values, descriptor has %d keys", m.GetName(), len(m.GetLabelValues()), descs[m.GetName()])
				}
				made[m.GetName()] = true
			}
			for name := range descs {
				if !made[name] && name != "container_spec_cpu_quota" {
					t.Errorf("%s is described but not made", name)
				}
			}
		})
	}
}
