package cleanup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunIsLIFOAndIgnoresCallerCancellation(t *testing.T) {
	var s Stack
	var order []string
	for _, name := range []string{"netns", "cgroup", "network"} {
		s.Push(name, func(ctx context.Context) error {
			if ctx.Err() != nil {
				t.Errorf("%s ran with a done context", name)
			}
			order = append(order, name)
			return nil
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the create failed because its context ended
	if err := s.Run(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "network,cgroup,netns" {
		t.Fatalf("order %s, want network,cgroup,netns", got)
	}
	if s.Len() != 0 {
		t.Fatal("Run left steps on the stack")
	}
}

func TestRunRetriesAndGoesOn(t *testing.T) {
	retryDelay = time.Millisecond
	tests := []struct {
		name      string
		failures  int // how often the middle step fails before it succeeds
		wantError bool
	}{
		{"succeeds first time", 0, false},
		{"succeeds on the last attempt", Attempts - 1, false},
		{"fails every attempt", Attempts, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stack
			var ran []string
			calls := 0
			s.Push("first", func(context.Context) error { ran = append(ran, "first"); return nil })
			s.Push("flaky", func(context.Context) error {
				calls++
				if calls <= tc.failures {
					return errors.New("busy")
				}
				ran = append(ran, "flaky")
				return nil
			})
			err := s.Run(context.Background(), time.Second)
			if (err != nil) != tc.wantError {
				t.Fatalf("Run = %v, want error %v", err, tc.wantError)
			}
			if err != nil && !strings.Contains(err.Error(), "undo flaky: busy") {
				t.Errorf("error %q does not name the step", err)
			}
			if ran[len(ran)-1] != "first" {
				t.Errorf("the step below a failing one did not run: %v", ran)
			}
			if want := min(tc.failures+1, Attempts); calls != want {
				t.Errorf("flaky step called %d times, want %d", calls, want)
			}
		})
	}
}

func TestRunTimesOut(t *testing.T) {
	var s Stack
	s.Push("hangs", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	start := time.Now()
	err := s.Run(context.Background(), 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want deadline exceeded", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("a hanging step was retried past the deadline")
	}
}

func TestRelease(t *testing.T) {
	var s Stack
	s.Push("x", func(context.Context) error { t.Error("released step ran"); return nil })
	s.Release()
	if err := s.Run(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
}
