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
// snapshot is renamed into place complete but not yet durable, through publish, which
// counts it. Before the service commits an image record it calls durable, which returns
// once everything published (visible) before the call is on disk: one syncfs, unless
// another caller's syncfs that started after those publications already covered them,
// or nothing was published since the last one. syncfs flushes the file data, inodes and
// directory entries (the renames included) of the whole filesystem and its journal, so
// one call covers every layer and blob of every pull in progress.
//
// A pull may rely on a blob or snapshot another pull published (it found it present),
// so "published before the call" must include everything any caller can have seen: the
// rename and its count happen together under vis (shared), and durable reads the count
// under vis (exclusive), so no publication can be visible yet uncounted.
type syncer struct {
	root    string
	vis     sync.RWMutex  // publish (shared) against durable reading written (exclusive)
	written atomic.Uint64 // publications, counted
	synced  atomic.Uint64 // publications known durable (a value of written)
	mu      sync.Mutex    // one flush at a time; waiters then find it done
	flush   func() error  // syncfs of root; tests count the calls
	flushes atomic.Int64
}

func newSyncer(root string) *syncer {
	s := &syncer{root: root}
	s.flush = s.syncfs
	return s
}

// publish runs commit, which makes a written blob or snapshot visible (a rename), and
// counts it as not durable yet. A failed commit is counted too: it may have renamed.
func (s *syncer) publish(commit func() error) error {
	s.vis.RLock()
	defer s.vis.RUnlock()
	defer s.written.Add(1)
	return commit()
}

// durable returns once everything published before the call is durable.
func (s *syncer) durable() error {
	s.vis.Lock() // wait for publications whose rename is done but not yet counted
	target := s.written.Load()
	s.vis.Unlock()
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
