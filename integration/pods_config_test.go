package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network/cnitest"
)

// TestPodSysctls sets network and IPC sysctls and reads them back from inside the pod's
// namespaces.
func TestPodSysctls(t *testing.T) {
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	id := d.runPod(t, podConfig(t, "tuned", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.Sysctls = map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "80",
			"net.ipv4.ping_group_range":           "0 2147483647",
			"kernel.shm_rmid_forced":              "1",
			"fs.mqueue.msg_max":                   "100",
		}
	}))
	d.cleanupPods(t, id)
	_, info := d.podStatus(t, id)
	for _, c := range []struct {
		ns   string
		kind nspin.Kind
		path string
		want string
	}{
		{info.NetNS, nspin.Net, "/proc/sys/net/ipv4/ip_unprivileged_port_start", "80"},
		{info.NetNS, nspin.Net, "/proc/sys/net/ipv4/ping_group_range", "0\t2147483647"},
		{info.IPCNS, nspin.IPC, "/proc/sys/kernel/shm_rmid_forced", "1"},
		{info.IPCNS, nspin.IPC, "/proc/sys/fs/mqueue/msg_max", "100"},
	} {
		var got string
		if err := nspin.Run(c.ns, c.kind, func() error { got = strings.TrimSpace(readFile(t, c.path)); return nil }); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s in the pod = %q, want %q", c.path, got, c.want)
		}
		if node := strings.TrimSpace(readFile(t, c.path)); node == c.want && c.want != "1" {
			t.Errorf("%s changed on the node too", c.path)
		}
	}
}

// TestRunPodInvalid: requests berth refuses before it creates anything.
func TestRunPodInvalid(t *testing.T) {
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	ctx := ctxTimeout(t, time.Minute)
	hostNet := withNamespaces(runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD)
	tests := []struct {
		name    string
		handler string
		edit    func(*runtimeapi.PodSandboxConfig)
		code    codes.Code
	}{
		{"unknown runtime handler", "no-such-runtime", nil, codes.InvalidArgument},
		{"no name", "", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }, codes.InvalidArgument},
		{"container network namespace", "", withNamespaces(runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_POD), codes.InvalidArgument},
		{"node-wide sysctl", "", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.panic": "1"} }, codes.InvalidArgument},
		{"net sysctl on the node's network", "", func(c *runtimeapi.PodSandboxConfig) {
			hostNet(c)
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, codes.InvalidArgument},
		{"hostname sysctl", "", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.hostname": "x"} }, codes.InvalidArgument},
		{"unknown net sysctl", "", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"net.ipv4.no_such": "1"} }, codes.InvalidArgument},
		{"DNS line injection", "", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Searches: []string{"a\nnameserver 192.0.2.1"}}
		}, codes.InvalidArgument},
		{"hostname with a blank", "", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "two words" }, codes.InvalidArgument},
		{"relative log directory", "", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "var/log/pods/x" }, codes.InvalidArgument},
		{"cgroup parent escaping", "", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/kubepods/../../x" }, codes.InvalidArgument},
		{"bad bandwidth annotation", "", func(c *runtimeapi.PodSandboxConfig) {
			c.Annotations = map[string]string{"kubernetes.io/ingress-bandwidth": "lots"}
		}, codes.InvalidArgument},
		{"host port out of range", "", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{HostPort: 70000, ContainerPort: 80}}
		}, codes.InvalidArgument},
		{"user namespace per container", "", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER},
			}}
		}, codes.InvalidArgument},
		{"run_as_group without run_as_user", "", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 5}}
		}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := podConfig(t, "bad")
			if tc.edit != nil {
				tc.edit(cfg)
			}
			_, err := d.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: tc.handler})
			wantCode(t, tc.name, err, tc.code)
		})
	}
	if pods := d.listPods(t, nil); len(pods) != 0 {
		t.Errorf("refused requests left pods: %v", pods)
	}
	waitNoLeftovers(t, d, n, nil, nil)
}

// TestPodCgroupAndResources: a pod with a cgroup_parent of its own gets that cgroup with
// its resources; UpdatePodSandboxResources changes them; Remove takes the cgroup away.
func TestPodCgroupAndResources(t *testing.T) {
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	parent := "/berth-it-" + cnitest.RandomHex(t, 6)
	var id string
	t.Cleanup(func() {
		for _, dir := range cgroupDirs(parent) { // only if the test failed half-way
			_ = os.Remove(filepath.Join(dir, id))
			_ = os.Remove(dir)
		}
	})
	id = d.runPod(t, podConfig(t, "sized", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.CgroupParent = parent
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 256 << 20}
		c.Linux.Overhead = &runtimeapi.LinuxContainerResources{CpuShares: 10, MemoryLimitInBytes: 16 << 20}
	}))
	d.cleanupPods(t, id)
	_, info := d.podStatus(t, id)
	cg := func(ctrl, file string) string {
		return strings.TrimSpace(readFile(t, filepath.Join("/sys/fs/cgroup", ctrl, parent, file)))
	}
	if got := cg("cpu", "cpu.shares"); got != "522" {
		t.Errorf("cpu.shares = %s, want 522 (resources + overhead)", got)
	}
	if got := cg("memory", "memory.limit_in_bytes"); got != "285212672" {
		t.Errorf("memory limit = %s, want 272 MiB", got)
	}
	if info.CgroupsPath != parent+"/"+id {
		t.Errorf("pause cgroupsPath %q, want under %s", info.CgroupsPath, parent)
	}
	if procs := readFile(t, filepath.Join("/sys/fs/cgroup/pids", parent, id, "cgroup.procs")); !strings.Contains(procs, strconv.Itoa(info.Pid)) {
		t.Errorf("pause %d not in its cgroup: %q", info.Pid, procs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := d.runtime.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: id, Resources: &runtimeapi.LinuxContainerResources{CpuShares: 1024, MemoryLimitInBytes: 512 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cg("cpu", "cpu.shares"); got != "1024" {
		t.Errorf("after update, cpu.shares = %s", got)
	}
	if got := cg("memory", "memory.limit_in_bytes"); got != "536870912" {
		t.Errorf("after update, memory limit = %s", got)
	}
	_, err = d.runtime.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "nope"})
	wantCode(t, "update of an absent pod", err, codes.NotFound)
	d.stopPod(t, id)
	d.removePod(t, id)
	if dirs := cgroupDirs(parent); len(dirs) != 0 {
		t.Errorf("pod cgroup left: %v", dirs)
	}
	waitNoLeftovers(t, d, n, []int{info.Pid}, nil)
}
