package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// want describes one path after Apply; zero fields are not checked.
type want struct {
	typ      uint32 // S_IFREG, S_IFDIR, ...
	perm     uint32 // checked when typ is set (with setuid/setgid/sticky)
	uid, gid uint32
	body     *string
	link     string
	rdev     uint64
	mtime    time.Time
	atime    time.Time
	xattrs   map[string]string // "" value: must be absent
	sameAs   string            // must be the same inode as this path
	absent   bool
}

func str(s string) *string { return &s }

func checkPath(t *testing.T, root, rel string, w want) {
	t.Helper()
	p := filepath.Join(root, rel)
	var st unix.Stat_t
	err := unix.Lstat(p, &st)
	if w.absent {
		if err == nil {
			t.Errorf("%s exists, want absent", rel)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	if w.typ != 0 {
		if got := st.Mode & unix.S_IFMT; got != w.typ {
			t.Errorf("%s: type %o, want %o", rel, got, w.typ)
		}
		if got := st.Mode & 0o7777; w.typ != unix.S_IFLNK && got != w.perm {
			t.Errorf("%s: perm %o, want %o", rel, got, w.perm)
		}
	}
	if st.Uid != w.uid || st.Gid != w.gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", rel, st.Uid, st.Gid, w.uid, w.gid)
	}
	if !w.mtime.IsZero() && !time.Unix(st.Mtim.Unix()).Equal(w.mtime) {
		t.Errorf("%s: mtime %v, want %v", rel, time.Unix(st.Mtim.Unix()), w.mtime)
	}
	if !w.atime.IsZero() && !time.Unix(st.Atim.Unix()).Equal(w.atime) {
		t.Errorf("%s: atime %v, want %v", rel, time.Unix(st.Atim.Unix()), w.atime)
	}
	if w.rdev != 0 && st.Rdev != w.rdev {
		t.Errorf("%s: rdev %x, want %x", rel, st.Rdev, w.rdev)
	}
	if w.link != "" {
		if got, err := os.Readlink(p); err != nil || got != w.link {
			t.Errorf("%s: link %q, %v, want %q", rel, got, err, w.link)
		}
	}
	if w.body != nil {
		if got, err := os.ReadFile(p); err != nil || string(got) != *w.body {
			t.Errorf("%s: content %q, %v, want %q", rel, got, err, *w.body)
		}
	}
	if w.sameAs != "" {
		var o unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, w.sameAs), &o); err != nil || o.Ino != st.Ino {
			t.Errorf("%s: not a hardlink of %s (%v)", rel, w.sameAs, err)
		}
	}
	for k, v := range w.xattrs {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(p, k, buf)
		switch {
		case v == "" && err == nil:
			t.Errorf("%s: xattr %s = %q, want absent", rel, k, buf[:n])
		case v != "" && (err != nil || string(buf[:n]) != v):
			t.Errorf("%s: xattr %s = %q, %v, want %q", rel, k, buf[:max(n, 0)], err, v)
		}
	}
}

func withXattrs(e ent, kv ...string) ent {
	e.hdr.PAXRecords = map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		e.hdr.PAXRecords[paxXattrPrefix+kv[i]] = kv[i+1]
	}
	return e
}

func owned(e ent, uid, gid int) ent { e.hdr.Uid, e.hdr.Gid = uid, gid; return e }

func timed(e ent, mtime, atime time.Time) ent {
	e.hdr.ModTime, e.hdr.AccessTime = mtime, atime
	return e
}

func TestApply(t *testing.T) {
	requireRoot(t)
	t1 := time.Unix(1600000000, 111111111)
	t2 := time.Unix(1500000000, 222222222)
	tests := []struct {
		name  string
		ents  []ent
		want  map[string]want
		stats Stats
	}{{
		name: "types and metadata",
		ents: []ent{
			owned(dirEnt("./", 0o755), 0, 0),
			owned(dirEnt("tmp/", 0o1777), 0, 0),
			owned(dirEnt("sgid/", 0o2775), 0, 50),
			owned(fileEnt("usr/bin/su", "su", 0o4755), 0, 0), // usr/bin implicit
			timed(owned(fileEnt("data", "hello", 0o640), 1000, 1001), t1, t2),
			timed(owned(symlinkEnt("lnk", "/usr/bin/su"), 1000, 1001), t2, t2),
			linkEnt("data2", "data"),
			owned(ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}}, 7, 8),
			{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
			{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Devmajor: 7, Devminor: 0}},
			timed(dirEnt("times/", 0o750), t1, t1),
			fileEnt("times/child", "", 0o644), // must not disturb times/ mtime
		},
		want: map[string]want{
			"":           {typ: unix.S_IFDIR, perm: 0o755},
			"tmp":        {typ: unix.S_IFDIR, perm: 0o1777},
			"sgid":       {typ: unix.S_IFDIR, perm: 0o2775, gid: 50},
			"usr/bin":    {typ: unix.S_IFDIR, perm: 0o755},
			"usr/bin/su": {typ: unix.S_IFREG, perm: 0o4755, body: str("su")},
			"data":       {typ: unix.S_IFREG, perm: 0o640, uid: 1000, gid: 1001, body: str("hello"), mtime: t1, atime: t2},
			"lnk":        {typ: unix.S_IFLNK, uid: 1000, gid: 1001, link: "/usr/bin/su", mtime: t2},
			"data2":      {typ: unix.S_IFREG, perm: 0o640, uid: 1000, gid: 1001, sameAs: "data"},
			"fifo":       {typ: unix.S_IFIFO, perm: 0o600, uid: 7, gid: 8},
			"dev/null":   {typ: unix.S_IFCHR, perm: 0o666, rdev: unix.Mkdev(1, 3)},
			"dev/loop0":  {typ: unix.S_IFBLK, perm: 0o660, rdev: unix.Mkdev(7, 0)},
			"times":      {typ: unix.S_IFDIR, perm: 0o750, mtime: t1},
		},
		stats: Stats{Bytes: 7, Inodes: 13},
	}, {
		name: "xattrs",
		ents: []ent{
			withXattrs(fileEnt("f", "x", 0o644), "user.a", "1", "trusted.b", "2",
				"security.bogus", "3", "trusted.overlay.redirect", "/etc", "user.overlay.opaque", "y"),
			withXattrs(dirEnt("d/", 0o755), "user.dir", "dv", "trusted.overlay.opaque", "y"),
			// user.* is refused by Linux on symlinks; that must not fail the layer.
			withXattrs(symlinkEnt("l", "f"), "trusted.t", "tv", "user.u", "uv"),
			withXattrs(ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o644}}, "trusted.p", "pv"),
		},
		want: map[string]want{
			"f": {typ: unix.S_IFREG, perm: 0o644, xattrs: map[string]string{
				"user.a": "1", "trusted.b": "2", "trusted.overlay.redirect": "", "user.overlay.opaque": ""}},
			"d": {typ: unix.S_IFDIR, perm: 0o755, xattrs: map[string]string{
				"user.dir": "dv", "trusted.overlay.opaque": ""}},
			"l": {typ: unix.S_IFLNK, xattrs: map[string]string{"trusted.t": "tv", "user.u": ""}},
			"p": {typ: unix.S_IFIFO, perm: 0o644, xattrs: map[string]string{"trusted.p": "pv"}},
		},
		stats: Stats{Bytes: 1, Inodes: 4},
	}, {
		name: "replace",
		ents: []ent{
			fileEnt("x", "old", 0o644),
			symlinkEnt("x", "target"), // file replaced by symlink
			dirEnt("d/", 0o700),
			fileEnt("d/keep", "k", 0o644),
			dirEnt("d/", 0o755), // dir over dir: kept, children stay, last mode wins
			dirEnt("e/", 0o755),
			fileEnt("e/sub/f", "f", 0o644),
			fileEnt("e", "now a file", 0o600), // dir replaced by file, recursively
			fileEnt("h", "h", 0o644),
			linkEnt("h", "h"), // link to itself: a no-op
			symlinkEnt("s", "d"),
			dirEnt("s/", 0o711), // symlink replaced by a real directory
			fileEnt("s/in", "in", 0o644),
		},
		want: map[string]want{
			"x":      {typ: unix.S_IFLNK, link: "target"},
			"d":      {typ: unix.S_IFDIR, perm: 0o755},
			"d/keep": {typ: unix.S_IFREG, perm: 0o644, body: str("k")},
			"e":      {typ: unix.S_IFREG, perm: 0o600, body: str("now a file")},
			"h":      {typ: unix.S_IFREG, perm: 0o644, body: str("h")},
			"s":      {typ: unix.S_IFDIR, perm: 0o711},
			"s/in":   {typ: unix.S_IFREG, body: str("in"), perm: 0o644},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			stats, err := applyBytes(s.root, buildTar(t, tt.ents...), Options{})
			if err != nil {
				t.Fatal(err)
			}
			for rel, w := range tt.want {
				checkPath(t, s.root, rel, w)
			}
			if tt.stats != (Stats{}) && stats != tt.stats {
				t.Errorf("stats %+v, want %+v", stats, tt.stats)
			}
			s.check(t)
		})
	}
}

func TestWhiteouts(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	layer := buildTar(t,
		dirEnt("etc/", 0o755),
		owned(fileEnt("etc/.wh.passwd", "", 0o644), 5, 6),
		fileEnt("usr/.wh..wh..opq", "", 0o644), // usr created on demand
		dirEnt("var/", 0o755),
		fileEnt("var/.wh..wh..opq", "", 0o644),
		fileEnt("var/kept", "k", 0o644),
		fileEnt("var/.wh.kept", "", 0o644), // same layer: the file wins
		fileEnt(".wh.gone", "", 0o644),
		fileEnt(".wh..wh..opq", "", 0o644), // opaque root
		dirEnt(".wh..wh.plnk/", 0o700),
		fileEnt(".wh..wh.plnk/123.456", "aufs", 0o644),
		fileEnt(".wh..wh.aufs", "", 0o644),
	)
	if _, err := applyBytes(s.root, layer, Options{}); err != nil {
		t.Fatal(err)
	}
	wh := want{typ: unix.S_IFCHR, perm: 0}
	opq := map[string]string{"trusted.overlay.opaque": "y"}
	for rel, w := range map[string]want{
		"etc/passwd":     {typ: unix.S_IFCHR, perm: 0, uid: 5, gid: 6},
		"gone":           wh,
		"usr":            {typ: unix.S_IFDIR, perm: 0o755, xattrs: opq},
		"var":            {typ: unix.S_IFDIR, perm: 0o755, xattrs: opq},
		"":               {typ: unix.S_IFDIR, perm: 0o755, xattrs: opq},
		"var/kept":       {typ: unix.S_IFREG, perm: 0o644, body: str("k")},
		"etc/.wh.passwd": {absent: true},
		".wh..wh.plnk":   {absent: true},
		".wh..wh.aufs":   {absent: true},
	} {
		checkPath(t, s.root, rel, w)
	}
	var st unix.Stat_t
	mustLstat(t, filepath.Join(s.root, "gone"), &st)
	if st.Rdev != 0 {
		t.Errorf("whiteout device %x, want 0/0", st.Rdev)
	}
	s.check(t)
}

// TestOverlayMount proves the converted whiteouts mean what they should to the kernel.
func TestOverlayMount(t *testing.T) {
	requireRoot(t)
	tmp := t.TempDir()
	lower1, lower2, merged := filepath.Join(tmp, "1"), filepath.Join(tmp, "2"), filepath.Join(tmp, "m")
	for _, d := range []string{lower1, lower2, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := applyBytes(lower1, buildTar(t,
		fileEnt("etc/passwd", "root", 0o644), fileEnt("etc/group", "g", 0o644),
		fileEnt("usr/a", "a", 0o644), fileEnt("usr/b", "b", 0o644)), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyBytes(lower2, buildTar(t,
		fileEnt("etc/.wh.passwd", "", 0o644),
		fileEnt("usr/.wh..wh..opq", "", 0o644), fileEnt("usr/c", "c", 0o644)), Options{}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+lower2+":"+lower1); err != nil {
		t.Skipf("cannot mount overlayfs here: %v", err)
	}
	defer unix.Unmount(merged, 0)
	ls := func(d string) string {
		es, err := os.ReadDir(filepath.Join(merged, d))
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return strings.Join(n, ",")
	}
	if got := ls("etc"); got != "group" {
		t.Errorf("merged etc holds %s, want group", got)
	}
	if got := ls("usr"); got != "c" {
		t.Errorf("merged usr holds %s, want c", got)
	}
}

func TestErrorsNameEntryAndOp(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		ents []ent
		want string
	}{
		{"missing link target", []ent{linkEnt("b", "missing")}, `unpack "b": link: target "missing": no such file or directory`},
		{"parent is a file", []ent{fileEnt("f", "", 0o644), fileEnt("f/x", "", 0o644)}, `unpack "f/x": mkdir parent: not a directory`},
		{"link to directory", []ent{dirEnt("d/", 0o755), linkEnt("l", "d")}, `unpack "l": link: target "d" is a directory`},
		{"unsupported type", []ent{{hdr: tar.Header{Typeflag: 'Z', Name: "z"}}}, `unpack "z": create: unsupported tar entry type 'Z'`},
		{"bad whiteout", []ent{fileEnt("a/.wh...", "", 0o644)}, `unpack "a/.wh...": whiteout: invalid whiteout name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := applyBytes(s.root, buildTar(t, tt.ents...), Options{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %s", err, tt.want)
			}
			s.check(t)
		})
	}
}

func TestCancel(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	layer := buildTar(t, fileEnt("f", "x", 0o644))
	if _, err := Apply(ctx, s.root, strings.NewReader(string(layer)), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	checkPath(t, s.root, "f", want{absent: true})
}

func TestRootMustBeDirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := applyBytes(f, buildTar(t), Options{}); err == nil {
		t.Fatal("Apply into a regular file succeeded")
	}
}

// TestDeepPath: parents the archive does not list are created, however deep.
func TestDeepPath(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	deep := strings.Repeat("d/", 1000)
	layer := buildTar(t, fileEnt(deep+"f", "x", 0o644), fileEnt(deep+"g", "y", 0o644))
	st, err := applyBytes(s.root, layer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Inodes != 1002 {
		t.Errorf("created %d inodes, want 1002", st.Inodes)
	}
	checkPath(t, s.root, deep+"g", want{typ: unix.S_IFREG, perm: 0o644, body: str("y")})
	s.check(t)
}
