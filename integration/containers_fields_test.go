package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// mknodNull makes a character device with /dev/null's numbers (1, 3) at path.
func mknodNull(t *testing.T, path string, minor uint32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(path, unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
		t.Fatal(err)
	}
}

// TestContainerDevices: CDI devices (by field and by annotation) from a spec in a
// temporary spec directory, a host device directory, and the errors for unknown and
// malformed CDI names.
func TestContainerDevices(t *testing.T) {
	specDir, hostDir := t.TempDir(), t.TempDir()
	e := newCtrEnvConfig(t, fmt.Sprintf("\n[cdi]\nspec_dirs = [%q]\n", specDir))
	// The spec appears after berthd started: every create rescans the directories.
	mknodNull(t, filepath.Join(hostDir, "null0"), 3)
	mknodNull(t, filepath.Join(hostDir, "null1"), 3)
	spec := fmt.Sprintf(`{"cdiVersion":"0.6.0","kind":"berth.test/null","devices":[
		{"name":"null0","containerEdits":{"deviceNodes":[{"path":"/dev/berth-null0","hostPath":%q}]}},
		{"name":"null1","containerEdits":{"deviceNodes":[{"path":"/dev/berth-null1","hostPath":%q}],"env":["BERTH_NULL1=yes"]}}
	],"containerEdits":{"env":["BERTH_CDI=1"]}}`, filepath.Join(hostDir, "null0"), filepath.Join(hostDir, "null1"))
	if err := os.WriteFile(filepath.Join(specDir, "berth-test.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("CDI devices", func(t *testing.T) {
		id := e.run(t, ctrConfig("cdi", []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
			c.CDIDevices = []*runtimeapi.CDIDevice{{Name: "berth.test/null=null0"}}
			c.Annotations = map[string]string{"cdi.k8s.io/berth-test": "berth.test/null=null1"}
		}))
		e.removeAtEnd(t, id)
		out := e.exec(t, id, "sh", "-c", `for d in /dev/berth-null0 /dev/berth-null1; do test -c $d && echo written > $d && head -c 1 $d | wc -c; done; echo $BERTH_CDI $BERTH_NULL1`)
		if got := strings.Fields(out); strings.Join(got, " ") != "0 0 1 yes" {
			t.Errorf("in the container: %q, want two readable, writable null devices and the spec's environment", out)
		}
	})
	t.Run("host device directory", func(t *testing.T) {
		dir := filepath.Join(hostDir, "dir")
		mknodNull(t, filepath.Join(dir, "null"), 3)
		mknodNull(t, filepath.Join(dir, "sub", "zero"), 5)
		id := e.run(t, ctrConfig("devdir", []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
			c.Devices = []*runtimeapi.Device{{HostPath: dir, ContainerPath: "/dev/berthdir", Permissions: "rw"}}
		}))
		e.removeAtEnd(t, id)
		out := e.exec(t, id, "sh", "-c", "test -c /dev/berthdir/null && head -c 4 /dev/berthdir/sub/zero | wc -c")
		if strings.TrimSpace(out) != "4" {
			t.Errorf("reading the directory's zero device: %q", out)
		}
	})
	for _, tc := range []struct {
		name   string
		device string
		code   codes.Code
	}{
		{"unknown CDI device", "berth.test/null=nope", codes.NotFound},
		{"unknown CDI vendor", "nobody.test/null=null0", codes.NotFound},
		{"malformed CDI name", "null0", codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.createErr(t, ctrConfig("bad-cdi", []string{"sleep", "1"}, func(c *runtimeapi.ContainerConfig) {
				c.CDIDevices = []*runtimeapi.CDIDevice{{Name: tc.device}}
			}))
			if status.Code(err) != tc.code {
				t.Fatalf("create with CDI device %q: %v, want %v", tc.device, err, tc.code)
			}
		})
	}
}

// TestContainerAmbientCapabilities: a non-root process keeps an ambient capability.
func TestContainerAmbientCapabilities(t *testing.T) {
	e := newCtrEnv(t)
	id := e.run(t, ctrConfig("ambient", []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
		sc := c.Linux.SecurityContext
		sc.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
		sc.Capabilities = &runtimeapi.Capability{AddAmbientCapabilities: []string{"NET_BIND_SERVICE"}}
	}))
	e.removeAtEnd(t, id)
	const netBindService = "0000000000000400" // bit 10
	for _, field := range []string{"CapAmb", "CapEff", "CapInh"} {
		if got := e.procStatus(t, id, field); got != netBindService {
			t.Errorf("%s = %s, want %s (CAP_NET_BIND_SERVICE)", field, got, netBindService)
		}
	}
}

// TestContainerMountSources: a missing host path is refused, a symbolic link is bound
// as its target, and mount_options reach the mount.
func TestContainerMountSources(t *testing.T) {
	e := newCtrEnv(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	t.Run("missing source", func(t *testing.T) {
		_, err := e.createErr(t, ctrConfig("missing", []string{"sleep", "1"}, withMounts(
			&runtimeapi.Mount{ContainerPath: "/mnt", HostPath: filepath.Join(dir, "missing")})))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("create: %v, want InvalidArgument saying the host path does not exist", err)
		}
	})
	t.Run("symlink and mount options", func(t *testing.T) {
		id := e.run(t, ctrConfig("linked", []string{"sleep", "1000"}, withMounts(
			&runtimeapi.Mount{ContainerPath: "/mnt/exec", HostPath: filepath.Join(dir, "link")},
			&runtimeapi.Mount{ContainerPath: "/mnt/noexec", HostPath: filepath.Join(dir, "link"), MountOptions: []string{"noexec", "nosuid", "nodev"}},
		)))
		e.removeAtEnd(t, id)
		if got := e.exec(t, id, "/mnt/exec/run.sh"); got != "ran\n" {
			t.Errorf("the script through the symlinked mount: %q", got)
		}
		// The exec itself fails (runc: permission denied), or the shell reports it.
		if resp, err := e.execErr(t, id, 0, "/mnt/noexec/run.sh"); err == nil && resp.ExitCode == 0 {
			t.Errorf("the script on the noexec mount ran: %q", resp.Stdout)
		}
		mounts := e.exec(t, id, "cat", "/proc/self/mounts")
		for _, l := range strings.Split(mounts, "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[1] == "/mnt/noexec" {
				for _, o := range []string{"noexec", "nosuid", "nodev"} {
					if !strings.Contains(","+f[3]+",", ","+o+",") {
						t.Errorf("/mnt/noexec options %s lack %s", f[3], o)
					}
				}
				return
			}
		}
		t.Errorf("no /mnt/noexec in\n%s", mounts)
	})
}

// TestContainerPrivateDirs: the directories that hold a pod's and a container's files
// (shm, bundle, root filesystem, writable layer) are root's alone, and their parents
// cannot be listed by host users.
func TestContainerPrivateDirs(t *testing.T) {
	e := newCtrEnv(t)
	id := e.run(t, ctrConfig("private", []string{"sleep", "1000"}))
	e.removeAtEnd(t, id)
	state := filepath.Join(e.d.dir, "state")
	for dir, forbidden := range map[string]os.FileMode{
		filepath.Join(state, "pods"):           0o066,
		filepath.Join(state, "pods", e.pod):    0o077,
		filepath.Join(state, "containers"):     0o066,
		filepath.Join(state, "containers", id): 0o077,
		filepath.Join(e.d.root(), "rw"):        0o077,
		filepath.Join(e.d.root(), "rw", id):    0o077,
	} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if mode := fi.Mode().Perm(); mode&forbidden != 0 {
			t.Errorf("%s has mode %04o: host users can reach container files", dir, mode)
		}
	}
}

// TestPauseSecurityContext: the pod's run_as_user, run_as_group and seccomp profile
// reach its pause process.
func TestPauseSecurityContext(t *testing.T) {
	n := newTestNetwork(t)
	d := startDaemon(t, daemonOptions{Config: n.toml()})
	cfg := podConfig(t, "pause-security", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			RunAsUser:  &runtimeapi.Int64Value{Value: 1234},
			RunAsGroup: &runtimeapi.Int64Value{Value: 5678},
			Seccomp:    &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}
	})
	id := d.runPod(t, cfg)
	d.cleanupPods(t, id)
	_, info := d.podStatus(t, id)
	if info.Pid <= 0 {
		t.Fatalf("no pause: %+v", info)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Uid": "1234", "Gid": "5678", "Seccomp": "2"}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(l, ":")
		if w, ok := want[k]; ok {
			if f := strings.Fields(v); len(f) == 0 || f[0] != w {
				t.Errorf("pause %s: %q, want %s", k, strings.TrimSpace(v), w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("no %v in pause's status", want)
	}
}

// TestPinnedImages: an image named in image.pinned_images is reported pinned, the
// others not.
func TestPinnedImages(t *testing.T) {
	_, imgs := testCatalogue(t)
	reg := serveRegistry(t, imgs...)
	d := startDaemon(t, daemonOptions{Config: reg.MirrorTOML() + fmt.Sprintf("\n[image]\npinned_images = [%q]\n", testimages.PauseImage)})
	d.pull(t, testimages.PauseImage)
	d.pull(t, busyboxRef)
	for ref, want := range map[string]bool{testimages.PauseImage: true, busyboxRef: false} {
		if got := d.status(t, ref).GetPinned(); got != want {
			t.Errorf("ImageStatus(%s).pinned = %v, want %v", ref, got, want)
		}
	}
	for _, img := range d.list(t, "") {
		want := slices.Contains(img.RepoTags, testimages.PauseImage)
		if img.Pinned != want {
			t.Errorf("ListImages: %v pinned %v, want %v", img.RepoTags, img.Pinned, want)
		}
	}
}

// TestContainerStopSignalReported: ContainerStatus names the signal StopContainer sends.
func TestContainerStopSignalReported(t *testing.T) {
	e := newCtrEnv(t)
	for _, tc := range []struct {
		name string
		set  runtimeapi.Signal
		want runtimeapi.Signal
	}{
		{"default", runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, runtimeapi.Signal_SIGNAL_SIGTERM},
		{"from the config", runtimeapi.Signal_SIGNAL_SIGQUIT, runtimeapi.Signal_SIGNAL_SIGQUIT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.create(t, ctrConfig("signal-"+strings.ToLower(tc.set.String()[7:]), []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
				c.StopSignal = tc.set
			}))
			e.removeAtEnd(t, id)
			if got := e.status(t, id).GetStopSignal(); got != tc.want {
				t.Errorf("stop_signal = %v, want %v", got, tc.want)
			}
		})
	}
}
