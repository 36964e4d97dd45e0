package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// Epoch is the modification time of every file in a layer built by Tar and the
// creation time of every image built by NewImage, so builds are reproducible.
var Epoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// File is one entry of a layer built by Tar.
type File struct {
	// Path inside the image, relative ("bin/sh") or absolute ("/bin/sh").
	Path string
	// Type is a tar type flag; zero means a regular file (tar.TypeReg).
	Type byte
	// Mode holds the permission bits, including setuid/setgid/sticky
	// (e.g. 0o4755). Zero means 0o644 for files and 0o755 for directories.
	Mode int64
	// UID and GID own the entry.
	UID, GID int
	// Content of a regular file.
	Content []byte
	// Link is the target of a symlink, or of a hard link (a path inside the
	// image, e.g. "bin/busybox").
	Link string
	// Devmajor and Devminor of a character or block device.
	Devmajor, Devminor int64
}

// Dir returns a directory entry.
func Dir(path string, mode int64) File { return File{Path: path, Type: tar.TypeDir, Mode: mode} }

// Reg returns a regular file entry owned by root.
func Reg(path string, mode int64, content string) File {
	return File{Path: path, Type: tar.TypeReg, Mode: mode, Content: []byte(content)}
}

// Hardlink returns a hard link entry to target (a path inside the image).
func Hardlink(path, target string) File { return File{Path: path, Type: tar.TypeLink, Link: target} }

// Symlink returns a symbolic link entry.
func Symlink(path, target string) File { return File{Path: path, Type: tar.TypeSymlink, Link: target} }

// Whiteout returns the OCI whiteout entry that deletes path from lower layers.
func Whiteout(path string) File {
	path = strings.TrimPrefix(path, "/")
	dir, base := "", path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		dir, base = path[:i+1], path[i+1:]
	}
	return File{Path: dir + ".wh." + base}
}

// Tar writes files, in the given order, into an uncompressed tar archive with
// fixed timestamps. It does not check the entries: it can build archives
// with escaping paths, links to nowhere and the like on purpose.
func Tar(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		name := strings.TrimPrefix(f.Path, "/")
		if typ == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		link := f.Link
		if typ == tar.TypeLink {
			link = strings.TrimPrefix(link, "/")
		}
		hdr := &tar.Header{
			Typeflag: typ,
			Name:     name,
			Linkname: link,
			Mode:     mode,
			Uid:      f.UID,
			Gid:      f.GID,
			ModTime:  Epoch,
			Devmajor: f.Devmajor,
			Devminor: f.Devminor,
			Format:   tar.FormatPAX,
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.Content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.Path, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(f.Content); err != nil {
				return nil, fmt.Errorf("tar %s: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Layer is an in-memory layer whose compressed bytes are computed once, so
// its digest is stable and serving it is cheap.
type Layer struct {
	uncompressed []byte
	compressed   []byte
	digest       v1.Hash
	diffID       v1.Hash
	mediaType    types.MediaType
}

var _ v1.Layer = (*Layer)(nil)

// NewLayer compresses an uncompressed tar archive as mediaType says: gzip for
// "+gzip"/".gzip" types, zstd for "+zstd", none otherwise.
func NewLayer(tarball []byte, mediaType types.MediaType) (*Layer, error) {
	compressed, err := compress(tarball, mediaType)
	if err != nil {
		return nil, err
	}
	return NewRawLayer(tarball, compressed, mediaType)
}

// NewRawLayer builds a layer from bytes as they are: compressed is what is
// served (and digested), uncompressed gives the diff ID. Nothing checks that
// one is the other compressed, so tests can build layers that lie.
func NewRawLayer(uncompressed, compressed []byte, mediaType types.MediaType) (*Layer, error) {
	digest, _, err := v1.SHA256(bytes.NewReader(compressed))
	if err != nil {
		return nil, err
	}
	diffID, _, err := v1.SHA256(bytes.NewReader(uncompressed))
	if err != nil {
		return nil, err
	}
	return &Layer{
		uncompressed: uncompressed,
		compressed:   compressed,
		digest:       digest,
		diffID:       diffID,
		mediaType:    mediaType,
	}, nil
}

func compress(data []byte, mt types.MediaType) ([]byte, error) {
	s := string(mt)
	var buf bytes.Buffer
	var zw io.WriteCloser
	var err error
	switch {
	case strings.HasSuffix(s, "gzip"):
		zw, err = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case strings.HasSuffix(s, "zstd"):
		zw, err = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	default:
		return data, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Digest is the sha256 of the compressed bytes.
func (l *Layer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID is the sha256 of the uncompressed tar.
func (l *Layer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Compressed returns the bytes as served by a registry.
func (l *Layer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}

// Uncompressed returns the tar archive.
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.uncompressed)), nil
}

// Size is the size of the compressed bytes.
func (l *Layer) Size() (int64, error) { return int64(len(l.compressed)), nil }

// MediaType of the layer.
func (l *Layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
