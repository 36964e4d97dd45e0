package rootfs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/nspin"
)

func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

func TestMountIDMapped(t *testing.T) {
	requireRoot(t)
	const base = 300000
	ids := []nspin.IDMap{{ContainerID: 0, HostID: base, Size: 65536}}
	pinned, err := nspin.PinUser(filepath.Join(t.TempDir(), "ns"), ids, ids)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pinned.Remove() })

	base0 := layer(t, map[string]string{"etc/passwd": "root", "home/user/file": "user's"})
	if err := os.Chown(filepath.Join(base0, "home/user/file"), 1000, 1001); err != nil {
		t.Fatal(err)
	}
	top := layer(t, map[string]string{"etc/passwd": "root, second layer"})
	rw := filepath.Join(t.TempDir(), "rw")
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := MountIDMapped([]string{base0, top}, rw, target, pinned.User, Owner{UID: base, GID: base}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Remove(rw, target) })

	for _, c := range []struct {
		path     string
		uid, gid uint32
	}{
		{"", base, base}, // the upper directory: the namespace's root
		{"etc/passwd", base, base},
		{"home/user/file", base + 1000, base + 1001},
	} {
		if uid, gid := owner(t, filepath.Join(target, c.path)); uid != c.uid || gid != c.gid {
			t.Errorf("/%s is owned by %d:%d, want %d:%d", c.path, uid, gid, c.uid, c.gid)
		}
	}
	if data, err := os.ReadFile(filepath.Join(target, "etc/passwd")); err != nil || string(data) != "root, second layer" {
		t.Errorf("etc/passwd = %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(rw, idmapDir)); !os.IsNotExist(err) {
		t.Errorf("idmapped layers still attached after the mount: %v", err)
	}
	// The layers on disk are untouched.
	if uid, _ := owner(t, filepath.Join(base0, "etc/passwd")); uid != 0 {
		t.Errorf("the layer's file now belongs to %d", uid)
	}
	if err := Remove(rw, target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rw); !os.IsNotExist(err) {
		t.Errorf("rw dir left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base0, "etc/passwd")); err != nil {
		t.Errorf("Remove reached into a layer: %v", err)
	}
}

func TestRemoveDetachesIDMappedLayers(t *testing.T) {
	requireRoot(t)
	ids := []nspin.IDMap{{ContainerID: 0, HostID: 300000, Size: 65536}}
	pinned, err := nspin.PinUser(filepath.Join(t.TempDir(), "ns"), ids, ids)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pinned.Remove() })
	ns, err := os.Open(pinned.User)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	l := layer(t, map[string]string{"keep": "me"})
	rw := filepath.Join(t.TempDir(), "rw")
	// What a crash between attaching a layer and mounting the overlay leaves.
	if err := idmapBind(l, filepath.Join(rw, idmapDir, "0"), int(ns.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := Remove(rw, filepath.Join(t.TempDir(), "rootfs")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l, "keep")); err != nil {
		t.Fatalf("Remove deleted a file of the layer: %v", err)
	}
}
