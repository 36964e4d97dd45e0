package image

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// syncer makes what the service wrote under its root durable, with as few flushes as
// correctness allows: one syncfs before a metadata commit that needs it, shared by
// concurrent pulls.
//
// The content store and the snapshotter defer their syncs (DeferSync): a blob or a
// snapshot is renamed into place complete but not yet durable, and the writer calls
// wrote. Before the service commits an image record it calls durable, which returns
// once every write completed before the call is on disk: one syncfs, unless another
// caller's syncfs that started after those writes already covered them, or nothing was
// written since the last one. syncfs flushes the file data, inodes and directory
// entries (the renames included) of the whole filesystem and its journal, so one call
// covers every layer and blob of every pull in progress.
type syncer struct {
	root    string
	written atomic.Uint64 // writes completed, counted
	synced  atomic.Uint64 // writes known durable (a value of written)
	mu      sync.Mutex    // one flush at a time; waiters then find it done
	flush   func() error  // syncfs of root; tests count the calls
	flushes atomic.Int64
}

func newSyncer(root string) *syncer {
	s := &syncer{root: root}
	s.flush = s.syncfs
	return s
}

// wrote records a completed write that is not durable yet.
func (s *syncer) wrote() { s.written.Add(1) }

// durable returns once every write recorded before the call is durable.
func (s *syncer) durable() error {
	target := s.written.Load()
	if s.synced.Load() >= target {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.synced.Load() >= target {
		return nil // a flush that began after our writes has finished
	}
	covers := s.written.Load()
	if err := s.flush(); err != nil {
		return err
	}
	s.flushes.Add(1)
	s.synced.Store(covers) // under mu: covers never decreases
	return nil
}

func (s *syncer) syncfs() error {
	d, err := os.Open(s.root)
	if err != nil {
		return fmt.Errorf("image root: %w", err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("image root: syncfs: %w", err)
	}
	return nil
}
