package integration

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// withSecurity edits the container's security context.
func withSecurity(edit func(*runtimeapi.LinuxContainerSecurityContext)) func(*runtimeapi.ContainerConfig) {
	return func(c *runtimeapi.ContainerConfig) { edit(c.Linux.SecurityContext) }
}

// TestContainerUsers runs containers as every form of user the CRI and an image's USER
// can name, and checks the user of an exec'd process (id, /proc/self/status) and
// ContainerStatus.user.
func TestContainerUsers(t *testing.T) {
	e := newCtrEnv(t)
	predefined := testimages.CRIToolsPrefix + "test-image-predefined-group:latest"
	userImages := map[string]string{}
	for _, u := range []string{"uid", "username", "uid-group", "username-group"} {
		ref := testimages.CRIToolsPrefix + "test-image-user-" + u + ":latest"
		e.d.pull(t, ref)
		userImages[u] = ref
	}
	e.d.pull(t, predefined)
	cfg := testimages.BusyboxConfig()
	cfg.User = "www-data:mail"
	userImages["username-groupname"] = e.pushBusybox(t, "it/user-name-group:1", cfg)

	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	cases := []struct {
		name      string
		image     string
		sc        func(*runtimeapi.LinuxContainerSecurityContext)
		uid, gid  int64
		groups    []int64 // supplementary groups besides the primary one (which comes first)
		idContain string  // part of id's output
	}{
		{"default root", busyboxRef, nil, 0, 0, []int64{10}, "uid=0(root) gid=0(root)"},
		{"run_as_user", busyboxRef, func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.RunAsUser = i64(1234) }, 1234, 0, nil, "uid=1234 gid=0(root)"},
		{"run_as_user in passwd", busyboxRef, func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.RunAsUser = i64(33) }, 33, 33, nil, "uid=33(www-data) gid=33(www-data)"},
		{"run_as_username", busyboxRef, func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.RunAsUsername = "mail" }, 8, 8, nil, "uid=8(mail) gid=8(mail)"},
		{"run_as_user and run_as_group", busyboxRef, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUser, sc.RunAsGroup = i64(1234), i64(5678)
		}, 1234, 5678, nil, "uid=1234 gid=5678"},
		{"run_as_username and run_as_group", busyboxRef, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.RunAsUsername, sc.RunAsGroup = "www-data", i64(8)
		}, 33, 8, nil, "uid=33(www-data) gid=8(mail)"},
		{"image USER uid", userImages["uid"], nil, 1002, 0, nil, "uid=1002 gid=0(root)"},
		{"image USER name", userImages["username"], nil, 33, 33, nil, "uid=33(www-data) gid=33(www-data)"},
		{"image USER uid:gid", userImages["uid-group"], nil, 1003, 1004, nil, "uid=1003 gid=1004"},
		{"image USER name:gid", userImages["username-group"], nil, 33, 1004, nil, "uid=33(www-data) gid=1004"},
		{"image USER name:group", userImages["username-groupname"], nil, 33, 8, nil, "uid=33(www-data) gid=8(mail)"},
		{"run_as_user over image USER", userImages["username-group"], func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.RunAsUser = i64(8) }, 8, 8, nil, "uid=8(mail) gid=8(mail)"},
		{"supplemental groups Merge", predefined, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.SupplementalGroups = []int64{1234}
		}, 1000, 1000, []int64{50000, 1234}, "uid=1000(default-user) gid=1000(default-user)"},
		{"supplemental groups Strict", predefined, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.SupplementalGroups = []int64{1234}
			sc.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
		}, 1000, 1000, []int64{1234}, "uid=1000(default-user) gid=1000(default-user)"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := e.run(t, ctrConfig("user-"+strconv.Itoa(i), []string{"sleep", "1000"}, func(c *runtimeapi.ContainerConfig) {
				c.Image.Image = tc.image
				if tc.sc != nil {
					tc.sc(c.Linux.SecurityContext)
				}
			}))
			if out := e.exec(t, id, "id"); !strings.HasPrefix(out, tc.idContain) {
				t.Errorf("id = %q, want it to start with %q", out, tc.idContain)
			}
			uid, gid := strconv.FormatInt(tc.uid, 10), strconv.FormatInt(tc.gid, 10)
			if got := strings.Fields(e.procStatus(t, id, "Uid")); !slices.Equal(got, []string{uid, uid, uid, uid}) {
				t.Errorf("Uid: %q, want %s", got, uid)
			}
			if got := strings.Fields(e.procStatus(t, id, "Gid")); !slices.Equal(got, []string{gid, gid, gid, gid}) {
				t.Errorf("Gid: %q, want %s", got, gid)
			}
			// The primary group is a supplementary one too, as Docker and containerd
			// set them and as the conformance suite expects.
			groups := append([]int64{tc.gid}, tc.groups...)
			var want []string
			for _, g := range groups {
				want = append(want, strconv.FormatInt(g, 10))
			}
			got := strings.Fields(e.procStatus(t, id, "Groups"))
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Groups: %q, want %q", got, want)
			}
			u := e.status(t, id).GetUser().GetLinux()
			if u.GetUid() != tc.uid || u.GetGid() != tc.gid || !slices.Equal(u.GetSupplementalGroups(), groups) {
				t.Errorf("ContainerStatus.user = %v, want uid %d gid %d groups %v", u, tc.uid, tc.gid, groups)
			}
			e.remove(t, id)
		})
	}
}

// capMask reads a Cap* line of a /proc/<pid>/status file.
func capMask(t *testing.T, v string) uint64 {
	t.Helper()
	m, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		t.Fatalf("capability mask %q: %v", v, err)
	}
	return m
}

// defaultCapMask is containerd's default capability set: CHOWN, DAC_OVERRIDE, FOWNER,
// FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD,
// AUDIT_WRITE, SETFCAP.
const defaultCapMask = 0xa80425fb

const capNetAdmin = 12

// TestContainerSecurity: read-only root filesystem, capabilities (default, added,
// dropped, privileged), seccomp RuntimeDefault, no_new_privs and masked paths.
func TestContainerSecurity(t *testing.T) {
	e := newCtrEnv(t, func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
	})
	berthdEff := uint64(0)
	for _, l := range strings.Split(readFile(t, fmt.Sprintf("/proc/%d/status", e.d.cmd.Process.Pid)), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			berthdEff = capMask(t, strings.TrimSpace(v))
		}
	}
	run := func(t *testing.T, name string, sc func(*runtimeapi.LinuxContainerSecurityContext)) string {
		t.Helper()
		id := e.run(t, ctrConfig(name, []string{"sleep", "1000"}, withSecurity(sc)))
		e.removeAtEnd(t, id)
		return id
	}

	t.Run("read-only rootfs", func(t *testing.T) {
		id := run(t, "readonly", func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.ReadonlyRootfs = true })
		if resp, err := e.execErr(t, id, 0, "touch", "/written"); err != nil || resp.ExitCode == 0 {
			t.Errorf("a write to a read-only root filesystem: %v %v", resp, err)
		} else if !strings.Contains(string(resp.Stderr), "Read-only file system") {
			t.Errorf("touch failed with %q, want EROFS", resp.Stderr)
		}
		e.exec(t, id, "touch", "/dev/shm/written") // the pod's shm stays writable
		rw := run(t, "readwrite", func(*runtimeapi.LinuxContainerSecurityContext) {})
		e.exec(t, rw, "touch", "/written")
	})

	t.Run("capabilities", func(t *testing.T) {
		cases := []struct {
			name string
			sc   func(*runtimeapi.LinuxContainerSecurityContext)
			want uint64
		}{
			{"default", func(*runtimeapi.LinuxContainerSecurityContext) {}, defaultCapMask},
			{"add NET_ADMIN", func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}}
			}, defaultCapMask | 1<<capNetAdmin},
			{"drop ALL", func(sc *runtimeapi.LinuxContainerSecurityContext) {
				sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
			}, 0},
			{"privileged", func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.Privileged = true }, berthdEff},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := run(t, "caps-"+strconv.Itoa(i), tc.sc)
				if got := capMask(t, e.procStatus(t, id, "CapEff")); got != tc.want {
					t.Errorf("CapEff = %016x, want %016x", got, tc.want)
				}
			})
		}
	})

	t.Run("seccomp", func(t *testing.T) {
		// unshare(CLONE_NEWUSER) needs no capability; moby's default profile allows
		// unshare only to holders of CAP_SYS_ADMIN.
		confined := run(t, "seccomp-default", func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		})
		if mode := e.procStatus(t, confined, "Seccomp"); mode != "2" {
			t.Errorf("Seccomp mode under RuntimeDefault = %s, want 2 (filter)", mode)
		}
		if resp, err := e.execErr(t, confined, 0, "unshare", "-U", "true"); err != nil || resp.ExitCode == 0 {
			t.Errorf("unshare -U under RuntimeDefault: %v %v, want a failure", resp, err)
		}
		free := run(t, "seccomp-unconfined", func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
		})
		if mode := e.procStatus(t, free, "Seccomp"); mode != "0" {
			t.Errorf("Seccomp mode when Unconfined = %s, want 0", mode)
		}
		if resp, err := e.execErr(t, free, 0, "unshare", "-U", "true"); err != nil || resp.ExitCode != 0 {
			t.Errorf("unshare -U when Unconfined: %v %v, want success", resp, err)
		}
	})

	t.Run("no_new_privs", func(t *testing.T) {
		for _, on := range []bool{true, false} {
			id := run(t, "nnp-"+strconv.FormatBool(on), func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.NoNewPrivs = on })
			want := map[bool]string{true: "1", false: "0"}[on]
			if got := e.procStatus(t, id, "NoNewPrivs"); got != want {
				t.Errorf("no_new_privs %v: NoNewPrivs = %s, want %s", on, got, want)
			}
		}
	})

	t.Run("masked paths", func(t *testing.T) {
		// /proc/kcore where the kernel has one, else another masked file of the
		// defaults that root can read on the host.
		path := ""
		for _, p := range []string{"/proc/kcore", "/proc/timer_list"} {
			if f, err := os.Open(p); err == nil {
				n, _ := f.Read(make([]byte, 16))
				f.Close()
				if n > 0 {
					path = p
					break
				}
			}
		}
		if path == "" {
			t.Skip("neither /proc/kcore nor /proc/timer_list is readable on this node")
		}
		cases := []struct {
			name   string
			sc     func(*runtimeapi.LinuxContainerSecurityContext)
			masked bool
		}{
			{"defaults", func(*runtimeapi.LinuxContainerSecurityContext) {}, true},
			{"explicit", func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.MaskedPaths = []string{path, "/proc/keys"} }, true},
			{"privileged", func(sc *runtimeapi.LinuxContainerSecurityContext) { sc.Privileged = true }, false},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := run(t, "masked-"+strconv.Itoa(i), tc.sc)
				out := strings.TrimSpace(e.exec(t, id, "sh", "-c", "head -c 16 "+path+" 2>/dev/null | wc -c"))
				if masked := out == "0"; masked != tc.masked {
					t.Errorf("%s bytes read from %s, want it masked: %v", out, path, tc.masked)
				}
			})
		}
	})
}
