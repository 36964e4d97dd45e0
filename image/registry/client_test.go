package registry

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// push writes a random image to the registry behind srv as repo:tag.
func push(t *testing.T, srv *httptest.Server, repo, tag string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	opts := []remote.Option{}
	if srv.TLS != nil {
		host = strings.TrimPrefix(srv.URL, "https://")
		opts = append(opts, remote.WithTransport(srv.Client().Transport))
	}
	ref, err := name.NewTag(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	return img
}

func hostOf(srv *httptest.Server) string {
	return strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
}

func upstream(t *testing.T, r *Resolver, registry string, auth *Auth) Endpoint {
	t.Helper()
	eps, err := r.Resolve(registry, auth)
	if err != nil {
		t.Fatal(err)
	}
	return eps[len(eps)-1]
}

func TestClientManifestAndBlob(t *testing.T) {
	srv := httptest.NewServer(newRegistry())
	defer srv.Close()
	img := push(t, srv, "test/app", "v1")
	r, err := New(Config{}, Options{StallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := upstream(t, r, hostOf(srv), nil).Connect(ctx, "test/app")
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Manifest(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if m.Digest != want.String() || !strings.Contains(m.MediaType, "manifest") || len(m.Bytes) == 0 {
		t.Errorf("Manifest = %s %s (%d bytes), want %s", m.Digest, m.MediaType, len(m.Bytes), want)
	}
	if byDigest, err := c.Manifest(ctx, want.String()); err != nil || byDigest.Digest != want.String() {
		t.Errorf("Manifest by digest = %+v, %v", byDigest.Digest, err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	rc, err := c.Blob(ctx, ld.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	wantRC, _ := layers[0].Compressed()
	wantBytes, _ := io.ReadAll(wantRC)
	if err != nil || string(got) != string(wantBytes) {
		t.Errorf("Blob read %d bytes, %v; want %d bytes", len(got), err, len(wantBytes))
	}

	_, err = c.Manifest(ctx, "missing")
	if !errdefs.IsNotFound(err) || !CanFallThrough(err, c.Endpoint()) {
		t.Errorf("Manifest(missing) = %v, want not found that falls through", err)
	}
	_, err = c.Blob(ctx, "sha256:"+strings.Repeat("0", 64))
	if !errdefs.IsNotFound(err) {
		t.Errorf("Blob(missing) = %v, want not found", err)
	}
}

// dialTo routes every connection to addr, whatever name was dialled.
func dialTo(addr string) DialFunc {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

func TestPlainHTTPPolicy(t *testing.T) {
	srv := httptest.NewServer(newRegistry())
	defer srv.Close()
	push(t, srv, "app", "v1")
	tests := []struct {
		name   string
		cfg    Config
		host   string
		wantOK bool
	}{
		{name: "non-loopback name without plain_http", host: "registry.test:5000", wantOK: false},
		{name: "non-loopback name with plain_http", host: "registry.test:5000", wantOK: true,
			cfg: Config{Hosts: map[string]Host{"registry.test:5000": {PlainHTTP: true}}}},
		{name: "private address without plain_http", host: "10.1.2.3:5000", wantOK: false},
		{name: "loopback without config", host: "localhost:5000", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, Options{Dial: dialTo(hostOf(srv)), StallTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			c, err := upstream(t, r, tt.host, nil).Connect(ctx, "app")
			if err == nil {
				_, err = c.Manifest(ctx, "v1")
			}
			if tt.wantOK && err != nil {
				t.Fatalf("pull failed: %v", err)
			}
			if !tt.wantOK && (err == nil || !errors.Is(err, errdefs.ErrUnavailable)) {
				t.Fatalf("got %v, want an unavailable error", err)
			}
		})
	}
}

func TestTLSSettings(t *testing.T) {
	srv := httptest.NewTLSServer(newRegistry())
	defer srv.Close()
	push(t, srv, "app", "v1")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	const host = "tls.test:443"
	tests := []struct {
		name   string
		h      Host
		wantOK bool
	}{
		{"unknown CA", Host{}, false},
		{"custom CA", Host{CAFile: caFile}, true},
		{"skip verify", Host{InsecureSkipVerify: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// httptest's certificate is for 127.0.0.1 and example.com; dial by name
			// through the IP so the CA case verifies the name "example.com".
			h := host
			if tt.h.CAFile != "" {
				h = "example.com:443"
			}
			r, err := New(Config{Hosts: map[string]Host{h: tt.h}}, Options{Dial: dialTo(hostOf(srv)), StallTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			c, err := upstream(t, r, h, nil).Connect(ctx, "app")
			if err == nil {
				_, err = c.Manifest(ctx, "v1")
			}
			if tt.wantOK != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, tt.wantOK)
			}
		})
	}
}

// basicAuth puts HTTP basic authentication in front of h.
func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required: test realm"}]}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestCredentials(t *testing.T) {
	reg := newRegistry()
	open := httptest.NewServer(reg)
	defer open.Close()
	push(t, open, "private/app", "v1")
	srv := httptest.NewServer(basicAuth("alice", "s3cret", reg))
	defer srv.Close()
	host := hostOf(srv)
	tests := []struct {
		name   string
		cfg    Config
		auth   *Auth
		wantOK bool
	}{
		{name: "anonymous", wantOK: false},
		{name: "request username/password", auth: &Auth{Credentials: Credentials{Username: "alice", Password: "s3cret"}}, wantOK: true},
		{name: "request base64 auth", auth: &Auth{Credentials: Credentials{Auth: "YWxpY2U6czNjcmV0"}}, wantOK: true},
		{name: "request wrong password", auth: &Auth{Credentials: Credentials{Username: "alice", Password: "nope"}}, wantOK: false},
		{name: "config credentials", cfg: Config{Hosts: map[string]Host{host: {Credentials: Credentials{Username: "alice", Password: "s3cret"}}}}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, Options{StallTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			ep := upstream(t, r, host, tt.auth)
			c, err := ep.Connect(ctx, "private/app")
			if err == nil {
				_, err = c.Manifest(ctx, "v1")
			}
			if tt.wantOK {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || CanFallThrough(err, ep) {
				t.Fatalf("got %v, want a final unauthorized error", err)
			}
			if !strings.Contains(err.Error(), "authentication required: test realm") {
				t.Errorf("error %q lost the registry's message", err)
			}
			mirror := ep
			mirror.Mirror = true
			if !CanFallThrough(err, mirror) {
				t.Error("a mirror's unauthorized error should fall through")
			}
		})
	}
}

func TestStall(t *testing.T) {
	reg := newRegistry()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("some"))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer close(release)
	r, err := New(Config{}, Options{StallTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ep := upstream(t, r, hostOf(srv), nil)
	c, err := ep.Connect(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.Blob(ctx, "sha256:"+strings.Repeat("1", 64))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	_, err = io.ReadAll(rc)
	var se *StallError
	if !errors.As(err, &se) || err.Error() != "no data received for 200ms" {
		t.Fatalf("ReadAll = %v, want a stall error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stall detected after %s", d)
	}
	if !CanFallThrough(err, ep) {
		t.Error("a stall should fall through to the next endpoint")
	}
}

func TestUnavailableAndContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downHost := hostOf(down)
	down.Close()

	r, err := New(Config{Mirrors: map[string][]string{"docker.io": {"http://" + hostOf(srv), "http://" + downHost}}}, Options{StallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eps, err := r.Resolve("docker.io", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps[:2] {
		_, err := ep.Connect(context.Background(), "library/busybox")
		if !errors.Is(err, errdefs.ErrUnavailable) || !CanFallThrough(err, ep) {
			t.Errorf("%s: Connect = %v, want unavailable", ep, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	_, err = eps[0].Connect(ctx, "library/busybox")
	if !errors.Is(err, context.DeadlineExceeded) || CanFallThrough(err, eps[0]) {
		t.Errorf("Connect with expired context = %v, want a final deadline error", err)
	}
}

// newRegistry is an in-process registry that logs nothing.
func newRegistry() http.Handler {
	return ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
}
