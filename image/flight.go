package image

import (
	"context"
	"sync"
)

// flightGroup runs one piece of work per key at a time and lets every caller that
// wants it wait for that one run. Unlike a plain singleflight, the work runs under its
// own context, detached from the caller that started it: a caller that gives up (its
// deadline passed) only leaves, and the work is cancelled when its last waiter leaves,
// which then waits for the work to wind down.
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flight
}

type flight struct {
	done    chan struct{}
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Do runs fn for key unless a run is in progress, then waits for the run or for ctx.
// fn's context keeps ctx's values but not its cancellation.
func (g *flightGroup) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flight{}
	}
	f, ok := g.calls[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = f
		go func() {
			f.err = fn(fctx)
			g.mu.Lock()
			if g.calls[key] == f {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			cancel()
			close(f.done)
		}()
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		g.mu.Lock()
		last := false
		if f.waiters--; f.waiters == 0 {
			// Nobody wants the result any more. Forget the run at once, so that a new
			// caller starts afresh instead of joining a cancelled run.
			last = true
			f.cancel()
			if g.calls[key] == f {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		if last {
			// Let the cancelled run clean up before returning: a caller that gave up
			// must not leave work of its own running behind it.
			<-f.done
		}
		return ctx.Err()
	}
}
