package sandbox

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupSample is what a container's cgroup says of its usage and limits, in the
// units of the CRI metrics (bytes, nanoseconds, counts). Each reader fills what its
// layout has and leaves the rest zero: a file the kernel lacks (no swap accounting,
// no memory.peak) is a zero metric, not a failed scrape.
type cgroupSample struct {
	cpuUsage, cpuUser, cpuSystem uint64 // nanoseconds
	periods, throttled           uint64
	throttledNanos               uint64
	cpuShares, cpuPeriod         uint64 // cpuPeriod in microseconds, as kubelet sets it
	cpuQuota                     uint64 // microseconds; 0 when unlimited

	memUsage, memMaxUsage, memWorkingSet   uint64
	memCache, memRSS, memMapped, memSwap   uint64
	memKernel, memFailcnt, oomKills        uint64
	memLimit, memSwapLimit, memReservation uint64 // 0 when unlimited
	pgfault, pgmajfault                    uint64 // this cgroup's own
	hierPgfault, hierPgmajfault            uint64 // with its descendants
	tasks, tasksMax                        uint64 // tasksMax 0 when unlimited
	io                                     []ioDevice
	procsFile                              string // cgroup.procs, for the fd counts
}

// ioDevice is one block device's I/O by the cgroup.
type ioDevice struct {
	major, minor, readBytes, reads, writeBytes, writes uint64
}

// userHZ is the unit of cpuacct.stat: the kernel reports it in USER_HZ ticks, which
// is 100 on every architecture Linux exports to user space.
const userHZ = 100

// unlimitedFloor: a v1 limit at or above it is the kernel's "no limit" (the page-
// rounded maximum), reported as 0 so that a limit can be told from the absence of one.
const unlimitedFloor = 1 << 62

// readCgroupV1 reads the cgroup at rel (relative to each hierarchy) under root, where
// every v1 controller is mounted at root/<controller>.
func readCgroupV1(root, rel string) *cgroupSample {
	dir := func(ctrl string) string { return filepath.Join(root, ctrl, rel) }
	s := &cgroupSample{procsFile: filepath.Join(dir("pids"), "cgroup.procs")}

	cpuacct := dir("cpuacct")
	s.cpuUsage = readUintFile(filepath.Join(cpuacct, "cpuacct.usage"))
	st := readKVFile(filepath.Join(cpuacct, "cpuacct.stat"))
	s.cpuUser = st["user"] * (1e9 / userHZ)
	s.cpuSystem = st["system"] * (1e9 / userHZ)

	cpu := dir("cpu")
	cs := readKVFile(filepath.Join(cpu, "cpu.stat"))
	s.periods, s.throttled, s.throttledNanos = cs["nr_periods"], cs["nr_throttled"], cs["throttled_time"]
	s.cpuShares = readUintFile(filepath.Join(cpu, "cpu.shares"))
	s.cpuPeriod = readUintFile(filepath.Join(cpu, "cpu.cfs_period_us"))
	s.cpuQuota = readUintFile(filepath.Join(cpu, "cpu.cfs_quota_us")) // -1 parses to 0

	mem := dir("memory")
	s.memUsage = readUintFile(filepath.Join(mem, "memory.usage_in_bytes"))
	s.memMaxUsage = readUintFile(filepath.Join(mem, "memory.max_usage_in_bytes"))
	ms := readKVFile(filepath.Join(mem, "memory.stat"))
	s.memCache, s.memRSS, s.memMapped, s.memSwap = ms["cache"], ms["rss"], ms["mapped_file"], ms["swap"]
	s.memWorkingSet = subFloor(s.memUsage, ms["total_inactive_file"])
	s.pgfault, s.pgmajfault = ms["pgfault"], ms["pgmajfault"]
	s.hierPgfault, s.hierPgmajfault = ms["total_pgfault"], ms["total_pgmajfault"]
	s.memKernel = readUintFile(filepath.Join(mem, "memory.kmem.usage_in_bytes"))
	s.memFailcnt = readUintFile(filepath.Join(mem, "memory.failcnt"))
	s.memLimit = limitV1(readUintFile(filepath.Join(mem, "memory.limit_in_bytes")))
	s.memSwapLimit = limitV1(readUintFile(filepath.Join(mem, "memory.memsw.limit_in_bytes")))
	s.memReservation = limitV1(readUintFile(filepath.Join(mem, "memory.soft_limit_in_bytes")))
	s.oomKills = readKVFile(filepath.Join(mem, "memory.oom_control"))["oom_kill"]

	pids := dir("pids")
	s.tasks = readUintFile(filepath.Join(pids, "pids.current"))
	s.tasksMax = readUintFile(filepath.Join(pids, "pids.max"))

	blkio := dir("blkio")
	s.io = mergeBlkio(readBlkioFile(filepath.Join(blkio, "blkio.throttle.io_service_bytes")),
		readBlkioFile(filepath.Join(blkio, "blkio.throttle.io_serviced")))
	return s
}

// readCgroupV2 reads the unified cgroup directory dir.
func readCgroupV2(dir string) *cgroupSample {
	f := func(name string) string { return filepath.Join(dir, name) }
	s := &cgroupSample{procsFile: f("cgroup.procs")}

	cs := readKVFile(f("cpu.stat"))
	s.cpuUsage, s.cpuUser, s.cpuSystem = cs["usage_usec"]*1000, cs["user_usec"]*1000, cs["system_usec"]*1000
	s.periods, s.throttled, s.throttledNanos = cs["nr_periods"], cs["nr_throttled"], cs["throttled_usec"]*1000
	if w := readUintFile(f("cpu.weight")); w > 0 {
		s.cpuShares = weightToShares(w)
	}
	if quota, period, ok := strings.Cut(readString(f("cpu.max")), " "); ok {
		s.cpuQuota = parseUint(quota) // "max" parses to 0
		s.cpuPeriod = parseUint(period)
	}

	s.memUsage = readUintFile(f("memory.current"))
	s.memMaxUsage = readUintFile(f("memory.peak")) // kernels before 5.19 have none
	ms := readKVFile(f("memory.stat"))
	s.memCache, s.memRSS, s.memMapped = ms["file"], ms["anon"], ms["file_mapped"]
	s.memWorkingSet = subFloor(s.memUsage, ms["inactive_file"])
	s.memKernel = ms["kernel"]
	if s.memKernel == 0 { // before 5.18 the kernel's share is only itemised
		s.memKernel = ms["kernel_stack"] + ms["pagetables"] + ms["sock"] + ms["slab"] + ms["percpu"]
	}
	// v2 counts faults only with descendants: both scopes get the same figure.
	s.pgfault, s.pgmajfault = ms["pgfault"], ms["pgmajfault"]
	s.hierPgfault, s.hierPgmajfault = s.pgfault, s.pgmajfault
	s.memSwap = readUintFile(f("memory.swap.current"))
	ev := readKVFile(f("memory.events"))
	s.memFailcnt, s.oomKills = ev["max"], ev["oom_kill"]
	s.memLimit = readUintFile(f("memory.max"))
	s.memSwapLimit = readUintFile(f("memory.swap.max"))
	s.memReservation = readUintFile(f("memory.low"))

	s.tasks = readUintFile(f("pids.current"))
	s.tasksMax = readUintFile(f("pids.max"))
	s.io = readIOStat(f("io.stat"))
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
func mergeBlkio(bytes, ops []blkioEntry) []ioDevice {
	var out []ioDevice
	at := map[[2]uint64]int{}
	get := func(e blkioEntry) *ioDevice {
		k := [2]uint64{e.major, e.minor}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, ioDevice{major: e.major, minor: e.minor})
		}
		return &out[i]
	}
	for _, e := range bytes {
		d := get(e)
		switch e.op {
		case "Read":
			d.readBytes += e.value
		case "Write":
			d.writeBytes += e.value
		}
	}
	for _, e := range ops {
		d := get(e)
		switch e.op {
		case "Read":
			d.reads += e.value
		case "Write":
			d.writes += e.value
		}
	}
	return out
}

// readIOStat reads v2's io.stat: "major:minor rbytes=N wbytes=N rios=N wios=N …".
func readIOStat(path string) []ioDevice {
	var out []ioDevice
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
		d := ioDevice{major: maj, minor: minor}
		for _, kv := range fl[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "rbytes":
				d.readBytes = parseUint(v)
			case "wbytes":
				d.writeBytes = parseUint(v)
			case "rios":
				d.reads = parseUint(v)
			case "wios":
				d.writes = parseUint(v)
			}
		}
		out = append(out, d)
	}
	return out
}

// procCounts are what a container's processes hold, from /proc.
type procCounts struct {
	processes, threads, fds, sockets uint64
	nofileSoft                       uint64 // of the first process; 0 when unreadable
}

// readProcCounts counts the processes listed in procsFile (a cgroup.procs) and their
// threads, open files and sockets under procRoot (/proc). A process that exits midway
// is simply not counted.
func readProcCounts(procRoot, procsFile string) procCounts {
	var c procCounts
	f, err := os.Open(procsFile)
	if err != nil {
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pid := strings.TrimSpace(sc.Text())
		if pid == "" {
			continue
		}
		dir := filepath.Join(procRoot, pid)
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			continue // exited since the cgroup listed it
		}
		if c.processes == 0 {
			c.nofileSoft = readNofileSoft(filepath.Join(dir, "limits"))
		}
		c.processes++
		c.threads += uint64(len(tasks))
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		c.fds += uint64(len(fds))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				c.sockets++
			}
		}
	}
	return c
}

// readNofileSoft reads the soft "Max open files" of a /proc/<pid>/limits file.
func readNofileSoft(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Max open files"); ok {
			if fl := strings.Fields(rest); len(fl) > 0 {
				return parseUint(fl[0])
			}
		}
	}
	return 0
}
