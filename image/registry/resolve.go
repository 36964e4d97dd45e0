package registry

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Options tune a Resolver.
type Options struct {
	// StallTimeout fails a request that receives no byte for this long (0: never).
	StallTimeout time.Duration
	// Dial replaces the dialer of every connection (tests route names to loopback).
	Dial DialFunc
	// UserAgent is sent with every request ("" keeps go-containerregistry's).
	UserAgent string
}

type mirror struct {
	host      string
	plainHTTP bool
}

// Resolver turns a registry host into the endpoints to try. Safe for concurrent use;
// connections are pooled per host across pulls.
type Resolver struct {
	opts        Options
	mirrors     map[string][]mirror // canonical registry -> mirrors
	hosts       map[string]Host     // lowercased host[:port] (Docker Hub: registry-1.docker.io)
	mirrorsOnly bool

	mu         sync.Mutex
	transports map[string]*http.Transport
	clients    *clientCache
}

// New validates cfg (mirror URLs, CA files, base64 auth) and returns a Resolver. Errors
// wrap errdefs.ErrInvalidArgument.
func New(cfg Config, opts Options) (*Resolver, error) {
	r := &Resolver{
		opts:        opts,
		mirrorsOnly: cfg.MirrorsOnly,
		mirrors:     map[string][]mirror{},
		hosts:       map[string]Host{},
		transports:  map[string]*http.Transport{},
		clients:     newClientCache(),
	}
	for key, h := range cfg.Hosts {
		host := upstreamHost(key)
		if _, dup := r.hosts[host]; dup {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("registry hosts: %q is configured twice (Docker Hub aliases name one host)", key))
		}
		if _, err := h.Credentials.authenticator(); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("host %s: %v", key, err))
		}
		r.hosts[host] = h
	}
	for key, urls := range cfg.Mirrors {
		reg := canonicalRegistry(key)
		if _, dup := r.mirrors[reg]; dup {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("registry mirrors: %q is configured twice (Docker Hub aliases name one registry)", key))
		}
		list := []mirror{}
		for _, u := range urls {
			host, plain, err := mirrorEndpoint(u)
			if err != nil {
				return nil, err
			}
			list = append(list, mirror{host: host, plainHTTP: plain})
		}
		r.mirrors[reg] = list
	}
	// Build the transports of configured hosts now so that a bad CA file fails at start.
	for host := range r.hosts {
		if _, err := r.transport(host); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Close forgets the connected clients and releases idle connections.
func (r *Resolver) Close() {
	r.clients.clear()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.transports {
		t.CloseIdleConnections()
	}
}

func (r *Resolver) transport(host string) (*http.Transport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.transports[host]; ok {
		return t, nil
	}
	t, err := newHTTPTransport(host, r.hosts[host], r.opts.Dial)
	if err != nil {
		return nil, err
	}
	r.transports[host] = t
	return t, nil
}

// Endpoint is one place to fetch a registry's content from.
type Endpoint struct {
	// Host is the host[:port] contacted.
	Host string
	// Mirror is false for the registry itself.
	Mirror bool
	// PlainHTTP: only HTTP is spoken to this endpoint. AllowHTTP: HTTP is allowed
	// (plain, or a loopback host, where HTTPS is tried first).
	PlainHTTP bool
	AllowHTTP bool
	// Credentials says whose credentials are used: "request", "config" or "anonymous".
	Credentials string

	auth    authn.Authenticator
	credKey string // identifies the credentials in cache keys
	rt      http.RoundTripper
	stall   time.Duration
	cache   *clientCache // nil: every Connect handshakes
}

func (e Endpoint) String() string {
	kind := "registry"
	if e.Mirror {
		kind = "mirror"
	}
	scheme := "https"
	if e.PlainHTTP {
		scheme = "http"
	}
	return kind + " " + scheme + "://" + e.Host
}

// Resolve returns the endpoints to try for registry (a reference's domain), mirrors
// first, the registry itself last. auth (may be nil) carries the request's credentials.
func (r *Resolver) Resolve(registry string, auth *Auth) ([]Endpoint, error) {
	reg := canonicalRegistry(registry)
	var out []Endpoint
	for _, m := range r.mirrors[reg] {
		var req *Credentials
		if auth != nil && !auth.IsZero() && serverHost(auth.ServerAddress) == m.host {
			req = &auth.Credentials
		}
		ep, err := r.endpoint(m.host, m.plainHTTP, true, req)
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	if r.mirrorsOnly {
		if len(out) == 0 {
			return nil, fmt.Errorf("registry %s has no mirror and mirrors_only is set: %w", reg, errdefs.ErrFailedPrecondition)
		}
		return out, nil
	}
	var req *Credentials
	if auth != nil && !auth.IsZero() {
		req = &auth.Credentials
	}
	ep, err := r.endpoint(upstreamHost(reg), false, false, req)
	if err != nil {
		return nil, err
	}
	return append(out, ep), nil
}

func (r *Resolver) endpoint(host string, plainURL, isMirror bool, req *Credentials) (Endpoint, error) {
	h := r.hosts[host]
	plain := plainURL || h.PlainHTTP
	ep := Endpoint{
		Host:      host,
		Mirror:    isMirror,
		PlainHTTP: plain,
		AllowHTTP: plain || isLoopback(host),
		stall:     r.opts.StallTimeout,
		cache:     r.clients,
	}
	creds := h.Credentials
	ep.Credentials = "config"
	if req != nil {
		creds, ep.Credentials = *req, "request"
	} else if creds.IsZero() {
		ep.Credentials = "anonymous"
	}
	auth, err := creds.authenticator()
	if err != nil {
		return Endpoint{}, err
	}
	ep.auth = auth
	ep.credKey = credentialKey(creds)
	base, err := r.transport(host)
	if err != nil {
		return Endpoint{}, err
	}
	var rt http.RoundTripper = &schemeGuard{inner: base, host: host, allowHTTP: ep.AllowHTTP, allowHTTPS: !plain}
	retry := upstreamRetry
	if isMirror {
		retry = mirrorRetry
	}
	rt = transport.NewRetry(rt, retry...)
	if ua := strings.TrimSpace(r.opts.UserAgent); ua != "" {
		rt = transport.NewUserAgent(rt, ua)
	}
	ep.rt = rt
	return ep, nil
}
