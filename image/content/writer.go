package content

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-runtime/berth/internal/atomicfile"
)

// Writer streams one blob into the store. Bytes go to a temporary file while being
// hashed; Commit checks digest and size, fsyncs and renames the file into place. Close
// without a successful Commit discards everything. A Writer is not safe for concurrent
// use; several Writers for the same digest may run at once (the last rename wins, with
// identical content).
type Writer struct {
	s      *Store
	f      *os.File
	d      *digester
	err    error // sticky: the first failure
	closed bool
}

// Writer starts writing the blob d. d.Size may be negative when unknown.
func (s *Store) Writer(d Descriptor) (*Writer, error) {
	dg, err := newDigester(d)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.ingest, "blob-")
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return &Writer{s: s, f: f, d: dg}, nil
}

// Write implements io.Writer. It fails as soon as the data runs past the expected size.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("content writer: write after close")
	}
	ok := p[:w.d.room(len(p))]
	n, err := w.f.Write(ok)
	if err != nil {
		w.err = fmt.Errorf("blob %s: %w", w.d.expected.Digest, err)
		return n, w.err
	}
	if err := w.d.add(ok); err != nil {
		w.err = err
		return n, err
	}
	return len(p), nil
}

// Commit verifies the blob and moves it into the store, durably unless the store defers
// syncs (DeferSync). The Writer is closed afterwards whatever the outcome.
func (w *Writer) Commit() error {
	if w.closed {
		return errors.New("content writer: commit after close")
	}
	defer w.Close()
	if w.err != nil {
		return w.err
	}
	if err := w.d.check(); err != nil {
		return err
	}
	digest := w.d.expected.Digest
	if !w.s.deferSync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("blob %s: %w", digest, err)
		}
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	target, _ := w.s.path(digest)
	if err := os.Rename(w.f.Name(), target); err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	w.f = nil
	w.s.added(digest, w.d.n)
	if w.s.deferSync {
		return nil
	}
	return atomicfile.SyncDir(filepath.Dir(target))
}

// Close discards an uncommitted blob. It is safe to call more than once.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
	}
	return nil
}
