// Package cleanup is the undo log of a create: each step that made something pushes how
// to take it away again, and a failure runs the pushed steps in reverse order. The steps
// run with a context of their own (the caller's values, not its cancellation, and a
// deadline of their own), because the usual reason a create fails is that its context
// ran out, and undo must still happen. A failing step is retried a few times and then
// reported; the remaining steps still run, so one stuck resource does not leak the
// others.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Attempts is how often a step is tried before Run reports it failed.
const Attempts = 3

// retryDelay is the pause before the second attempt; it doubles for the third.
var retryDelay = 20 * time.Millisecond

// Stack is a LIFO list of undo steps. It is safe for concurrent use: steps done in
// parallel may push at once.
type Stack struct {
	mu    sync.Mutex
	steps []step
}

type step struct {
	what string
	fn   func(ctx context.Context) error
}

// Push records how to undo the step just done. what names it in errors.
func (s *Stack) Push(what string, fn func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, step{what, fn})
}

// Len is the number of steps pushed and not yet run or released.
func (s *Stack) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.steps)
}

// Release forgets every step: the create succeeded and what it made stays.
func (s *Stack) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = nil
}

// Run undoes every step, last pushed first, and empties the stack. The steps get a
// context that carries ctx's values but not its cancellation, bounded by timeout. It
// returns one error per step that failed every attempt.
func (s *Stack) Run(ctx context.Context, timeout time.Duration) error {
	s.mu.Lock()
	steps := s.steps
	s.steps = nil
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		if err := runStep(ctx, steps[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func runStep(ctx context.Context, st step) error {
	delay := retryDelay
	var err error
	for attempt := 1; ; attempt++ {
		if err = st.fn(ctx); err == nil {
			return nil
		}
		if attempt == Attempts || ctx.Err() != nil {
			return fmt.Errorf("undo %s: %w", st.what, err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		delay *= 2
	}
}
