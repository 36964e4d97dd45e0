package sandbox

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/sandbox/cgroups"
)

// defaultInterface is the interface CNI gives a pod (kubelet passes CNI_IFNAME=eth0),
// which kubelet reports as the pod's network usage.
const defaultInterface = "eth0"

// PodSandboxStats reads a pod's usage (PodSandboxStats): the pod cgroup's CPU, memory
// and tasks when it has one, else the sum of its containers'; the counters of the
// interfaces in its network namespace; and the stats of each container. What cannot
// be read is reported as zeros (or left out, for the network), never as an error.
func (s *Service) PodSandboxStats(id string) (*runtimeapi.PodSandboxStats, error) {
	p, err := s.get(id)
	if err != nil {
		return nil, err
	}
	return s.podStats(p), nil
}

// ListPodSandboxStats reads the usage of the pods matching filter.
func (s *Service) ListPodSandboxStats(filter *runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats {
	list := s.ListPods(&runtimeapi.PodSandboxFilter{Id: filter.GetId(), LabelSelector: filter.GetLabelSelector()})
	out := make([]*runtimeapi.PodSandboxStats, 0, len(list))
	for _, l := range list {
		// A pod removed since the listing is left out, not an error.
		if p, err := s.get(l.Id); err == nil {
			out = append(out, s.podStats(p))
		}
	}
	return out
}

func (s *Service) podStats(p *pod) *runtimeapi.PodSandboxStats {
	now := time.Now().UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{
		Cpu:     &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}},
		Memory:  &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}, UsageBytes: &runtimeapi.UInt64Value{}},
		Process: &runtimeapi.ProcessUsage{Timestamp: now, ProcessCount: &runtimeapi.UInt64Value{}},
	}
	ctrs := s.podContainers(p.meta.ID)
	for _, c := range ctrs {
		linux.Containers = append(linux.Containers, s.containerStats(c))
	}
	st := p.status()
	usage, err := s.podCgroupStats(p, st, ctrs)
	if err != nil {
		s.log.Debug("pod stats: cgroup usage unreadable", "id", p.meta.ID, "error", err)
	} else {
		linux.Cpu.UsageCoreNanoSeconds.Value = usage.CPUUsageNanos
		linux.Memory.UsageBytes.Value = usage.MemoryUsageBytes
		linux.Memory.WorkingSetBytes.Value = usage.MemoryWorkingSetBytes
		linux.Process.ProcessCount.Value = usage.PidsCurrent
	}
	if st != nil && st.Namespaces.Net != "" && !p.opts.hostNetwork {
		ifs, err := netnsInterfaces(st.Namespaces.Net)
		if err != nil {
			s.log.Debug("pod stats: network usage unreadable", "id", p.meta.ID, "error", err)
		} else {
			linux.Network = networkUsage(now, ifs)
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: p.meta.ID, Metadata: p.config.GetMetadata(), Labels: p.config.GetLabels(), Annotations: p.config.GetAnnotations(),
		},
		Linux: linux,
	}
}

// podCgroupStats reads the pod cgroup, which holds every container and the pause.
// Without one (no cgroup_parent, or a record without it) it sums the cgroups of the
// containers and the pause, which is what the pod cgroup would have counted.
func (s *Service) podCgroupStats(p *pod, st *revision, ctrs []*container) (*cgroups.Stats, error) {
	if st != nil && st.Cgroup != nil {
		cg, err := s.cfg.Cgroups.Open(*st.Cgroup)
		if err != nil {
			return nil, err
		}
		return cg.Stats()
	}
	ids := make([]string, 0, len(ctrs)+1)
	for _, c := range ctrs {
		ids = append(ids, c.meta.ID)
	}
	if st != nil && st.Infra != nil {
		ids = append(ids, p.meta.ID) // the pause's cgroup is named after the pod
	}
	sum := &cgroups.Stats{}
	for _, id := range ids {
		names, err := cgroups.ContainerNames(s.cfg.Cgroups.Driver(), p.opts.cgroupParent, id)
		if err != nil {
			return nil, err
		}
		// A container that has not started, or has exited, has no cgroup: it uses nothing.
		u, err := s.cfg.Cgroups.ContainerStats(names.ContainerPath)
		if err != nil {
			continue
		}
		sum.CPUUsageNanos += u.CPUUsageNanos
		sum.MemoryUsageBytes += u.MemoryUsageBytes
		sum.MemoryWorkingSetBytes += u.MemoryWorkingSetBytes
		sum.PidsCurrent += u.PidsCurrent
	}
	return sum, nil
}

// ifaceStats are one interface's counters.
type ifaceStats struct {
	name                                 string
	rxBytes, rxErrors, txBytes, txErrors uint64
}

// netnsInterfaces reads the interface counters of the network namespace pinned at
// path, as PodSandboxStats reports them.
func netnsInterfaces(path string) ([]ifaceStats, error) {
	cs, err := netnsDevCounters(path)
	if err != nil {
		return nil, err
	}
	return ifaceStatsOf(cs), nil
}

// netnsDevCounters reads /proc/net/dev of the network namespace pinned at path.
// /proc/thread-self/net/dev is resolved in the reading thread's namespace (unlike
// /proc/net, which follows the process's main thread, and /sys/class/net, which follows
// the namespace sysfs was mounted in), so a thread that entered the pod's namespace
// reads the pod's interfaces without a fork or a mount.
func netnsDevCounters(path string) ([]netDevCounters, error) {
	var cs []netDevCounters
	err := nspin.Run(path, nspin.Net, func() error {
		f, err := os.Open("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		defer f.Close()
		cs, err = parseNetDevCounters(f)
		return err
	})
	return cs, err
}

// parseNetDev reads /proc/net/dev into the four counters PodSandboxStats has fields
// for; the loopback is left out.
func parseNetDev(r io.Reader) ([]ifaceStats, error) {
	cs, err := parseNetDevCounters(r)
	if err != nil {
		return nil, err
	}
	return ifaceStatsOf(cs), nil
}

func ifaceStatsOf(cs []netDevCounters) []ifaceStats {
	var out []ifaceStats
	for _, c := range cs {
		// Columns: rx bytes, packets, errs, ...; tx from the ninth on.
		out = append(out, ifaceStats{name: c.name, rxBytes: c.v[0], rxErrors: c.v[2], txBytes: c.v[8], txErrors: c.v[10]})
	}
	return out
}

// netDevCounters is one interface's sixteen /proc/net/dev counters, in file order.
type netDevCounters struct {
	name string
	v    [16]uint64
}

// parseNetDevCounters reads the format of /proc/net/dev: two header lines, then one
// line per interface, "name: " and eight receive then eight transmit counters. The
// loopback is left out: traffic within the pod is not the pod's network usage.
func parseNetDevCounters(r io.Reader) ([]netDevCounters, error) {
	var out []netDevCounters
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if !ok || name == "" || len(f) < 16 {
			return nil, fmt.Errorf("net/dev line %d: malformed", line+1)
		}
		c := netDevCounters{name: name}
		for i := range c.v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev line %d: %w", line+1, err)
			}
			c.v[i] = n
		}
		if name != "lo" {
			out = append(out, c)
		}
	}
	return out, sc.Err()
}

// networkUsage reports every interface, eth0 also as the default one.
func networkUsage(now int64, ifs []ifaceStats) *runtimeapi.NetworkUsage {
	n := &runtimeapi.NetworkUsage{Timestamp: now}
	for _, i := range ifs {
		u := &runtimeapi.NetworkInterfaceUsage{
			Name:     i.name,
			RxBytes:  &runtimeapi.UInt64Value{Value: i.rxBytes},
			RxErrors: &runtimeapi.UInt64Value{Value: i.rxErrors},
			TxBytes:  &runtimeapi.UInt64Value{Value: i.txBytes},
			TxErrors: &runtimeapi.UInt64Value{Value: i.txErrors},
		}
		n.Interfaces = append(n.Interfaces, u)
		if i.name == defaultInterface {
			n.DefaultInterface = u
		}
	}
	return n
}
