package sandbox

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/trash"
)

// reaper finishes removals off the RPC's path. A removal commits by deleting the
// record (a rename into the store's trash and one directory fsync) and renaming the
// container's directories into trash bins; the reaper then deletes the bins' contents
// and releases the removed containers' image leases (a metadata commit each, which may
// delete image snapshots). A crash between the two leaves nothing behind for long: at
// the next start the reaper sweeps the bins first, and recovery releases the leases
// of holders no record names (sweepContainerLeftovers).
type reaper struct {
	log     *slog.Logger
	bins    []*trash.Bin
	release func(holder string) error // nil: no images

	mu      sync.Mutex
	holders []string // leases to release

	working sync.Mutex // one round at a time (tests run rounds of their own)

	wake chan struct{} // capacity 1: a poke while working is not lost
	stop context.CancelFunc
	done chan struct{}
}

// releaseRetry is how long a failed lease release waits before it is tried again.
const releaseRetry = 10 * time.Second

func newReaper(log *slog.Logger, release func(string) error, bins ...*trash.Bin) *reaper {
	return &reaper{log: log, bins: bins, release: release, wake: make(chan struct{}, 1)}
}

// start runs the reaper until close; its first round sweeps what the last berthd left.
func (r *reaper) start() {
	ctx, stop := context.WithCancel(context.Background())
	r.stop, r.done = stop, make(chan struct{})
	r.poke()
	go r.run(ctx)
}

// releaseLater queues leases to release and wakes the reaper.
func (r *reaper) releaseLater(holders ...string) {
	if r.release == nil || len(holders) == 0 {
		return
	}
	r.mu.Lock()
	r.holders = append(r.holders, holders...)
	r.mu.Unlock()
	r.poke()
}

// poke wakes the reaper (for what was just put in a bin).
func (r *reaper) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reaper) run(ctx context.Context) {
	defer close(r.done)
	retry := time.NewTimer(releaseRetry)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-retry.C:
		}
		if !r.work() {
			retry.Reset(releaseRetry)
		}
	}
}

// work releases the queued leases and sweeps the bins; false if a release failed and
// waits to be retried.
func (r *reaper) work() bool {
	r.working.Lock()
	defer r.working.Unlock()
	r.mu.Lock()
	holders := r.holders
	r.holders = nil
	r.mu.Unlock()
	var failed []string
	for _, h := range holders {
		if err := r.release(h); err != nil {
			r.log.Warn("releasing a removed container's image lease; will retry", "holder", h, "error", err)
			failed = append(failed, h)
		}
	}
	if len(failed) > 0 {
		r.mu.Lock()
		r.holders = append(r.holders, failed...)
		r.mu.Unlock()
	}
	for _, b := range r.bins {
		if err := b.Sweep(); err != nil {
			r.log.Warn("emptying a trash directory; the next sweep retries", "dir", b.Dir(), "error", err)
		}
	}
	return len(failed) == 0
}

// close stops the reaper; the leases still queued are released now, so that a clean
// stop leaves none for the next start (the bins wait for it).
func (r *reaper) close() {
	if r == nil || r.stop == nil {
		return
	}
	r.stop()
	<-r.done
	r.mu.Lock()
	holders := r.holders
	r.holders = nil
	r.mu.Unlock()
	for _, h := range holders {
		if err := r.release(h); err != nil {
			r.log.Warn("releasing a removed container's image lease; the next start does", "holder", h, "error", err)
		}
	}
}
