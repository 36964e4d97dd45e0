package testimages

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// References of the catalogue that tests use most.
const (
	CRIToolsPrefix     = "gcr.io/k8s-staging-cri-tools/"
	E2EPrefix          = "registry.k8s.io/e2e-test-images/"
	DefaultTestImage   = E2EPrefix + "busybox:1.29-2"
	WebServerTestImage = E2EPrefix + "nginx:1.14-2"
	HttpdTestImage     = E2EPrefix + "httpd:2.4.39-4"
	NoNewPrivsImage    = E2EPrefix + "nonewprivs:1.3"
	PauseImage         = "registry.k8s.io/pause:3.9"
	LegacyPauseImage   = "k8s.gcr.io/pause:3.9"
	BusyboxImage       = "docker.io/library/busybox:latest"
)

// HostNetWebServerImage is critest's web server for host-network pods; it
// listens on port 12003.
var HostNetWebServerImage = CRIToolsPrefix + "hostnet-nginx-" + runtime.GOARCH + ":latest"

// NameLabel is the config label that holds the first reference of each
// catalogue image.
const NameLabel = "io.berth.testimages.name"

// Image is one image of the catalogue and the references it is published
// under.
type Image struct {
	// Refs are fully qualified references with a tag, e.g.
	// "registry.k8s.io/pause:3.9".
	Refs []string
	// Image is the image for the host platform; its config digest is the
	// image ID a runtime reports.
	Image v1.Image
	// Index, when set, is what the references point to: a multi-platform
	// index holding Image and an image for another platform.
	Index v1.ImageIndex
}

// ID returns the image ID: the digest of the host image's config.
func (i Image) ID() (v1.Hash, error) { return i.Image.ConfigName() }

// Digest returns the digest of what the references resolve to (the index if
// there is one, else the image manifest).
func (i Image) Digest() (v1.Hash, error) {
	if i.Index != nil {
		return i.Index.Digest()
	}
	return i.Image.Digest()
}

// Builder builds busybox-based images. It is safe for concurrent use.
type Builder struct {
	busybox   []byte
	applets   []string
	helperDir string

	mu      sync.Mutex
	base    map[Format]*Layer
	helpers map[string][]byte
	agnhost []byte // see SetAgnhost
}

// NewBuilder reads the static busybox at busyboxPath. Helper programs are
// compiled into CacheDir()/testimages.
func NewBuilder(busyboxPath string) (*Builder, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, err
	}
	applets, err := ListApplets(busyboxPath)
	if err != nil {
		return nil, err
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	return &Builder{
		busybox:   bb,
		applets:   applets,
		helperDir: filepath.Join(cache, "testimages"),
		base:      map[Format]*Layer{},
		helpers:   map[string][]byte{},
	}, nil
}

// Build builds the whole catalogue from the static busybox at busyboxPath.
func Build(busyboxPath string) ([]Image, error) {
	b, err := NewBuilder(busyboxPath)
	if err != nil {
		return nil, err
	}
	return b.Catalogue()
}

// Applets returns the applet paths of `busybox --list-full`.
func (b *Builder) Applets() []string { return append([]string(nil), b.applets...) }

// BaseLayer returns the busybox root filesystem layer (see BusyboxRootfs)
// with the format's media type. It is built once per format.
func (b *Builder) BaseLayer(f Format) (*Layer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.base[f]; l != nil {
		return l, nil
	}
	tarball, err := Tar(BusyboxRootfs(b.busybox, b.applets))
	if err != nil {
		return nil, err
	}
	l, err := NewLayer(tarball, f.LayerMediaType())
	if err != nil {
		return nil, err
	}
	b.base[f] = l
	return l, nil
}

// Helper returns the static binary of helpers/<name>.c: "pause", "nnp" or
// "webserver".
func (b *Builder) Helper(name string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.helpers[name]; h != nil {
		return h, nil
	}
	h, err := compileHelper(b.helperDir, name)
	if err != nil {
		return nil, err
	}
	b.helpers[name] = h
	return h, nil
}

// BusyboxConfig is the config of the official busybox image: PATH and sh.
func BusyboxConfig() v1.Config {
	return v1.Config{Env: []string{"PATH=" + DefaultPath}, Cmd: []string{"sh"}}
}

// BusyboxImage builds the busybox base layer plus one layer per element of
// extra, with config cfg.
func (b *Builder) BusyboxImage(f Format, cfg v1.Config, extra ...[]File) (v1.Image, error) {
	base, err := b.BaseLayer(f)
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{base}
	for _, files := range extra {
		tarball, err := Tar(files)
		if err != nil {
			return nil, err
		}
		l, err := NewLayer(tarball, f.LayerMediaType())
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return NewImage(f, cfg, layers...)
}

// entry describes one catalogue image.
type entry struct {
	refs  []string
	f     Format
	index bool // publish a multi-platform index around the image
	build func(*Builder, Format) (v1.Image, error)
}

// Catalogue builds every image critest v1.37.0 (and berth's own tests)
// pull, and the Kubernetes e2e images of kubernetes.go. The digest-pinned test-image-digest cannot be rebuilt and is absent.
func (b *Builder) Catalogue() ([]Image, error) {
	var images []Image
	b.mu.Lock()
	withAgnhost := b.agnhost != nil
	b.mu.Unlock()
	for _, e := range append(catalogue(), kubernetesCatalogue(withAgnhost)...) {
		img, err := e.build(b, e.f)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", e.refs[0], err)
		}
		// The label keeps images of different entries distinct even where
		// their content is the same (e.g. the two busybox images).
		if img, err = withLabel(img, NameLabel, e.refs[0]); err != nil {
			return nil, err
		}
		out := Image{Refs: e.refs, Image: img}
		if e.index {
			other, err := placeholderImage(e.f, e.refs[0])
			if err != nil {
				return nil, err
			}
			if out.Index, err = NewIndex(e.f, img, other); err != nil {
				return nil, err
			}
		}
		images = append(images, out)
	}
	return images, nil
}

func catalogue() []entry {
	cri := func(names ...string) []string {
		refs := make([]string, len(names))
		for i, n := range names {
			refs[i] = CRIToolsPrefix + n
		}
		return refs
	}
	// critest's image-test: busybox plus an empty file named after the image.
	marker := func(name string) func(*Builder, Format) (v1.Image, error) {
		return func(b *Builder, f Format) (v1.Image, error) {
			return b.BusyboxImage(f, BusyboxConfig(), []File{Reg(name, 0o644, "")})
		}
	}
	// critest's image-user: busybox with a USER.
	user := func(u string) func(*Builder, Format) (v1.Image, error) {
		return func(b *Builder, f Format) (v1.Image, error) {
			cfg := BusyboxConfig()
			cfg.User = u
			return b.BusyboxImage(f, cfg)
		}
	}
	return []entry{
		{refs: cri("test-image-1:latest"), f: Docker, index: true, build: marker("test-image-1")},
		{refs: cri("test-image-2:latest"), f: Docker, index: true, build: marker("test-image-2")},
		{refs: cri("test-image-3:latest"), f: Docker, index: true, build: marker("test-image-3")},
		{refs: cri("test-image-latest:latest"), f: Docker, index: true, build: marker("test-image-latest")},
		{refs: cri("test-image-tags:1", "test-image-tags:2", "test-image-tags:3"), f: Docker, index: true, build: marker("same-image")},
		{refs: cri("test-image-tag:test"), f: Docker, index: true, build: marker("test")},
		{refs: cri("test-image-tag:all"), f: Docker, index: true, build: marker("all")},
		{refs: cri("test-image-user-uid:latest"), f: Docker, index: true, build: user("1002")},
		{refs: cri("test-image-user-username:latest"), f: Docker, index: true, build: user("www-data")},
		{refs: cri("test-image-user-uid-group:latest"), f: Docker, index: true, build: user("1003:1004")},
		{refs: cri("test-image-user-username-group:latest"), f: Docker, index: true, build: user("www-data:1004")},
		{refs: cri("test-image-predefined-group:latest"), f: Docker, index: true, build: predefinedGroupImage},
		// Upstream publishes the per-architecture image as a plain manifest.
		{refs: []string{HostNetWebServerImage}, f: Docker, build: nginxImage(12003, "SIGQUIT")},
		{refs: []string{DefaultTestImage}, f: Docker, index: true, build: busyboxImage},
		{refs: []string{WebServerTestImage}, f: Docker, index: true, build: nginxImage(80, "SIGTERM")},
		{refs: []string{HttpdTestImage}, f: Docker, index: true, build: httpdImage},
		{refs: []string{NoNewPrivsImage}, f: Docker, index: true, build: noNewPrivsImage},
		{refs: []string{PauseImage, LegacyPauseImage}, f: Docker, index: true, build: pauseImage},
		{refs: []string{BusyboxImage}, f: OCI, index: true, build: busyboxImage},
	}
}

func withLabel(img v1.Image, key, value string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := *cf.Config.DeepCopy()
	labels := map[string]string{key: value}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	cfg.Labels = labels
	return mutate.Config(img, cfg)
}
