package content

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Store holds blobs by digest. The directory is the truth; the store also remembers the
// size of every blob (read once at Open) so that Usage needs no walk. Its methods are
// safe for concurrent use.
type Store struct {
	blobs  string // <root>/content/blobs/sha256
	ingest string // <root>/content/ingest

	deferSync bool // see DeferSync

	mu    sync.Mutex
	sizes map[string]int64
}

// DeferSync makes Put and Writer.Commit skip their fsyncs (the blob's and its
// directory's): a committed blob is then complete for every reader at once, but durable
// only once the caller flushed the filesystem (syncfs). The caller must do that before it
// records anything that relies on the blob, and must treat a blob nothing durable refers
// to as possibly damaged after a crash (the image service deletes those when it starts).
// Call it right after Open.
func (s *Store) DeferSync() { s.deferSync = true }

// Info describes one stored blob.
type Info struct {
	Digest string
	Size   int64
}

// Open creates the store's directories under root if needed and removes the leftovers of
// writes that were interrupted (a crash, a killed berthd).
func Open(root string) (*Store, error) {
	s := &Store{
		blobs:  filepath.Join(root, "content", "blobs", "sha256"),
		ingest: filepath.Join(root, "content", "ingest"),
		sizes:  map[string]int64{},
	}
	for _, dir := range []string{s.blobs, s.ingest} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	entries, err := os.ReadDir(s.ingest)
	if err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.ingest, e.Name())); err != nil {
			return nil, fmt.Errorf("content store: removing leftover %s: %w", e.Name(), err)
		}
	}
	err = s.Walk(func(i Info) error {
		s.sizes[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Usage returns the bytes and the number of blobs stored.
func (s *Store) Usage() (bytes, blobs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.sizes {
		bytes += n
	}
	return bytes, int64(len(s.sizes))
}

func (s *Store) added(digest string, size int64) {
	s.mu.Lock()
	s.sizes[digest] = size
	s.mu.Unlock()
}

func (s *Store) path(digest string) (string, error) {
	if err := ValidateDigest(digest); err != nil {
		return "", err
	}
	return filepath.Join(s.blobs, strings.TrimPrefix(digest, "sha256:")), nil
}

// Put writes the blob d read from r, verifying it. Writing a blob already present
// succeeds (after verifying the new bytes).
func (s *Store) Put(d Descriptor, r io.Reader) error {
	w, err := s.Writer(d)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return w.Commit()
}

// ReadAll returns the content of a blob, verified against its digest: a blob damaged on
// disk is reported, never handed out. Meant for manifests and configs; errors wrap
// errdefs.ErrNotFound when the blob is absent.
func (s *Store) ReadAll(digest string) ([]byte, error) {
	f, err := s.Open(digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, err := NewVerifier(f, Descriptor{Digest: digest, Size: -1})
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(v)
	if err != nil {
		return nil, fmt.Errorf("blob %s on disk: %w", digest, err)
	}
	return b, nil
}

// Open opens a blob for reading; errors wrap errdefs.ErrNotFound when it is absent.
func (s *Store) Open(digest string) (*os.File, error) {
	p, err := s.path(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("blob " + digest + " not found")
	}
	return f, err
}

// Stat returns the blob's Info; errors wrap errdefs.ErrNotFound when it is absent.
func (s *Store) Stat(digest string) (Info, error) {
	p, err := s.path(digest)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, errdefs.NotFound("blob " + digest + " not found")
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Digest: digest, Size: st.Size()}, nil
}

// Has reports whether the blob is present.
func (s *Store) Has(digest string) bool {
	_, err := s.Stat(digest)
	return err == nil
}

// Delete removes a blob. Deleting an absent blob is not an error.
func (s *Store) Delete(digest string) error {
	p, err := s.path(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting blob %s: %w", digest, err)
	}
	s.mu.Lock()
	delete(s.sizes, digest)
	s.mu.Unlock()
	return nil
}

// Walk calls fn for every stored blob, in directory order. Files whose names are not
// digests are skipped. An error from fn stops the walk and is returned.
func (s *Store) Walk(fn func(Info) error) error {
	entries, err := os.ReadDir(s.blobs)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, e := range entries {
		digest := "sha256:" + e.Name()
		if !e.Type().IsRegular() || ValidateDigest(digest) != nil {
			continue
		}
		st, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if err := fn(Info{Digest: digest, Size: st.Size()}); err != nil {
			return err
		}
	}
	return nil
}
