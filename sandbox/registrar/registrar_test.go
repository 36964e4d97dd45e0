package registrar

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// TestConcurrentRetries: ten callers ask for the same name with the same request at
// once; exactly one creates, every other one gets its id.
func TestConcurrentRetries(t *testing.T) {
	r := New()
	var owners atomic.Int32
	ids := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			res, owner, err := r.Reserve("pod_ns_uid_0", idFor(i), "fp")
			if err != nil {
				t.Error(err)
				return
			}
			if owner {
				owners.Add(1)
				time.Sleep(20 * time.Millisecond) // creating
				r.Finish(res, nil)
			}
			ids[i], err = res.Wait(context.Background())
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if owners.Load() != 1 {
		t.Fatalf("%d owners, want 1", owners.Load())
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("callers got different ids: %v", ids)
		}
	}
	// Once created, a retry gets the id at once, without waiting.
	res, owner, err := r.Reserve("pod_ns_uid_0", "other", "fp")
	if err != nil || owner {
		t.Fatalf("retry after create: owner %v, err %v", owner, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	select {
	case <-res.done:
	default:
		t.Fatal("reservation of a created object is still pending")
	}
	if id, _ := res.Wait(ctx); id != ids[0] {
		t.Fatalf("retry got %q, want %q", id, ids[0])
	}
}

func idFor(i int) string { return string(rune('a' + i)) }

func TestFailedCreateFreesTheName(t *testing.T) {
	r := New()
	res, owner, err := r.Reserve("n", "id1", "fp")
	if err != nil || !owner {
		t.Fatal(owner, err)
	}
	waiter, owner, err := r.Reserve("n", "id2", "fp")
	if err != nil || owner || waiter != res {
		t.Fatal("second Reserve did not join the pending create", owner, err)
	}
	errWait := make(chan error, 1)
	go func() {
		_, err := waiter.Wait(context.Background())
		errWait <- err
	}()
	boom := errors.New("CNI ADD failed")
	r.Finish(res, boom)
	if err := <-errWait; !errors.Is(err, boom) {
		t.Fatalf("waiter got %v, want the create's error", err)
	}
	if _, ok := r.Lookup("n"); ok {
		t.Fatal("name still reserved after a failed create")
	}
	// The next request makes a fresh attempt.
	res2, owner, err := r.Reserve("n", "id3", "fp")
	if err != nil || !owner || res2.ID != "id3" {
		t.Fatalf("fresh attempt: %+v %v %v", res2, owner, err)
	}
	r.Finish(res, nil) // a late second Finish of the old reservation changes nothing
	if id, _ := r.Lookup("n"); id != "id3" {
		t.Fatalf("name held by %q, want id3", id)
	}
}

func TestDifferentRequestIsRefused(t *testing.T) {
	r := New()
	res, _, _ := r.Reserve("n", "id1", "fp1")
	for _, pending := range []bool{true, false} {
		if !pending {
			r.Finish(res, nil)
		}
		_, _, err := r.Reserve("n", "id2", "fp2")
		if !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("pending=%v: err = %v, want AlreadyExists", pending, err)
		}
	}
}

func TestWaitGivesUpWithItsContext(t *testing.T) {
	r := New()
	res, _, _ := r.Reserve("n", "id1", "fp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := res.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want deadline exceeded", err)
	}
	// The create goes on and still finishes for later callers.
	r.Finish(res, nil)
	if id, err := res.Wait(context.Background()); id != "id1" || err != nil {
		t.Fatal(id, err)
	}
}

func TestHoldAndRelease(t *testing.T) {
	r := New()
	if err := r.Hold("n", "id1", "fp"); err != nil {
		t.Fatal(err)
	}
	if err := r.Hold("n", "id2", "fp"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second holder: %v", err)
	}
	res, owner, err := r.Reserve("n", "id3", "fp")
	if err != nil || owner || res.ID != "id1" {
		t.Fatalf("Reserve of a held name: %+v %v %v", res, owner, err)
	}
	r.Release("n", "someone-else")
	if _, ok := r.Lookup("n"); !ok {
		t.Fatal("Release by a non-holder freed the name")
	}
	r.Release("n", "id1")
	if _, ok := r.Lookup("n"); ok {
		t.Fatal("name still held after Release")
	}
}
