package image

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
)

// pings returns how many /v2/ pings the registry answered, and resets the counters.
func (tr *testRegistry) pings() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := tr.counts["GET /v2/"]
	tr.counts = map[string]int{}
	return n
}

func TestPullsShareOneHandshake(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:v1", twoLayerImage(t, ""))
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	const pulls = 5
	for range pulls {
		if _, err := s.Pull(ctx, ref, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	if n := reg.pings(); n != 1 {
		t.Errorf("%d cold pulls pinged the registry %d times, want once", pulls, n)
	}
}

func TestStaleHandshakeIsRenewed(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:v1", twoLayerImage(t, ""))
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	reg.pings()
	// The registry now refuses the old handshake once, as one whose tokens were revoked
	// would: the pull connects afresh and succeeds.
	var refuse atomic.Bool
	refuse.Store(true)
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v2/" && refuse.CompareAndSwap(true, false) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	})
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatalf("pull after a refused handshake: %v", err)
	}
	if n := reg.pings(); n != 1 {
		t.Errorf("the pull pinged %d times, want once (a new handshake)", n)
	}
}
