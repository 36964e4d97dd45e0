package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/trash"
)

// Schema is the format version of the files this package writes. A file with a newer
// schema is reported as unreadable rather than misread.
const Schema = 1

const (
	metadataFile = "metadata.json"
	statusFile   = "status.json"
)

// idRE is what an object id may look like: it becomes a directory name.
var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// ErrNoStatus is returned (wrapped) by Load for an object that has metadata but no
// status file: its creation never finished.
var ErrNoStatus = errors.New("no status recorded")

// Store keeps the records of one kind of object (metadata M, status S) under a directory.
type Store[M, S any] struct {
	dir string
	bin *trash.Bin
}

// Record is one object as Load found it.
type Record[M, S any] struct {
	ID       string
	Metadata M
	Status   S
	// Revision is the status's revision (0 when there is none).
	Revision uint64
	// StatusErr tells why Status is the zero value: ErrNoStatus, or why the status file
	// could not be read.
	StatusErr error
}

type metadataFileV1[M any] struct {
	Schema   int `json:"schema"`
	Metadata M   `json:"metadata"`
}

type statusFileV1[S any] struct {
	Schema   int    `json:"schema"`
	Revision uint64 `json:"revision"`
	Status   S      `json:"status"`
}

// Open returns the store rooted at dir, creating dir if needed.
func Open[M, S any](dir string) (*Store[M, S], error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	bin, err := trash.Open(trash.For(dir))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &Store[M, S]{dir: dir, bin: bin}, nil
}

// Dir is the directory the store keeps its records in.
func (s *Store[M, S]) Dir() string { return s.dir }

// Trash is where Delete puts records; the owner sweeps it (trash.Bin.Sweep), in the
// background and at start.
func (s *Store[M, S]) Trash() *trash.Bin { return s.bin }

func (s *Store[M, S]) objDir(id string) (string, error) {
	if !idRE.MatchString(id) {
		return "", fmt.Errorf("store: invalid object id %q", id)
	}
	return filepath.Join(s.dir, id), nil
}

// Create records a new object's metadata. It fails if the object exists. The status is
// written later with Update (until then, Load reports ErrNoStatus).
func (s *Store[M, S]) Create(id string, meta M) error {
	dir, err := s.objDir(id)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("store: create %s: %w", id, err)
	}
	data, err := json.Marshal(metadataFileV1[M]{Schema: Schema, Metadata: meta})
	if err == nil {
		err = writeAtomic(dir, metadataFile, data)
	}
	if err == nil {
		err = atomicfile.SyncDir(s.dir)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("store: create %s: %w", id, err)
	}
	return nil
}

// Update writes the object's status with the given revision (the caller's last revision
// plus one). The object must exist.
func (s *Store[M, S]) Update(id string, revision uint64, status S) error {
	dir, err := s.objDir(id)
	if err != nil {
		return err
	}
	data, err := json.Marshal(statusFileV1[S]{Schema: Schema, Revision: revision, Status: status})
	if err != nil {
		return fmt.Errorf("store: encode status of %s: %w", id, err)
	}
	if err := writeAtomic(dir, statusFile, data); err != nil {
		return fmt.Errorf("store: update %s: %w", id, err)
	}
	return nil
}

// Delete removes the object's record: its directory is renamed into the trash and the
// store's directory fsynced, so that a removal that returned is not undone by a power
// failure (the object does not come back at the next start); the files go when the
// trash is swept. Deleting an absent object is not an error.
func (s *Store[M, S]) Delete(id string) error {
	dir, err := s.objDir(id)
	if err != nil {
		return err
	}
	if err := s.bin.Put(dir); err != nil {
		return fmt.Errorf("store: delete %s: %w", id, err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return fmt.Errorf("store: delete %s: %w", id, err)
	}
	return nil
}

// Load reads every record. Objects whose metadata cannot be read are skipped and
// reported in the second result (one error each); a status that cannot be read leaves
// the record with StatusErr set.
func (s *Store[M, S]) Load() ([]Record[M, S], []error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("store: %w", err)}
	}
	var recs []Record[M, S]
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !idRE.MatchString(e.Name()) {
			continue
		}
		rec, err := s.load(e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, rec)
	}
	return recs, errs
}

func (s *Store[M, S]) load(id string) (Record[M, S], error) {
	dir := filepath.Join(s.dir, id)
	atomicfile.RemoveTemps(dir)
	rec := Record[M, S]{ID: id}
	var mf metadataFileV1[M]
	if err := readJSON(filepath.Join(dir, metadataFile), &mf); err != nil {
		return rec, fmt.Errorf("store: %s: metadata: %w", id, err)
	}
	rec.Metadata = mf.Metadata
	var sf statusFileV1[S]
	err := readJSON(filepath.Join(dir, statusFile), &sf)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rec.StatusErr = ErrNoStatus
	case err != nil:
		rec.StatusErr = fmt.Errorf("status: %w", err)
	default:
		rec.Status, rec.Revision = sf.Status, sf.Revision
	}
	return rec, nil
}

// readJSON decodes path into v after checking the schema number it holds.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var head struct {
		Schema int `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	if head.Schema < 1 || head.Schema > Schema {
		return fmt.Errorf("schema %d is not one this berthd reads (1..%d)", head.Schema, Schema)
	}
	return json.Unmarshal(data, v)
}

// writeAtomic replaces dir/name with data: temporary file, fsync, rename, fsync of dir.
func writeAtomic(dir, name string, data []byte) error {
	return atomicfile.WriteFile(filepath.Join(dir, name), data, 0o600)
}
