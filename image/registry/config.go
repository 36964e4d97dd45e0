package registry

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berth-runtime/berth/internal/errdefs"
)

const (
	// DockerHub is the CRI's name for Docker Hub.
	DockerHub = "docker.io"
	// DockerHubHost is where Docker Hub's registry API answers.
	DockerHubHost = "registry-1.docker.io"
)

// Config says how to reach registries (the image service converts its TOML form).
type Config struct {
	// Mirrors maps a registry host to endpoint URLs tried in order before it.
	Mirrors map[string][]string
	// Hosts holds per-host settings keyed by host[:port].
	Hosts map[string]Host
	// MirrorsOnly never contacts a registry itself, only its mirrors: an air-gapped
	// node (or a test) must not reach out when a mirror misses.
	MirrorsOnly bool
}

// Host holds the settings of one registry or mirror host.
type Host struct {
	PlainHTTP          bool
	InsecureSkipVerify bool
	CAFile             string
	Credentials        Credentials
}

// Credentials for one registry, in any of the forms the CRI and docker config use.
type Credentials struct {
	Username      string
	Password      string
	Auth          string // base64("user:password")
	IdentityToken string
	RegistryToken string
}

// IsZero reports whether no credential is set.
func (c Credentials) IsZero() bool { return c == Credentials{} }

// authenticator turns credentials into a go-containerregistry Authenticator.
func (c Credentials) authenticator() (authn.Authenticator, error) {
	if c.IsZero() {
		return authn.Anonymous, nil
	}
	cfg := authn.AuthConfig{
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.IdentityToken,
		RegistryToken: c.RegistryToken,
	}
	if c.Auth != "" && c.Username == "" && c.Password == "" {
		raw, err := base64.StdEncoding.DecodeString(c.Auth)
		if err != nil {
			return nil, errdefs.InvalidArgument("credentials: auth is not valid base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, errdefs.InvalidArgument("credentials: auth is not base64(user:password)")
		}
		cfg.Username, cfg.Password = user, pass
	}
	return authn.FromConfig(cfg), nil
}

// Auth is what a pull request carries: credentials, and the server they were issued
// for (may be empty).
type Auth struct {
	Credentials
	ServerAddress string
}

// canonicalRegistry spells Docker Hub's aliases "docker.io"; other hosts are lowercased.
func canonicalRegistry(host string) string {
	h := strings.ToLower(host)
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHub
	}
	return h
}

// upstreamHost is the host[:port] that serves a registry's API.
func upstreamHost(registry string) string {
	if canonicalRegistry(registry) == DockerHub {
		return DockerHubHost
	}
	return strings.ToLower(registry)
}

// serverHost extracts host[:port] from a CRI ServerAddress, which may be a bare host,
// a URL ("https://index.docker.io/v1/") or host/path.
func serverHost(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return ""
	}
	if !strings.Contains(addr, "://") {
		addr = "//" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// mirrorEndpoint parses a mirror entry: "http://host[:port]", "https://host[:port]" or
// "host[:port]" (HTTPS).
func mirrorEndpoint(raw string) (host string, plainHTTP bool, err error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", false, errdefs.InvalidArgument(fmt.Sprintf("mirror %q: %v", raw, err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, errdefs.InvalidArgument(fmt.Sprintf("mirror %q: scheme must be http or https", raw))
	case u.Host == "":
		return "", false, errdefs.InvalidArgument(fmt.Sprintf("mirror %q: no host", raw))
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil:
		return "", false, errdefs.InvalidArgument(fmt.Sprintf("mirror %q: only scheme://host[:port] is supported", raw))
	}
	return strings.ToLower(u.Host), u.Scheme == "http", nil
}

// isLoopback reports localhost, 127.0.0.0/8 and ::1, with or without a port.
func isLoopback(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
