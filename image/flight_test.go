package image

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFlightDeduplicates(t *testing.T) {
	var g flightGroup
	var runs atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Do(context.Background(), "k", func(context.Context) error {
				runs.Add(1)
				<-release
				return errors.New("result")
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Errorf("work ran %d times", n)
	}
	for i, err := range errs {
		if err == nil || err.Error() != "result" {
			t.Errorf("caller %d got %v", i, err)
		}
	}
	// Once done, a new call runs again.
	if err := g.Do(context.Background(), "k", func(context.Context) error { runs.Add(1); return nil }); err != nil || runs.Load() != 2 {
		t.Errorf("second run: %v, runs %d", err, runs.Load())
	}
}

func TestFlightCancellation(t *testing.T) {
	var g flightGroup
	started := make(chan struct{})
	workCtxDone := make(chan struct{})
	work := func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		close(workCtxDone)
		return ctx.Err()
	}
	leaver, leave := context.WithCancel(context.Background())
	stayer, stay := context.WithCancel(context.Background())
	defer stay()
	var wg sync.WaitGroup
	wg.Add(2)
	var leaverErr, stayerErr error
	go func() { defer wg.Done(); leaverErr = g.Do(leaver, "k", work) }()
	<-started
	go func() { defer wg.Done(); stayerErr = g.Do(stayer, "k", work) }()
	time.Sleep(20 * time.Millisecond)

	leave()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-workCtxDone:
		t.Fatal("work cancelled while a caller still waits")
	default:
	}
	stay()
	wg.Wait()
	select {
	case <-workCtxDone:
	default:
		t.Fatal("the last caller returned before the cancelled work wound down")
	}
	if !errors.Is(leaverErr, context.Canceled) || !errors.Is(stayerErr, context.Canceled) {
		t.Errorf("errors %v, %v", leaverErr, stayerErr)
	}
	// A new caller starts a fresh run rather than joining the cancelled one.
	if err := g.Do(context.Background(), "k", func(context.Context) error { return nil }); err != nil {
		t.Errorf("fresh run: %v", err)
	}
}
