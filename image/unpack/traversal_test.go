package unpack

import (
	"archive/tar"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTraversal feeds layers that try to write outside the root. Names are cleaned and
// confined ("../x" is written as "root/x") and paths through symlinks resolve inside
// the root, so some attacks succeed harmlessly inside the root and others fail; in
// every case nothing outside the root may change. Layers are applied in a jail (see
// applyJailed) where "/canary/file" and "/etc/passwd" are the sandbox's canaries.
func TestTraversal(t *testing.T) {
	requireRoot(t)
	runTraversal(t)
}

func runTraversal(t *testing.T) {
	for _, tt := range traversalCases {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := s.applyJailed(buildTar(t, tt.ents...), Options{})
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want error: %v", err, tt.wantErr)
			}
			for rel, w := range tt.want {
				checkPath(t, s.root, rel, w)
			}
			s.check(t)
		})
	}
}

var evilFile = want{typ: unix.S_IFREG, perm: 0o644, body: str("evil")}

// traversalCases also seed FuzzApply.
var traversalCases = []struct {
	name    string
	ents    []ent
	wantErr bool
	want    map[string]want // relative to the root
}{{
	name: "dotdot",
	ents: []ent{fileEnt("../evil", "evil", 0o644)},
	want: map[string]want{"evil": evilFile},
}, {
	name: "deep dotdot into canary",
	ents: []ent{fileEnt("a/../../../canary/evil", "evil", 0o644)},
	want: map[string]want{"canary/evil": evilFile, "a": {absent: true}},
}, {
	name: "absolute names",
	ents: []ent{fileEnt("/abs/evil", "evil", 0o644), fileEnt("/canary/evil", "evil", 0o644),
		fileEnt("/etc/passwd", "evil", 0o644)},
	want: map[string]want{"abs/evil": evilFile, "canary/evil": evilFile, "etc/passwd": evilFile},
}, {
	name:    "absolute symlink to canary, then write through it",
	ents:    []ent{symlinkEnt("a", "/canary"), fileEnt("a/file", "evil", 0o644)},
	wantErr: true, // root/canary does not exist: a dangles inside the root
}, {
	name:    "relative symlink escaping, then write through it",
	ents:    []ent{symlinkEnt("a", "../canary"), fileEnt("a/file", "evil", 0o644)},
	wantErr: true,
}, {
	name:    "symlink to /etc, then passwd",
	ents:    []ent{symlinkEnt("etclink", "/etc"), fileEnt("etclink/passwd", "evil", 0o644)},
	wantErr: true,
}, {
	name: "symlink to ../../.. resolves to the root",
	ents: []ent{symlinkEnt("a", "../../.."), fileEnt("a/evil", "evil", 0o644)},
	want: map[string]want{"evil": evilFile, "a": {typ: unix.S_IFLNK, link: "../../.."}},
}, {
	name: "escaping symlink lands on the in-root twin of the canary",
	ents: []ent{dirEnt("canary/", 0o755), symlinkEnt("a", "../../../canary"), fileEnt("a/file", "evil", 0o644)},
	want: map[string]want{"canary/file": evilFile},
}, {
	name: "absolute symlink lands on the in-root twin of /etc",
	ents: []ent{dirEnt("/etc/", 0o755), symlinkEnt("a", "/etc"), fileEnt("a/passwd", "evil", 0o644)},
	want: map[string]want{"etc/passwd": evilFile},
}, {
	name: "symlink parent chain",
	ents: []ent{symlinkEnt("a", "b"), symlinkEnt("b", "c/d"), dirEnt("c/", 0o755),
		symlinkEnt("c/d", "../../canary"), fileEnt("a/file", "evil", 0o644)},
	wantErr: true,
}, {
	name: "symlink in the middle of a path, parents created inside",
	ents: []ent{dirEnt("x/", 0o755), symlinkEnt("x/y", "../../.."), fileEnt("x/y/canary/file", "evil", 0o644)},
	want: map[string]want{"canary/file": evilFile},
}, {
	name:    "symlink loop",
	ents:    []ent{symlinkEnt("a", "b"), symlinkEnt("b", "a"), fileEnt("a/evil", "evil", 0o644)},
	wantErr: true,
}, {
	name:    "hardlink to /etc/passwd",
	ents:    []ent{linkEnt("p", "/etc/passwd")},
	wantErr: true,
}, {
	name:    "hardlink dotdot to canary",
	ents:    []ent{linkEnt("p", "../canary/file")},
	wantErr: true,
}, {
	name:    "hardlink through a symlinked directory",
	ents:    []ent{symlinkEnt("d", "/canary"), linkEnt("p", "d/file")},
	wantErr: true,
}, {
	name:    "hardlink through a relative escaping symlink",
	ents:    []ent{symlinkEnt("d", "../../etc"), linkEnt("p", "d/passwd")},
	wantErr: true,
}, {
	name: "hardlink to a symlink links the symlink, then files replace both",
	ents: []ent{symlinkEnt("s", "/canary/file"), linkEnt("p", "s"),
		fileEnt("p", "evil", 0o644), fileEnt("s", "evil", 0o644)},
	want: map[string]want{"p": evilFile, "s": evilFile},
}, {
	name: "write over a symlink to outside",
	ents: []ent{symlinkEnt("s", "/etc/passwd"), fileEnt("s", "evil", 0o644)},
	want: map[string]want{"s": evilFile},
}, {
	name: "directory over a symlink to outside",
	ents: []ent{symlinkEnt("s", "/canary"), dirEnt("s/", 0o700), fileEnt("s/file", "evil", 0o644)},
	want: map[string]want{"s": {typ: unix.S_IFDIR, perm: 0o700}, "s/file": evilFile},
}, {
	name: "symlink ownership is not applied to its target",
	ents: []ent{owned(symlinkEnt("s", "/canary/file"), 99, 99)},
	want: map[string]want{"s": {typ: unix.S_IFLNK, uid: 99, gid: 99}},
}, {
	name: "directory replaced by a symlink before its mode and times are set",
	ents: []ent{dirEnt("d/", 0o777), symlinkEnt("d", "/canary")},
	want: map[string]want{"d": {typ: unix.S_IFLNK}},
}, {
	name: "removing a directory does not follow symlinks inside it",
	ents: []ent{symlinkEnt("d/l", "/canary"), symlinkEnt("d/f", "/etc/passwd"), fileEnt("d", "evil", 0o644)},
	want: map[string]want{"d": evilFile},
}, {
	name:    "whiteout through a symlink",
	ents:    []ent{symlinkEnt("s", "/canary"), fileEnt("s/.wh.file", "", 0o644)},
	wantErr: true,
}, {
	name:    "opaque through a symlink",
	ents:    []ent{symlinkEnt("s", "../etc"), fileEnt("s/.wh..wh..opq", "", 0o644)},
	wantErr: true,
}, {
	name: "whiteout of dotdot",
	ents: []ent{fileEnt("../.wh.canary", "", 0o644)},
	want: map[string]want{"canary": {typ: unix.S_IFCHR}},
}, {
	name: "fifo over a symlink",
	ents: []ent{symlinkEnt("n", "/canary/file"), {hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "n", Mode: 0o600}}},
	want: map[string]want{"n": {typ: unix.S_IFIFO, perm: 0o600}},
}}

// TestHostPasswdHardlink aims at the real /etc/passwd, outside any jail. Only a
// hardlink is attempted: even a broken Apply could at worst add a link that the test
// cleanup removes, never change the file.
func TestHostPasswdHardlink(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	for _, target := range []string{"/etc/passwd", "../../../../../../../../etc/passwd"} {
		if _, err := applyBytes(s.root, buildTar(t, linkEnt("p", target)), Options{}); err == nil {
			t.Errorf("hardlink to %s succeeded", target)
		}
		if _, err := os.Lstat(s.root + "/p"); err == nil {
			t.Errorf("hardlink to %s created root/p", target)
		}
		s.check(t)
	}
}

// TestJail makes sure the jail holds, or every traversal test would be moot.
func TestJail(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	var passwd []byte
	var rerr error
	if err := jailed(s.tmp, func() { passwd, rerr = os.ReadFile("/etc/passwd") }); err != nil {
		t.Fatal(err)
	}
	if rerr != nil || string(passwd) != canaryContent {
		t.Fatalf("/etc/passwd in the jail reads %q, %v: not the sandbox's canary", passwd, rerr)
	}
	// The test goroutine's own thread must be unaffected.
	if b, err := os.ReadFile("/etc/passwd"); err != nil || string(b) == canaryContent {
		t.Fatalf("host /etc/passwd reads %q, %v", b, err)
	}
}

// TestTraversalFallback runs the traversal table through the lookups used on kernels
// without openat2 (securejoin). On a kernel with openat2 securejoin still uses it
// internally, so this covers the glue, not securejoin's userspace resolver.
func TestTraversalFallback(t *testing.T) {
	requireRoot(t)
	openat2Missing.Store(true)
	defer openat2Missing.Store(false)
	runTraversal(t)
	// Outside the jail, where /proc exists, the whole feature set must work too.
	s := newSandbox(t)
	layer := buildTar(t, dirEnt("d/", 0o750), fileEnt("d/e/f", "x", 0o644),
		fileEnt("d/.wh..wh..opq", "", 0o644), fileEnt("d/.wh.g", "", 0o644), linkEnt("d/h", "d/e/f"))
	if _, err := applyBytes(s.root, layer, Options{}); err != nil {
		t.Fatal(err)
	}
	checkPath(t, s.root, "d", want{typ: unix.S_IFDIR, perm: 0o750, xattrs: map[string]string{"trusted.overlay.opaque": "y"}})
	checkPath(t, s.root, "d/h", want{typ: unix.S_IFREG, perm: 0o644, sameAs: "d/e/f"})
	checkPath(t, s.root, "d/g", want{typ: unix.S_IFCHR})
	s.check(t)
}
