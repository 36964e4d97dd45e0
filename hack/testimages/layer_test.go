package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

func TestTarEntries(t *testing.T) {
	files := []File{
		Dir("/etc", 0),
		Reg("etc/passwd", 0o600, "root:x:0:0::/root:/bin/sh\n"),
		{Path: "usr/bin/su", Mode: 0o4755, UID: 0, GID: 0, Content: []byte("x")},
		Hardlink("bin/ls", "/usr/bin/su"),
		Symlink("bin/sh", "busybox"),
		Whiteout("/var/old"),
		Whiteout("top"),
	}
	data, err := Tar(files)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		typ  byte
		mode int64
		link string
	}{
		{"etc/", tar.TypeDir, 0o755, ""},
		{"etc/passwd", tar.TypeReg, 0o600, ""},
		{"usr/bin/su", tar.TypeReg, 0o4755, ""},
		{"bin/ls", tar.TypeLink, 0o644, "usr/bin/su"},
		{"bin/sh", tar.TypeSymlink, 0o644, "busybox"},
		{"var/.wh.old", tar.TypeReg, 0o644, ""},
		{".wh.top", tar.TypeReg, 0o644, ""},
	}
	tr := tar.NewReader(bytes.NewReader(data))
	for i, w := range want {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if h.Name != w.name || h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.link {
			t.Errorf("entry %d = %q type %c mode %o link %q, want %q type %c mode %o link %q",
				i, h.Name, h.Typeflag, h.Mode, h.Linkname, w.name, w.typ, w.mode, w.link)
		}
		if !h.ModTime.Equal(Epoch) {
			t.Errorf("entry %d: mtime %v, want %v", i, h.ModTime, Epoch)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("extra entries: %v", err)
	}
	again, err := Tar(files)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Error("Tar is not deterministic")
	}
}

func TestNewLayerCompression(t *testing.T) {
	data, err := Tar([]File{Reg("hello", 0o644, "hello world\n")})
	if err != nil {
		t.Fatal(err)
	}
	gunzip := func(b []byte) ([]byte, error) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	unzstd := func(b []byte) ([]byte, error) {
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	}
	identity := func(b []byte) ([]byte, error) { return b, nil }
	for _, tc := range []struct {
		mt         types.MediaType
		decompress func([]byte) ([]byte, error)
	}{
		{types.DockerLayer, gunzip},
		{types.OCILayer, gunzip},
		{types.OCILayerZStd, unzstd},
		{types.OCIUncompressedLayer, identity},
		{types.DockerUncompressedLayer, identity},
	} {
		t.Run(string(tc.mt), func(t *testing.T) {
			l, err := NewLayer(data, tc.mt)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			compressed, _ := io.ReadAll(rc)
			got, err := tc.decompress(compressed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Error("decompressed layer differs from the tar")
			}
			digest, _ := l.Digest()
			if want, _, _ := v1.SHA256(bytes.NewReader(compressed)); digest != want {
				t.Errorf("digest %s, want %s", digest, want)
			}
			diffID, _ := l.DiffID()
			if want, _, _ := v1.SHA256(bytes.NewReader(data)); diffID != want {
				t.Errorf("diffID %s, want %s", diffID, want)
			}
			if size, _ := l.Size(); size != int64(len(compressed)) {
				t.Errorf("size %d, want %d", size, len(compressed))
			}
			if mt, _ := l.MediaType(); mt != tc.mt {
				t.Errorf("media type %s, want %s", mt, tc.mt)
			}
		})
	}
}

func TestNewImageAndIndex(t *testing.T) {
	data, err := Tar([]File{Reg("a", 0o644, "a")})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{Docker, OCI} {
		t.Run(f.String(), func(t *testing.T) {
			l, err := NewLayer(data, f.LayerMediaType())
			if err != nil {
				t.Fatal(err)
			}
			img, err := NewImage(f, v1.Config{Cmd: []string{"/a"}, User: "7"}, l)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != f.ManifestMediaType() || m.Config.MediaType != f.ConfigMediaType() {
				t.Errorf("manifest %s config %s", m.MediaType, m.Config.MediaType)
			}
			if len(m.Layers) != 1 || m.Layers[0].MediaType != f.LayerMediaType() {
				t.Errorf("layers %+v", m.Layers)
			}
			cf, _ := img.ConfigFile()
			diffID, _ := l.DiffID()
			if len(cf.RootFS.DiffIDs) != 1 || cf.RootFS.DiffIDs[0] != diffID || cf.Config.User != "7" {
				t.Errorf("config %+v", cf)
			}
			other, err := placeholderImage(f, "x")
			if err != nil {
				t.Fatal(err)
			}
			idx, err := NewIndex(f, img, other)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			if im.MediaType != f.IndexMediaType() || len(im.Manifests) != 2 {
				t.Fatalf("index %+v", im)
			}
			host := HostPlatform()
			d, _ := img.Digest()
			if im.Manifests[0].Digest != d || !im.Manifests[0].Platform.Equals(host) {
				t.Errorf("first entry %+v, want %s for %v", im.Manifests[0], d, host)
			}
			if im.Manifests[1].Platform.Architecture == host.Architecture {
				t.Errorf("second entry has the host architecture")
			}
			if got, err := idx.Image(d); err != nil || got != img {
				t.Errorf("Image(%s) = %v, %v", d, got, err)
			}
		})
	}
}
