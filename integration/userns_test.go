package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/sandbox/runtime"
)

// usernsBase is the first host id of the test pods' user namespace: far above the ids
// of real users, 65536 long as kubelet allocates them.
const (
	usernsBase = 2_000_000
	usernsSize = 65536
)

// withUserns gives the pod a user namespace mapping 0..usernsSize-1 to usernsBase...
func withUserns(c *runtimeapi.PodSandboxConfig) {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: usernsBase, Length: usernsSize}}
	if c.Linux.SecurityContext == nil {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{}
	}
	if c.Linux.SecurityContext.NamespaceOptions == nil {
		c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{}
	}
	c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{
		Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m,
	}
}

// usernsSupported reports whether the test's runc can run user-namespaced pods, as
// berthd decides it (`runc features`).
func usernsSupported(t *testing.T) (bool, string) {
	t.Helper()
	rt := testRunc(t)
	f, err := runtime.Probe(context.Background(), rt)
	if err != nil {
		t.Fatalf("probe %s: %v", rt, err)
	}
	return f.UserNamespaces, rt
}

// TestUserNamespaceStatus: with a runc that cannot do idmapped mounts
// (Debian's 1.1.5), Status does not advertise user namespaces and a user-namespaced pod
// is refused with FailedPrecondition, leaving nothing behind. With a runc that can, Status
// advertises them.
func TestUserNamespaceStatus(t *testing.T) {
	ok, rt := usernsSupported(t)
	n := newTestNetwork(t)
	d := startPodDaemon(t, n, "")
	resp, err := d.runtime.Status(ctxTimeout(t, 10*time.Second), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var advertised bool
	for _, h := range resp.GetRuntimeHandlers() {
		if h.GetName() == "runc" || h.GetName() == "" {
			advertised = advertised || h.GetFeatures().GetUserNamespaces()
		}
	}
	if advertised != ok {
		t.Fatalf("Status advertises user namespaces: %v; %s can run them: %v", advertised, rt, ok)
	}
	if ok {
		return
	}
	_, err = d.runtime.RunPodSandbox(ctxTimeout(t, time.Minute), &runtimeapi.RunPodSandboxRequest{Config: podConfig(t, "userns", withUserns)})
	wantCode(t, "RunPodSandbox of a user-namespaced pod", err, codes.FailedPrecondition)
	if pods := d.listPods(t, nil); len(pods) != 0 {
		t.Errorf("a refused pod is listed: %v", pods)
	}
}

// TestUserNamespacePod: a pod in a user namespace. Its container's root is an
// unprivileged uid outside; the image's files, the pod's files and /dev/shm belong to
// root inside; what it writes to a host directory belongs to the mapped ids on the host,
// or, through an idmapped mount, to the ids it has inside. ExecSync and stats work, and
// the pod's pause shares the namespace.
func TestUserNamespacePod(t *testing.T) {
	if ok, rt := usernsSupported(t); !ok {
		t.Skipf("%s cannot do idmapped mounts (runc >= 1.2 can): user-namespaced pods are refused (TestUserNamespaceStatus)", rt)
	}
	e := newCtrEnv(t, withUserns)
	plain, mapped := t.TempDir(), t.TempDir()
	if err := os.Chmod(plain, 0o777); err != nil { // the pod's root is no one on the host
		t.Fatal(err)
	}
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: usernsBase, Length: usernsSize}}
	id := e.run(t, ctrConfig("userns", []string{"sleep", "1000"}, withMounts(
		&runtimeapi.Mount{ContainerPath: "/mnt/plain", HostPath: plain},
		&runtimeapi.Mount{ContainerPath: "/mnt/mapped", HostPath: mapped, UidMappings: ids, GidMappings: ids},
	))) // removed with the pod (the pod's cleanup outlives a restart of berthd; removeAtEnd does not)
	want := fmt.Sprintf("0 %d %d", usernsBase, usernsSize)

	t.Run("root inside, unprivileged outside", func(t *testing.T) {
		if got := strings.Join(strings.Fields(e.exec(t, id, "cat", "/proc/self/uid_map")), " "); got != want {
			t.Errorf("uid_map inside %q, want %q", got, want)
		}
		if got := e.exec(t, id, "id", "-u"); got != "0\n" {
			t.Errorf("id -u inside: %q", got)
		}
		pid := e.info(t, id).Pid
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		wantUID := fmt.Sprintf("%d\t%d\t%d\t%d", usernsBase, usernsBase, usernsBase, usernsBase)
		if !strings.Contains(string(status), "Uid:\t"+wantUID+"\n") {
			t.Errorf("the container's process on the host:\n%s", status)
		}
		// pid 1 is the pod's pause, in the same user namespace as the overflow id.
		if got := e.procField(t, id, "/proc/1/status", "Uid"); !strings.HasPrefix(got, "65535\t") {
			t.Errorf("pause's uid inside: %q", got)
		}
	})
	t.Run("files inside belong to root", func(t *testing.T) {
		for _, p := range []string{"/etc/passwd", "/", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/dev/shm"} {
			if got := e.exec(t, id, "stat", "-c", "%u:%g", p); got != "0:0\n" {
				t.Errorf("%s is owned by %q inside", p, got)
			}
		}
		e.exec(t, id, "sh", "-c", "echo x > /new && echo y > /dev/shm/y && echo z >> /etc/hosts")
	})
	t.Run("host directory", func(t *testing.T) {
		e.exec(t, id, "touch", "/mnt/plain/made")
		if uid, gid := ownerOf(t, filepath.Join(plain, "made")); uid != usernsBase || gid != usernsBase {
			t.Errorf("a file the container's root made is owned by %d:%d on the host, want %d:%d", uid, gid, usernsBase, usernsBase)
		}
	})
	t.Run("idmapped host directory", func(t *testing.T) {
		if got := e.exec(t, id, "stat", "-c", "%u:%g", "/mnt/mapped"); got != "0:0\n" {
			t.Errorf("the idmapped directory is owned by %q inside", got)
		}
		e.exec(t, id, "touch", "/mnt/mapped/made")
		if uid, gid := ownerOf(t, filepath.Join(mapped, "made")); uid != 0 || gid != 0 {
			t.Errorf("a file made through the idmapped mount is owned by %d:%d on the host, want 0:0", uid, gid)
		}
	})
	t.Run("stats", func(t *testing.T) {
		resp, err := e.d.runtime.ContainerStats(ctxTimeout(t, 10*time.Second), &runtimeapi.ContainerStatsRequest{ContainerId: id})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStats().GetMemory().GetWorkingSetBytes() == nil || resp.GetStats().GetCpu() == nil {
			t.Errorf("stats without memory or CPU: %v", resp.GetStats())
		}
	})
	t.Run("pod without pause (PID namespace per container)", func(t *testing.T) {
		e2 := *e
		e2.podCfg = podConfig(t, "userns-nopause", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = e.logDir },
			withNamespaces(runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD), withUserns)
		e2.pod = e.d.runPod(t, e2.podCfg)
		defer e.d.removePod(t, e2.pod)
		c := e2.run(t, ctrConfig("nopause", []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
		}))
		if got := strings.Join(strings.Fields(e2.exec(t, c, "cat", "/proc/self/uid_map")), " "); got != want {
			t.Errorf("uid_map inside %q, want %q", got, want)
		}
		if got := e2.procField(t, c, "/proc/1/status", "Uid"); !strings.HasPrefix(got, "0\t") {
			t.Errorf("pid 1 (the container's sleep) has uid %q inside", got)
		}
	})
	top := t // the restarted berthd serves the subtests after this one too
	t.Run("after a restart of berthd", func(t *testing.T) {
		e.d.stop()
		d2 := startDaemon(top, daemonOptions{Dir: e.d.dir, Config: e.config})
		d2.cleanupPods(top, e.pod)
		e.d = d2
		if got := strings.Join(strings.Fields(e.exec(t, id, "cat", "/proc/self/uid_map")), " "); got != want {
			t.Errorf("uid_map of an exec after the restart %q, want %q", got, want)
		}
		late := e.run(t, ctrConfig("late", []string{"sleep", "1000"}))
		e.removeAtEnd(t, late)
		if got := strings.Join(strings.Fields(e.exec(t, late, "cat", "/proc/self/uid_map")), " "); got != want {
			t.Errorf("uid_map of a container made after the restart %q, want %q", got, want)
		}
	})
	t.Run("nothing left", func(t *testing.T) {
		e.d.removePod(t, e.pod)
		waitNoLeftovers(t, e.d, e.n, nil, []string{e.pod})
	})
}

// procField is a field of a /proc/<pid>/status file read inside container id.
func (e *ctrEnv) procField(t *testing.T, id, file, field string) string {
	t.Helper()
	for _, l := range strings.Split(e.exec(t, id, "cat", file), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in %s", field, file)
	return ""
}

func ownerOf(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}
