package content

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"regexp"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// ErrDigestMismatch is matched (errors.Is) by every MismatchError. It is of class
// errdefs.ErrDataLoss.
var ErrDigestMismatch = fmt.Errorf("digest mismatch: %w", errdefs.ErrDataLoss)

// Descriptor names a blob: its digest ("sha256:<hex>") and its size in bytes.
type Descriptor struct {
	Digest string
	Size   int64
}

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// ValidateDigest checks that d is "sha256:<64 lowercase hex>"; the error wraps
// errdefs.ErrInvalidArgument.
func ValidateDigest(d string) error {
	if !digestRE.MatchString(d) {
		return errdefs.InvalidArgument(fmt.Sprintf("unsupported digest %q: want sha256:<64 hex digits>", d))
	}
	return nil
}

// MismatchError says that bytes did not match the descriptor they were fetched for.
type MismatchError struct {
	Expected Descriptor
	// Digest is the digest of what was read; empty when reading stopped because the
	// data ran past Expected.Size.
	Digest string
	// Size is how many bytes were read (at least Expected.Size+1 when it ran past).
	Size int64
}

func (e *MismatchError) Error() string {
	if e.Digest == "" {
		return fmt.Sprintf("digest mismatch: expected %s of %d bytes, got more than %d bytes",
			e.Expected.Digest, e.Expected.Size, e.Expected.Size)
	}
	return fmt.Sprintf("digest mismatch: expected %s (%d bytes), got %s (%d bytes)",
		e.Expected.Digest, e.Expected.Size, e.Digest, e.Size)
}

// Unwrap makes errors.Is(err, ErrDigestMismatch) true, and through it
// errors.Is(err, errdefs.ErrDataLoss): errors.Is follows the error's chain, not the
// target's, so an Is method matching only ErrDigestMismatch would hide the class.
func (e *MismatchError) Unwrap() error { return ErrDigestMismatch }

// digester hashes and counts bytes against a descriptor.
type digester struct {
	expected Descriptor
	h        hash.Hash
	n        int64
}

func newDigester(d Descriptor) (*digester, error) {
	if err := ValidateDigest(d.Digest); err != nil {
		return nil, err
	}
	return &digester{expected: d, h: sha256.New()}, nil
}

// room is how many more bytes may come before the data is known to be too long: one
// byte past the expected size is enough to tell.
func (d *digester) room(want int) int {
	if d.expected.Size < 0 {
		return want
	}
	return int(min(int64(want), d.expected.Size+1-d.n))
}

// add accounts for p; it fails once the data runs past the expected size.
func (d *digester) add(p []byte) error {
	d.h.Write(p)
	d.n += int64(len(p))
	if d.expected.Size >= 0 && d.n > d.expected.Size {
		return &MismatchError{Expected: d.expected, Size: d.n}
	}
	return nil
}

// check compares what was added with the descriptor.
func (d *digester) check() error {
	got := "sha256:" + hex.EncodeToString(d.h.Sum(nil))
	if got != d.expected.Digest || (d.expected.Size >= 0 && d.n != d.expected.Size) {
		return &MismatchError{Expected: d.expected, Digest: got, Size: d.n}
	}
	return nil
}

// Verifier is a reader that hashes and counts what passes through it. At the end of the
// data it returns a *MismatchError instead of io.EOF when digest or size differ from the
// descriptor, and it fails as soon as the data runs past the expected size.
type Verifier struct {
	r   io.Reader
	d   *digester
	err error
}

// NewVerifier wraps r. A negative d.Size means the size is not known in advance.
func NewVerifier(r io.Reader, d Descriptor) (*Verifier, error) {
	dg, err := newDigester(d)
	if err != nil {
		return nil, err
	}
	return &Verifier{r: r, d: dg}, nil
}

// Read implements io.Reader.
func (v *Verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	p = p[:v.d.room(len(p))]
	n, err := v.r.Read(p)
	if aerr := v.d.add(p[:n]); aerr != nil {
		v.err = aerr
		return n, aerr
	}
	switch {
	case err == io.EOF:
		if cerr := v.d.check(); cerr != nil {
			v.err = cerr
			return n, cerr
		}
		v.err = io.EOF
	case err != nil:
		v.err = err
	}
	return n, err
}

// Verified reports whether everything was read and matched: nil only after the reader
// returned io.EOF with digest and size as expected.
func (v *Verifier) Verified() error {
	switch {
	case v.err == io.EOF:
		return nil
	case v.err != nil:
		return v.err
	default:
		return fmt.Errorf("blob %s: verification incomplete after %d bytes", v.d.expected.Digest, v.d.n)
	}
}

// Count is the number of bytes read so far.
func (v *Verifier) Count() int64 { return v.d.n }
