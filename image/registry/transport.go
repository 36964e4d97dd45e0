package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DialFunc dials a network connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// newHTTPTransport builds the connection-level transport of one host: its TLS settings
// (extra CA, or no verification) and the dialer.
func newHTTPTransport(host string, h Host, dial DialFunc) (*http.Transport, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: h.InsecureSkipVerify} //nolint:gosec // per-host opt-in
	if h.CAFile != "" {
		pem, err := os.ReadFile(h.CAFile)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("host %s: ca_file: %v", host, err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("host %s: ca_file %s holds no PEM certificate", host, h.CAFile))
		}
		tlsCfg.RootCAs = pool
	}
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// schemeGuard enforces the plain-HTTP policy below every other layer, so that neither
// go-containerregistry's HTTPS-then-HTTP probing nor a redirect can pick a scheme the
// configuration did not allow.
type schemeGuard struct {
	inner      http.RoundTripper
	host       string
	allowHTTP  bool // plain HTTP configured, or a loopback host
	allowHTTPS bool // false when the host is configured for plain HTTP
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	own := strings.EqualFold(req.URL.Host, g.host)
	switch {
	case req.URL.Scheme == "http" && !g.allowHTTP:
		if own {
			return nil, fmt.Errorf("plain HTTP to %s is not allowed (configure plain_http for this host)", g.host)
		}
		return nil, fmt.Errorf("redirect from %s to plain HTTP %s refused", g.host, req.URL.Host)
	case req.URL.Scheme == "https" && own && !g.allowHTTPS:
		return nil, fmt.Errorf("%s is configured for plain HTTP; not trying HTTPS", g.host)
	}
	return g.inner.RoundTrip(req)
}

// Retry policies. Mirrors are not retried on error statuses: the next endpoint is their
// retry. The registry itself gets a short backoff on 408, 429 and 5xx.
var (
	mirrorRetry = []transport.Option{
		transport.WithRetryBackoff(transport.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}),
	}
	upstreamRetry = []transport.Option{
		transport.WithRetryBackoff(transport.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
			http.StatusGatewayTimeout),
	}
)
