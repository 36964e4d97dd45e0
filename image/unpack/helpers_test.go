package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one archive entry for a test layer.
type ent struct {
	hdr  tar.Header
	body string
}

var testTime = time.Unix(1700000000, 123456789)

func fileEnt(name, body string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, body: body}
}

func dirEnt(name string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

func symlinkEnt(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func linkEnt(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// buildTar writes ents as a PAX archive (so xattrs and sub-second times survive).
func buildTar(tb testing.TB, ents ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.ModTime.IsZero() {
			h.ModTime = testTime
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			tb.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			tb.Fatalf("tar body %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is <tmp>/root (the layer root) next to two canaries no layer may touch:
// <tmp>/canary/file and <tmp>/etc/passwd. check verifies that nothing outside root
// changed.
type sandbox struct {
	tmp, root, canary string
	before            map[string]unix.Stat_t // canary paths, relative to tmp
	hostPasswd        unix.Stat_t
}

const canaryContent = "canary"

// canaryFiles and canaryDirs are relative to the sandbox; inside jailed they are also
// the absolute paths an attack aims at ("/etc/passwd", "/canary").
var (
	canaryFiles = []string{"canary/file", "etc/passwd"}
	canaryDirs  = []string{"canary", "etc"}
)

func newSandbox(tb testing.TB) *sandbox {
	tb.Helper()
	return newSandboxIn(tb, tb.TempDir())
}

// newFastSandbox puts the sandbox on tmpfs when there is one: the fuzzer creates one
// per input, and on a disk that costs most of each iteration.
func newFastSandbox(tb testing.TB) *sandbox {
	tb.Helper()
	tmp, err := os.MkdirTemp("/dev/shm", "berth-unpack-fuzz-")
	if err != nil {
		return newSandbox(tb)
	}
	tb.Cleanup(func() { os.RemoveAll(tmp) })
	return newSandboxIn(tb, tmp)
}

func newSandboxIn(tb testing.TB, tmp string) *sandbox {
	tb.Helper()
	s := &sandbox{tmp: tmp, root: filepath.Join(tmp, "root"), canary: filepath.Join(tmp, "canary"),
		before: map[string]unix.Stat_t{}}
	for _, d := range append([]string{"root"}, canaryDirs...) {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, f := range canaryFiles {
		if err := os.WriteFile(filepath.Join(tmp, f), []byte(canaryContent), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	// Directories last: writing their files changed their mtimes.
	for _, p := range append(canaryFiles, canaryDirs...) {
		var st unix.Stat_t
		mustLstat(tb, filepath.Join(tmp, p), &st)
		s.before[p] = st
	}
	mustLstat(tb, "/etc/passwd", &s.hostPasswd)
	return s
}

func mustLstat(tb testing.TB, p string, st *unix.Stat_t) {
	tb.Helper()
	if err := unix.Lstat(p, st); err != nil {
		tb.Fatal(err)
	}
}

// sameStat compares what an escaping write would change: identity, links, mode,
// owner, size and modification/change times.
func sameStat(a, b *unix.Stat_t) bool {
	return a.Ino == b.Ino && a.Nlink == b.Nlink && a.Mode == b.Mode && a.Uid == b.Uid &&
		a.Gid == b.Gid && a.Size == b.Size && a.Mtim == b.Mtim && a.Ctim == b.Ctim
}

func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	ds, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Name())
	}
	return out
}

func (s *sandbox) check(tb testing.TB) {
	tb.Helper()
	for dir, want := range map[string][]string{
		s.tmp:                       {"canary", "etc", "root"},
		s.canary:                    {"file"},
		filepath.Join(s.tmp, "etc"): {"passwd"},
	} {
		if got := dirNames(tb, dir); !slices.Equal(got, want) {
			tb.Fatalf("%s holds %q, want %q: something was written outside the root", dir, got, want)
		}
	}
	for p, was := range s.before {
		var st unix.Stat_t
		mustLstat(tb, filepath.Join(s.tmp, p), &st)
		if !sameStat(&st, &was) {
			tb.Fatalf("%s changed: %+v, was %+v", p, st, was)
		}
		if sz, _ := unix.Llistxattr(filepath.Join(s.tmp, p), nil); sz > 0 {
			tb.Fatalf("%s gained xattrs", p)
		}
	}
	for _, p := range canaryFiles {
		if b, err := os.ReadFile(filepath.Join(s.tmp, p)); err != nil || string(b) != canaryContent {
			tb.Fatalf("%s content %q, %v", p, b, err)
		}
	}
	var st unix.Stat_t
	mustLstat(tb, "/etc/passwd", &st)
	if !sameStat(&st, &s.hostPasswd) {
		tb.Fatalf("host /etc/passwd changed: %+v, was %+v", st, s.hostPasswd)
	}
}

// applyJailed applies layer to the sandbox's root from an OS thread chrooted into the
// sandbox. Layers built to escape are only ever applied this way: were Apply to
// regress, a test running as root would otherwise overwrite or delete host files
// (an entry "x -> /etc" then "x/passwd" replaces /etc/passwd). Inside the jail "/" is
// <tmp>, so the same attack hits the <tmp>/etc/passwd canary instead. /proc is absent
// there, so xattrs on symlinks and devices cannot be set in a jail.
func (s *sandbox) applyJailed(layer []byte, opts Options) (st Stats, err error) {
	jerr := jailed(s.tmp, func() {
		st, err = Apply(context.Background(), "/root", bytes.NewReader(layer), opts)
	})
	if jerr != nil {
		return Stats{}, jerr
	}
	return st, err
}

// jailed runs fn on an OS thread of its own whose root directory is dir.
func jailed(dir string, fn func()) error {
	done := make(chan error, 1)
	go func() {
		// No UnlockOSThread: this thread's root directory changes, so the runtime must
		// throw the thread away when the goroutine exits instead of reusing it. (New
		// threads are not cloned from a locked one; the runtime uses its template
		// thread for that.)
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- fmt.Errorf("jail: unshare: %w", err)
			return
		}
		if err := unix.Chroot(dir); err != nil {
			done <- fmt.Errorf("jail: chroot: %w", err)
			return
		}
		if err := unix.Chdir("/"); err != nil {
			done <- fmt.Errorf("jail: chdir: %w", err)
			return
		}
		fn()
		done <- nil
	}()
	return <-done
}

func applyBytes(root string, layer []byte, opts Options) (Stats, error) {
	return Apply(context.Background(), root, bytes.NewReader(layer), opts)
}

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root for chown, mknod and trusted.* xattrs")
	}
}
