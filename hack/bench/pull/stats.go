package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/berth-runtime/berth/hack/bench/benchstats"
)

// series are the samples of one measured operation.
type series = benchstats.Series

// phaseHandler is a slog handler that keeps the duration attributes of the image
// service's "pulled image" records, one series per attribute, and drops everything else.
type phaseHandler struct {
	mu     *sync.Mutex
	on     *bool
	phases map[string]*series
	order  *[]string
}

func newPhaseHandler() *phaseHandler {
	return &phaseHandler{mu: &sync.Mutex{}, on: new(bool), phases: map[string]*series{}, order: new([]string)}
}

func (h *phaseHandler) record(on bool) {
	h.mu.Lock()
	*h.on = on
	h.mu.Unlock()
}

// reset forgets what was recorded (the service keeps logging to the same handler).
func (h *phaseHandler) reset() {
	h.mu.Lock()
	clear(h.phases)
	*h.order = nil
	h.mu.Unlock()
}

func (h *phaseHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *phaseHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *phaseHandler) WithGroup(string) slog.Handler            { return h }

func (h *phaseHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "pulled image" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !*h.on {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() != slog.KindDuration {
			return true
		}
		s, ok := h.phases[a.Key]
		if !ok {
			s = &series{Name: "  " + a.Key}
			h.phases[a.Key] = s
			*h.order = append(*h.order, a.Key)
		}
		s.Add(a.Value.Duration())
		return true
	})
	return nil
}

func (h *phaseHandler) series() []*series {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*series, 0, len(*h.order))
	for _, k := range *h.order {
		out = append(out, h.phases[k])
	}
	return out
}
