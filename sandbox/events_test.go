package sandbox

import (
	"context"
	"log/slog"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func event(id string) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{ContainerId: id}
}

// receive reads one event from ch, failing the test after a second.
func receive(t *testing.T, ch <-chan *runtimeapi.ContainerEventResponse) (*runtimeapi.ContainerEventResponse, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(time.Second):
		t.Fatal("no event and no close within a second")
		return nil, false
	}
}

func TestBroadcasterFanOut(t *testing.T) {
	b := newBroadcaster(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subs := []<-chan *runtimeapi.ContainerEventResponse{b.subscribe(ctx), b.subscribe(ctx)}
	for _, id := range []string{"a", "b", "c"} {
		b.publish(event(id))
	}
	for i, ch := range subs {
		for _, want := range []string{"a", "b", "c"} {
			if ev, ok := receive(t, ch); !ok || ev.ContainerId != want {
				t.Fatalf("subscriber %d: got %v (open %v), want %q", i, ev, ok, want)
			}
		}
	}
}

func TestBroadcasterSlowSubscriber(t *testing.T) {
	b := newBroadcaster(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, fast := b.subscribe(ctx), b.subscribe(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range eventBuffer + 10 {
			b.publish(event("x"))
			if _, ok := <-fast; !ok {
				t.Error("the fast subscriber was dropped")
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a subscriber that reads nothing")
	}
	// The slow one got a full buffer, then its channel was closed.
	n := 0
	for range slow {
		n++
	}
	if n != eventBuffer {
		t.Fatalf("slow subscriber got %d events before its close, want %d", n, eventBuffer)
	}
	if !b.active() {
		t.Fatal("the fast subscriber is no longer subscribed")
	}
}

func TestBroadcasterUnsubscribeOnCancel(t *testing.T) {
	b := newBroadcaster(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.subscribe(ctx)
	cancel()
	if _, ok := receive(t, ch); ok {
		t.Fatal("got an event, want the channel closed")
	}
	if b.active() {
		t.Fatal("still subscribed after its context ended")
	}
	b.publish(event("after")) // must neither panic on the closed channel nor block
}
