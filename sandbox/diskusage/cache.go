package diskusage

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Bounds of the refresh interval: often enough for kubelet's eviction (its housekeeping
// runs every 10 s), rarely enough that walking every layer stays a small cost.
const (
	MinInterval     = time.Second
	MaxInterval     = 5 * time.Minute
	DefaultInterval = 10 * time.Second
)

// Sample is a tree's usage and when it was measured.
type Sample struct {
	Usage
	Time time.Time
}

// Cache holds the last measured usage of a set of trees, keyed by an id (a container's).
// Its methods are safe for concurrent use.
type Cache struct {
	interval time.Duration
	list     func() map[string]string // id -> directory, the trees to measure now
	log      *slog.Logger

	refreshing sync.Mutex // one refresh at a time

	mu      sync.RWMutex
	samples map[string]Sample
	total   Sample
}

// NewCache returns a cache of the trees list returns (called at each refresh, so
// trees come and go with it), refreshed every interval once Run runs. The interval is
// clamped into [MinInterval, MaxInterval]; 0 means DefaultInterval.
func NewCache(interval time.Duration, list func() map[string]string, log *slog.Logger) *Cache {
	if interval == 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{
		interval: min(max(interval, MinInterval), MaxInterval),
		list:     list, log: log,
		samples: map[string]Sample{},
	}
}

// Interval is the refresh interval in use.
func (c *Cache) Interval() time.Duration { return c.interval }

// Run refreshes the cache now and then every interval until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.Refresh()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh measures every tree now and replaces the cache's figures; trees list no
// longer returns are dropped. A tree that fails to measure keeps its last figures.
func (c *Cache) Refresh() {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	trees := c.list()
	next := make(map[string]Sample, len(trees))
	var total Usage
	for id, dir := range trees {
		u, err := Measure(dir)
		now := time.Now()
		if err != nil {
			c.log.Debug("measuring a writable layer failed; keeping its last figures", "id", id, "dir", dir, "error", err)
			c.mu.RLock()
			old, ok := c.samples[id]
			c.mu.RUnlock()
			if !ok {
				continue
			}
			u, now = old.Usage, old.Time
		}
		next[id] = Sample{Usage: u, Time: now}
		total = total.Add(u)
	}
	c.mu.Lock()
	c.samples = next
	c.total = Sample{Usage: total, Time: time.Now()}
	c.mu.Unlock()
}

// Get returns the last figures of id, and false when it has not been measured yet. A
// nil Cache has measured nothing.
func (c *Cache) Get(id string) (Sample, bool) {
	if c == nil {
		return Sample{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.samples[id]
	return s, ok
}

// Total returns the sum over every tree at the last refresh (zero before the first, and
// from a nil Cache).
func (c *Cache) Total() Sample {
	if c == nil {
		return Sample{}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.total
}
