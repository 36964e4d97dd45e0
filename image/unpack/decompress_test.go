package unpack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func TestDecompress(t *testing.T) {
	layer := buildTar(t, fileEnt("a", "hello", 0o644), dirEnt("d/", 0o755))
	half := len(layer) / 2
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'b', 'e', 'r', 't'}, zstdBytes(t, layer)...)
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr string // substring; "" = success
	}{
		{"plain tar", layer, layer, ""},
		{"gzip", gzipBytes(t, layer), layer, ""},
		{"gzip multistream", append(gzipBytes(t, layer[:half]), gzipBytes(t, layer[half:])...), layer, ""},
		{"zstd", zstdBytes(t, layer), layer, ""},
		{"zstd after a skippable frame", skippable, layer, ""},
		{"empty", nil, nil, ""},
		{"short plain", []byte("ab"), []byte("ab"), ""},
		{"bzip2-like name is plain", []byte("BZh-not-bzip2-at-all"), []byte("BZh-not-bzip2-at-all"), ""},
		{"truncated gzip header", []byte{0x1f, 0x8b, 8}, nil, "decompress gzip"},
		{"truncated gzip body", gzipBytes(t, layer)[:20], nil, "unexpected EOF"},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0, 0, 0}, nil, "xz"},
		{"bzip2", []byte("BZh91AY&SY\x00\x00"), nil, "bzip2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tt.in))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rc)
				if cerr := rc.Close(); err == nil {
					err = cerr
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

// TestDecompressApply runs the whole pipeline on each compression.
func TestDecompressApply(t *testing.T) {
	requireRoot(t)
	layer := buildTar(t, fileEnt("etc/hostname", "berth", 0o644))
	for name, blob := range map[string][]byte{"plain": layer, "gzip": gzipBytes(t, layer), "zstd": zstdBytes(t, layer)} {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			rc, err := Decompress(bytes.NewReader(blob))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			st, err := Apply(context.Background(), s.root, rc, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if st != (Stats{Bytes: 5, Inodes: 2}) {
				t.Errorf("stats %+v", st)
			}
			checkPath(t, s.root, "etc/hostname", want{typ: 0o100000, perm: 0o644, body: str("berth")})
		})
	}
}

// TestMaxSize: a small compressed layer that inflates past the cap is refused before
// the offending file is written.
func TestMaxSize(t *testing.T) {
	requireRoot(t)
	zeros := strings.Repeat("\x00", 16<<20)
	const kb = 1 << 10
	tests := []struct {
		name      string
		ents      []ent
		max       int64
		wantErr   bool
		wantBytes int64
	}{
		{"gzip bomb", []ent{fileEnt("bomb", zeros, 0o644)}, 1 << 20, true, 0},
		{"cumulative", []ent{fileEnt("a", strings.Repeat("a", 400*kb), 0o644),
			fileEnt("b", strings.Repeat("b", 400*kb), 0o644),
			fileEnt("c", strings.Repeat("c", 400*kb), 0o644)}, 1 << 20, true, 800 * kb},
		{"exactly at the cap", []ent{fileEnt("a", strings.Repeat("a", 512*kb), 0o644),
			fileEnt("b", strings.Repeat("b", 512*kb), 0o644)}, 1 << 20, false, 1 << 20},
		{"no cap", []ent{fileEnt("a", strings.Repeat("a", 2<<20), 0o644)}, 0, false, 2 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			blob := gzipBytes(t, buildTar(t, tt.ents...))
			if tt.name == "gzip bomb" && len(blob) > 256<<10 {
				t.Fatalf("bomb is %d bytes compressed, not a bomb", len(blob))
			}
			rc, err := Decompress(bytes.NewReader(blob))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			st, err := Apply(context.Background(), s.root, rc, Options{MaxSize: tt.max})
			if tt.wantErr != errors.Is(err, ErrTooLarge) || (!tt.wantErr && err != nil) {
				t.Fatalf("error %v, want ErrTooLarge: %v", err, tt.wantErr)
			}
			if st.Bytes != tt.wantBytes {
				t.Errorf("wrote %d bytes, want %d", st.Bytes, tt.wantBytes)
			}
			if tt.name == "gzip bomb" {
				checkPath(t, s.root, "bomb", want{absent: true})
				if !strings.Contains(err.Error(), `unpack "bomb": layer exceeds`) {
					t.Errorf("error %q does not name the entry", err)
				}
			}
			s.check(t)
		})
	}
}

// TestZstdDecoderReuse: pooled decoders give each stream its own bytes, also after a
// stream was abandoned half-way or was corrupt.
func TestZstdDecoderReuse(t *testing.T) {
	streams := [][]byte{[]byte(strings.Repeat("first ", 5000)), []byte("second"), []byte(strings.Repeat("3", 70000))}
	for round := range 3 {
		for i, want := range streams {
			r, err := Decompress(bytes.NewReader(zstdBytes(t, want)))
			if err != nil {
				t.Fatal(err)
			}
			if round == 1 && i == 0 {
				// Abandoned half-way.
				io.ReadFull(r, make([]byte, 10))
				r.Close()
				continue
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("round %d stream %d: %d bytes, %v", round, i, len(got), err)
			}
			r.Close()
			if _, err := r.Read(make([]byte, 1)); err == nil {
				t.Error("read after close succeeded")
			}
		}
		bad := zstdBytes(t, streams[0])
		bad[len(bad)/2] ^= 0xff
		if r, err := Decompress(bytes.NewReader(bad)); err == nil {
			if _, err := io.ReadAll(r); err == nil {
				t.Error("corrupt zstd stream decoded without error")
			}
			r.Close()
		}
	}
}
