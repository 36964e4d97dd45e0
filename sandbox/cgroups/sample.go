package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Sample is what a cgroup says of its usage and limits, in the units of the CRI
// metrics (bytes, nanoseconds, counts): the one reading that stats (Stats) and metrics
// are made of. Each reader fills what its layout has and leaves the rest zero: a file
// the kernel lacks (no swap accounting, no memory.peak) is a zero metric, not a failed
// scrape.
type Sample struct {
	CPUUsage, CPUUser, CPUSystem uint64 // nanoseconds
	Periods, Throttled           uint64
	ThrottledNanos               uint64
	CPUShares, CPUPeriod         uint64 // CPUPeriod in microseconds, as kubelet sets it
	CPUQuota                     uint64 // microseconds; 0 when unlimited

	MemUsage, MemMaxUsage, MemWorkingSet   uint64
	MemCache, MemRSS, MemMapped, MemSwap   uint64
	MemKernel, MemFailcnt, OOMKills        uint64
	MemLimit, MemSwapLimit, MemReservation uint64 // 0 when unlimited
	Pgfault, Pgmajfault                    uint64 // this cgroup's own
	HierPgfault, HierPgmajfault            uint64 // with its descendants
	Tasks, TasksMax                        uint64 // TasksMax 0 when unlimited
	IO                                     []IODevice
	ProcsFile                              string // cgroup.procs, for the fd counts
}

// IODevice is one block device's I/O by the cgroup.
type IODevice struct {
	Major, Minor, ReadBytes, Reads, WriteBytes, Writes uint64
}

// Sample reads the cgroup at rel (relative to the hierarchy root, as
// Names.ContainerPath). A missing cgroup fails with errdefs.ErrNotFound.
func (m *Manager) Sample(rel string) (*Sample, error) {
	s, err := m.backend.sample(rel)
	if err != nil {
		return nil, fmt.Errorf("cgroups: sample of %s: %w", rel, err)
	}
	return s, nil
}

// sample reads rel when one of the hierarchies stats read has it, as cgroup1.Load
// decides a cgroup exists.
func (b *v1Backend) sample(rel string) (*Sample, error) {
	for _, name := range []cgroup1.Name{cgroup1.Cpuacct, cgroup1.Memory, cgroup1.Pids} {
		if dir := b.dir(name, rel); dir != "" {
			if _, err := os.Lstat(dir); err == nil {
				return readV1(b.root, rel), nil
			}
		}
	}
	return nil, errdefs.NotFound(fmt.Sprintf("cgroups: %s does not exist", rel))
}

func (b *v2Backend) sample(rel string) (*Sample, error) {
	dir := filepath.Join(b.root, rel)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound(fmt.Sprintf("cgroups: %s does not exist", rel))
	}
	return readV2(dir), nil
}

// userHZ is the unit of cpuacct.stat: the kernel reports it in USER_HZ ticks, which
// is 100 on every architecture Linux exports to user space.
const userHZ = 100

// unlimitedFloor: a v1 limit at or above it is the kernel's "no limit" (the page-
// rounded maximum), reported as 0 so that a limit can be told from the absence of one.
const unlimitedFloor = 1 << 62

// A figure is where one number of a Sample comes from: the file's only value when key
// is "", else the value of key in the file's "key value" lines; conv (if any) turns it
// into the Sample's unit. Both layouts are read the same way, from one table each
// (readV1, readV2); what is not one file's number is worked out after.
type figure struct {
	dst       *uint64
	file, key string
	conv      func(uint64) uint64
}

// fill reads every figure, each file once; path maps a figure's file to its path. It
// returns the key-value files it read, for what the caller works out from them.
func fill(path func(file string) string, figures []figure) map[string]map[string]uint64 {
	kv := map[string]map[string]uint64{}
	for _, f := range figures {
		var v uint64
		if f.key == "" {
			v = readUintFile(path(f.file))
		} else {
			m, ok := kv[f.file]
			if !ok {
				m = readKVFile(path(f.file))
				kv[f.file] = m
			}
			v = m[f.key]
		}
		if f.conv != nil {
			v = f.conv(v)
		}
		*f.dst = v
	}
	return kv
}

// times converts a count of units of n nanoseconds (or bytes) into nanoseconds.
func times(n uint64) func(uint64) uint64 { return func(v uint64) uint64 { return v * n } }

// readV1 reads the cgroup at rel (relative to each hierarchy) under root, where
// every v1 controller is mounted at root/<controller>: a figure's file is
// "<controller>/<name>".
func readV1(root, rel string) *Sample {
	path := func(file string) string {
		ctrl, name, _ := strings.Cut(file, "/")
		return filepath.Join(root, ctrl, rel, name)
	}
	s := &Sample{ProcsFile: path("pids/cgroup.procs")}
	const cpuStat, memStat = "cpu/cpu.stat", "memory/memory.stat"
	kv := fill(path, []figure{
		{&s.CPUUsage, "cpuacct/cpuacct.usage", "", nil},
		{&s.CPUUser, "cpuacct/cpuacct.stat", "user", times(1e9 / userHZ)},
		{&s.CPUSystem, "cpuacct/cpuacct.stat", "system", times(1e9 / userHZ)},
		{&s.Periods, cpuStat, "nr_periods", nil},
		{&s.Throttled, cpuStat, "nr_throttled", nil},
		{&s.ThrottledNanos, cpuStat, "throttled_time", nil},
		{&s.CPUShares, "cpu/cpu.shares", "", nil},
		{&s.CPUPeriod, "cpu/cpu.cfs_period_us", "", nil},
		{&s.CPUQuota, "cpu/cpu.cfs_quota_us", "", nil}, // -1 parses to 0

		{&s.MemUsage, "memory/memory.usage_in_bytes", "", nil},
		{&s.MemMaxUsage, "memory/memory.max_usage_in_bytes", "", nil},
		{&s.MemCache, memStat, "cache", nil},
		{&s.MemRSS, memStat, "rss", nil},
		{&s.MemMapped, memStat, "mapped_file", nil},
		{&s.MemSwap, memStat, "swap", nil},
		{&s.Pgfault, memStat, "pgfault", nil},
		{&s.Pgmajfault, memStat, "pgmajfault", nil},
		{&s.HierPgfault, memStat, "total_pgfault", nil},
		{&s.HierPgmajfault, memStat, "total_pgmajfault", nil},
		{&s.MemKernel, "memory/memory.kmem.usage_in_bytes", "", nil},
		{&s.MemFailcnt, "memory/memory.failcnt", "", nil},
		{&s.MemLimit, "memory/memory.limit_in_bytes", "", limitV1},
		{&s.MemSwapLimit, "memory/memory.memsw.limit_in_bytes", "", limitV1},
		{&s.MemReservation, "memory/memory.soft_limit_in_bytes", "", limitV1},
		{&s.OOMKills, "memory/memory.oom_control", "oom_kill", nil},

		{&s.Tasks, "pids/pids.current", "", nil},
		{&s.TasksMax, "pids/pids.max", "", nil},
	})
	s.MemWorkingSet = subFloor(s.MemUsage, kv[memStat]["total_inactive_file"])
	s.IO = mergeBlkio(readBlkioFile(path("blkio/blkio.throttle.io_service_bytes")),
		readBlkioFile(path("blkio/blkio.throttle.io_serviced")))
	return s
}

// readV2 reads the unified cgroup directory dir.
func readV2(dir string) *Sample {
	path := func(file string) string { return filepath.Join(dir, file) }
	s := &Sample{ProcsFile: path("cgroup.procs")}
	var weight uint64
	const memStat = "memory.stat"
	kv := fill(path, []figure{
		{&s.CPUUsage, "cpu.stat", "usage_usec", times(1000)},
		{&s.CPUUser, "cpu.stat", "user_usec", times(1000)},
		{&s.CPUSystem, "cpu.stat", "system_usec", times(1000)},
		{&s.Periods, "cpu.stat", "nr_periods", nil},
		{&s.Throttled, "cpu.stat", "nr_throttled", nil},
		{&s.ThrottledNanos, "cpu.stat", "throttled_usec", times(1000)},
		{&weight, "cpu.weight", "", nil},

		{&s.MemUsage, "memory.current", "", nil},
		{&s.MemMaxUsage, "memory.peak", "", nil}, // kernels before 5.19 have none
		{&s.MemCache, memStat, "file", nil},
		{&s.MemRSS, memStat, "anon", nil},
		{&s.MemMapped, memStat, "file_mapped", nil},
		{&s.MemKernel, memStat, "kernel", nil},
		// v2 counts faults only with descendants: both scopes get the same figure.
		{&s.Pgfault, memStat, "pgfault", nil},
		{&s.Pgmajfault, memStat, "pgmajfault", nil},
		{&s.HierPgfault, memStat, "pgfault", nil},
		{&s.HierPgmajfault, memStat, "pgmajfault", nil},
		{&s.MemSwap, "memory.swap.current", "", nil},
		{&s.MemFailcnt, "memory.events", "max", nil},
		{&s.OOMKills, "memory.events", "oom_kill", nil},
		{&s.MemLimit, "memory.max", "", nil}, // "max" parses to 0
		{&s.MemSwapLimit, "memory.swap.max", "", nil},
		{&s.MemReservation, "memory.low", "", nil},

		{&s.Tasks, "pids.current", "", nil},
		{&s.TasksMax, "pids.max", "", nil},
	})
	if weight > 0 {
		s.CPUShares = weightToShares(weight)
	}
	if quota, period, ok := strings.Cut(readString(path("cpu.max")), " "); ok {
		s.CPUQuota = parseUint(quota) // "max" parses to 0
		s.CPUPeriod = parseUint(period)
	}
	ms := kv[memStat]
	s.MemWorkingSet = subFloor(s.MemUsage, ms["inactive_file"])
	if s.MemKernel == 0 { // before 5.18 the kernel's share is only itemised
		s.MemKernel = ms["kernel_stack"] + ms["pagetables"] + ms["sock"] + ms["slab"] + ms["percpu"]
	}
	s.IO = readIOStat(path("io.stat"))
	return s
}

// weightToShares inverts the kernel-documented mapping kubelet and runc use from
// cpu.shares [2, 262144] to cpu.weight [1, 10000].
func weightToShares(w uint64) uint64 { return 2 + (w-1)*262142/9999 }

func limitV1(v uint64) uint64 {
	if v >= unlimitedFloor {
		return 0
	}
	return v
}

func subFloor(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseUint reads a cgroup number; "max", "-1" and garbage are 0 (no limit, or
// nothing to report).
func parseUint(s string) uint64 {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func readUintFile(path string) uint64 { return parseUint(readString(path)) }

// eachLine calls fn with the blank-separated fields of every line of the file at
// path; a file that cannot be read has no lines.
func eachLine(path string, fn func(fields []string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fn(strings.Fields(sc.Text()))
	}
}

// readKVFile reads the "key value" lines of files like memory.stat and cpu.stat.
func readKVFile(path string) map[string]uint64 {
	out := map[string]uint64{}
	eachLine(path, func(fl []string) {
		if len(fl) == 2 {
			out[fl[0]] = parseUint(fl[1])
		}
	})
	return out
}

// blkioEntry is one "major:minor Op value" line of a v1 blkio file.
type blkioEntry struct {
	major, minor uint64
	op           string
	value        uint64
}

func readBlkioFile(path string) []blkioEntry {
	var out []blkioEntry
	eachLine(path, func(fl []string) {
		if len(fl) != 3 { // skips the "Total N" line
			return
		}
		if maj, minor, ok := parseDevice(fl[0]); ok {
			out = append(out, blkioEntry{major: maj, minor: minor, op: fl[1], value: parseUint(fl[2])})
		}
	})
	return out
}

func parseDevice(s string) (major, minor uint64, ok bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	ma, err1 := strconv.ParseUint(a, 10, 64)
	mi, err2 := strconv.ParseUint(b, 10, 64)
	return ma, mi, err1 == nil && err2 == nil
}

// mergeBlkio joins the byte and operation counts of v1 into one entry per device, in
// the order the devices first appear.
func mergeBlkio(bytes, ops []blkioEntry) []IODevice {
	var out []IODevice
	at := map[[2]uint64]int{}
	add := func(entries []blkioEntry, read, write func(*IODevice) *uint64) {
		for _, e := range entries {
			k := [2]uint64{e.major, e.minor}
			i, ok := at[k]
			if !ok {
				i = len(out)
				at[k] = i
				out = append(out, IODevice{Major: e.major, Minor: e.minor})
			}
			switch e.op {
			case "Read":
				*read(&out[i]) += e.value
			case "Write":
				*write(&out[i]) += e.value
			}
		}
	}
	add(bytes, func(d *IODevice) *uint64 { return &d.ReadBytes }, func(d *IODevice) *uint64 { return &d.WriteBytes })
	add(ops, func(d *IODevice) *uint64 { return &d.Reads }, func(d *IODevice) *uint64 { return &d.Writes })
	return out
}

// readIOStat reads v2's io.stat: "major:minor rbytes=N wbytes=N rios=N wios=N …".
func readIOStat(path string) []IODevice {
	var out []IODevice
	eachLine(path, func(fl []string) {
		if len(fl) == 0 {
			return
		}
		maj, minor, ok := parseDevice(fl[0])
		if !ok {
			return
		}
		d := IODevice{Major: maj, Minor: minor}
		field := map[string]*uint64{"rbytes": &d.ReadBytes, "wbytes": &d.WriteBytes, "rios": &d.Reads, "wios": &d.Writes}
		for _, kv := range fl[1:] {
			k, v, _ := strings.Cut(kv, "=")
			if dst := field[k]; dst != nil {
				*dst = parseUint(v)
			}
		}
		out = append(out, d)
	})
	return out
}
