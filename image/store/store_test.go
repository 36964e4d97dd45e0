package store

import (
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-runtime/berth/internal/errdefs"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func id(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, discard)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func image(c byte) Image {
	return Image{
		ID:      id(c),
		Size:    42,
		User:    "1000",
		Layers:  []Layer{{Digest: id('l'), Size: 10, DiffID: id('d'), ChainID: id('d')}},
		Blobs:   []string{id(c), id('m')},
		Created: time.Unix(100, 0).UTC(),
	}
}

func TestPutResolveRefs(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "metadata.db"))
	defer s.Close()
	a := image('a')
	tags := []string{"docker.io/library/a:1", "docker.io/library/a:latest"}
	digest := "docker.io/library/a@" + id('m')
	if err := s.Put(a, append(slices.Clone(tags), digest), a.Layers); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		want string
		ok   bool
	}{
		{"docker.io/library/a:1", a.ID, true},
		{digest, a.ID, true},
		{"docker.io/library/a:2", "", false},
	}
	for _, tt := range tests {
		if got, ok := s.Resolve(tt.ref); got != tt.want || ok != tt.ok {
			t.Errorf("Resolve(%q) = %q, %v", tt.ref, got, ok)
		}
	}
	gotTags, gotDigests := s.Refs(a.ID)
	if !slices.Equal(gotTags, tags) || !slices.Equal(gotDigests, []string{digest}) {
		t.Errorf("Refs = %v, %v", gotTags, gotDigests)
	}
	if l, ok := s.Layer(id('l')); !ok || l.ChainID != id('d') {
		t.Errorf("Layer = %+v, %v", l, ok)
	}
	if got, ok := s.Image(a.ID); !ok || got.User != "1000" || len(got.Layers) != 1 {
		t.Errorf("Image = %+v, %v", got, ok)
	}
	// Handed-out records are copies.
	got, _ := s.Image(a.ID)
	got.Layers[0].ChainID = "changed"
	if again, _ := s.Image(a.ID); again.Layers[0].ChainID != id('d') {
		t.Error("Image returned shared memory")
	}
}

func TestTagMoves(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "metadata.db"))
	defer s.Close()
	a, b := image('a'), image('b')
	if err := s.Put(a, []string{"x:latest", "x@" + id('1')}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(b, []string{"x:latest", "x@" + id('2')}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Resolve("x:latest"); got != b.ID {
		t.Errorf("tag names %s, want %s", got, b.ID)
	}
	tags, digests := s.Refs(a.ID)
	if len(tags) != 0 || !slices.Equal(digests, []string{"x@" + id('1')}) {
		t.Errorf("old image refs = %v %v", tags, digests)
	}
	if tags, _ := s.Refs(b.ID); !slices.Equal(tags, []string{"x:latest"}) {
		t.Errorf("new image tags = %v", tags)
	}
}

func TestDeleteAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	s := open(t, path)
	a, b := image('a'), image('b')
	if err := s.Put(a, []string{"a:1", "a@" + id('1')}, a.Layers); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(b, []string{"b:1"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLease(Lease{Holder: "ctr1", ImageID: b.ID, ChainIDs: []string{id('d')}}); err != nil {
		t.Fatal(err)
	}
	removed, err := s.Delete(a.ID)
	if err != nil || removed.ID != a.ID {
		t.Fatalf("Delete = %+v, %v", removed, err)
	}
	if _, err := s.Delete(a.ID); !errdefs.IsNotFound(err) {
		t.Errorf("second Delete = %v, want not found", err)
	}
	if _, ok := s.Resolve("a:1"); ok {
		t.Error("tag of a deleted image still resolves")
	}
	if err := s.DeleteLayers([]string{id('l'), id('z')}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	if imgs := s.Images(); len(imgs) != 1 || imgs[0].ID != b.ID {
		t.Errorf("after reopen Images = %+v", imgs)
	}
	if got, ok := s.Resolve("b:1"); !ok || got != b.ID {
		t.Errorf("after reopen Resolve = %q, %v", got, ok)
	}
	if len(s.Layers()) != 0 {
		t.Errorf("after reopen Layers = %v", s.Layers())
	}
	if l, ok := s.Lease("ctr1"); !ok || l.ImageID != b.ID {
		t.Errorf("after reopen Lease = %+v, %v", l, ok)
	}
	if ok, err := s.DeleteLease("ctr1"); !ok || err != nil {
		t.Errorf("DeleteLease = %v, %v", ok, err)
	}
	if ok, err := s.DeleteLease("ctr1"); ok || err != nil {
		t.Errorf("second DeleteLease = %v, %v", ok, err)
	}
	if len(s.Leases()) != 0 {
		t.Errorf("Leases = %v", s.Leases())
	}
}

func TestOpenSkipsBrokenRecordsAndDanglingRefs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	s := open(t, path)
	a := image('a')
	if err := s.Put(a, []string{"a:1"}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketImages).Put([]byte(id('b')), []byte("{not json")); err != nil {
			return err
		}
		return tx.Bucket(bucketRefs).Put([]byte("ghost:1"), []byte(id('g')))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	if imgs := s.Images(); len(imgs) != 1 || imgs[0].ID != a.ID {
		t.Errorf("Images = %+v", imgs)
	}
	if _, ok := s.Resolve("ghost:1"); ok {
		t.Error("dangling ref kept")
	}
}

func TestIDsWithPrefix(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "metadata.db"))
	defer s.Close()
	a1 := Image{ID: "sha256:aa" + strings.Repeat("1", 62)}
	a2 := Image{ID: "sha256:aa" + strings.Repeat("2", 62)}
	for _, img := range []Image{a1, a2} {
		if err := s.Put(img, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   int
	}{
		{"sha256:a", 2}, {"sha256:aa1", 1}, {"sha256:b", 0}, {a1.ID, 1},
	}
	for _, tt := range tests {
		if got := s.IDsWithPrefix(tt.prefix); len(got) != tt.want {
			t.Errorf("IDsWithPrefix(%q) = %v, want %d", tt.prefix, got, tt.want)
		}
	}
}

func TestConcurrentWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "metadata.db"))
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := image(byte('a' + i))
			if err := s.Put(img, []string{"shared:latest", "own" + string(rune('a'+i)) + ":1"}, nil); err != nil {
				t.Error(err)
			}
			s.Images()
			s.Resolve("shared:latest")
		}()
	}
	wg.Wait()
	owner, ok := s.Resolve("shared:latest")
	if !ok {
		t.Fatal("shared tag lost")
	}
	n := 0
	for _, img := range s.Images() {
		tags, _ := s.Refs(img.ID)
		if slices.Contains(tags, "shared:latest") {
			n++
			if img.ID != owner {
				t.Errorf("shared tag listed on %s, resolves to %s", img.ID, owner)
			}
		}
	}
	if n != 1 {
		t.Errorf("shared tag listed on %d images", n)
	}
}

// TestDeleteWithLayers: the image and the layer records named go in one transaction,
// durably; other layer records stay.
func TestDeleteWithLayers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	s := open(t, path)
	a := image('a')
	other := Layer{Digest: id('o'), Size: 1, DiffID: id('e'), ChainID: id('e')}
	if err := s.Put(a, []string{"a:1"}, append(a.Layers, other)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(a.ID, id('l'), id('x')); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	if _, ok := s.Layer(id('l')); ok {
		t.Error("the deleted image's layer record survived")
	}
	if _, ok := s.Layer(other.Digest); !ok {
		t.Error("a layer record not named was deleted")
	}
	if len(s.Images()) != 0 {
		t.Errorf("images after delete: %v", s.Images())
	}
}
