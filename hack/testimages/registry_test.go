package testimages

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-runtime/berth/internal/config"
)

func TestMirrorPath(t *testing.T) {
	for _, tc := range []struct {
		ref, repo, tag string
	}{
		{"registry.k8s.io/pause:3.9", "pause", "3.9"},
		{"k8s.gcr.io/pause:3.9", "pause", "3.9"},
		{"registry.k8s.io/e2e-test-images/busybox:1.29-2", "e2e-test-images/busybox", "1.29-2"},
		{"gcr.io/k8s-staging-cri-tools/test-image-latest", "k8s-staging-cri-tools/test-image-latest", "latest"},
		{"docker.io/library/busybox:latest", "library/busybox", "latest"},
		{"busybox", "library/busybox", "latest"},
		{"quay.io/a/b:c", "a/b", "c"},
	} {
		repo, tag, err := MirrorPath(tc.ref)
		if err != nil || repo != tc.repo || tag != tc.tag {
			t.Errorf("MirrorPath(%q) = %q, %q, %v; want %q, %q", tc.ref, repo, tag, err, tc.repo, tc.tag)
		}
	}
	if _, _, err := MirrorPath("UPPER/case"); err == nil {
		t.Error("MirrorPath accepted an invalid reference")
	}
}

func TestServeLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.1.2.3:0", "example.com:0", "nonsense"} {
		if r, err := Serve(t.Context(), addr, nil); err == nil {
			r.Close()
			t.Errorf("Serve(%q) succeeded", addr)
		}
	}
	for _, addr := range []string{"", "127.0.0.1:0", "[::1]:0"} {
		r, err := Serve(t.Context(), addr, nil)
		if err != nil {
			if addr == "[::1]:0" {
				continue // no IPv6 here
			}
			t.Fatalf("Serve(%q): %v", addr, err)
		}
		r.Close()
	}
}

// smallImages builds two tiny images: a plain OCI one and a Docker index.
func smallImages(t *testing.T) (plain, indexed Image) {
	t.Helper()
	mk := func(f Format, content string) v1.Image {
		data, err := Tar([]File{Reg("file", 0o644, content)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLayer(data, f.LayerMediaType())
		if err != nil {
			t.Fatal(err)
		}
		img, err := NewImage(f, v1.Config{Cmd: []string{"/file"}}, l)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	plain = Image{Refs: []string{"docker.io/library/plain:1", "docker.io/library/plain:2"}, Image: mk(OCI, "plain")}
	img := mk(Docker, "indexed")
	other, err := placeholderImage(Docker, "indexed")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := NewIndex(Docker, img, other)
	if err != nil {
		t.Fatal(err)
	}
	indexed = Image{Refs: []string{"registry.k8s.io/indexed:v1", "k8s.gcr.io/indexed:v1"}, Image: img, Index: idx}
	return plain, indexed
}

func pull(t *testing.T, r *Registry, ref string) (v1.Image, error) {
	t.Helper()
	local, err := r.Ref(ref)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(local, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return remote.Image(tag, remote.WithContext(t.Context()), remote.WithPlatform(HostPlatform()),
		remote.WithTransport(&http.Transport{}))
}

func layerBytes(t *testing.T, img v1.Image) ([]byte, error) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestRegistryServesAndCounts(t *testing.T) {
	plain, indexed := smallImages(t)
	r, err := Serve(t.Context(), "127.0.0.1:0", []Image{plain, indexed})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Counts()) != 0 {
		t.Errorf("counters not reset after the initial push: %v", r.Counts())
	}
	for _, tc := range []struct {
		ref  string
		want v1.Image
	}{
		{"docker.io/library/plain:1", plain.Image},
		{"plain:2", plain.Image},
		{"registry.k8s.io/indexed:v1", indexed.Image},
		{"k8s.gcr.io/indexed:v1", indexed.Image},
	} {
		img, err := pull(t, r, tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		got, _ := img.ConfigName()
		want, _ := tc.want.ConfigName()
		if got != want {
			t.Errorf("%s: config %s, want %s", tc.ref, got, want)
		}
		if _, err := layerBytes(t, img); err != nil {
			t.Errorf("%s: layer: %v", tc.ref, err)
		}
	}
	layers, _ := plain.Image.Layers()
	d, _ := layers[0].Digest()
	if n := r.BlobFetches(d); n != 2 {
		t.Errorf("plain layer fetched %d times, want 2", n)
	}
	if n := r.Requests(http.MethodGet, "/v2/library/plain/manifests/1"); n != 1 {
		t.Errorf("manifest fetched %d times, want 1 (counts: %v)", n, r.Counts())
	}
	r.ResetCounts()
	if n := r.BlobFetches(d); n != 0 {
		t.Errorf("after reset: %d", n)
	}
}

func TestRegistryBlobOverrideAndHook(t *testing.T) {
	plain, _ := smallImages(t)
	r, err := Serve(t.Context(), "", []Image{plain})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	layers, _ := plain.Image.Layers()
	d, _ := layers[0].Digest()

	r.ServeBlob(d, []byte("not the layer"))
	resp, err := http.Get(r.URL() + "/v2/library/plain/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "not the layer" || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("override served %q with digest header %q", body, resp.Header.Get("Docker-Content-Digest"))
	}
	img, err := pull(t, r, "plain:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layerBytes(t, img); err == nil {
		t.Error("a client verifying digests accepted the wrong blob")
	}
	r.ServeBlob(d, nil)
	if _, err := layerBytes(t, img); err != nil {
		t.Errorf("after removing the override: %v", err)
	}

	r.SetHook(func(w http.ResponseWriter, req *http.Request) bool {
		if strings.Contains(req.URL.Path, "/manifests/") {
			http.Error(w, "injected", http.StatusForbidden)
			return true
		}
		return false
	})
	if _, err := pull(t, r, "plain:1"); err == nil {
		t.Error("pull succeeded through a failing hook")
	}
	r.SetHook(nil)
	if _, err := pull(t, r, "plain:1"); err != nil {
		t.Errorf("after removing the hook: %v", err)
	}
}

func TestRegistryStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r, err := Serve(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("registry still serving after its context ended")
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close after stop: %v", err)
	}
}

func TestCatalogueServes(t *testing.T) {
	images := testCatalogue(t)
	r, err := Serve(t.Context(), "", images)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, img := range images {
		want, _ := img.ID()
		for _, ref := range img.Refs {
			got, err := pull(t, r, ref)
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			if id, _ := got.ConfigName(); id != want {
				t.Errorf("%s: image ID %s, want %s", ref, id, want)
			}
		}
	}
}

func TestMirrorTOML(t *testing.T) {
	r, err := Serve(t.Context(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := r.MirrorTOML()
	for _, want := range []string{
		"[image.registry.mirrors]\n",
		`"docker.io" = ["http://` + r.Addr() + `"]`,
		`"k8s.gcr.io" = ["http://` + r.Addr() + `"]`,
		`[image.registry.hosts."` + r.Addr() + `"]` + "\nplain_http = true\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("MirrorTOML lacks %q:\n%s", want, got)
		}
	}
	// berthd must accept it.
	path := filepath.Join(t.TempDir(), "berth.toml")
	if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path, "")
	if err != nil {
		t.Fatalf("berthd config: %v", err)
	}
	if m := cfg.Image.Registry.Mirrors["registry.k8s.io"]; len(m) != 1 || m[0] != r.URL() {
		t.Errorf("mirrors %v", cfg.Image.Registry.Mirrors)
	}
	if !cfg.Image.Registry.Hosts[r.Addr()].PlainHTTP {
		t.Errorf("hosts %v", cfg.Image.Registry.Hosts)
	}
}
