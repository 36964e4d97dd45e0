package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// pingCounter counts the /v2/ pings a handler answers; refuse makes it answer 401 to
// the next manifest request.
type pingCounter struct {
	inner  http.Handler
	pings  atomic.Int32
	refuse atomic.Bool
}

func (p *pingCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		p.pings.Add(1)
	}
	if p.refuse.CompareAndSwap(true, false) && r.URL.Path != "/v2/" {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	p.inner.ServeHTTP(w, r)
}

func TestConnectReusesClients(t *testing.T) {
	pc := &pingCounter{inner: newRegistry()}
	srv := httptest.NewServer(pc)
	defer srv.Close()
	push(t, srv, "app", "v1")
	push(t, srv, "other", "v1")
	pc.pings.Store(0)
	r, err := New(Config{}, Options{StallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	host := hostOf(srv)
	connect := func(repo string, auth *Auth, wantReused bool, wantPings int32) *Client {
		t.Helper()
		c, err := upstream(t, r, host, auth).Connect(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		if c.Reused() != wantReused || pc.pings.Load() != wantPings {
			t.Fatalf("Connect(%s): reused %v after %d pings, want %v after %d", repo, c.Reused(), pc.pings.Load(), wantReused, wantPings)
		}
		if _, err := c.Manifest(ctx, "v1"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := connect("app", nil, false, 1)
	if again := connect("app", nil, true, 1); again.conn != first.conn {
		t.Error("a reused client is not the first one")
	}
	connect("other", nil, false, 2) // a token is scoped to a repository
	alice := &Auth{Credentials: Credentials{Username: "alice", Password: "a"}}
	connect("app", alice, false, 3) // other credentials, another handshake
	connect("app", &Auth{Credentials: Credentials{Username: "alice", Password: "b"}}, false, 4)
	connect("app", alice, true, 4)

	// Not found says nothing about the connection: it stays.
	if _, err := first.Manifest(ctx, "missing"); !errdefs.IsNotFound(err) {
		t.Fatalf("Manifest(missing) = %v", err)
	}
	connect("app", nil, true, 4)
	// A refusal drops it: the next Connect handshakes again.
	pc.refuse.Store(true)
	if _, err := first.Manifest(ctx, "v1"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("refused Manifest = %v", err)
	}
	connect("app", nil, false, 5)
	connect("app", nil, true, 5)

	// Entries expire.
	r.clients.now = func() time.Time { return time.Now().Add(clientTTL) }
	connect("app", nil, false, 6)
	// ConnectFresh always handshakes, and Close forgets everything.
	r.clients.now = time.Now
	if _, err := upstream(t, r, host, nil).ConnectFresh(ctx, "app"); err != nil || pc.pings.Load() != 7 {
		t.Fatalf("ConnectFresh: %v after %d pings", err, pc.pings.Load())
	}
	r.Close()
	connect("app", nil, false, 8)
}

func TestClientCacheBound(t *testing.T) {
	cc := newClientCache()
	base := time.Now()
	var mu sync.Mutex
	tick := 0
	cc.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick++
		return base.Add(time.Duration(tick) * time.Millisecond)
	}
	conns := make([]*conn, maxClients+1)
	for i := range conns {
		conns[i] = &conn{key: string(rune('a' + i))}
		cc.put(conns[i])
	}
	if len(cc.entries) != maxClients {
		t.Fatalf("%d entries, want %d", len(cc.entries), maxClients)
	}
	if cc.get(conns[0].key) != nil || cc.get(conns[maxClients].key) != conns[maxClients] {
		t.Error("the oldest entry should have been evicted, the newest kept")
	}
	newer := &conn{key: conns[1].key}
	cc.put(newer)
	cc.drop(conns[1]) // an old connection's failure does not evict its replacement
	if cc.get(newer.key) != newer {
		t.Error("drop of a replaced connection removed its replacement")
	}
}

func TestCredentialKey(t *testing.T) {
	keys := map[string]bool{}
	for _, c := range []Credentials{
		{}, {Username: "a", Password: "b"}, {Username: "ab"}, {Password: "ab"}, {Auth: "x"},
		{IdentityToken: "x"}, {RegistryToken: "x"}, {Username: "a:", Password: "b"}, {Username: "a", Password: ":b"},
	} {
		k := credentialKey(c)
		if keys[k] {
			t.Errorf("credentials %+v share a key with others", c)
		}
		keys[k] = true
	}
}
