package reference

import "testing"

// FuzzParse checks that Parse never panics, that whatever it accepts has a normal form
// that parses back to itself, and that the normal form is stable.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"busybox", "foo/bar:1", "gcr.io/x/y", "index.docker.io/busybox",
		"localhost:5000/a/b:c", "[::1]:5000/x", "busybox@sha256:" + hex64,
		"busybox:1@sha256:" + hex64, hex64, "sha256:" + hex64, "A/b", "a//b", "a:b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if (r.Tag == "") == (r.Digest == "") {
			t.Fatalf("Parse(%q) = %+v: exactly one of tag and digest must be set", s, r)
		}
		norm := r.String()
		again, err := Parse(norm)
		if err != nil {
			t.Fatalf("Parse(Normalise(%q)) = %v (normal form %q)", s, err, norm)
		}
		if again != r || again.String() != norm {
			t.Fatalf("Parse(%q) = %+v, Parse(%q) = %+v", s, r, norm, again)
		}
	})
}
