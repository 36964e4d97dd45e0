package testimages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-memory OCI distribution registry on a loopback address.
// It counts the requests it answers and can be told to misbehave.
type Registry struct {
	ln       net.Listener
	srv      *http.Server
	registry http.Handler
	log      *log.Logger
	served   chan struct{}
	stop     sync.Once

	mu        sync.Mutex
	requests  map[string]int
	blobGets  map[v1.Hash]int
	overrides map[v1.Hash][]byte
	hook      func(http.ResponseWriter, *http.Request) bool
}

// Option configures Serve.
type Option func(*Registry)

// WithLogger logs every request (and push) to l; by default nothing is logged.
func WithLogger(l *log.Logger) Option { return func(r *Registry) { r.log = l } }

// Serve starts a registry on addr, which must be a loopback address
// ("127.0.0.1:0" or "" picks a free port), and pushes images to it under
// their repository paths (see MirrorPath). Request counters start at zero
// once the images are pushed. The registry stops when ctx is done or Close
// is called.
func Serve(ctx context.Context, addr string, images []Image, opts ...Option) (*Registry, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("registry address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("registry address %q: only loopback IP addresses are allowed", addr)
	}
	r := &Registry{
		log:       log.New(io.Discard, "", 0),
		served:    make(chan struct{}),
		requests:  map[string]int{},
		blobGets:  map[v1.Hash]int{},
		overrides: map[v1.Hash][]byte{},
	}
	for _, o := range opts {
		o(r)
	}
	r.registry = registry.New(registry.Logger(r.log))
	if r.ln, err = net.Listen("tcp", addr); err != nil {
		return nil, err
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(r.served)
		_ = r.srv.Serve(r.ln)
	}()
	go func() {
		select {
		case <-ctx.Done():
			r.Close()
		case <-r.served:
		}
	}()
	for _, img := range images {
		if err := r.Push(ctx, img); err != nil {
			r.Close()
			return nil, err
		}
	}
	r.ResetCounts()
	return r, nil
}

// Addr is the registry's host:port, e.g. "127.0.0.1:41234".
func (r *Registry) Addr() string { return r.ln.Addr().String() }

// URL is "http://" + Addr(), the form a mirror is configured with.
func (r *Registry) URL() string { return "http://" + r.Addr() }

// Close stops the registry.
func (r *Registry) Close() error {
	var err error
	r.stop.Do(func() {
		err = r.srv.Close()
		<-r.served
	})
	return err
}

// Done is closed when the registry has stopped serving.
func (r *Registry) Done() <-chan struct{} { return r.served }

// MirrorPath returns the repository path and tag under which a mirror is
// asked for ref: "registry.k8s.io/pause:3.9" gives "pause", "3.9" and
// "busybox" gives "library/busybox", "latest".
func MirrorPath(ref string) (repo, tag string, err error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return "", "", err
	}
	return t.RepositoryStr(), t.TagStr(), nil
}

// Ref returns ref (as in Image.Refs) as a reference into this registry, e.g.
// "127.0.0.1:41234/e2e-test-images/busybox:1.29-2".
func (r *Registry) Ref(ref string) (string, error) {
	repo, tag, err := MirrorPath(ref)
	if err != nil {
		return "", err
	}
	return r.Addr() + "/" + repo + ":" + tag, nil
}

func (r *Registry) remoteOptions(ctx context.Context) []remote.Option {
	transport := &http.Transport{Proxy: nil, DisableKeepAlives: false, MaxIdleConnsPerHost: 4}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(transport)}
}

// Push publishes img under each of its references (as mirror paths). Pushes
// count as requests like any other.
func (r *Registry) Push(ctx context.Context, img Image) error {
	if len(img.Refs) == 0 {
		return errors.New("push: image has no references")
	}
	seen := map[string]bool{}
	for _, ref := range img.Refs {
		local, err := r.Ref(ref)
		if err != nil {
			return err
		}
		if seen[local] {
			continue
		}
		seen[local] = true
		tag, err := name.NewTag(local, name.Insecure)
		if err != nil {
			return err
		}
		if img.Index != nil {
			err = remote.WriteIndex(tag, img.Index, r.remoteOptions(ctx)...)
		} else {
			err = remote.Write(tag, img.Image, r.remoteOptions(ctx)...)
		}
		if err != nil {
			return fmt.Errorf("push %s as %s: %w", ref, local, err)
		}
		r.log.Printf("pushed %s as %s", ref, local)
	}
	return nil
}

var blobPath = regexp.MustCompile(`^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$`)

// ServeHTTP counts the request, then lets the hook, a blob override or the
// in-memory registry answer it.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var override []byte
	r.mu.Lock()
	r.requests[req.Method+" "+req.URL.Path]++
	if m := blobPath.FindStringSubmatch(req.URL.Path); m != nil {
		if h, err := v1.NewHash(m[2]); err == nil {
			if req.Method == http.MethodGet {
				r.blobGets[h]++
			}
			if req.Method == http.MethodGet || req.Method == http.MethodHead {
				override = r.overrides[h]
				if override != nil {
					w.Header().Set("Docker-Content-Digest", h.String())
				}
			}
		}
	}
	hook := r.hook
	r.mu.Unlock()
	r.log.Printf("%s %s", req.Method, req.URL.Path)

	if hook != nil && hook(w, req) {
		return
	}
	if override != nil {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(override)))
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			_, _ = w.Write(override)
		}
		return
	}
	r.registry.ServeHTTP(w, req)
}

// ServeBlob makes the registry answer requests for blob digest with content,
// which need not match the digest; nil content restores the real blob.
func (r *Registry) ServeBlob(digest v1.Hash, content []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if content == nil {
		delete(r.overrides, digest)
		return
	}
	r.overrides[digest] = append([]byte(nil), content...)
}

// SetHook installs a function that sees every request first (after it is
// counted); when it returns true it has answered the request. nil removes it.
func (r *Registry) SetHook(hook func(http.ResponseWriter, *http.Request) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = hook
}

// BlobFetches is the number of GET requests for blob digest, in any
// repository, since the last ResetCounts.
func (r *Registry) BlobFetches(digest v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[digest]
}

// Requests is the number of requests with method for path (e.g. "GET",
// "/v2/library/busybox/manifests/latest") since the last ResetCounts.
func (r *Registry) Requests(method, path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[method+" "+path]
}

// Counts returns a copy of all request counters, keyed "METHOD /path".
func (r *Registry) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.requests))
	for k, v := range r.requests {
		out[k] = v
	}
	return out
}

// ResetCounts sets every counter to zero.
func (r *Registry) ResetCounts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = map[string]int{}
	r.blobGets = map[v1.Hash]int{}
}

// MirroredRegistries are the registries the catalogue's references name; a
// runtime under test should use the test registry as a mirror for each.
var MirroredRegistries = []string{"docker.io", "gcr.io", "registry.k8s.io", "k8s.gcr.io"}

// MirrorTOML is berthd configuration that sends every pull from
// MirroredRegistries to this registry over plain HTTP, and never to a real
// registry (mirrors_only): tests must not reach off this machine.
func (r *Registry) MirrorTOML() string {
	var b strings.Builder
	b.WriteString("[image.registry]\nmirrors_only = true\n\n[image.registry.mirrors]\n")
	for _, host := range MirroredRegistries {
		fmt.Fprintf(&b, "%q = [%q]\n", host, r.URL())
	}
	fmt.Fprintf(&b, "\n[image.registry.hosts.%q]\nplain_http = true\n", r.Addr())
	return b.String()
}

// ServeCatalogue builds the whole catalogue (building busybox first if
// needed, see EnsureBusybox) and serves it on a free loopback port until ctx
// is done.
func ServeCatalogue(ctx context.Context, opts ...Option) (*Registry, []Image, error) {
	bb, err := EnsureBusybox(ctx)
	if err != nil {
		return nil, nil, err
	}
	images, err := Build(bb)
	if err != nil {
		return nil, nil, err
	}
	r, err := Serve(ctx, "127.0.0.1:0", images, opts...)
	if err != nil {
		return nil, nil, err
	}
	return r, images, nil
}
