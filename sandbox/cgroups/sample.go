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

// readV1 reads the cgroup at rel (relative to each hierarchy) under root, where
// every v1 controller is mounted at root/<controller>.
func readV1(root, rel string) *Sample {
	dir := func(ctrl string) string { return filepath.Join(root, ctrl, rel) }
	s := &Sample{ProcsFile: filepath.Join(dir("pids"), "cgroup.procs")}

	cpuacct := dir("cpuacct")
	s.CPUUsage = readUintFile(filepath.Join(cpuacct, "cpuacct.usage"))
	st := readKVFile(filepath.Join(cpuacct, "cpuacct.stat"))
	s.CPUUser = st["user"] * (1e9 / userHZ)
	s.CPUSystem = st["system"] * (1e9 / userHZ)

	cpu := dir("cpu")
	cs := readKVFile(filepath.Join(cpu, "cpu.stat"))
	s.Periods, s.Throttled, s.ThrottledNanos = cs["nr_periods"], cs["nr_throttled"], cs["throttled_time"]
	s.CPUShares = readUintFile(filepath.Join(cpu, "cpu.shares"))
	s.CPUPeriod = readUintFile(filepath.Join(cpu, "cpu.cfs_period_us"))
	s.CPUQuota = readUintFile(filepath.Join(cpu, "cpu.cfs_quota_us")) // -1 parses to 0

	mem := dir("memory")
	s.MemUsage = readUintFile(filepath.Join(mem, "memory.usage_in_bytes"))
	s.MemMaxUsage = readUintFile(filepath.Join(mem, "memory.max_usage_in_bytes"))
	ms := readKVFile(filepath.Join(mem, "memory.stat"))
	s.MemCache, s.MemRSS, s.MemMapped, s.MemSwap = ms["cache"], ms["rss"], ms["mapped_file"], ms["swap"]
	s.MemWorkingSet = subFloor(s.MemUsage, ms["total_inactive_file"])
	s.Pgfault, s.Pgmajfault = ms["pgfault"], ms["pgmajfault"]
	s.HierPgfault, s.HierPgmajfault = ms["total_pgfault"], ms["total_pgmajfault"]
	s.MemKernel = readUintFile(filepath.Join(mem, "memory.kmem.usage_in_bytes"))
	s.MemFailcnt = readUintFile(filepath.Join(mem, "memory.failcnt"))
	s.MemLimit = limitV1(readUintFile(filepath.Join(mem, "memory.limit_in_bytes")))
	s.MemSwapLimit = limitV1(readUintFile(filepath.Join(mem, "memory.memsw.limit_in_bytes")))
	s.MemReservation = limitV1(readUintFile(filepath.Join(mem, "memory.soft_limit_in_bytes")))
	s.OOMKills = readKVFile(filepath.Join(mem, "memory.oom_control"))["oom_kill"]

	pids := dir("pids")
	s.Tasks = readUintFile(filepath.Join(pids, "pids.current"))
	s.TasksMax = readUintFile(filepath.Join(pids, "pids.max"))

	blkio := dir("blkio")
	s.IO = mergeBlkio(readBlkioFile(filepath.Join(blkio, "blkio.throttle.io_service_bytes")),
		readBlkioFile(filepath.Join(blkio, "blkio.throttle.io_serviced")))
	return s
}

// readV2 reads the unified cgroup directory dir.
func readV2(dir string) *Sample {
	f := func(name string) string { return filepath.Join(dir, name) }
	s := &Sample{ProcsFile: f("cgroup.procs")}

	cs := readKVFile(f("cpu.stat"))
	s.CPUUsage, s.CPUUser, s.CPUSystem = cs["usage_usec"]*1000, cs["user_usec"]*1000, cs["system_usec"]*1000
	s.Periods, s.Throttled, s.ThrottledNanos = cs["nr_periods"], cs["nr_throttled"], cs["throttled_usec"]*1000
	if w := readUintFile(f("cpu.weight")); w > 0 {
		s.CPUShares = weightToShares(w)
	}
	if quota, period, ok := strings.Cut(readString(f("cpu.max")), " "); ok {
		s.CPUQuota = parseUint(quota) // "max" parses to 0
		s.CPUPeriod = parseUint(period)
	}

	s.MemUsage = readUintFile(f("memory.current"))
	s.MemMaxUsage = readUintFile(f("memory.peak")) // kernels before 5.19 have none
	ms := readKVFile(f("memory.stat"))
	s.MemCache, s.MemRSS, s.MemMapped = ms["file"], ms["anon"], ms["file_mapped"]
	s.MemWorkingSet = subFloor(s.MemUsage, ms["inactive_file"])
	s.MemKernel = ms["kernel"]
	if s.MemKernel == 0 { // before 5.18 the kernel's share is only itemised
		s.MemKernel = ms["kernel_stack"] + ms["pagetables"] + ms["sock"] + ms["slab"] + ms["percpu"]
	}
	// v2 counts faults only with descendants: both scopes get the same figure.
	s.Pgfault, s.Pgmajfault = ms["pgfault"], ms["pgmajfault"]
	s.HierPgfault, s.HierPgmajfault = s.Pgfault, s.Pgmajfault
	s.MemSwap = readUintFile(f("memory.swap.current"))
	ev := readKVFile(f("memory.events"))
	s.MemFailcnt, s.OOMKills = ev["max"], ev["oom_kill"]
	s.MemLimit = readUintFile(f("memory.max"))
	s.MemSwapLimit = readUintFile(f("memory.swap.max"))
	s.MemReservation = readUintFile(f("memory.low"))

	s.Tasks = readUintFile(f("pids.current"))
	s.TasksMax = readUintFile(f("pids.max"))
	s.IO = readIOStat(f("io.stat"))
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

// readKVFile reads the "key value" lines of files like memory.stat and cpu.stat.
func readKVFile(path string) map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok {
			out[k] = parseUint(v)
		}
	}
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
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 3 { // skips the "Total N" line
			continue
		}
		maj, minor, ok := parseDevice(fl[0])
		if !ok {
			continue
		}
		out = append(out, blkioEntry{major: maj, minor: minor, op: fl[1], value: parseUint(fl[2])})
	}
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
	get := func(e blkioEntry) *IODevice {
		k := [2]uint64{e.major, e.minor}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, IODevice{Major: e.major, Minor: e.minor})
		}
		return &out[i]
	}
	for _, e := range bytes {
		d := get(e)
		switch e.op {
		case "Read":
			d.ReadBytes += e.value
		case "Write":
			d.WriteBytes += e.value
		}
	}
	for _, e := range ops {
		d := get(e)
		switch e.op {
		case "Read":
			d.Reads += e.value
		case "Write":
			d.Writes += e.value
		}
	}
	return out
}

// readIOStat reads v2's io.stat: "major:minor rbytes=N wbytes=N rios=N wios=N …".
func readIOStat(path string) []IODevice {
	var out []IODevice
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) == 0 {
			continue
		}
		maj, minor, ok := parseDevice(fl[0])
		if !ok {
			continue
		}
		d := IODevice{Major: maj, Minor: minor}
		for _, kv := range fl[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "rbytes":
				d.ReadBytes = parseUint(v)
			case "wbytes":
				d.WriteBytes = parseUint(v)
			case "rios":
				d.Reads = parseUint(v)
			case "wios":
				d.Writes = parseUint(v)
			}
		}
		out = append(out, d)
	}
	return out
}
