package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/sandbox/cgroups"
)

// writeFiles makes a fake /proc under dir: path → content.
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
		{"empty", containerInputs{labels: []string{"c", "/id", "img", "id"}, cg: &cgroups.Sample{}}},
		{"full", containerInputs{
			labels:  []string{"c", "/id", "img", "id"},
			cg:      &cgroups.Sample{CPUQuota: 20000, IO: []cgroups.IODevice{{Major: 8}, {Major: 8, Minor: 1}}},
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
