package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/sandbox/cgroups"
)

// The label keys of every metric are cadvisor's, so that kubelet's /metrics/cadvisor
// keeps its series when it takes them from berth: container is kubelet's container
// name, id the cgroup path, image the image as kubelet named it, name the runtime's
// container name (berth's id).
var baseLabelKeys = []string{"container", "id", "image", "name"}

// metricDef is one metric berth describes. extra are its label keys after the base.
type metricDef struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      []string
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// metricDefs are the metrics berth reports. The CRI carries integers: seconds are
// whole seconds. Hugetlb and pressure are not described: this node's layout (v1) has
// no pressure files, and no pod here uses huge pages.
var metricDefs = []metricDef{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, []string{"cpu"}},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, nil},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, nil},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, nil},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil},
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil},
	{"container_spec_cpu_period", "CPU period of the container.", gauge, nil},
	{"container_spec_cpu_quota", "CPU quota of the container.", gauge, nil},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, nil},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", gauge, nil},
	{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", gauge, nil},
	{"container_processes", "Number of processes running inside the container.", gauge, nil},
	{"container_threads", "Number of threads running inside the container.", gauge, nil},
	{"container_threads_max", "Maximum number of threads allowed inside the container, 0 when unlimited.", gauge, nil},
	{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil},
	{"container_sockets", "Number of open sockets for the container.", gauge, nil},
	{"container_ulimits_soft", "Soft ulimit values for the container root process.", gauge, []string{"ulimit"}},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}},
	{"container_fs_inodes_total", "Number of Inodes.", gauge, []string{"device"}},
	{"container_fs_inodes_free", "Number of available Inodes.", gauge, []string{"device"}},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"}},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"}},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"}},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"}},
	{"container_blkio_device_usage_total", "Blkio device bytes usage.", counter, []string{"device", "major", "minor", "operation"}},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil},
	{"container_last_seen", "Last time a container was seen by the exporter.", gauge, nil},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, []string{"interface"}},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, []string{"interface"}},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, []string{"interface"}},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, []string{"interface"}},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, []string{"interface"}},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, []string{"interface"}},
}

var metricTypes = func() map[string]runtimeapi.MetricType {
	m := make(map[string]runtimeapi.MetricType, len(metricDefs))
	for _, d := range metricDefs {
		m[d.name] = d.typ
	}
	return m
}()

// MetricDescriptors describes the metrics ListPodSandboxMetrics reports.
func (s *Service) MetricDescriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDefs))
	for _, d := range metricDefs {
		keys := append(append([]string{}, baseLabelKeys...), d.extra...)
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: keys})
	}
	return out
}

// ListPodSandboxMetrics reads the metrics of the ready pods: the network at the pod
// level, everything else per running container.
func (s *Service) ListPodSandboxMetrics() []*runtimeapi.PodSandboxMetrics {
	s.mu.RLock()
	pods := make([]*pod, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	s.mu.RUnlock()
	now := time.Now()
	var out []*runtimeapi.PodSandboxMetrics
	for _, p := range pods {
		if !p.ready() {
			continue
		}
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: p.meta.ID, Metrics: s.podNetworkMetrics(p)}
		for _, c := range s.podContainers(p.meta.ID) {
			if st := c.status(); st == nil || st.State != ContainerRunning {
				continue
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{
				ContainerId: c.meta.ID, Metrics: s.containerMetrics(p, c, now),
			})
		}
		out = append(out, pm)
	}
	return out
}

func (s *Service) containerMetrics(p *pod, c *container, now time.Time) []*runtimeapi.Metric {
	cg := &cgroups.Sample{}
	id := ""
	if names, err := s.containerCgroup(p, c.meta.ID); err == nil {
		id = names.ContainerPath
		if smp, err := s.cfg.Cgroups.Sample(id); err == nil {
			cg = smp // else gone, or not made yet: zeros
		}
	}
	var started int64
	if st := c.status(); st != nil {
		started = st.StartedAt
	}
	in := containerInputs{
		labels:  []string{c.config.GetMetadata().GetName(), id, c.meta.Image, c.meta.ID},
		cg:      cg,
		procs:   readProcCounts("/proc", cg.ProcsFile),
		fs:      s.readLayerUsage(c.meta.ID),
		started: time.Unix(0, started),
		now:     now,
	}
	return in.metrics()
}

// containerInputs is everything a container's metrics are made of, read beforehand so
// that making them is a pure function.
type containerInputs struct {
	labels       []string // values of baseLabelKeys
	cg           *cgroups.Sample
	procs        procCounts
	fs           layerUsage
	started, now time.Time
}

// metricList appends metrics that share their base label values.
type metricList struct {
	base []string
	out  []*runtimeapi.Metric
}

func (l *metricList) add(name string, v uint64, extra ...string) {
	l.out = append(l.out, &runtimeapi.Metric{
		Name: name, MetricType: metricTypes[name],
		LabelValues: append(append([]string{}, l.base...), extra...),
		Value:       &runtimeapi.UInt64Value{Value: v},
	})
}

func (in containerInputs) metrics() []*runtimeapi.Metric {
	l := &metricList{base: in.labels}
	cg, pc, fs := in.cg, in.procs, in.fs
	sec := uint64(time.Second)
	l.add("container_cpu_usage_seconds_total", cg.CPUUsage/sec, "total")
	l.add("container_cpu_user_seconds_total", cg.CPUUser/sec)
	l.add("container_cpu_system_seconds_total", cg.CPUSystem/sec)
	l.add("container_cpu_cfs_periods_total", cg.Periods)
	l.add("container_cpu_cfs_throttled_periods_total", cg.Throttled)
	l.add("container_cpu_cfs_throttled_seconds_total", cg.ThrottledNanos/sec)
	l.add("container_memory_usage_bytes", cg.MemUsage)
	l.add("container_memory_max_usage_bytes", cg.MemMaxUsage)
	l.add("container_memory_working_set_bytes", cg.MemWorkingSet)
	l.add("container_memory_cache", cg.MemCache)
	l.add("container_memory_rss", cg.MemRSS)
	l.add("container_memory_mapped_file", cg.MemMapped)
	l.add("container_memory_swap", cg.MemSwap)
	l.add("container_memory_kernel_usage", cg.MemKernel)
	l.add("container_memory_failcnt", cg.MemFailcnt)
	l.add("container_memory_failures_total", cg.Pgfault, "pgfault", "container")
	l.add("container_memory_failures_total", cg.Pgmajfault, "pgmajfault", "container")
	l.add("container_memory_failures_total", cg.HierPgfault, "pgfault", "hierarchy")
	l.add("container_memory_failures_total", cg.HierPgmajfault, "pgmajfault", "hierarchy")
	l.add("container_oom_events_total", cg.OOMKills)
	l.add("container_spec_cpu_shares", cg.CPUShares)
	l.add("container_spec_cpu_period", cg.CPUPeriod)
	if cg.CPUQuota > 0 { // no quota is no series, not a quota of 0
		l.add("container_spec_cpu_quota", cg.CPUQuota)
	}
	l.add("container_spec_memory_limit_bytes", cg.MemLimit)
	l.add("container_spec_memory_swap_limit_bytes", cg.MemSwapLimit)
	l.add("container_spec_memory_reservation_limit_bytes", cg.MemReservation)
	l.add("container_processes", pc.processes)
	threads := pc.threads
	if threads == 0 {
		threads = cg.Tasks // /proc unreadable: pids.current counts the same tasks
	}
	l.add("container_threads", threads)
	l.add("container_threads_max", cg.TasksMax)
	l.add("container_file_descriptors", pc.fds)
	l.add("container_sockets", pc.sockets)
	l.add("container_ulimits_soft", pc.nofileSoft, "max_open_files")
	l.add("container_fs_usage_bytes", fs.usedBytes, fs.device)
	l.add("container_fs_limit_bytes", fs.limitBytes, fs.device)
	l.add("container_fs_inodes_total", fs.inodesTotal, fs.device)
	l.add("container_fs_inodes_free", fs.inodesFree, fs.device)
	// The layer's own device is always reported, with zeros when the cgroup saw no
	// I/O on it (a virtual disk often reports none).
	devs := cg.IO
	var layer cgroups.IODevice
	found := false
	for _, d := range devs {
		if d.Major == fs.major && d.Minor == fs.minor {
			layer, found = d, true
		}
	}
	if !found {
		layer = cgroups.IODevice{Major: fs.major, Minor: fs.minor}
		devs = append(devs, layer)
	}
	l.add("container_fs_reads_bytes_total", layer.ReadBytes, fs.device)
	l.add("container_fs_reads_total", layer.Reads, fs.device)
	l.add("container_fs_writes_bytes_total", layer.WriteBytes, fs.device)
	l.add("container_fs_writes_total", layer.Writes, fs.device)
	for _, d := range devs {
		name := blockDeviceName(d.Major, d.Minor)
		ma, mi := strconv.FormatUint(d.Major, 10), strconv.FormatUint(d.Minor, 10)
		l.add("container_blkio_device_usage_total", d.ReadBytes, name, ma, mi, "Read")
		l.add("container_blkio_device_usage_total", d.WriteBytes, name, ma, mi, "Write")
	}
	var started uint64
	if in.started.UnixNano() > 0 {
		started = uint64(in.started.Unix())
	}
	l.add("container_start_time_seconds", started)
	l.add("container_last_seen", uint64(in.now.Unix()))
	return l.out
}

// layerUsage is a container's writable layer and the filesystem holding it.
type layerUsage struct {
	device                  string
	major, minor            uint64
	usedBytes, limitBytes   uint64
	inodesTotal, inodesFree uint64
}

// readLayerUsage takes the writable layer's usage from the background refresh (never a
// walk per call) and asks the filesystem under it for its size.
func (s *Service) readLayerUsage(id string) layerUsage {
	dir := s.rwDirOf(id)
	var u layerUsage
	if sample, ok := s.usage.Get(id); ok {
		u.usedBytes = sample.Bytes
	}
	var st unix.Stat_t
	if unix.Stat(dir, &st) == nil {
		u.major, u.minor = uint64(unix.Major(st.Dev)), uint64(unix.Minor(st.Dev))
	}
	u.device = blockDeviceName(u.major, u.minor)
	var fsst unix.Statfs_t
	if unix.Statfs(dir, &fsst) == nil {
		u.limitBytes = fsst.Blocks * uint64(fsst.Bsize)
		u.inodesTotal, u.inodesFree = fsst.Files, fsst.Ffree
	}
	return u
}

// blockDeviceName names a device as cadvisor does (/dev/sda1), from sysfs; a device
// sysfs does not know (an anonymous one, like tmpfs's) is named by its numbers.
func blockDeviceName(major, minor uint64) string {
	num := fmt.Sprintf("%d:%d", major, minor)
	b, err := os.ReadFile(filepath.Join("/sys/dev/block", num, "uevent"))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "DEVNAME="); ok {
				return "/dev/" + name
			}
		}
	}
	return num
}

// podNetworkMetrics reports the pod's interfaces, as cadvisor reports them on the
// pod's infra cgroup. A host-network pod has none of its own. When the namespace
// cannot be read, eth0 is reported with zeros, so that the series do not vanish.
func (s *Service) podNetworkMetrics(p *pod) []*runtimeapi.Metric {
	st := p.status()
	if st == nil || p.opts.hostNetwork {
		return nil
	}
	podPath, _ := cgroups.PodPath(s.cfg.Cgroups.Driver(), p.opts.cgroupParent)
	base := []string{"", podPath, "", p.meta.ID}
	var ifs []netDevCounters
	if st.Namespaces.Net != "" {
		var err error
		if ifs, err = netnsDevCounters(st.Namespaces.Net); err != nil {
			s.log.Debug("pod metrics: network unreadable", "id", p.meta.ID, "error", err)
		}
	}
	if len(ifs) == 0 {
		ifs = []netDevCounters{{name: defaultInterface}}
	}
	return networkMetrics(base, ifs)
}

// networkMetrics makes the network series of interfaces ifs (columns of /proc/net/dev).
func networkMetrics(base []string, ifs []netDevCounters) []*runtimeapi.Metric {
	l := &metricList{base: base}
	for _, i := range ifs {
		l.add("container_network_receive_bytes_total", i.v[0], i.name)
		l.add("container_network_receive_packets_total", i.v[1], i.name)
		l.add("container_network_receive_errors_total", i.v[2], i.name)
		l.add("container_network_receive_packets_dropped_total", i.v[3], i.name)
		l.add("container_network_transmit_bytes_total", i.v[8], i.name)
		l.add("container_network_transmit_packets_total", i.v[9], i.name)
		l.add("container_network_transmit_errors_total", i.v[10], i.name)
		l.add("container_network_transmit_packets_dropped_total", i.v[11], i.name)
	}
	return l.out
}
