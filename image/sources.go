package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/image/registry"
)

// sources are the endpoints one pull may fetch from, connected lazily and at most once
// each (a connection may be one an earlier pull made, see registry.Endpoint.Connect). Manifests are looked up in endpoint order; blobs are fetched first from the
// endpoint that served the manifest, then from the others.
type sources struct {
	repo string
	eps  []registry.Endpoint
	log  *slog.Logger
	tm   *timings

	mu      sync.Mutex
	primary int
	clients []*registry.Client
	errs    []error // a failed connection is not retried within the pull
}

func newSources(repo string, eps []registry.Endpoint, log *slog.Logger, tm *timings) *sources {
	return &sources{
		repo:    repo,
		eps:     eps,
		log:     log,
		tm:      tm,
		clients: make([]*registry.Client, len(eps)),
		errs:    make([]error, len(eps)),
	}
}

// client connects to endpoint i unless it already did (or failed to).
func (s *sources) client(ctx context.Context, i int) (*registry.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[i] != nil || s.errs[i] != nil {
		return s.clients[i], s.errs[i]
	}
	defer s.tm.since(phConnect, time.Now())
	c, err := s.eps[i].Connect(ctx, s.repo)
	if err != nil && ctx.Err() == nil {
		s.errs[i] = err // remember real failures only, not our own cancellation
	}
	s.clients[i] = c
	return c, err
}

// reconnect replaces old, a reused client that the endpoint refused, by a freshly
// connected one (once per pull: the new client is not Reused).
func (s *sources) reconnect(ctx context.Context, i int, old *registry.Client) (*registry.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[i] != old {
		return s.clients[i], s.errs[i] // another request of this pull reconnected already
	}
	defer s.tm.since(phConnect, time.Now())
	c, err := s.eps[i].ConnectFresh(ctx, s.repo)
	if err != nil && ctx.Err() == nil {
		s.errs[i] = err
	}
	s.clients[i] = c
	return c, err
}

// order is the endpoint order for blobs: the primary first.
func (s *sources) order(blobs bool) []int {
	s.mu.Lock()
	primary := s.primary
	s.mu.Unlock()
	out := make([]int, 0, len(s.eps))
	if blobs {
		out = append(out, primary)
	}
	for i := range s.eps {
		if !blobs || i != primary {
			out = append(out, i)
		}
	}
	return out
}

// try runs fn against each endpoint in turn until one succeeds, going on only while
// registry.CanFallThrough allows it. For manifests (blobs false) the endpoint that
// succeeds becomes the primary. The error of the last endpoint tried is returned, with
// the messages of the earlier ones.
func (s *sources) try(ctx context.Context, what string, blobs bool, fn func(*registry.Client) error) error {
	var earlier []string
	for _, i := range s.order(blobs) {
		c, err := s.client(ctx, i)
		if err == nil {
			err = fn(c)
			if err != nil && c.Reused() && errors.Is(err, registry.ErrUnauthorized) {
				// A handshake made for an earlier pull may be stale: make a new one.
				if c, err = s.reconnect(ctx, i, c); err == nil {
					err = fn(c)
				}
			}
		}
		if err == nil {
			if !blobs {
				s.mu.Lock()
				s.primary = i
				s.mu.Unlock()
			}
			return nil
		}
		if !registry.CanFallThrough(err, s.eps[i]) || len(earlier) == len(s.eps)-1 {
			if len(earlier) > 0 {
				return fmt.Errorf("%w (after: %s)", err, strings.Join(earlier, "; "))
			}
			return err
		}
		s.log.Warn("endpoint failed, trying the next one", "what", what, "endpoint", s.eps[i].String(), "error", err)
		earlier = append(earlier, err.Error())
	}
	return fmt.Errorf("%s: no endpoint", what)
}
