package nspin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ownerOf returns the inode of the user namespace that owns the namespace at path.
func ownerOf(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestPinUser(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "ns")
	ids := []IDMap{{ContainerID: 0, HostID: 200000, Size: 65536}}
	p, err := PinUser(dir, ids, ids, Net, IPC, UTS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Remove() })
	if p.User != filepath.Join(dir, "user") {
		t.Fatalf("User = %q", p.User)
	}
	user := inode(t, p.User)
	if user == inode(t, "/proc/self/ns/user") {
		t.Fatal("the pinned user namespace is the test's own")
	}
	for _, k := range []Kind{Net, IPC, UTS} {
		if ok, err := IsPinned(p.Path(k)); err != nil || !ok {
			t.Fatalf("IsPinned(%s) = %v, %v", k, ok, err)
		}
		if got := ownerOf(t, p.Path(k)); got != user {
			t.Errorf("%s namespace is owned by user namespace %d, want the pinned one (%d)", k, got, user)
		}
	}
	if nsenter, err := exec.LookPath("nsenter"); err == nil {
		out, err := exec.Command(nsenter, "--user="+p.User, "cat", "/proc/self/uid_map", "/proc/self/setgroups").CombinedOutput()
		if err != nil {
			t.Fatalf("nsenter: %v: %s", err, out)
		}
		if f := strings.Fields(string(out)); len(f) != 4 || f[0] != "0" || f[1] != "200000" || f[2] != "65536" || f[3] != "allow" {
			t.Errorf("uid_map and setgroups inside = %q, want 0 200000 65536 and allow", out)
		}
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		if _, err := os.Lstat(filepath.Join(dir, string(k))); !os.IsNotExist(err) {
			t.Errorf("%s pin left after Remove: %v", k, err)
		}
	}
}

func TestPinUserRejects(t *testing.T) {
	requireRoot(t)
	ids := []IDMap{{ContainerID: 0, HostID: 200000, Size: 65536}}
	for name, call := range map[string]func(dir string) (Pinned, error){
		"no maps":       func(dir string) (Pinned, error) { return PinUser(dir, nil, nil, Net) },
		"kind twice":    func(dir string) (Pinned, error) { return PinUser(dir, ids, ids, Net, Net) },
		"user with Pin": func(dir string) (Pinned, error) { return Pin(dir, User) },
		"overflowing map": func(dir string) (Pinned, error) {
			bad := []IDMap{{ContainerID: 0, HostID: 0xffffff00, Size: 0x1000}}
			return PinUser(dir, bad, bad, Net)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ns")
			if p, err := call(dir); err == nil {
				_ = p.Remove()
				t.Fatal("no error")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left %d files in %s", len(entries), dir)
			}
		})
	}
}
