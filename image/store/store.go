package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketImages = []byte("images")
	bucketRefs   = []byte("refs")
	bucketLayers = []byte("layers")
	bucketLeases = []byte("leases")
	allBuckets   = [][]byte{bucketImages, bucketRefs, bucketLayers, bucketLeases}
)

// Image is the durable record of one image. Names are not part of it (see Refs).
type Image struct {
	ID     string   `json:"id"`
	Size   uint64   `json:"size"`
	User   string   `json:"user,omitempty"`
	Layers []Layer  `json:"layers"`
	Blobs  []string `json:"blobs"` // content-store blobs it owns: config, manifests, indexes
	// Config is a copy of the config blob, so that status needs no disk read.
	Config  []byte    `json:"config,omitempty"`
	Pinned  bool      `json:"pinned,omitempty"`
	Created time.Time `json:"created"`
}

// ChainIDs returns the snapshot keys of the image's layers, base first.
func (img Image) ChainIDs() []string {
	out := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		out[i] = l.ChainID
	}
	return out
}

// Layer records what is known of one layer blob once it was unpacked.
type Layer struct {
	Digest    string `json:"digest"` // of the compressed blob, as in the manifest
	Size      int64  `json:"size"`   // of the compressed blob
	MediaType string `json:"mediaType,omitempty"`
	DiffID    string `json:"diffID"`
	ChainID   string `json:"chainID"`
}

// Lease pins snapshots for a holder, such as a container using an image's layers.
type Lease struct {
	Holder   string    `json:"holder"`
	ImageID  string    `json:"imageID"`
	ChainIDs []string  `json:"chainIDs"`
	Created  time.Time `json:"created"`
}

// Store is the metadata database and its in-memory copy. Safe for concurrent use.
type Store struct {
	db  *bolt.DB
	log *slog.Logger

	mu     sync.RWMutex
	images map[string]Image
	refs   map[string]string              // ref -> image ID
	names  map[string]map[string]struct{} // image ID -> refs
	layers map[string]Layer
	leases map[string]Lease
}

// Open opens (creating if needed) the database at path and loads it. Refs naming an
// image that has no record are dropped; unreadable records are logged and skipped.
func Open(path string, log *slog.Logger) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("image metadata %s: %w", path, err)
	}
	s := &Store{
		db:     db,
		log:    log,
		images: map[string]Image{},
		refs:   map[string]string{},
		names:  map[string]map[string]struct{}{},
		layers: map[string]Layer{},
		leases: map[string]Lease{},
	}
	if err := db.Update(s.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("image metadata %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) load(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if err := loadJSON(s.log, tx, bucketImages, func(img Image) { s.images[img.ID] = img }); err != nil {
		return err
	}
	if err := loadJSON(s.log, tx, bucketLayers, func(l Layer) { s.layers[l.Digest] = l }); err != nil {
		return err
	}
	if err := loadJSON(s.log, tx, bucketLeases, func(l Lease) { s.leases[l.Holder] = l }); err != nil {
		return err
	}
	refs := tx.Bucket(bucketRefs)
	var dangling []string
	err := refs.ForEach(func(k, v []byte) error {
		if _, ok := s.images[string(v)]; !ok {
			dangling = append(dangling, string(k))
			return nil
		}
		s.setRef(string(k), string(v))
		return nil
	})
	if err != nil {
		return err
	}
	for _, ref := range dangling {
		if err := refs.Delete([]byte(ref)); err != nil {
			return err
		}
	}
	return nil
}

// loadJSON decodes every record of a bucket. A record that does not decode is logged
// and skipped (and left in place for a human to inspect), never fatal.
func loadJSON[T any](log *slog.Logger, tx *bolt.Tx, bucket []byte, add func(T)) error {
	return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		var rec T
		if err := json.Unmarshal(v, &rec); err != nil {
			log.Warn("skipping unreadable image metadata record", "bucket", string(bucket), "key", string(k), "error", err)
			return nil
		}
		add(rec)
		return nil
	})
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// setRef points ref at id in memory, taking it from the image it named before.
func (s *Store) setRef(ref, id string) {
	if old, ok := s.refs[ref]; ok {
		delete(s.names[old], ref)
	}
	s.refs[ref] = id
	if s.names[id] == nil {
		s.names[id] = map[string]struct{}{}
	}
	s.names[id][ref] = struct{}{}
}

// Image returns the record of an image.
func (s *Store) Image(id string) (Image, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	img, ok := s.images[id]
	return clone(img), ok
}

// Images returns every image record, sorted by ID.
func (s *Store) Images() []Image {
	s.mu.RLock()
	out := make([]Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, clone(img))
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Resolve returns the ID of the image a reference names.
func (s *Store) Resolve(ref string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.refs[ref]
	return id, ok
}

// Refs returns the references naming an image, tags ("name:tag") and digests
// ("name@sha256:…") apart, each sorted.
func (s *Store) Refs(id string) (tags, digests []string) {
	s.mu.RLock()
	for ref := range s.names[id] {
		if strings.Contains(ref, "@") {
			digests = append(digests, ref)
		} else {
			tags = append(tags, ref)
		}
	}
	s.mu.RUnlock()
	sort.Strings(tags)
	sort.Strings(digests)
	return tags, digests
}

// IDsWithPrefix returns the IDs of the images whose ID starts with prefix.
func (s *Store) IDsWithPrefix(prefix string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for id := range s.images {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Layer returns the record of a layer blob.
func (s *Store) Layer(digest string) (Layer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.layers[digest]
	return l, ok
}

// Layers returns every layer record.
func (s *Store) Layers() []Layer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Layer, 0, len(s.layers))
	for _, l := range s.layers {
		out = append(out, l)
	}
	return out
}

// Leases returns every lease, sorted by holder.
func (s *Store) Leases() []Lease {
	s.mu.RLock()
	out := make([]Lease, 0, len(s.leases))
	for _, l := range s.leases {
		l.ChainIDs = slices.Clone(l.ChainIDs)
		out = append(out, l)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Holder < out[j].Holder })
	return out
}

// Lease returns one holder's lease.
func (s *Store) Lease(holder string) (Lease, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.leases[holder]
	l.ChainIDs = slices.Clone(l.ChainIDs)
	return l, ok
}

func clone(img Image) Image {
	img.Layers = slices.Clone(img.Layers)
	img.Blobs = slices.Clone(img.Blobs)
	img.Config = slices.Clone(img.Config)
	return img
}
