package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

const (
	infoFile = "info.json"
	fsDir    = "fs"
	tmpDir   = "tmp"
	// ownInodes is what a snapshot adds around its files: its directory, fs/ and info.json.
	ownInodes = 3
)

var chainRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// Info describes one committed snapshot.
type Info struct {
	ChainID string    `json:"chainID"`
	Size    int64     `json:"size"`   // bytes of file content
	Inodes  int64     `json:"inodes"` // inodes, the snapshot's own directories included
	Created time.Time `json:"created"`
}

// Snapshotter manages the snapshots under one root. Its methods are safe for concurrent
// use; it keeps the Info of every snapshot in memory.
type Snapshotter struct {
	dir string // <root>/snapshots
	tmp string // <root>/snapshots/tmp
	log *slog.Logger

	deferSync bool // see DeferSync

	mu    sync.Mutex
	infos map[string]Info
}

// DeferSync makes Commit skip its syncfs and the fsync of the snapshots directory: a
// committed snapshot is then whole for every reader at once, but durable only once the
// caller flushed the filesystem. The caller must do that before it records anything that
// relies on the snapshot, and must remove the snapshots that nothing durable refers to
// when it starts (after a crash they may be partial). Call it right after Open.
func (s *Snapshotter) DeferSync() { s.deferSync = true }

// Open loads the snapshots under <root>/snapshots, creating the directories if needed.
// It removes the leftovers of interrupted unpacks and removals, and any snapshot
// directory without a readable info.json (which a commit never produces).
func Open(root string, log *slog.Logger) (*Snapshotter, error) {
	s := &Snapshotter{
		dir:   filepath.Join(root, "snapshots"),
		tmp:   filepath.Join(root, "snapshots", tmpDir),
		log:   log,
		infos: map[string]Info{},
	}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	if err := removeChildren(s.tmp); err != nil {
		return nil, fmt.Errorf("snapshots: cleaning %s: %w", s.tmp, err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	for _, e := range entries {
		if e.Name() == tmpDir {
			continue
		}
		info, err := readInfo(filepath.Join(s.dir, e.Name()))
		if err == nil && info.ChainID != "sha256:"+e.Name() {
			err = fmt.Errorf("info.json names %s", info.ChainID)
		}
		if err != nil {
			log.Warn("removing broken snapshot", "dir", e.Name(), "error", err)
			if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
				return nil, fmt.Errorf("snapshots: removing broken %s: %w", e.Name(), err)
			}
			continue
		}
		s.infos[info.ChainID] = info
	}
	return s, nil
}

func readInfo(dir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return info, err
	}
	err = json.Unmarshal(b, &info)
	return info, err
}

func removeChildren(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func validate(chainID string) error {
	if !chainRE.MatchString(chainID) {
		return errdefs.InvalidArgument(fmt.Sprintf("invalid chain ID %q", chainID))
	}
	return nil
}

func (s *Snapshotter) path(chainID string) string {
	return filepath.Join(s.dir, strings.TrimPrefix(chainID, "sha256:"))
}

// Path is the directory holding the files of the snapshot, the overlayfs lowerdir.
func (s *Snapshotter) Path(chainID string) string {
	return filepath.Join(s.path(chainID), fsDir)
}

// Stat returns the Info of a committed snapshot.
func (s *Snapshotter) Stat(chainID string) (Info, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.infos[chainID]
	return info, ok
}

// List returns every committed snapshot, sorted by chain ID.
func (s *Snapshotter) List() []Info {
	s.mu.Lock()
	out := make([]Info, 0, len(s.infos))
	for _, info := range s.infos {
		out = append(out, info)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ChainID < out[j].ChainID })
	return out
}

// Usage sums the recorded sizes and inode counts of all snapshots.
func (s *Snapshotter) Usage() (bytes, inodes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, info := range s.infos {
		bytes += info.Size
		inodes += info.Inodes
	}
	return bytes, inodes
}

// Removed is a snapshot taken out of the store, waiting to be deleted from disk.
type Removed struct{ path string }

// Purge deletes the removed snapshot's files. It can take long: call it without
// holding locks.
func (r Removed) Purge() error {
	if r.path == "" {
		return nil
	}
	return os.RemoveAll(r.path)
}

// Remove takes a snapshot away at once (a rename into tmp/) and returns what remains
// to Purge. Removing an absent snapshot returns an empty Removed and no error.
func (s *Snapshotter) Remove(chainID string) (Removed, error) {
	if err := validate(chainID); err != nil {
		return Removed{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.infos[chainID]; !ok {
		return Removed{}, nil
	}
	trash, err := os.MkdirTemp(s.tmp, "rm-")
	if err != nil {
		return Removed{}, fmt.Errorf("removing snapshot %s: %w", chainID, err)
	}
	if err := os.Rename(s.path(chainID), filepath.Join(trash, "s")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.Remove(trash)
		return Removed{}, fmt.Errorf("removing snapshot %s: %w", chainID, err)
	}
	delete(s.infos, chainID)
	return Removed{path: trash}, nil
}

// Pending is a snapshot being unpacked, invisible until Commit.
type Pending struct {
	s   *Snapshotter
	dir string
}

// Prepare creates an empty directory to unpack one layer into (Pending.Root).
func (s *Snapshotter) Prepare() (*Pending, error) {
	dir, err := os.MkdirTemp(s.tmp, "new-")
	if err != nil {
		return nil, fmt.Errorf("preparing snapshot: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, fsDir), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("preparing snapshot: %w", err)
	}
	return &Pending{s: s, dir: dir}, nil
}

// Root is the directory to unpack into.
func (p *Pending) Root() string { return filepath.Join(p.dir, fsDir) }

// Abort deletes the pending snapshot. It is safe to call after Commit (it does nothing
// then) and more than once.
func (p *Pending) Abort() error {
	if p.dir == "" {
		return nil
	}
	err := os.RemoveAll(p.dir)
	p.dir = ""
	return err
}

// Commit makes the pending snapshot the snapshot of chainID, recording size and inodes
// (as unpack counted them). The data is flushed to disk first unless the snapshotter
// defers syncs (DeferSync). If the snapshot already exists (another pull committed it
// meanwhile) the pending one is discarded and the existing Info returned.
func (p *Pending) Commit(chainID string, size, inodes int64) (Info, error) {
	if err := validate(chainID); err != nil {
		return Info{}, err
	}
	if p.dir == "" {
		return Info{}, errors.New("commit of an aborted snapshot")
	}
	info := Info{ChainID: chainID, Size: size, Inodes: inodes + ownInodes, Created: time.Now().UTC()}
	if err := p.flush(info); err != nil {
		return Info{}, fmt.Errorf("committing snapshot %s: %w", chainID, err)
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing, ok := s.infos[chainID]; ok {
		p.Abort()
		return existing, nil
	}
	if err := os.Rename(p.dir, s.path(chainID)); err != nil {
		return Info{}, fmt.Errorf("committing snapshot %s: %w", chainID, err)
	}
	p.dir = ""
	if s.deferSync {
		s.infos[chainID] = info
		return info, nil
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		// The rename happened; a crash may forget it, which only costs a re-fetch.
		s.log.Warn("fsync of the snapshots directory failed", "error", err)
	}
	s.infos[chainID] = info
	return info, nil
}

// flush writes info.json and, unless syncs are deferred, makes everything below the
// pending directory durable. syncfs flushes the whole filesystem in one call, far
// cheaper than an fsync per file.
func (p *Pending) flush(info Info) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.dir, infoFile), b, 0o600); err != nil {
		return err
	}
	if p.s.deferSync {
		return nil
	}
	d, err := os.Open(p.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}
