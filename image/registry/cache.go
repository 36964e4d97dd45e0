package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// Connected clients are kept for reuse by later pulls, so that the ping of /v2/ and the
// authentication handshake (a token request, for registries that use bearer tokens) are
// paid once per endpoint, repository and credentials rather than once per pull.
//
// Reuse is safe because nothing in a connection is specific to one pull: the transport
// stack is the resolver's per-host one, and go-containerregistry's bearer transport
// fetches a new token by itself when the registry answers 401 to an expired one. What
// could go stale (a registry that changed its authentication scheme, credentials
// revoked) is bounded three ways: an entry lives at most clientTTL; any request error
// other than "not found" or the caller's own cancellation drops it; and a caller that
// gets 401/403 from a reused client connects afresh once (Client.Reused, see package
// image's sources).
const (
	clientTTL  = 10 * time.Minute
	maxClients = 256
)

// clientCache holds connected clients by endpoint, repository and credentials.
type clientCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	now     func() time.Time // tests move time
}

type cacheEntry struct {
	conn    *conn
	created time.Time
}

func newClientCache() *clientCache {
	return &clientCache{entries: map[string]cacheEntry{}, now: time.Now}
}

// get returns the live connection stored under key, if any.
func (cc *clientCache) get(key string) *conn {
	if cc == nil {
		return nil
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.entries[key]
	if !ok {
		return nil
	}
	if cc.now().Sub(e.created) >= clientTTL {
		delete(cc.entries, key)
		return nil
	}
	return e.conn
}

// put stores c under its key, evicting the oldest entry when the cache is full.
func (cc *clientCache) put(c *conn) {
	if cc == nil {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.entries[c.key]; !ok && len(cc.entries) >= maxClients {
		oldest := ""
		for k, e := range cc.entries {
			if oldest == "" || e.created.Before(cc.entries[oldest].created) {
				oldest = k
			}
		}
		delete(cc.entries, oldest)
	}
	cc.entries[c.key] = cacheEntry{conn: c, created: cc.now()}
}

// drop forgets c, unless its key already holds a newer connection.
func (cc *clientCache) drop(c *conn) {
	if cc == nil {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.entries[c.key]; ok && e.conn == c {
		delete(cc.entries, c.key)
	}
}

// clear forgets everything.
func (cc *clientCache) clear() {
	if cc == nil {
		return
	}
	cc.mu.Lock()
	clear(cc.entries)
	cc.mu.Unlock()
}

// credentialKey identifies credentials without keeping them readable in map keys.
func credentialKey(c Credentials) string {
	if c.IsZero() {
		return "anonymous"
	}
	h := sha256.New()
	for _, s := range []string{c.Username, c.Password, c.Auth, c.IdentityToken, c.RegistryToken} {
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cacheKey is what makes two connections interchangeable: the endpoint with everything
// that shapes its transport (scheme policy, mirror retry policy), the credentials and
// the repository (a bearer token is scoped to it).
func (e Endpoint) cacheKey(repository string) string {
	return e.Host + "|" + strconv.FormatBool(e.PlainHTTP) + strconv.FormatBool(e.AllowHTTP) +
		strconv.FormatBool(e.Mirror) + "|" + e.credKey + "|" + repository
}
