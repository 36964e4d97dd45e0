package unpack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Magic numbers at the start of each stream. Registries and manifests mislabel media
// types often enough that the bytes are the only thing worth trusting.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	// bzip2 is "BZh", a block-size digit, then the pi-digits block magic; checking all
	// of it keeps a plain tar whose first file is named "BZh..." from being refused.
	bzip2Magic      = []byte{'B', 'Z', 'h'}
	bzip2BlockMagic = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}
)

// zstdMaxWindow bounds the memory a zstd frame can make the decoder allocate. 128 MiB
// is what the reference zstd CLI accepts without --long, so real layers fit, while a
// hostile frame header cannot ask for the library default of 512 MiB per stream.
const zstdMaxWindow = 128 << 20

// Decompress returns a reader of the uncompressed tar stream, detecting gzip, zstd or
// plain tar from the first bytes (not from a media type: registries lie). xz and bzip2
// are recognised only to be refused with a clear error; anything else is passed through
// as plain tar and left for the tar reader to judge. Closing the result releases the
// decompressor; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	// Peek reports io.EOF for streams shorter than the longest magic; those are simply
	// not compressed (an empty stream is an empty layer for the tar reader to reject
	// or accept).
	magic, err := br.Peek(10)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decompress: read header: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("decompress gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, zstdMagic) || isZstdSkippable(magic):
		zr, err := newZstd(br)
		if err != nil {
			return nil, fmt.Errorf("decompress zstd: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, xzMagic):
		return nil, errors.New("decompress: xz-compressed layers are not supported")
	case isBzip2(magic):
		return nil, errors.New("decompress: bzip2-compressed layers are not supported")
	default:
		return io.NopCloser(br), nil
	}
}

// zstdDecoders keeps decoders between layers: a new one allocates its window history
// (megabytes, zeroed) for every layer. The pool lets the garbage collector drop idle
// decoders, so a node that stops pulling does not keep their memory for long.
var zstdDecoders sync.Pool

// newZstd returns a pooled decoder reading r. Decoders are synchronous (concurrency 1):
// layers are applied one at a time and the disk, not the decoder, is the bottleneck;
// no background goroutines also means nothing leaks if a caller forgets Close.
func newZstd(r io.Reader) (io.ReadCloser, error) {
	d, _ := zstdDecoders.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, err
		}
	}
	if err := d.Reset(r); err != nil {
		d.Close()
		return nil, err
	}
	return &pooledZstd{d: d}, nil
}

// pooledZstd returns its decoder to the pool on Close.
type pooledZstd struct{ d *zstd.Decoder }

func (p *pooledZstd) Read(b []byte) (int, error) {
	if p.d == nil {
		return 0, errors.New("decompress zstd: read after close")
	}
	return p.d.Read(b)
}

func (p *pooledZstd) Close() error {
	if p.d != nil {
		// Reset(nil) drops the reference to the stream; the decoder stays usable.
		if p.d.Reset(nil) == nil {
			zstdDecoders.Put(p.d)
		}
		p.d = nil
	}
	return nil
}

// isZstdSkippable reports a zstd skippable frame (magic 0x184D2A50..0x184D2A5F, little
// endian), which a zstd stream may legitimately start with.
func isZstdSkippable(magic []byte) bool {
	return len(magic) >= 4 && magic[0]&0xf0 == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d && magic[3] == 0x18
}

// isBzip2 reports the start of a bzip2 stream with at least one block.
func isBzip2(magic []byte) bool {
	return len(magic) >= 10 && bytes.HasPrefix(magic, bzip2Magic) &&
		magic[3] >= '1' && magic[3] <= '9' && bytes.Equal(magic[4:10], bzip2BlockMagic)
}
