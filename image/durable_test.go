package image

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSyncerCoalesces(t *testing.T) {
	s := newSyncer(t.TempDir())
	var calls int
	fail := false
	s.flush = func() error {
		calls++
		if fail {
			return errors.New("disk on fire")
		}
		return nil
	}
	if err := s.durable(); err != nil || calls != 0 {
		t.Fatalf("durable with nothing written: %v, %d flushes", err, calls)
	}
	wrote := func() { s.publish(func() error { return nil }) }
	wrote()
	wrote()
	if err := s.durable(); err != nil || calls != 1 {
		t.Fatalf("durable after two writes: %v, %d flushes, want 1", err, calls)
	}
	if err := s.durable(); err != nil || calls != 1 {
		t.Fatalf("durable again: %v, %d flushes, want still 1", err, calls)
	}
	wrote()
	fail = true
	if err := s.durable(); err == nil {
		t.Fatal("a failed flush reported success")
	}
	fail = false
	if err := s.durable(); err != nil || calls != 3 {
		t.Fatalf("durable after a failed flush: %v, %d flushes, want a retry", err, calls)
	}
	// Concurrent callers after one write: the first flushes, the others find it done.
	wrote()
	calls = 0
	var mu sync.Mutex
	s.flush = func() error { mu.Lock(); calls++; mu.Unlock(); return nil }
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := s.durable(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if calls != 1 {
		t.Errorf("%d flushes for 8 concurrent callers after one write, want 1", calls)
	}
}

// TestDurableWaitsForPublication: a blob another pull renamed into place but has not
// counted yet is visible, so durable must not return before it is counted and flushed.
func TestDurableWaitsForPublication(t *testing.T) {
	s := newSyncer(t.TempDir())
	var flushes atomic.Int32
	s.flush = func() error { flushes.Add(1); return nil }
	renamed, release := make(chan struct{}), make(chan struct{})
	go s.publish(func() error {
		close(renamed) // visible from here on
		<-release
		return nil
	})
	<-renamed
	done := make(chan error)
	go func() { done <- s.durable() }()
	select {
	case <-done:
		t.Fatal("durable returned while a visible publication was not counted")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil || flushes.Load() != 1 {
		t.Fatalf("durable = %v after %d flushes, want one flush", err, flushes.Load())
	}
}

// TestPullFlushesOnceBeforeTheRecord checks the durability order of a pull: every blob
// and snapshot exists when the one flush runs, and the image record does not yet.
func TestPullFlushesOnceBeforeTheRecord(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	ref := reg.push(t, "app:v1", img)
	s := newTestService(t, nil, nil)
	flushes := 0
	s.sync.flush = func() error {
		flushes++
		if n := len(s.meta.Images()); n != 0 {
			t.Errorf("%d image records exist before the flush", n)
		}
		if n := len(s.snaps.List()); n != 2 {
			t.Errorf("%d snapshots at the flush, want both", n)
		}
		for _, d := range []string{configDigest(t, img), digestOf(t, img)} {
			if !s.content.Has(d) {
				t.Errorf("blob %s missing at the flush", d)
			}
		}
		return s.sync.syncfs()
	}
	ctx := context.Background()
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if flushes != 1 {
		t.Errorf("a cold pull of two layers flushed %d times, want once", flushes)
	}
	s.sync.flush = func() error { flushes++; return nil }
	flushes = 0
	// Nothing new to write: no flush.
	ref2 := reg.push(t, "other:v2", img)
	for _, r := range []string{ref, ref2} {
		if _, err := s.Pull(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if flushes != 0 {
		t.Errorf("pulls of a present image flushed %d times", flushes)
	}
	// Pulling again under names already recorded writes no metadata either.
	db := filepath.Join(s.cfg.Root, "metadata.db")
	before, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{ref, ref2, ref} {
		if _, err := s.Pull(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if after, err := os.Stat(db); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("repeated pulls wrote the metadata database (%v -> %v, %v)", before.ModTime(), after.ModTime(), err)
	}
	if got, err := s.Get(ref2); err != nil || len(got.RepoTags) != 2 {
		t.Errorf("names after the repeated pulls: %+v, %v", got, err)
	}
}

// TestCrashBeforeTheFlush stops a pull where a crash could: blobs and snapshots written,
// not flushed, no record. Whatever the disk kept of them (here: files emptied, as a
// crash can leave them), the next start deletes them and the image pulls again.
func TestCrashBeforeTheFlush(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:v1", twoLayerImage(t, ""))
	s := newTestService(t, nil, nil)
	s.sync.flush = func() error { return errors.New("power cut") }
	if _, err := s.Pull(context.Background(), ref, nil); err == nil || len(s.List("")) != 0 {
		t.Fatalf("pull with a failing flush: %v, images %v", err, s.List(""))
	}
	s.Close()
	err := filepath.WalkDir(s.cfg.Root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Base(p) != "metadata.db" {
			err = os.Truncate(p, 0)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := newService(s.cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, blobs := len(s2.snaps.List()), len(blobsOf(t, s2)); n != 0 || blobs != 0 {
		t.Errorf("after restart: %d snapshots, %d blobs; want none", n, blobs)
	}
	if _, err := s2.Pull(context.Background(), ref, nil); err != nil {
		t.Fatalf("pull after restart: %v", err)
	}
}

func blobsOf(t *testing.T, s *Service) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.cfg.Root, "content", "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
