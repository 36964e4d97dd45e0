package integration

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network/cnitest"
)

// TestPodLifecycle runs a pod that shares one PID namespace (so it has a pause), reads
// its status and lists it every way, stops and removes it twice, and checks that
// nothing is left.
func TestPodLifecycle(t *testing.T) {
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	ctx := ctxTimeout(t, time.Minute)
	cfg := podConfig(t, "web", func(c *runtimeapi.PodSandboxConfig) {
		c.Labels = map[string]string{"app": "web", "tier": "front"}
		c.Annotations = map[string]string{"note": "kept as is"}
	})
	id := d.runPod(t, cfg)
	d.cleanupPods(t, id)

	st, info := d.podStatus(t, id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Id != id || st.CreatedAt <= 0 {
		t.Fatalf("status = %v", st)
	}
	if st.Metadata.Name != "web" || st.Labels["tier"] != "front" || st.Annotations["note"] != "kept as is" || st.RuntimeHandler != "runc" {
		t.Errorf("status does not echo the config: %v", st)
	}
	if ip := st.GetNetwork().GetIp(); ip == "" || !slices.Contains(cnitest.Allocated(t, n.dataDir, n.name), ip) {
		t.Errorf("pod ip %q, host-local holds %v", ip, cnitest.Allocated(t, n.dataDir, n.name))
	}
	if o := st.Linux.Namespaces.Options; o.Network != runtimeapi.NamespaceMode_POD || o.Pid != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespace options = %v", o)
	}
	if info.Pid <= 0 || !alive(info.Pid) || info.NetNS == "" || info.Shm == "" {
		t.Fatalf("verbose info = %+v", info)
	}
	for _, ns := range []string{info.NetNS, info.IPCNS, info.UTSNS} {
		if ok, err := nspin.IsPinned(ns); !ok {
			t.Errorf("namespace %s not pinned: %v", ns, err)
		}
	}
	// pause is PID 1 of the pod's own PID namespace and in its network namespace.
	if same(t, "/proc/self/ns/pid", "/proc/"+strconv.Itoa(info.Pid)+"/ns/pid") || !same(t, info.NetNS, "/proc/"+strconv.Itoa(info.Pid)+"/ns/net") {
		t.Error("pause is not in the pod's namespaces")
	}

	ready := runtimeapi.PodSandboxState_SANDBOX_READY
	for name, f := range map[string]*runtimeapi.PodSandboxFilter{
		"all":        nil,
		"id":         {Id: id},
		"id prefix":  {Id: id[:12]},
		"state":      {State: &runtimeapi.PodSandboxStateValue{State: ready}},
		"labels":     {LabelSelector: map[string]string{"app": "web"}},
		"everything": {Id: id[:5], State: &runtimeapi.PodSandboxStateValue{State: ready}, LabelSelector: map[string]string{"app": "web", "tier": "front"}},
	} {
		if pods := d.listPods(t, f); len(pods) != 1 || pods[0].Id != id || pods[0].Labels["app"] != "web" {
			t.Errorf("list by %s = %v", name, pods)
		}
	}
	for name, f := range map[string]*runtimeapi.PodSandboxFilter{
		"other id":    {Id: "0000"},
		"not ready":   {State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}},
		"other label": {LabelSelector: map[string]string{"app": "db"}},
	} {
		if pods := d.listPods(t, f); len(pods) != 0 {
			t.Errorf("list by %s = %v, want none", name, pods)
		}
	}

	for range 2 {
		d.stopPod(t, id)
		if st, _ := d.podStatus(t, id); st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Fatalf("after stop: %v", st.State)
		}
	}
	if ips := cnitest.Allocated(t, n.dataDir, n.name); len(ips) != 0 {
		t.Errorf("addresses still allocated after stop: %v", ips)
	}
	for range 2 {
		d.removePod(t, id)
	}
	_, err := d.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	wantCode(t, "status of a removed pod", err, codes.NotFound)
	_, err = d.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	wantCode(t, "stop of a removed pod", err, codes.OK)
	waitNoLeftovers(t, d, n, []int{info.Pid}, []string{id})
}

// TestHostNetworkPod: no CNI, no network namespace, the node's hosts and resolv.conf, and
// a pause in the node's network namespace.
func TestHostNetworkPod(t *testing.T) {
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	id := d.runPod(t, podConfig(t, "hostnet", withNamespaces(runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_POD)))
	d.cleanupPods(t, id)
	st, info := d.podStatus(t, id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Network.GetIp() != "" || info.NetNS != "" || info.UTSNS != "" {
		t.Fatalf("host-network pod: status %v, info %+v", st, info)
	}
	if len(cnitest.Allocated(t, n.dataDir, n.name)) != 0 || len(cnitest.BridgePorts(t, n.bridge)) != 0 {
		t.Error("a host-network pod was attached to the CNI network")
	}
	if !same(t, "/proc/self/ns/net", "/proc/"+strconv.Itoa(info.Pid)+"/ns/net") {
		t.Error("pause is not in the node's network namespace")
	}
	for file, node := range map[string]string{"hosts": "/etc/hosts", "resolv.conf": "/etc/resolv.conf"} {
		if got, want := readFile(t, info.PodDir+"/"+file), readFile(t, node); got != want {
			t.Errorf("%s = %q, want the node's %q", file, got, want)
		}
	}
	host, _ := os.Hostname()
	if got := readFile(t, info.PodDir+"/hostname"); got != host+"\n" {
		t.Errorf("hostname file %q, want the node's %q", got, host)
	}
	d.stopPod(t, id)
	d.removePod(t, id)
	waitNoLeftovers(t, d, n, []int{info.Pid}, []string{id})
}

// TestPodIdentity: hostname in the pod's UTS namespace, DNS settings in resolv.conf, the
// pod's address in hosts, and a pod without pause (PID per container).
func TestPodIdentity(t *testing.T) {
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	id := d.runPod(t, podConfig(t, "named", withNamespaces(runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD),
		func(c *runtimeapi.PodSandboxConfig) {
			c.Hostname = "named-host"
			c.DnsConfig = &runtimeapi.DNSConfig{
				Servers: []string{"10.96.0.10", "fd00::a"}, Searches: []string{"it.svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5", "edns0"},
			}
		}))
	d.cleanupPods(t, id)
	st, info := d.podStatus(t, id)
	if info.Pid != 0 {
		t.Errorf("a pod without a shared PID namespace got a pause (pid %d)", info.Pid)
	}
	var uts unix.Utsname
	if err := nspin.Run(info.UTSNS, nspin.UTS, func() error { return unix.Uname(&uts) }); err != nil {
		t.Fatal(err)
	}
	if got := unix.ByteSliceToString(uts.Nodename[:]); got != "named-host" {
		t.Errorf("hostname in the pod's UTS namespace = %q", got)
	}
	resolv := readFile(t, info.PodDir+"/resolv.conf")
	for _, line := range []string{"search it.svc.cluster.local cluster.local\n", "nameserver 10.96.0.10\n", "nameserver fd00::a\n", "options ndots:5 edns0\n"} {
		if !strings.Contains(resolv, line) {
			t.Errorf("resolv.conf lacks %q:\n%s", line, resolv)
		}
	}
	if hosts := readFile(t, info.PodDir+"/hosts"); !strings.Contains(hosts, st.Network.Ip+"\tnamed-host\n") {
		t.Errorf("hosts lacks the pod's address:\n%s", hosts)
	}
	d.stopPod(t, id)
	d.removePod(t, id)
	waitNoLeftovers(t, d, n, nil, []string{id})
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// same reports whether two namespace files are the same namespace.
func same(t testing.TB, a, b string) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
