package reference

import (
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

const hex64 = "9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf"

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ref  Reference
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest",
			ref: Reference{Domain: "docker.io", Path: "library/busybox", Tag: "latest"}},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "foo/bar", want: "docker.io/foo/bar:latest"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "docker.io/library/busybox:latest", want: "docker.io/library/busybox:latest"},
		{in: "index.docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "index.docker.io/foo/bar:v1", want: "docker.io/foo/bar:v1"},
		{in: "gcr.io/x/y", want: "gcr.io/x/y:latest",
			ref: Reference{Domain: "gcr.io", Path: "x/y", Tag: "latest"}},
		{in: "gcr.io/k8s-staging-cri-tools/test-image-tag:test", want: "gcr.io/k8s-staging-cri-tools/test-image-tag:test"},
		{in: "registry.k8s.io/pause:3.9", want: "registry.k8s.io/pause:3.9"},
		{in: "localhost/foo", want: "localhost/foo:latest"},
		{in: "localhost:5000/foo/bar:1", want: "localhost:5000/foo/bar:1",
			ref: Reference{Domain: "localhost:5000", Path: "foo/bar", Tag: "1"}},
		{in: "127.0.0.1:5000/x", want: "127.0.0.1:5000/x:latest"},
		{in: "[::1]:5000/x:y", want: "[::1]:5000/x:y"},
		{in: "Registry.Example.com/x", want: "Registry.Example.com/x:latest"},
		{in: "a.b", want: "docker.io/library/a.b:latest"},
		{in: "a__b/c-d--e/f.g_h:Tag_1.0-x", want: "docker.io/a__b/c-d--e/f.g_h:Tag_1.0-x"},
		{in: "busybox@sha256:" + hex64, want: "docker.io/library/busybox@sha256:" + hex64,
			ref: Reference{Domain: "docker.io", Path: "library/busybox", Digest: "sha256:" + hex64}},
		{in: "busybox:1.36@sha256:" + hex64, want: "docker.io/library/busybox@sha256:" + hex64},
		{in: "localhost:5000/x:1@sha256:" + hex64, want: "localhost:5000/x@sha256:" + hex64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got.String() != tt.want {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, got.String(), tt.want)
			}
			if tt.ref != (Reference{}) && got != tt.ref {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.ref)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []string{
		"",
		"Busybox",
		"foo/Bar",
		"busybox:",
		"busybox:-tag",
		"busybox:" + strings.Repeat("a", 129),
		"busybox@sha256:abc",
		"busybox@sha512:" + strings.Repeat("a", 128),
		"busybox@sha256:" + strings.ToUpper(hex64),
		"foo//bar",
		"foo/bar/",
		"-foo",
		"foo-",
		"foo..bar",
		"http://docker.io/busybox",
		"docker.io:/busybox",
		"host:port/x",
		"bus box",
		"sha256:" + hex64,
		hex64,
		"gcr.io/" + strings.Repeat("a", 250),
		"a@b@c",
		"a:b:c",
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			r, err := Parse(in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", in, r)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalidArgument", in, err)
			}
			if _, err := Normalise(in); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Normalise(%q) error %v does not wrap ErrInvalidArgument", in, err)
			}
		})
	}
}

func TestReferenceHelpers(t *testing.T) {
	r, err := Parse("foo/bar:1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "docker.io/foo/bar" || r.Identifier() != "1" || r.IsDigested() {
		t.Errorf("got name %q identifier %q digested %v", r.Name(), r.Identifier(), r.IsDigested())
	}
	d := r.WithDigest("sha256:" + hex64)
	if d.String() != "docker.io/foo/bar@sha256:"+hex64 || d.Identifier() != "sha256:"+hex64 || !d.IsDigested() {
		t.Errorf("WithDigest = %+v", d)
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"sha256:" + hex64, "sha256:" + hex64, true},
		{hex64, "sha256:" + hex64, true},
		{"sha256:" + hex64[:63], "", false},
		{hex64 + "0", "", false},
		{strings.ToUpper(hex64), "", false},
		{"busybox", "", false},
		{"sha512:" + hex64, "", false},
	}
	for _, tt := range tests {
		got, ok := ParseID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseID(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIDPrefix(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"sha256:9", "sha256:9", true},
		{"sha256:" + hex64, "sha256:" + hex64, true},
		{hex64[:MinIDPrefix], "sha256:" + hex64[:MinIDPrefix], true},
		{hex64[:MinIDPrefix-1], "", false},
		{"cafe", "", false},
		{"sha256:", "", false},
		{"sha256:xyz", "", false},
		{hex64 + "00", "", false},
		{"busybox", "", false},
	}
	for _, tt := range tests {
		got, ok := IDPrefix(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("IDPrefix(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
