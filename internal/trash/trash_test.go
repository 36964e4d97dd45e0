package trash

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFor(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"/var/lib/berth/rw", "/var/lib/berth/trash/rw"},
		{"/var/lib/berth/containers/", "/var/lib/berth/trash/containers"},
		{"/run/berth/state/../containers", "/run/berth/trash/containers"},
	} {
		if got := For(tc.dir); got != tc.want {
			t.Errorf("For(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}
}

// tree makes dir with a file and a subdirectory holding a read-only file.
func tree(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "upper", "etc"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a", "upper/etc/passwd"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPutThenSweep(t *testing.T) {
	root := t.TempDir()
	b, err := Open(For(filepath.Join(root, "rw")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make bool
	}{
		{"present", true},
		{"absent", false},
		{"present", true}, // the same name twice: both kept apart in the bin
	} {
		p := filepath.Join(root, "rw", tc.name)
		if tc.make {
			tree(t, p)
		}
		if err := b.Put(p); err != nil {
			t.Fatalf("Put(%s): %v", tc.name, err)
		}
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s still there after Put (%v)", tc.name, err)
		}
	}
	if n := len(entries(t, b.Dir())); n != 2 {
		t.Fatalf("bin holds %d entries, want 2", n)
	}
	if b.Empty() {
		t.Fatal("Empty with two entries")
	}
	if err := b.Sweep(); err != nil {
		t.Fatal(err)
	}
	if !b.Empty() {
		t.Fatalf("bin after Sweep: %v", entries(t, b.Dir()))
	}
	if err := b.Sweep(); err != nil { // nothing to do
		t.Fatal(err)
	}
}

// TestSweepAfterCrash: a bin a previous process filled (and whose sweep it never ran,
// or cut short half way through a tree) is emptied by a new Open and Sweep.
func TestSweepAfterCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trash", "rw")
	first, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(filepath.Dir(dir)), "ctr")
	tree(t, p)
	if err := first.Put(p); err != nil {
		t.Fatal(err)
	}
	// A half-removed tree: its file gone, its directories left.
	half := filepath.Join(dir, "half")
	if err := os.MkdirAll(filepath.Join(half, "work", "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	second, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Sweep(); err != nil {
		t.Fatal(err)
	}
	if !second.Empty() {
		t.Fatalf("left: %v", entries(t, dir))
	}
}

// TestSweepNeverDeletesThroughAMount: a bind mount of a directory outside, left in a
// tree put in the bin, is detached; the directory it showed keeps its files.
func TestSweepNeverDeletesThroughAMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	root := t.TempDir()
	host := filepath.Join(root, "host")
	tree(t, host)
	b, err := Open(filepath.Join(root, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	ctr := filepath.Join(root, "ctr")
	target := filepath.Join(ctr, "volumes", "0")
	if err := os.MkdirAll(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, target, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	if err := b.Put(ctr); err != nil {
		t.Fatal(err)
	}
	if err := b.Sweep(); err != nil {
		t.Fatal(err)
	}
	if !b.Empty() {
		t.Fatalf("left: %v", entries(t, b.Dir()))
	}
	if _, err := os.Stat(filepath.Join(host, "upper", "etc", "passwd")); err != nil {
		t.Fatalf("the mounted directory lost its files: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:          "/a/b",
		`/a\040b`:       "/a b",
		`/a\134b\011`:   "/a\\b\t",
		`/trailing\04`:  `/trailing\04`,
		`/not\octal999`: `/not\octal999`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}
