package sandbox

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventBuffer is how many events a subscriber may fall behind before it is dropped.
// Kubelet drains its stream into a channel of its own at once, so only a stuck client
// fills it; a burst of a few hundred container changes (a node restarting its pods)
// still fits.
const eventBuffer = 1024

// broadcaster fans container events out to the subscribers of GetContainerEvents
// (kubelet's evented PLEG). Publishing never blocks: a subscriber whose buffer is full
// is dropped, its channel closed, rather than given a stream with a silent gap.
// Kubelet's evented PLEG treats a gap it cannot see as truth until its next relist,
// whereas an ended stream makes it reconnect and relist at once.
type broadcaster struct {
	log *slog.Logger

	mu   sync.Mutex // guards subs and the sends and closes of their channels
	subs map[chan *runtimeapi.ContainerEventResponse]struct{}
}

func newBroadcaster(log *slog.Logger) *broadcaster {
	return &broadcaster{log: log, subs: map[chan *runtimeapi.ContainerEventResponse]struct{}{}}
}

// subscribe returns a channel of the events published from now on. It is closed when
// ctx ends or when the subscriber falls eventBuffer events behind.
func (b *broadcaster) subscribe(ctx context.Context) <-chan *runtimeapi.ContainerEventResponse {
	ch := make(chan *runtimeapi.ContainerEventResponse, eventBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.unsubscribe(ch)
	}()
	return ch
}

// unsubscribe closes ch unless publish already dropped it.
func (b *broadcaster) unsubscribe(ch chan *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

// active reports whether anyone listens, so that no event is built for nobody.
func (b *broadcaster) active() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// publish hands ev to every subscriber without waiting for any. Subscribers share ev:
// they must not change it.
func (b *broadcaster) publish(ev *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
			delete(b.subs, ch)
			close(ch)
			b.log.Warn("container events subscriber is too slow; dropping it (it must reconnect and relist)",
				"buffer", eventBuffer)
		}
	}
}

// ContainerEvents returns the container events (GetContainerEvents) published from now
// on. The channel is closed when ctx ends, or when the caller falls too far behind: it
// must then subscribe again and relist.
func (s *Service) ContainerEvents(ctx context.Context) <-chan *runtimeapi.ContainerEventResponse {
	return s.events.subscribe(ctx)
}

// emitContainerEvent publishes that c was created, started, stopped or deleted, with
// the statuses of its pod and of the pod's containers as they are now. It reads only
// the published statuses, never a container's mu, so that awaitExit may call it while
// holding c.mu; it never blocks.
func (s *Service) emitContainerEvent(c *container, typ runtimeapi.ContainerEventType) {
	if !s.events.active() {
		return
	}
	// A pod already removed has no status: kubelet ignores such an event and relists.
	podSt, _, _ := s.PodStatus(c.meta.PodID, false)
	s.emitEvent(c.meta.ID, c.meta.PodID, typ, podSt)
}

// emitPodEvent publishes a pod sandbox's own changes as container events on the pod's
// id, as kubelet's evented PLEG expects of the sandbox (containerd reports its sandbox
// containers the same way). podSt is the pod's status; for DELETED, the last one.
func (s *Service) emitPodEvent(podID string, typ runtimeapi.ContainerEventType, podSt *runtimeapi.PodSandboxStatus) {
	if !s.events.active() {
		return
	}
	if podSt == nil {
		podSt, _, _ = s.PodStatus(podID, false)
	}
	s.emitEvent(podID, podID, typ, podSt)
}

func (s *Service) emitEvent(id, podID string, typ runtimeapi.ContainerEventType, podSt *runtimeapi.PodSandboxStatus) {
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        id,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
		PodSandboxStatus:   podSt,
	}
	ctrs := s.podContainers(podID)
	// Oldest first, as kubelet would list them: the map's order would change per event.
	slices.SortFunc(ctrs, func(a, b *container) int {
		return cmp.Or(cmp.Compare(a.meta.CreatedAt, b.meta.CreatedAt), strings.Compare(a.meta.ID, b.meta.ID))
	})
	for _, pc := range ctrs {
		if st, _, err := s.ContainerStatus(pc.meta.ID, false); err == nil {
			ev.ContainersStatuses = append(ev.ContainersStatuses, st)
		}
	}
	s.events.publish(ev)
}
