package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func id(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t *testing.T, root string) *Snapshotter {
	t.Helper()
	s, err := Open(root, discard)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChainIDs(t *testing.T) {
	d0, d1, d2 := id("layer0"), id("layer1"), id("layer2")
	c1 := id(d0 + " " + d1)
	c2 := id(c1 + " " + d2)
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, []string{}},
		{"one", []string{d0}, []string{d0}},
		{"three", []string{d0, d1, d2}, []string{d0, c1, c2}},
		{"same diff twice", []string{d0, d0}, []string{d0, id(d0 + " " + d0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChainIDs(tt.in)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ChainIDs = %v, want %v", got, tt.want)
			}
		})
	}
}

// The example from the OCI image specification (config.md, "Layer ChainID").
func TestChainIDSpecExample(t *testing.T) {
	got := ChainIDs([]string{
		"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4",
		"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4",
	})
	// sha256 of "sha256:a3ed… sha256:a3ed…", computed with sha256sum.
	const want = "sha256:4c7048f6aa2475cea003298d6f2dd9b9e1295d787015684fc26a77739498dce3"
	if got[1] != want {
		t.Errorf("chain = %s, want %s", got[1], want)
	}
}

func commitFile(t *testing.T, s *Snapshotter, chainID, content string) Info {
	t.Helper()
	p, err := s.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.Root(), "f"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := p.Commit(chainID, int64(len(content)), 1)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func tmpEntries(t *testing.T, root string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "snapshots", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestCommitStatRemove(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	a, b := id("a"), id("b")
	info := commitFile(t, s, a, "hello")
	if info.Size != 5 || info.Inodes != 1+ownInodes || info.ChainID != a {
		t.Errorf("Info = %+v", info)
	}
	commitFile(t, s, b, "xy")
	if got, err := os.ReadFile(filepath.Join(s.Path(a), "f")); err != nil || string(got) != "hello" {
		t.Errorf("snapshot content = %q, %v", got, err)
	}
	if bytes, inodes := s.Usage(); bytes != 7 || inodes != 2*(1+ownInodes) {
		t.Errorf("Usage = %d bytes, %d inodes", bytes, inodes)
	}
	if l := s.List(); len(l) != 2 {
		t.Errorf("List = %v", l)
	}

	r, err := s.Remove(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Stat(a); ok {
		t.Error("removed snapshot still listed")
	}
	if _, err := os.Stat(s.Path(a)); !os.IsNotExist(err) {
		t.Errorf("removed snapshot still on disk: %v", err)
	}
	if err := r.Purge(); err != nil {
		t.Fatal(err)
	}
	if n := tmpEntries(t, root); n != 0 {
		t.Errorf("%d entries left in tmp after purge", n)
	}
	if r, err := s.Remove(a); err != nil || r.Purge() != nil {
		t.Errorf("second Remove = %v", err)
	}
	if _, err := s.Remove("nope"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Remove(invalid) = %v", err)
	}

	// A restart sees the same snapshots.
	s2 := open(t, root)
	if got, ok := s2.Stat(b); !ok || got.Size != 2 {
		t.Errorf("after reopen Stat(b) = %+v, %v", got, ok)
	}
	if _, ok := s2.Stat(a); ok {
		t.Error("after reopen the removed snapshot is back")
	}
}

func TestAbortAndLeftovers(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	p, err := s.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.Root(), "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(id("x"), 1, 1); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if n := tmpEntries(t, root); n != 0 {
		t.Errorf("%d entries in tmp after abort", n)
	}

	// An interrupted unpack (never committed nor aborted) and a broken snapshot
	// directory are cleaned up by the next Open.
	if _, err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(root, "snapshots", strings.TrimPrefix(id("broken"), "sha256:"))
	if err := os.MkdirAll(filepath.Join(broken, "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, root)
	if n := tmpEntries(t, root); n != 0 {
		t.Errorf("%d entries in tmp after reopen", n)
	}
	if _, err := os.Stat(broken); !os.IsNotExist(err) {
		t.Errorf("broken snapshot kept: %v", err)
	}
	if len(s2.List()) != 0 {
		t.Errorf("List = %v", s2.List())
	}
}

func TestConcurrentCommitSameChain(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	c := id("same")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := s.Prepare()
			if err != nil {
				t.Error(err)
				return
			}
			os.WriteFile(filepath.Join(p.Root(), "f"), []byte("same"), 0o644)
			if _, err := p.Commit(c, 4, 1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(s.List()) != 1 {
		t.Errorf("List = %v", s.List())
	}
	if n := tmpEntries(t, root); n != 0 {
		t.Errorf("%d entries left in tmp", n)
	}
	if got, err := os.ReadFile(filepath.Join(s.Path(c), "f")); err != nil || string(got) != "same" {
		t.Errorf("content = %q, %v", got, err)
	}
}

// TestCommitDeferredSync: without the flush a commit is the same to every reader, and
// the snapshot is found again by Open (in the absence of a crash).
func TestCommitDeferredSync(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	s.DeferSync()
	a := id("a")
	if info := commitFile(t, s, a, "hello"); info.Size != 5 || info.ChainID != a {
		t.Errorf("Info = %+v", info)
	}
	if got, err := os.ReadFile(filepath.Join(s.Path(a), "f")); err != nil || string(got) != "hello" {
		t.Errorf("snapshot content = %q, %v", got, err)
	}
	if n := tmpEntries(t, root); n != 0 {
		t.Errorf("%d entries left in tmp", n)
	}
	if info, ok := open(t, root).Stat(a); !ok || info.Size != 5 {
		t.Errorf("after reopening: %+v, %v", info, ok)
	}
}
