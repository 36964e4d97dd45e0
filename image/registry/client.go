package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Client talks to one endpoint about one repository. It is safe for concurrent use.
type Client struct {
	*conn
	reused bool
}

// conn is a connected client, shared by every Connect that reuses it.
type conn struct {
	ep     Endpoint
	repo   name.Repository
	http   *http.Client
	puller *remote.Puller
	key    string
}

// Manifest is a manifest or index as the endpoint served it. Digest is computed from
// Bytes (and checked against the requested digest when fetched by digest).
type Manifest struct {
	Bytes     []byte
	MediaType string
	Digest    string
}

// Connect returns a client for pulling from repository (a path such as
// "library/busybox"). A client connected earlier for the same endpoint, repository and
// credentials is reused (see cache.go for why that is safe and how long); otherwise the
// endpoint is pinged and the authentication handshake performed.
func (e Endpoint) Connect(ctx context.Context, repository string) (*Client, error) {
	if c := e.cache.get(e.cacheKey(repository)); c != nil {
		return &Client{conn: c, reused: true}, nil
	}
	return e.ConnectFresh(ctx, repository)
}

// ConnectFresh pings the endpoint and performs the authentication handshake, whether or
// not a client is cached; the new client replaces the cached one.
func (e Endpoint) ConnectFresh(ctx context.Context, repository string) (*Client, error) {
	opts := []name.Option{name.WeakValidation}
	if e.AllowHTTP {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(e.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e, err)
	}
	repo := reg.Repo(repository)
	wctx, _, stop := watchdog(ctx, e.stall)
	defer stop()
	rt, err := transport.NewWithContext(wctx, reg, e.auth, e.rt, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e, classify(ctx, wctx, err))
	}
	// rt is a *transport.Wrapper: remote uses it as is, without a second handshake.
	puller, err := remote.NewPuller(remote.WithTransport(rt), remote.WithAuth(e.auth))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e, err)
	}
	c := &conn{ep: e, repo: repo, http: &http.Client{Transport: rt}, puller: puller, key: e.cacheKey(repository)}
	e.cache.put(c)
	return &Client{conn: c}, nil
}

// Reused reports whether Connect returned a client connected by an earlier call. A
// caller that gets ErrUnauthorized from a reused client should try ConnectFresh once:
// the registry may have changed what it asks of us since the handshake.
func (c *Client) Reused() bool { return c.reused }

// failed drops the connection from the cache after an error that may come from the
// connection itself, so that the next Connect starts afresh. "Not found" says nothing
// about the connection, and the caller's own cancellation neither.
func (c *conn) failed(ctx context.Context, err error) {
	if err == nil || ctx.Err() != nil || errors.Is(err, errdefs.ErrNotFound) {
		return
	}
	c.ep.cache.drop(c)
}

// Endpoint is the endpoint the client talks to.
func (c *Client) Endpoint() Endpoint { return c.ep }

// Manifest fetches the manifest or index named by identifier, a tag or "sha256:…".
// The stall timeout bounds the whole request: manifests are small.
func (c *Client) Manifest(ctx context.Context, identifier string) (Manifest, error) {
	var ref name.Reference = c.repo.Tag(identifier)
	if strings.HasPrefix(identifier, "sha256:") {
		ref = c.repo.Digest(identifier)
	}
	wctx, _, stop := watchdog(ctx, c.ep.stall)
	defer stop()
	desc, err := c.puller.Get(wctx, ref)
	if err != nil {
		err = classify(ctx, wctx, err)
		c.failed(ctx, err)
		return Manifest{}, fmt.Errorf("%s: manifest %s: %w", c.ep, identifier, err)
	}
	return Manifest{Bytes: desc.Manifest, MediaType: string(desc.MediaType), Digest: desc.Digest.String()}, nil
}

// Blob opens the blob digest for streaming. The bytes are not verified here: the caller
// verifies them as they stream. A read that waits longer than the stall timeout fails
// with a *StallError.
func (c *Client) Blob(ctx context.Context, digest string) (io.ReadCloser, error) {
	wctx, kick, stop := watchdog(ctx, c.ep.stall)
	u := url.URL{
		Scheme: c.repo.Scheme(),
		Host:   c.repo.RegistryStr(),
		Path:   "/v2/" + c.repo.RepositoryStr() + "/blobs/" + digest,
	}
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, u.String(), nil)
	if err != nil {
		stop()
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err == nil {
		err = transport.CheckError(resp, http.StatusOK)
		if err != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		stop()
		err = classify(ctx, wctx, err)
		c.failed(ctx, err)
		return nil, fmt.Errorf("%s: blob %s: %w", c.ep, digest, err)
	}
	return &blobReader{body: resp.Body, ctx: ctx, wctx: wctx, kick: kick, stop: stop}, nil
}

type blobReader struct {
	body      io.ReadCloser
	ctx, wctx context.Context
	kick      func()
	stop      func()
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.kick()
	}
	if err != nil && err != io.EOF {
		err = classify(b.ctx, b.wctx, err)
	}
	return n, err
}

func (b *blobReader) Close() error {
	b.stop()
	return b.body.Close()
}

// StallError reports a transfer that received nothing for Timeout.
type StallError struct{ Timeout time.Duration }

func (e *StallError) Error() string { return fmt.Sprintf("no data received for %s", e.Timeout) }

// Is makes a stall an unavailable endpoint: errors.Is(err, errdefs.ErrUnavailable).
func (e *StallError) Is(target error) bool { return target == errdefs.ErrUnavailable }

// watchdog returns a context cancelled with a *StallError once d passes without a call
// to kick; stop releases it. d <= 0 disables the watchdog.
func watchdog(ctx context.Context, d time.Duration) (wctx context.Context, kick, stop func()) {
	if d <= 0 {
		return ctx, func() {}, func() {}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(d, func() { cancel(&StallError{Timeout: d}) })
	return wctx, func() { t.Reset(d) }, func() { t.Stop(); cancel(nil) }
}

// errStalled returns the *StallError that cancelled wctx, if that is what happened.
func errStalled(wctx context.Context) (*StallError, bool) {
	var se *StallError
	if errors.As(context.Cause(wctx), &se) {
		return se, true
	}
	return nil, false
}
