package unpack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDirCacheNeverStale applies layers in which a directory that earlier entries used
// (and the applier cached) is replaced: later entries must follow the new path, never
// the old descriptor. Each runs jailed, so a stale descriptor could not escape either.
func TestDirCacheNeverStale(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		ents    []ent
		wantErr bool
		want    map[string]want
	}{{
		name: "directory replaced by a symlink",
		ents: []ent{dirEnt("d/", 0o755), fileEnt("d/a", "a", 0o644), dirEnt("e/", 0o755),
			symlinkEnt("d", "e"), fileEnt("d/b", "b", 0o644)},
		want: map[string]want{"d": {typ: unix.S_IFLNK, link: "e"}, "e/b": {typ: unix.S_IFREG, perm: 0o644, body: str("b")},
			"d/a": {absent: true}, "e/a": {absent: true}},
	}, {
		name: "symlink replaced by a directory",
		ents: []ent{dirEnt("e/", 0o755), symlinkEnt("d", "e"), fileEnt("d/a", "a", 0o644),
			dirEnt("d/", 0o750), fileEnt("d/b", "b", 0o644)},
		want: map[string]want{"d": {typ: unix.S_IFDIR, perm: 0o750}, "d/b": {typ: unix.S_IFREG, perm: 0o644, body: str("b")},
			"e/a": {typ: unix.S_IFREG, perm: 0o644, body: str("a")}, "e/b": {absent: true}},
	}, {
		name: "directory replaced by a symlink to outside",
		ents: []ent{dirEnt("d/", 0o755), fileEnt("d/a", "a", 0o644), symlinkEnt("d", "/canary"),
			fileEnt("d/file", "evil", 0o644)},
		wantErr: true, // root/canary does not exist
	}, {
		name: "hardlink target directory replaced by a file",
		ents: []ent{dirEnt("t/", 0o755), fileEnt("t/f", "one", 0o644), linkEnt("x", "t/f"),
			fileEnt("t", "plain", 0o644), linkEnt("y", "t/f")},
		wantErr: true, // t/f is gone
	}, {
		name:    "parent replaced by a file",
		ents:    []ent{fileEnt("p/q/r", "1", 0o644), fileEnt("p", "file", 0o644), fileEnt("p/q/s", "2", 0o644)},
		wantErr: true, // p is not a directory any more
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := s.applyJailed(buildTar(t, tt.ents...), Options{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			for rel, w := range tt.want {
				checkPath(t, s.root, rel, w)
			}
			s.check(t)
		})
	}
}

// TestExistingNames covers the slow path of creation: every kind of entry over a name
// that exists already, including more directories than the cache holds.
func TestExistingNames(t *testing.T) {
	requireRoot(t)
	ents := []ent{
		fileEnt("f", "1", 0o644), fileEnt("f", "2", 0o600),
		fileEnt("s", "file", 0o644), symlinkEnt("s", "f"),
		symlinkEnt("l", "f"), fileEnt("l", "3", 0o644),
		dirEnt("d/", 0o700), fileEnt("d/x", "x", 0o644), dirEnt("d/", 0o751),
		fileEnt("h", "other", 0o644), linkEnt("h", "f"), linkEnt("h", "f"),
	}
	for i := range 2*maxCachedDirs + 3 {
		ents = append(ents, fileEnt(fmt.Sprintf("many/%d/f", i), "m", 0o644))
	}
	for i := range 2*maxCachedDirs + 3 {
		ents = append(ents, linkEnt(fmt.Sprintf("many/%d/g", i), fmt.Sprintf("many/%d/f", (i+1)%(2*maxCachedDirs+3))))
	}
	s := newSandbox(t)
	if _, err := s.applyJailed(buildTar(t, ents...), Options{}); err != nil {
		t.Fatal(err)
	}
	checkPath(t, s.root, "f", want{typ: unix.S_IFREG, perm: 0o600, body: str("2")})
	checkPath(t, s.root, "s", want{typ: unix.S_IFLNK, link: "f"})
	checkPath(t, s.root, "l", want{typ: unix.S_IFREG, perm: 0o644, body: str("3")})
	checkPath(t, s.root, "d", want{typ: unix.S_IFDIR, perm: 0o751})
	checkPath(t, s.root, "d/x", want{typ: unix.S_IFREG, perm: 0o644, body: str("x")})
	checkPath(t, s.root, "h", want{typ: unix.S_IFREG, perm: 0o600, sameAs: "f"})
	for i := range 2*maxCachedDirs + 3 {
		checkPath(t, s.root, fmt.Sprintf("many/%d/g", i), want{typ: unix.S_IFREG, perm: 0o644,
			sameAs: fmt.Sprintf("many/%d/f", (i+1)%(2*maxCachedDirs+3))})
	}
	s.check(t)
}

// TestWriteback: starting the writeback early changes nothing about what is written.
func TestWriteback(t *testing.T) {
	s := newSandbox(t)
	big := strings.Repeat("0123456789abcdef", WritebackMin/16+100)
	layer := buildTar(t, fileEnt("big", big, 0o644), fileEnt("small", "s", 0o600))
	st, err := Apply(context.Background(), s.root, bytes.NewReader(layer), Options{Writeback: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != int64(len(big))+1 {
		t.Errorf("Stats.Bytes = %d", st.Bytes)
	}
	if got, err := os.ReadFile(filepath.Join(s.root, "big")); err != nil || string(got) != big {
		t.Errorf("big: %d bytes, %v", len(got), err)
	}
	if got, err := os.ReadFile(filepath.Join(s.root, "small")); err != nil || string(got) != "s" {
		t.Errorf("small: %q, %v", got, err)
	}
}
