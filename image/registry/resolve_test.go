package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

type wantEP struct {
	host        string
	mirror      bool
	plain       bool
	allowHTTP   bool
	credentials string
}

func TestResolve(t *testing.T) {
	cfg := Config{
		Mirrors: map[string][]string{
			"index.docker.io": {"http://127.0.0.1:5000", "https://Mirror.Example:8443", "mirror2.example"},
			"registry.k8s.io": {"https://k8s-mirror.example/"},
		},
		Hosts: map[string]Host{
			"docker.io":             {Credentials: Credentials{Username: "hub", Password: "pw"}},
			"mirror2.example":       {PlainHTTP: true, Credentials: Credentials{Auth: "dTpw"}},
			"k8s-mirror.example":    {InsecureSkipVerify: true},
			"10.0.0.5:5000":         {PlainHTTP: true},
			"private.example:5000":  {Credentials: Credentials{IdentityToken: "tok"}},
			"quay.io":               {},
			"registry.gitlab.local": {Credentials: Credentials{RegistryToken: "rt"}},
		},
	}
	r, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reqAuth := &Auth{Credentials: Credentials{Username: "req", Password: "pw"}}
	tests := []struct {
		name     string
		registry string
		auth     *Auth
		want     []wantEP
	}{
		{
			name: "docker hub with mirrors, no request auth", registry: "docker.io",
			want: []wantEP{
				{host: "127.0.0.1:5000", mirror: true, plain: true, allowHTTP: true, credentials: "anonymous"},
				{host: "mirror.example:8443", mirror: true, credentials: "anonymous"},
				{host: "mirror2.example", mirror: true, plain: true, allowHTTP: true, credentials: "config"},
				{host: "registry-1.docker.io", credentials: "config"},
			},
		},
		{
			name: "request auth applies to the upstream only", registry: "docker.io", auth: reqAuth,
			want: []wantEP{
				{host: "127.0.0.1:5000", mirror: true, plain: true, allowHTTP: true, credentials: "anonymous"},
				{host: "mirror.example:8443", mirror: true, credentials: "anonymous"},
				{host: "mirror2.example", mirror: true, plain: true, allowHTTP: true, credentials: "config"},
				{host: "registry-1.docker.io", credentials: "request"},
			},
		},
		{
			name: "request auth naming a mirror applies to it too", registry: "docker.io",
			auth: &Auth{Credentials: Credentials{Username: "req", Password: "pw"}, ServerAddress: "https://mirror.example:8443/v2/"},
			want: []wantEP{
				{host: "127.0.0.1:5000", mirror: true, plain: true, allowHTTP: true, credentials: "anonymous"},
				{host: "mirror.example:8443", mirror: true, credentials: "request"},
				{host: "mirror2.example", mirror: true, plain: true, allowHTTP: true, credentials: "config"},
				{host: "registry-1.docker.io", credentials: "request"},
			},
		},
		{
			name: "empty request auth is ignored", registry: "docker.io", auth: &Auth{ServerAddress: "docker.io"},
			want: []wantEP{
				{host: "127.0.0.1:5000", mirror: true, plain: true, allowHTTP: true, credentials: "anonymous"},
				{host: "mirror.example:8443", mirror: true, credentials: "anonymous"},
				{host: "mirror2.example", mirror: true, plain: true, allowHTTP: true, credentials: "config"},
				{host: "registry-1.docker.io", credentials: "config"},
			},
		},
		{
			name: "mirror with trailing slash", registry: "registry.k8s.io",
			want: []wantEP{
				{host: "k8s-mirror.example", mirror: true, credentials: "anonymous"},
				{host: "registry.k8s.io", credentials: "anonymous"},
			},
		},
		{
			name: "no mirrors", registry: "gcr.io",
			want: []wantEP{{host: "gcr.io", credentials: "anonymous"}},
		},
		{
			name: "private address needs explicit plain http", registry: "10.0.0.6:5000",
			want: []wantEP{{host: "10.0.0.6:5000", credentials: "anonymous"}},
		},
		{
			name: "private address configured plain http", registry: "10.0.0.5:5000",
			want: []wantEP{{host: "10.0.0.5:5000", plain: true, allowHTTP: true, credentials: "anonymous"}},
		},
		{
			name: "loopback allows http", registry: "localhost:5000",
			want: []wantEP{{host: "localhost:5000", allowHTTP: true, credentials: "anonymous"}},
		},
		{
			name: "ipv6 loopback", registry: "[::1]:5000",
			want: []wantEP{{host: "[::1]:5000", allowHTTP: true, credentials: "anonymous"}},
		},
		{
			name: "identity token from config", registry: "private.example:5000",
			want: []wantEP{{host: "private.example:5000", credentials: "config"}},
		},
		{
			name: "request auth beats config", registry: "private.example:5000", auth: reqAuth,
			want: []wantEP{{host: "private.example:5000", credentials: "request"}},
		},
		{
			name: "registry token from config", registry: "registry.gitlab.local",
			want: []wantEP{{host: "registry.gitlab.local", credentials: "config"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps, err := r.Resolve(tt.registry, tt.auth)
			if err != nil {
				t.Fatal(err)
			}
			if len(eps) != len(tt.want) {
				t.Fatalf("got %d endpoints %v, want %d", len(eps), eps, len(tt.want))
			}
			for i, ep := range eps {
				got := wantEP{host: ep.Host, mirror: ep.Mirror, plain: ep.PlainHTTP, allowHTTP: ep.AllowHTTP, credentials: ep.Credentials}
				if got != tt.want[i] {
					t.Errorf("endpoint %d = %+v, want %+v", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"mirror with path", Config{Mirrors: map[string][]string{"docker.io": {"https://m.example/v2/library"}}}},
		{"mirror with bad scheme", Config{Mirrors: map[string][]string{"docker.io": {"ftp://m.example"}}}},
		{"mirror without host", Config{Mirrors: map[string][]string{"docker.io": {"https://"}}}},
		{"duplicate docker hub mirrors", Config{Mirrors: map[string][]string{"docker.io": {"a.example"}, "index.docker.io": {"b.example"}}}},
		{"duplicate docker hub hosts", Config{Hosts: map[string]Host{"docker.io": {}, "registry-1.docker.io": {}}}},
		{"missing ca file", Config{Hosts: map[string]Host{"x.example": {CAFile: filepath.Join(dir, "absent.pem")}}}},
		{"ca file without certificate", Config{Hosts: map[string]Host{"x.example": {CAFile: notPEM}}}},
		{"auth not base64", Config{Hosts: map[string]Host{"x.example": {Credentials: Credentials{Auth: "%%%"}}}}},
		{"auth without colon", Config{Hosts: map[string]Host{"x.example": {Credentials: Credentials{Auth: "dXNlcg=="}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Options{})
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("New = %v, want invalid argument", err)
			}
		})
	}
}

func TestServerHost(t *testing.T) {
	tests := map[string]string{
		"":                            "",
		"docker.io":                   "docker.io",
		"https://index.docker.io/v1/": "index.docker.io",
		"Mirror.Example:8443":         "mirror.example:8443",
		"http://127.0.0.1:5000":       "127.0.0.1:5000",
		"quay.io/org":                 "quay.io",
	}
	for in, want := range tests {
		if got := serverHost(in); got != want {
			t.Errorf("serverHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEndpointString(t *testing.T) {
	r, err := New(Config{Mirrors: map[string][]string{"docker.io": {"http://127.0.0.1:1"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	eps, err := r.Resolve("docker.io", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{eps[0].String(), eps[1].String()}
	if strings.Join(got, ",") != "mirror http://127.0.0.1:1,registry https://registry-1.docker.io" {
		t.Errorf("endpoints = %v", got)
	}
}

func TestResolveMirrorsOnly(t *testing.T) {
	r, err := New(Config{
		Mirrors:     map[string][]string{"docker.io": {"http://127.0.0.1:5000"}},
		MirrorsOnly: true,
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	eps, err := r.Resolve("docker.io", nil)
	if err != nil || len(eps) != 1 || !eps[0].Mirror {
		t.Fatalf("mirrored registry: %v, %v; want the mirror alone", eps, err)
	}
	if _, err := r.Resolve("quay.io", nil); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("unmirrored registry: %v, want a FailedPrecondition refusal", err)
	}
}
