package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withMounts adds CRI mounts to the container.
func withMounts(ms ...*runtimeapi.Mount) func(*runtimeapi.ContainerConfig) {
	return func(c *runtimeapi.ContainerConfig) { c.Mounts = append(c.Mounts, ms...) }
}

// TestContainerMounts: host directories bound read-write and read-only, a mount made on
// the host after the start that reaches the container through host-to-container
// propagation, and the pod's hostname, hosts, resolv.conf and shm.
func TestContainerMounts(t *testing.T) {
	e := newCtrEnv(t)
	rwDir, roDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(roDir, "given"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	propDir := sharedBindMount(t)
	if err := os.Mkdir(filepath.Join(propDir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	id := e.run(t, ctrConfig("mounts", []string{"sleep", "1000"}, withMounts(
		&runtimeapi.Mount{ContainerPath: "/mnt/rw", HostPath: rwDir},
		&runtimeapi.Mount{ContainerPath: "/mnt/ro", HostPath: roDir, Readonly: true},
		&runtimeapi.Mount{ContainerPath: "/mnt/prop", HostPath: propDir, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	)))
	e.removeAtEnd(t, id)

	t.Run("read-write", func(t *testing.T) {
		e.exec(t, id, "sh", "-c", "echo from the container > /mnt/rw/made")
		if got := readFile(t, filepath.Join(rwDir, "made")); got != "from the container\n" {
			t.Errorf("the host reads %q", got)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		if got := e.exec(t, id, "cat", "/mnt/ro/given"); got != "from the host\n" {
			t.Errorf("the container reads %q", got)
		}
		resp, err := e.execErr(t, id, 0, "touch", "/mnt/ro/made")
		if err != nil || resp.ExitCode == 0 || !strings.Contains(string(resp.Stderr), "Read-only file system") {
			t.Errorf("a write to a read-only mount: %v %v, want EROFS", resp, err)
		}
		if _, err := os.Stat(filepath.Join(roDir, "made")); err == nil {
			t.Error("the write reached the host")
		}
	})
	t.Run("host-to-container propagation", func(t *testing.T) {
		sub := filepath.Join(propDir, "sub")
		if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unmount(t, sub) })
		if err := os.WriteFile(filepath.Join(sub, "late"), []byte("mounted later\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var out string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err := e.execErr(t, id, 0, "cat", "/mnt/prop/sub/late")
			if err == nil && resp.ExitCode == 0 {
				out = string(resp.Stdout)
				break
			}
		}
		if out != "mounted later\n" {
			t.Errorf("the container does not see the host's later mount: %q\n%s", out, e.exec(t, id, "cat", "/proc/self/mountinfo"))
		}
	})
	t.Run("pod files", func(t *testing.T) {
		_, info := e.d.podStatus(t, e.pod)
		for file, ctr := range map[string]string{"hostname": "/etc/hostname", "hosts": "/etc/hosts", "resolv.conf": "/etc/resolv.conf"} {
			if got, want := e.exec(t, id, "cat", ctr), readFile(t, filepath.Join(info.PodDir, file)); got != want {
				t.Errorf("%s = %q, want the pod's %q", ctr, got, want)
			}
		}
		if got := e.exec(t, id, "hostname"); got != e.podCfg.Hostname+"\n" {
			t.Errorf("hostname = %q, want %q", got, e.podCfg.Hostname)
		}
		e.exec(t, id, "sh", "-c", "echo shared > /dev/shm/probe")
		if info.Shm == "" {
			t.Fatal("the pod reports no shm")
		}
		if got := readFile(t, filepath.Join(info.Shm, "probe")); got != "shared\n" {
			t.Errorf("the pod's shm holds %q", got)
		}
	})
}

// sharedBindMount makes a test directory an rshared bind mount of itself; it is
// unmounted when the test ends.
func sharedBindMount(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(t, dir) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unmount unmounts path, lazily if it is busy.
func unmount(t *testing.T, path string) {
	if err := unix.Unmount(path, 0); err != nil {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", path, err)
		}
	}
}

// TestContainerOOMKilled: a container that allocates past its memory limit is killed
// by the kernel and reports OOMKilled with 137.
func TestContainerOOMKilled(t *testing.T) {
	e := newCtrEnv(t)
	id := e.run(t, ctrConfig("oom", sh(`x=$(head -c 64000000 /dev/zero | tr "\0" x); echo $x | wc -c`), func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20, MemorySwapLimitInBytes: 16 << 20}
	}))
	st := e.waitExited(t, id, time.Minute)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("exit: reason %q code %d message %q, want OOMKilled 137", st.Reason, st.ExitCode, st.Message)
	}
	e.remove(t, id)
}

// TestContainerUpdateResources: a new memory limit is applied to the container's cgroup
// and reported by ContainerStatus.
func TestContainerUpdateResources(t *testing.T) {
	e := newCtrEnv(t)
	id := e.run(t, ctrConfig("update", []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	}))
	e.removeAtEnd(t, id)
	limitFile := filepath.Join("/sys/fs/cgroup/memory/berth", id, "memory.limit_in_bytes")
	if got := strings.TrimSpace(readFile(t, limitFile)); got != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes before the update = %s, want %d", got, 64<<20)
	}
	if r := e.status(t, id).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 64<<20 {
		t.Errorf("resources before the update = %v", r)
	}
	upd := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuShares: 512}
	if _, err := e.d.runtime.UpdateContainerResources(ctxTimeout(t, time.Minute), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: upd}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	if got := strings.TrimSpace(readFile(t, limitFile)); got != strconv.Itoa(96<<20) {
		t.Errorf("memory.limit_in_bytes after the update = %s, want %d", got, 96<<20)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join("/sys/fs/cgroup/cpu/berth", id, "cpu.shares"))); got != "512" {
		t.Errorf("cpu.shares after the update = %s, want 512", got)
	}
	if r := e.status(t, id).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 96<<20 || r.GetCpuShares() != 512 {
		t.Errorf("resources after the update = %s", protojson.Format(r))
	}
}
