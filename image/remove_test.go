package image

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestRemoveSharedLayers(t *testing.T) {
	reg := newTestRegistry(t)
	base := layerOf(t, map[string]string{"etc/": "", "etc/base": "shared"})
	a := imageOf(t, "", base, layerOf(t, map[string]string{"a": "a"}))
	b := imageOf(t, "", base, layerOf(t, map[string]string{"b": "b"}))
	refA, refB := reg.push(t, "a:v1", a), reg.push(t, "b:v1", b)
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	imgA, err := s.Pull(ctx, refA, nil)
	if err != nil {
		t.Fatal(err)
	}
	imgB, err := s.Pull(ctx, refB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if imgA.ChainIDs[0] != imgB.ChainIDs[0] || len(s.snaps.List()) != 3 {
		t.Fatalf("chains %v %v, snapshots %d", imgA.ChainIDs, imgB.ChainIDs, len(s.snaps.List()))
	}
	if gets := reg.blobGETs(); gets[digestOf(t, base)] != 1 {
		t.Errorf("shared base fetched %d times", gets[digestOf(t, base)])
	}
	before := s.Usage()

	if err := s.Remove(ctx, refA); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(imgA.ID); !errdefs.IsNotFound(err) {
		t.Errorf("Get(removed) = %v", err)
	}
	if _, ok := s.snaps.Stat(imgA.ChainIDs[1]); ok {
		t.Error("A's own layer survived")
	}
	for _, c := range imgB.ChainIDs {
		if _, err := os.Stat(s.SnapshotPath(c)); err != nil {
			t.Errorf("B's snapshot %s gone: %v", c, err)
		}
	}
	if s.content.Has(imgA.ID) || !s.content.Has(imgB.ID) {
		t.Error("wrong config blobs kept")
	}
	if after := s.Usage(); after.UsedBytes >= before.UsedBytes || after.InodesUsed >= before.InodesUsed {
		t.Errorf("usage %+v not below %+v", after, before)
	}

	if err := s.Remove(ctx, imgB.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(s.snaps.List()); n != 0 {
		t.Errorf("%d snapshots left", n)
	}
	if u := s.Usage(); u.UsedBytes != 0 || u.InodesUsed != 0 {
		t.Errorf("usage after removing everything: %+v", u)
	}
	if l := s.meta.Layers(); len(l) != 0 {
		t.Errorf("layer records left: %v", l)
	}
	if left := tmpLeftovers(t, s); len(left) != 0 {
		t.Errorf("tmp leftovers %v", left)
	}
	if err := s.Remove(ctx, refB); !errdefs.IsNotFound(err) {
		t.Errorf("Remove(absent) = %v, want not found", err)
	}
}

// CRI semantics (critest "removing image by one tag should remove all tags"): removing
// by any name removes the image with all its names.
func TestRemoveByOneTagRemovesAll(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	var refs []string
	for _, tag := range []string{"tags:1", "tags:2", "tags:3"} {
		refs = append(refs, reg.push(t, tag, img))
	}
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	for _, r := range refs {
		if _, err := s.Pull(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(refs[1])
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	if !slices.Equal(got.RepoTags, sorted) {
		t.Errorf("RepoTags = %v, want %v", got.RepoTags, sorted)
	}
	if err := s.Remove(ctx, refs[0]); err != nil {
		t.Fatal(err)
	}
	for _, q := range append(refs, got.ID) {
		if _, err := s.Get(q); !errdefs.IsNotFound(err) {
			t.Errorf("Get(%q) after removal = %v", q, err)
		}
	}
}

func TestConcurrentRemove(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:v1", twoLayerImage(t, ""))
	s := newTestService(t, nil, nil)
	img, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := ref
			if i%2 == 1 {
				q = img.ID
			}
			errs[i] = s.Remove(context.Background(), q)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errdefs.IsNotFound(err):
			t.Errorf("Remove = %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d removals succeeded, want 1", ok)
	}
	if len(s.List("")) != 0 || len(s.snaps.List()) != 0 || len(tmpLeftovers(t, s)) != 0 {
		t.Errorf("half state: images %v snapshots %v tmp %v", s.List(""), s.snaps.List(), tmpLeftovers(t, s))
	}
}

func TestRemoveWhilePulling(t *testing.T) {
	reg := newTestRegistry(t)
	base := layerOf(t, map[string]string{"base": "shared"})
	a := imageOf(t, "", base)
	b := imageOf(t, "", base, layerOf(t, map[string]string{"b": strings.Repeat("b", 1<<16)}))
	refA, refB := reg.push(t, "a:v1", a), reg.push(t, "b:v1", b)
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	for range 5 {
		if _, err := s.Pull(ctx, refA, nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		var pullErr error
		go func() { defer wg.Done(); _, pullErr = s.Pull(ctx, refB, nil) }()
		go func() { defer wg.Done(); s.Remove(ctx, refA) }()
		wg.Wait()
		if pullErr != nil {
			t.Fatal(pullErr)
		}
		got, err := s.Get(refB)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got.ChainIDs {
			if _, err := os.Stat(s.SnapshotPath(c)); err != nil {
				t.Fatalf("B's snapshot %s missing after a concurrent removal: %v", c, err)
			}
		}
		if err := s.Remove(ctx, refB); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLeasesPinSnapshots(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:v1", twoLayerImage(t, ""))
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	img, err := s.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire("ctr-1", ref); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire("", ref); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Acquire without holder = %v", err)
	}
	if _, err := s.Acquire("ctr-2", "absent:v1"); !errdefs.IsNotFound(err) {
		t.Errorf("Acquire(absent) = %v", err)
	}
	if err := s.Remove(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for _, c := range img.ChainIDs {
		if _, err := os.Stat(s.SnapshotPath(c)); err != nil {
			t.Errorf("leased snapshot removed: %v", err)
		}
	}
	if got := s.Leases(); got["ctr-1"] != img.ID {
		t.Errorf("Leases = %v", got)
	}
	// A pull of the removed image while leased fetches no layer.
	reg.blobGETs()
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	for d := range reg.blobGETs() {
		if d != img.ID {
			t.Errorf("re-pull fetched %s", d)
		}
	}
	if err := s.Remove(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("ctr-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("ctr-1"); err != nil {
		t.Errorf("second Release = %v", err)
	}
	if n := len(s.snaps.List()); n != 0 {
		t.Errorf("%d snapshots left after release", n)
	}
}

func TestRestart(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "7")
	ref := reg.push(t, "app:v1", img)
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	pulled, err := s.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire("ctr", ref); err != nil {
		t.Fatal(err)
	}
	usage := s.Usage()
	// Leftovers of a crash: a half-unpacked snapshot and a half-written blob.
	os.MkdirAll(filepath.Join(s.cfg.Root, "snapshots", "tmp", "new-123", "fs"), 0o755)
	os.WriteFile(filepath.Join(s.cfg.Root, "content", "ingest", "blob-1"), []byte("x"), 0o600)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := newService(s.cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != pulled.ID || !slices.Equal(got.RepoTags, pulled.RepoTags) || !slices.Equal(got.RepoDigests, pulled.RepoDigests) ||
		got.Size != pulled.Size || got.User != "7" || string(got.Config) != string(pulled.Config) {
		t.Errorf("after restart %+v\nwant %+v", got, pulled)
	}
	if l := s2.List(""); len(l) != 1 {
		t.Errorf("List = %v", l)
	}
	if u := s2.Usage(); u.UsedBytes != usage.UsedBytes || u.InodesUsed != usage.InodesUsed {
		t.Errorf("usage %+v, before restart %+v", u, usage)
	}
	if s2.Leases()["ctr"] != pulled.ID {
		t.Errorf("lease lost: %v", s2.Leases())
	}
	if left := tmpLeftovers(t, s2); len(left) != 0 {
		t.Errorf("tmp leftovers after restart: %v", left)
	}
	reg.blobGETs()
	if _, err := s2.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if gets := reg.blobGETs(); len(gets) != 0 {
		t.Errorf("pull after restart fetched %v", gets)
	}
}

func TestRecoveryDropsIncompleteImages(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	ref := reg.push(t, "app:v1", img)
	s := newTestService(t, nil, nil)
	pulled, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Someone deleted a snapshot behind berth's back.
	if err := os.RemoveAll(filepath.Dir(s.SnapshotPath(pulled.ChainIDs[1]))); err != nil {
		t.Fatal(err)
	}
	s2, err := newService(s.cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Get(ref); !errdefs.IsNotFound(err) {
		t.Errorf("incomplete image still listed: %v", err)
	}
	if n := len(s2.snaps.List()); n != 0 {
		t.Errorf("%d orphan snapshots kept", n)
	}
	// Pulling again repairs it.
	if _, err := s2.Pull(context.Background(), ref, nil); err != nil {
		t.Fatal(err)
	}
}
