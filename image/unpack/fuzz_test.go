package unpack

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzApply input is a small program, not a raw tar: raw archives are kilobytes,
// nearly every mutation breaks their checksums, and the fuzzer's minimizer is
// quadratic in input size. A program spends a few bytes per entry, so mutations map to
// meaningful changes of the layer (names, types, link targets, modes, owners, xattrs).
//
// Each entry is encoded as:
//
//	count-1 of path components, components, absolute flag,
//	mode (2 bytes), uid, gid, mtime, type, type argument, xattr selector
//
// Component and link-target bytes index fuzzNames and fuzzTargets; 0xff instead reads
// a raw string of fuzz bytes. Running out of bytes reads zeros.
const fuzzRaw = 0xff

// fuzzNames and fuzzTargets spell every traversal trick in few bytes: dotdot, absolute
// paths aimed at the jail's canaries (/canary/file, /etc/passwd), whiteouts, and a few
// short names for symlink chains. Every name and target in traversalCases is added.
var fuzzNames, fuzzTargets = fuzzAlphabets()

func fuzzAlphabets() (names, targets []string) {
	names = []string{"a", "b", "c", "..", ".", "", "canary", "etc", "passwd", "file", "root",
		".wh.a", ".wh.file", ".wh..wh..opq", ".wh..wh.plnk", ".wh...", ".wh."}
	targets = []string{"a", "b", "a/b", "c/a", "..", "../..", "../../..", "/", "/canary",
		"/canary/file", "/etc", "/etc/passwd", "/root", "/root/a", ".", "", "a/../.."}
	for _, tc := range traversalCases {
		for _, e := range tc.ents {
			names = append(names, strings.Split(e.hdr.Name, "/")...)
			if e.hdr.Linkname != "" {
				targets = append(targets, e.hdr.Linkname)
			}
		}
	}
	// Deduplicate, keeping first occurrences so the base indexes are stable.
	dedup := func(l []string) []string {
		var out []string
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	return dedup(names), dedup(targets)
}

const (
	fuzzMaxEntries = 16
	fuzzMaxComps   = 6
)

var fuzzTypes = []byte{tar.TypeDir, tar.TypeReg, tar.TypeReg, tar.TypeSymlink, tar.TypeSymlink,
	tar.TypeLink, tar.TypeFifo, tar.TypeChar}

var fuzzXattrs = []string{"user.f", "trusted.f", "security.f", "trusted.overlay.opaque"}

// fuzzGen turns fuzz bytes into a tar layer.
type fuzzGen struct{ data []byte }

func (g *fuzzGen) next() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *fuzzGen) pick(list []string, rawMax int) string {
	b := g.next()
	if b != fuzzRaw {
		return list[int(b)%len(list)]
	}
	n := int(g.next()) % rawMax
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = g.next()
	}
	return string(raw)
}

func (g *fuzzGen) path() string {
	comps := make([]string, 1+int(g.next())%fuzzMaxComps)
	for i := range comps {
		comps[i] = g.pick(fuzzNames, 8)
	}
	p := strings.Join(comps, "/")
	if g.next()&1 == 1 {
		p = "/" + p
	}
	return p
}

// layer generates the archive. Entries archive/tar refuses to write are left out.
func (g *fuzzGen) layer() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < fuzzMaxEntries && len(g.data) > 0; i++ {
		h := tar.Header{
			Name:    g.path(),
			Mode:    (int64(g.next())<<8 | int64(g.next())) & 0o7777,
			Uid:     int(g.next()),
			Gid:     int(g.next()),
			ModTime: time.Unix(int64(g.next())<<24, 0),
			Format:  tar.FormatPAX,
		}
		h.Typeflag = fuzzTypes[int(g.next())%len(fuzzTypes)]
		var body string
		switch h.Typeflag {
		case tar.TypeReg:
			body = strings.Repeat("x", int(g.next()%16))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = g.pick(fuzzTargets, 16)
		case tar.TypeChar:
			h.Devmajor, h.Devminor = 1, int64(g.next()%8)
		default:
			g.next()
		}
		if x := g.next(); x&3 == 3 {
			h.PAXRecords = map[string]string{paxXattrPrefix + fuzzXattrs[x>>2&3]: "v"}
		}
		h.Size = int64(len(body))
		if tw.WriteHeader(&h) == nil {
			_, _ = tw.Write([]byte(body))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

// encodeFuzz is the inverse of layer for test entries, so the traversal table seeds
// the corpus. ok is false for entries the encoding cannot express.
func encodeFuzz(ents []ent) (prog []byte, ok bool) {
	for _, e := range ents {
		h := e.hdr
		abs := byte(0)
		name := h.Name
		if strings.HasPrefix(name, "/") {
			abs, name = 1, name[1:]
		}
		comps := strings.Split(name, "/")
		typ := slices.Index(fuzzTypes, h.Typeflag)
		if len(comps) > fuzzMaxComps || typ < 0 || h.Uid > 255 || h.Gid > 255 || len(h.PAXRecords) > 0 {
			return nil, false
		}
		prog = append(prog, byte(len(comps)-1))
		for _, c := range comps {
			prog = append(prog, byte(slices.Index(fuzzNames, c)))
		}
		prog = append(prog, abs, byte(h.Mode>>8), byte(h.Mode), byte(h.Uid), byte(h.Gid), 0, byte(typ))
		switch h.Typeflag {
		case tar.TypeReg:
			prog = append(prog, byte(len(e.body)))
		case tar.TypeSymlink, tar.TypeLink:
			prog = append(prog, byte(slices.Index(fuzzTargets, h.Linkname)))
		case tar.TypeChar:
			prog = append(prog, byte(h.Devminor))
		default:
			prog = append(prog, 0)
		}
		prog = append(prog, 0)
	}
	return prog, true
}

// FuzzApply checks that no generated layer makes Apply panic or write outside its
// root. Layers are applied jailed (see applyJailed), so a bug found here damages only
// the sandbox, and the sandbox check reports it.
func FuzzApply(f *testing.F) {
	requireRoot(f)
	for _, tc := range traversalCases {
		if prog, ok := encodeFuzz(tc.ents); ok {
			f.Add(prog)
		}
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		g := &fuzzGen{data: prog}
		layer := g.layer()
		s := newFastSandbox(t)
		// Errors are fine (most generated layers are nonsense); escapes are not.
		_, _ = s.applyJailed(layer, Options{MaxSize: 1 << 20})
		s.check(t)
	})
}

// TestFuzzSeeds keeps the encoder honest: a seed must decode to the layer it encodes.
func TestFuzzSeeds(t *testing.T) {
	seeds := 0
	for _, tc := range traversalCases {
		prog, ok := encodeFuzz(tc.ents)
		if !ok {
			continue
		}
		seeds++
		g := &fuzzGen{data: prog}
		tr := tar.NewReader(bytes.NewReader(g.layer()))
		for i := 0; ; i++ {
			h, err := tr.Next()
			if err == io.EOF {
				if i != len(tc.ents) {
					t.Errorf("%s: decoded %d entries, want %d", tc.name, i, len(tc.ents))
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			w := tc.ents[i].hdr
			if h.Name != w.Name || h.Linkname != w.Linkname || h.Typeflag != w.Typeflag || h.Mode != w.Mode {
				t.Errorf("%s: entry %d decodes as %c %q -> %q %o, want %c %q -> %q %o", tc.name, i,
					h.Typeflag, h.Name, h.Linkname, h.Mode, w.Typeflag, w.Name, w.Linkname, w.Mode)
			}
		}
	}
	if seeds < len(traversalCases)*3/4 {
		t.Errorf("only %d of %d traversal cases seed the fuzzer", seeds, len(traversalCases))
	}
}

// FuzzDecompress checks that no input makes the detection or the decompressors panic.
func FuzzDecompress(f *testing.F) {
	layer := buildTar(f, fileEnt("a", "hello", 0o644))
	f.Add(layer)
	f.Add(gzipBytes(f, layer))
	f.Add(zstdBytes(f, layer))
	f.Add([]byte{0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := Decompress(bytes.NewReader(data))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(rc, 4<<20))
		_ = rc.Close()
	})
}
