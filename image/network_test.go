package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-runtime/berth/image/content"
	"github.com/berth-runtime/berth/image/registry"
	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestCorruptBlobs(t *testing.T) {
	good := layerOf(t, map[string]string{"good": "fine"})
	bad := layerOf(t, map[string]string{"bad": strings.Repeat("payload", 100)})
	tests := []struct {
		name string
		img  v1.Image
		// which blob is served damaged, and which snapshots may remain (the verified
		// layers of the failed pull, kept for kubelet's retry)
		damaged func(img v1.Image) string
		mayKeep []string
	}{
		{name: "only layer", img: imageOf(t, "", bad), damaged: func(v1.Image) string { return digestOf(t, bad) }},
		{name: "second layer", img: imageOf(t, "", good, bad), damaged: func(v1.Image) string { return digestOf(t, bad) },
			mayKeep: []string{mustDiffID(t, good)}},
		{name: "config", img: imageOf(t, "", good), damaged: func(img v1.Image) string { return configDigest(t, img) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newTestRegistry(t)
			ref := reg.push(t, "app:v1", tt.img)
			damaged := tt.damaged(tt.img)
			var tampered []byte
			reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+damaged) {
					return false
				}
				rec := httptest.NewRecorder()
				reg.inner.ServeHTTP(rec, r)
				tampered = rec.Body.Bytes()
				tampered[len(tampered)/2] ^= 0xff
				w.Write(tampered)
				return true
			})
			s := newTestService(t, nil, nil)
			_, err := s.Pull(context.Background(), ref, nil)
			if !errors.Is(err, content.ErrDigestMismatch) || !errors.Is(err, errdefs.ErrDataLoss) {
				t.Fatalf("Pull = %v, want a digest mismatch of class data loss", err)
			}
			if !strings.Contains(err.Error(), damaged) || !strings.Contains(err.Error(), sha256Of(tampered)) {
				t.Errorf("error %q does not name both digests", err)
			}
			if l := s.List(""); len(l) != 0 {
				t.Errorf("images after a failed pull: %v", l)
			}
			for _, c := range s.snaps.List() {
				if !slices.Contains(tt.mayKeep, c.ChainID) {
					t.Errorf("unexpected snapshot %s", c.ChainID)
				}
			}
			if bytes, n := s.content.Usage(); n != 0 {
				t.Errorf("%d blobs (%d bytes) kept after a failed pull", n, bytes)
			}
			if left := tmpLeftovers(t, s); len(left) != 0 {
				t.Errorf("tmp leftovers: %v", left)
			}
		})
	}
}

// TestDiffIDMismatch serves a layer whose blob matches its digest but whose content is
// not what the config's diffID says: the pull fails as data loss and keeps nothing.
func TestDiffIDMismatch(t *testing.T) {
	img := imageOf(t, "", layerOf(t, map[string]string{"data": "real"}))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(sha256Of([]byte("claimed")), "sha256:")}
	lying, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:v1", lying)
	s := newTestService(t, nil, nil)
	_, err = s.Pull(context.Background(), ref, nil)
	if err == nil || !strings.Contains(err.Error(), "diffID mismatch") || !errors.Is(err, errdefs.ErrDataLoss) {
		t.Fatalf("Pull = %v, want a diffID mismatch of class data loss", err)
	}
	if l := s.List(""); len(l) != 0 {
		t.Errorf("images after a failed pull: %v", l)
	}
	if n := len(s.snaps.List()); n != 0 {
		t.Errorf("%d snapshots kept from a layer that failed its diffID", n)
	}
	if left := tmpLeftovers(t, s); len(left) != 0 {
		t.Errorf("tmp leftovers: %v", left)
	}
}

func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func mustDiffID(t *testing.T, l interface{ DiffID() (v1.Hash, error) }) string {
	t.Helper()
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestMirrorFallthrough(t *testing.T) {
	img := twoLayerImage(t, "")
	tests := []struct {
		name   string
		mirror func(t *testing.T) string // returns the first mirror's URL
	}{
		{"connection refused", func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close()
			return srv.URL
		}},
		{"404 for everything", func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(srv.Close)
			return srv.URL
		}},
		{"empty registry", func(t *testing.T) string { return newTestRegistry(t).URL }},
		{"5xx", func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadGateway)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := newTestRegistry(t)
			ref := upstream.push(t, "app:v1", img)
			second := newTestRegistry(t)
			second.push(t, "app:v1", img)
			s := newTestService(t, func(c *Config) {
				c.Registry.Mirrors = map[string][]string{upstream.host(): {tt.mirror(t), second.URL}}
			}, nil)
			got, err := s.Pull(context.Background(), ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != configDigest(t, img) {
				t.Errorf("ID = %s", got.ID)
			}
			if n := upstream.requests(); n != 0 {
				t.Errorf("upstream got %d requests; the second mirror should have served", n)
			}
			if gets := second.blobGETs(); len(gets) != 3 {
				t.Errorf("second mirror served %v", gets)
			}
			// The names are the upstream's, whichever endpoint served.
			if !strings.HasPrefix(got.RepoTags[0], upstream.host()+"/") {
				t.Errorf("RepoTags = %v", got.RepoTags)
			}
		})
	}
}

func TestMirrorsAllFailFallsBackToUpstream(t *testing.T) {
	img := twoLayerImage(t, "")
	upstream := newTestRegistry(t)
	ref := upstream.push(t, "app:v1", img)
	empty := newTestRegistry(t)
	s := newTestService(t, func(c *Config) {
		c.Registry.Mirrors = map[string][]string{upstream.host(): {empty.URL}}
	}, nil)
	if _, err := s.Pull(context.Background(), ref, nil); err != nil {
		t.Fatal(err)
	}
	if gets := upstream.blobGETs(); len(gets) != 3 {
		t.Errorf("upstream served %v", gets)
	}
	// Nowhere: not found, naming the ref.
	_, err := s.Pull(context.Background(), upstream.host()+"/absent:v1", nil)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "absent:v1") {
		t.Errorf("Pull(absent) = %v", err)
	}
}

// dialTo routes every connection to addr.
func dialTo(addr string) registry.DialFunc {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

func TestPlainHTTPHostConfig(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	reg.push(t, "app:v1", img)
	const ref = "registry.test:5000/app:v1"
	tests := []struct {
		name  string
		hosts map[string]HostConfig
		ok    bool
	}{
		{"https by default", nil, false},
		{"plain_http configured", map[string]HostConfig{"registry.test:5000": {PlainHTTP: true}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestService(t, func(c *Config) { c.Registry.Hosts = tt.hosts }, dialTo(reg.host()))
			got, err := s.Pull(context.Background(), ref, nil)
			if tt.ok {
				if err != nil || got.ID != configDigest(t, img) || got.RepoTags[0] != ref {
					t.Fatalf("Pull = %+v, %v", got.RepoTags, err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatalf("Pull = %v, want unavailable", err)
			}
		})
	}
}

func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"login to berth-test first"}]}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestCredentials(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	reg.push(t, "private/app:v1", img)
	front := httptest.NewServer(basicAuth("alice", "s3cret", http.HandlerFunc(reg.serve)))
	defer front.Close()
	host := strings.TrimPrefix(front.URL, "http://")
	ref := host + "/private/app:v1"
	tests := []struct {
		name  string
		hosts map[string]HostConfig
		auth  *AuthConfig
		ok    bool
	}{
		{name: "anonymous"},
		{name: "request credentials", auth: &AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: host}, ok: true},
		{name: "request base64 auth", auth: &AuthConfig{Auth: "YWxpY2U6czNjcmV0"}, ok: true},
		{name: "wrong password", auth: &AuthConfig{Username: "alice", Password: "guess"}},
		{name: "configured credentials", hosts: map[string]HostConfig{host: {Username: "alice", Password: "s3cret"}}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestService(t, func(c *Config) { c.Registry.Hosts = tt.hosts }, nil)
			_, err := s.Pull(context.Background(), ref, tt.auth)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, registry.ErrUnauthorized) || !strings.Contains(err.Error(), "login to berth-test first") {
				t.Fatalf("Pull = %v, want unauthorized with the registry's message", err)
			}
		})
	}
}

func TestStalledLayer(t *testing.T) {
	reg := newTestRegistry(t)
	layer := layerOf(t, map[string]string{"f": strings.Repeat("z", 50000)})
	img := imageOf(t, "", layer)
	ref := reg.push(t, "slow:v1", img)
	ld := digestOf(t, layer)
	release := make(chan struct{})
	defer close(release)
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+ld) {
			return false
		}
		rc, _ := layer.Compressed()
		io.CopyN(w, rc, 100)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	s := newTestService(t, func(c *Config) { c.StallTimeout = 200 * time.Millisecond }, nil)
	start := time.Now()
	_, err := s.Pull(context.Background(), ref, nil)
	want := "pull " + ref + ": layer " + ld + ": no data received for 200ms"
	if err == nil || err.Error() != want {
		t.Fatalf("Pull = %v\nwant %s", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stall noticed after %s", d)
	}
	if len(s.snaps.List()) != 0 || len(tmpLeftovers(t, s)) != 0 {
		t.Errorf("left snapshots %v, tmp %v", s.snaps.List(), tmpLeftovers(t, s))
	}
}

func TestPullDeadline(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	ref := reg.push(t, "app:v1", img)
	release := make(chan struct{})
	defer close(release)
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			return false
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	s := newTestService(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Pull(ctx, ref, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pull = %v, want deadline exceeded", err)
	}
	// An already expired context fails at once too.
	_, err = s.Pull(ctx, ref, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Pull = %v, want deadline exceeded", err)
	}
}
