package image

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-runtime/berth/image/registry"
)

// testRegistry is an in-process registry on 127.0.0.1 that counts requests and lets a
// test intercept them.
type testRegistry struct {
	*httptest.Server
	inner http.Handler

	mu        sync.Mutex
	counts    map[string]int // "GET /v2/.../blobs/sha256:..." -> requests
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{
		inner:  ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))),
		counts: map[string]int{},
	}
	tr.Server = httptest.NewServer(http.HandlerFunc(tr.serve))
	t.Cleanup(tr.Close)
	return tr
}

func (tr *testRegistry) serve(w http.ResponseWriter, r *http.Request) {
	tr.mu.Lock()
	tr.counts[r.Method+" "+r.URL.Path]++
	intercept := tr.intercept
	tr.mu.Unlock()
	if intercept != nil && intercept(w, r) {
		return
	}
	tr.inner.ServeHTTP(w, r)
}

func (tr *testRegistry) setIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.intercept = f
	tr.mu.Unlock()
}

func (tr *testRegistry) host() string { return strings.TrimPrefix(tr.URL, "http://") }

// blobGETs returns the number of GETs per blob digest, and resets the counters.
func (tr *testRegistry) blobGETs() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for k, n := range tr.counts {
		if i := strings.Index(k, "/blobs/"); strings.HasPrefix(k, "GET ") && i >= 0 {
			out[k[i+len("/blobs/"):]] += n
		}
	}
	tr.counts = map[string]int{}
	return out
}

// requests returns the total number of requests, and resets the counters.
func (tr *testRegistry) requests() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, c := range tr.counts {
		n += c
	}
	tr.counts = map[string]int{}
	return n
}

// push writes img (or an index) to the registry as repo:tag and returns the
// reference "127.0.0.1:port/repo:tag".
func (tr *testRegistry) push(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	ref := tr.host() + "/" + repoTag
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	tr.requests()
	return ref
}

func (tr *testRegistry) pushIndex(t *testing.T, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref := tr.host() + "/" + repoTag
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	tr.requests()
	return ref
}

// tarOf builds a tar stream of regular files (name -> content); names ending in "/"
// are directories.
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)}
		if strings.HasSuffix(n, "/") {
			hdr = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(1, 0)}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	b := tarOf(t, files)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf builds an image from layers and a config user.
func imageOf(t *testing.T, user string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.User = user
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func configDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newTestService opens a service on a fresh root; mod adjusts the configuration.
func newTestService(t *testing.T, mod func(*Config), dial registry.DialFunc) *Service {
	t.Helper()
	cfg := Config{
		Root:                   filepath.Join(t.TempDir(), "image"),
		MaxConcurrentDownloads: 3,
		StallTimeout:           5 * time.Second,
		MaxLayerSize:           16 << 30,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := newService(cfg, testLogger(t), dial)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tmpLeftovers lists what is left in the service's temporary directories.
func tmpLeftovers(t *testing.T, s *Service) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"snapshots/tmp", "content/ingest"} {
		entries, err := os.ReadDir(filepath.Join(s.cfg.Root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, dir+"/"+e.Name())
		}
	}
	return out
}
