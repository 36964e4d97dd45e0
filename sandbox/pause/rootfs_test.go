package pause

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// checkRootfs verifies that root holds exactly the pause executable and the mountpoints.
func checkRootfs(t *testing.T, root string) {
	t.Helper()
	want, err := Executable(runtime.GOARCH)
	if err != nil {
		t.Skip(err)
	}
	got, err := os.ReadFile(filepath.Join(root, Path))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("pause: %v, %d bytes, want %d", err, len(got), len(want))
	}
	fi, _ := os.Stat(filepath.Join(root, Path))
	if fi.Mode().Perm() != 0o555 {
		t.Errorf("pause mode %v", fi.Mode())
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"dev", "pause", "proc", "sys"}) {
		t.Errorf("rootfs holds %q", names)
	}
}

func only(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRootfsIsMadeOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	root, err := Rootfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkRootfs(t, root)
	var before, after unix.Stat_t
	if err := unix.Stat(filepath.Join(root, Path), &before); err != nil {
		t.Fatal(err)
	}
	again, err := Rootfs(dir)
	if err != nil || again != root {
		t.Fatalf("second call: %q, %v; first %q", again, err, root)
	}
	if err := unix.Stat(filepath.Join(root, Path), &after); err != nil || after.Ino != before.Ino {
		t.Error("the executable was rewritten")
	}
	if names := only(t, dir); len(names) != 1 {
		t.Errorf("dir holds %q", names)
	}
}

func TestRootfsReplacesADamagedOne(t *testing.T) {
	dir := t.TempDir()
	root, err := Rootfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string]func(string) error{
		"truncated": func(p string) error { return os.Truncate(p, 10) },
		"missing":   os.Remove,
		"not exec":  func(p string) error { return os.Chmod(p, 0o444) },
	}
	for name, harm := range damage {
		t.Run(name, func(t *testing.T) {
			if err := harm(filepath.Join(root, Path)); err != nil {
				t.Fatal(err)
			}
			again, err := Rootfs(dir)
			if err != nil || again != root {
				t.Fatalf("%q, %v", again, err)
			}
			checkRootfs(t, root)
			if names := only(t, dir); len(names) != 1 {
				t.Errorf("dir holds %q", names)
			}
		})
	}
}

func TestRootfsConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	roots := make([]string, 8)
	errs := make([]error, 8)
	for i := range roots {
		wg.Go(func() { roots[i], errs[i] = Rootfs(dir) })
	}
	wg.Wait()
	for i := range roots {
		if errs[i] != nil || roots[i] != roots[0] {
			t.Errorf("call %d: %q, %v", i, roots[i], errs[i])
		}
	}
	checkRootfs(t, roots[0])
	if names := only(t, dir); len(names) != 1 {
		t.Errorf("dir holds %q", names)
	}
}

func TestRootfsRefusesNoexec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOEXEC, "size=1m"); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	_, err := Rootfs(dir)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("got %v, want failed precondition", err)
	}
	if names := only(t, dir); len(names) != 0 {
		t.Errorf("left %q", names)
	}
}

func TestIsStatic(t *testing.T) {
	code, err := Executable("amd64")
	if err != nil {
		t.Fatal(err)
	}
	if static, err := isStatic(bytes.NewReader(code)); err != nil || !static {
		t.Errorf("generated: %v, %v", static, err)
	}
	if _, err := isStatic(bytes.NewReader([]byte("#!/bin/sh\n"))); err == nil {
		t.Error("a script parsed as ELF")
	}
	sh, err := os.Open("/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	defer sh.Close()
	if static, err := isStatic(sh); err != nil || static {
		t.Errorf("/bin/sh: static %v, %v", static, err)
	}
}

// TestSelfImage: the Go fallback copies a static executable and refuses a dynamic one.
func TestSelfImage(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	static, err := isStatic(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	root, err := RootfsOfSelf(t.TempDir())
	if !static {
		if !errors.Is(err, errdefs.ErrUnimplemented) {
			t.Errorf("dynamic executable: %v, want unimplemented", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, Path))
	want, _ := os.Stat(self)
	if err != nil || fi.Size() != want.Size() || fi.Mode().Perm() != 0o555 {
		t.Errorf("copied %v, %v; executable %d bytes", fi, err, want.Size())
	}
}
