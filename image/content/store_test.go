package content

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func open(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func ingestEntries(t *testing.T, root string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "content", "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestPut(t *testing.T) {
	blob := []byte(`{"schemaVersion":2}`)
	other := []byte("something else")
	tests := []struct {
		name     string
		desc     Descriptor
		data     []byte
		mismatch bool
	}{
		{name: "exact", desc: Descriptor{Digest: digestOf(blob), Size: int64(len(blob))}, data: blob},
		{name: "size unknown", desc: Descriptor{Digest: digestOf(blob), Size: -1}, data: blob},
		{name: "empty", desc: Descriptor{Digest: digestOf(nil), Size: 0}, data: nil},
		{name: "wrong bytes", desc: Descriptor{Digest: digestOf(blob), Size: int64(len(other))}, data: other, mismatch: true},
		{name: "too long", desc: Descriptor{Digest: digestOf(blob), Size: 3}, data: blob, mismatch: true},
		{name: "too short", desc: Descriptor{Digest: digestOf(blob), Size: int64(len(blob)) + 1}, data: blob, mismatch: true},
		{name: "right digest wrong size", desc: Descriptor{Digest: digestOf(blob), Size: 5}, data: blob[:5], mismatch: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root := open(t)
			err := s.Put(tt.desc, iotest.HalfReader(bytes.NewReader(tt.data)))
			if tt.mismatch {
				if !errors.Is(err, ErrDigestMismatch) || !errors.Is(err, errdefs.ErrDataLoss) {
					t.Fatalf("Put = %v, want a digest mismatch of class data loss", err)
				}
				if !strings.Contains(err.Error(), tt.desc.Digest) {
					t.Errorf("error %q does not name the expected digest", err)
				}
				if s.Has(tt.desc.Digest) {
					t.Error("mismatched blob was stored")
				}
				if n := len(ingestEntries(t, root)); n != 0 {
					t.Errorf("%d temporary files left behind", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := s.ReadAll(tt.desc.Digest)
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("ReadAll = %q, %v; want %q", got, err, tt.data)
			}
			if info, err := s.Stat(tt.desc.Digest); err != nil || info.Size != int64(len(tt.data)) {
				t.Errorf("Stat = %+v, %v", info, err)
			}
			// Writing the same blob again is fine.
			if err := s.Put(tt.desc, bytes.NewReader(tt.data)); err != nil {
				t.Errorf("second Put: %v", err)
			}
		})
	}
}

func TestMismatchNamesBothDigests(t *testing.T) {
	s, _ := open(t)
	want := digestOf([]byte("a"))
	err := s.Put(Descriptor{Digest: want, Size: 1}, strings.NewReader("b"))
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Put = %v, want *MismatchError", err)
	}
	if got := digestOf([]byte("b")); me.Digest != got || !strings.Contains(err.Error(), got) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q should name %s and %s", err, want, got)
	}
}

func TestInvalidDigest(t *testing.T) {
	s, _ := open(t)
	for _, d := range []string{"", "sha256:abc", "md5:" + strings.Repeat("a", 32), "sha256:../../etc/passwd"} {
		if _, err := s.Writer(Descriptor{Digest: d}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Writer(%q) = %v, want invalid argument", d, err)
		}
		if _, err := s.ReadAll(d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ReadAll(%q) = %v, want invalid argument", d, err)
		}
	}
}

func TestDeleteWalkNotFound(t *testing.T) {
	s, root := open(t)
	blobs := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	for _, b := range blobs {
		if err := s.Put(Descriptor{Digest: digestOf(b), Size: int64(len(b))}, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	// A stray file is not a blob.
	if err := os.WriteFile(filepath.Join(root, "content", "blobs", "sha256", "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(digestOf(blobs[0])); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(digestOf(blobs[0])); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	seen := map[string]int64{}
	if err := s.Walk(func(i Info) error { seen[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{digestOf(blobs[1]): 3, digestOf(blobs[2]): 5}
	if len(seen) != len(want) {
		t.Fatalf("Walk saw %v, want %v", seen, want)
	}
	for d, n := range want {
		if seen[d] != n {
			t.Errorf("Walk: %s size %d, want %d", d, seen[d], n)
		}
	}
	stop := errors.New("stop")
	if err := s.Walk(func(Info) error { return stop }); err != stop {
		t.Errorf("Walk returned %v, want the callback's error", err)
	}
	if bytes, n := s.Usage(); bytes != 8 || n != 2 {
		t.Errorf("Usage = %d bytes in %d blobs, want 8 in 2", bytes, n)
	}
	reopened, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if bytes, n := reopened.Usage(); bytes != 8 || n != 2 {
		t.Errorf("after reopen Usage = %d bytes in %d blobs, want 8 in 2", bytes, n)
	}
	if _, err := s.ReadAll(digestOf(blobs[0])); !errdefs.IsNotFound(err) {
		t.Errorf("ReadAll(deleted) = %v, want not found", err)
	}
	if _, err := s.Stat(digestOf(blobs[0])); !errdefs.IsNotFound(err) {
		t.Errorf("Stat(deleted) = %v, want not found", err)
	}
}

func TestCorruptBlobOnDisk(t *testing.T) {
	s, root := open(t)
	b := []byte("config")
	d := digestOf(b)
	if err := s.Put(Descriptor{Digest: d, Size: int64(len(b))}, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "content", "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	if err := os.WriteFile(p, []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAll(d); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("ReadAll(corrupt) = %v, want digest mismatch", err)
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	s, root := open(t)
	w, err := s.Writer(Descriptor{Digest: digestOf([]byte("x")), Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: the writer is never committed nor closed.
	if n := len(ingestEntries(t, root)); n != 1 {
		t.Fatalf("%d ingest files, want 1", n)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if n := len(ingestEntries(t, root)); n != 0 {
		t.Errorf("%d ingest files left after Open, want 0", n)
	}
}

func TestWriterCloseDiscards(t *testing.T) {
	s, root := open(t)
	d := digestOf([]byte("x"))
	w, err := s.Writer(Descriptor{Digest: d, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	w.Close()
	w.Close()
	if err := w.Commit(); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if s.Has(d) || len(ingestEntries(t, root)) != 0 {
		t.Error("closed writer left data behind")
	}
}

func TestVerifier(t *testing.T) {
	data := []byte("layer bytes")
	tests := []struct {
		name    string
		desc    Descriptor
		wantErr bool
	}{
		{"ok", Descriptor{Digest: digestOf(data), Size: int64(len(data))}, false},
		{"unknown size", Descriptor{Digest: digestOf(data), Size: -1}, false},
		{"bad digest", Descriptor{Digest: digestOf([]byte("other")), Size: int64(len(data))}, true},
		{"short", Descriptor{Digest: digestOf(data), Size: 4}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(iotest.OneByteReader(bytes.NewReader(data)), tt.desc)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verified(); err == nil {
				t.Error("Verified before reading succeeded")
			}
			got, err := io.ReadAll(v)
			if tt.wantErr {
				if !errors.Is(err, ErrDigestMismatch) || !errors.Is(v.Verified(), ErrDigestMismatch) {
					t.Errorf("ReadAll = %v, Verified = %v; want digest mismatch", err, v.Verified())
				}
				if tt.desc.Size >= 0 && v.Count() > tt.desc.Size+1 {
					t.Errorf("read %d bytes, more than one past the expected %d", v.Count(), tt.desc.Size)
				}
				return
			}
			if err != nil || v.Verified() != nil || !bytes.Equal(got, data) || v.Count() != int64(len(data)) {
				t.Errorf("ReadAll = %q, %v; Verified = %v", got, err, v.Verified())
			}
		})
	}
}

func TestPutDeferredSync(t *testing.T) {
	s, root := open(t)
	s.DeferSync()
	b := []byte(`{"deferred":true}`)
	d := Descriptor{Digest: digestOf(b), Size: int64(len(b))}
	if err := s.Put(d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadAll(d.Digest); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if err := s.Put(Descriptor{Digest: d.Digest, Size: 3}, bytes.NewReader(b)); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("mismatched Put = %v", err)
	}
	if n := len(ingestEntries(t, root)); n != 0 {
		t.Errorf("%d temporary files left", n)
	}
	reopened, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if bytes, n := reopened.Usage(); bytes != int64(len(b)) || n != 1 {
		t.Errorf("after reopen Usage = %d bytes in %d blobs", bytes, n)
	}
}
