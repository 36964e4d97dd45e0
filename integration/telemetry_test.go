package integration

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// subscribeEvents opens GetContainerEvents and returns once berthd has subscribed it
// (the stream's headers arrive then), with the events for container ids as they come.
func subscribeEvents(t *testing.T, e *ctrEnv) <-chan *runtimeapi.ContainerEventResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := e.d.runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("GetContainerEvents headers: %v", err)
	}
	out := make(chan *runtimeapi.ContainerEventResponse, 64)
	go func() {
		defer close(out)
		for {
			ev, err := stream.Recv()
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					t.Errorf("GetContainerEvents ended: %v", err)
				}
				return
			}
			out <- ev
		}
	}()
	return out
}

// TestContainerEvents: a container's life reaches a GetContainerEvents stream as its
// events, in order, each with the pod's status and the container's state at that point.
func TestContainerEvents(t *testing.T) {
	type step struct {
		typ   runtimeapi.ContainerEventType
		state runtimeapi.ContainerState // the container's state in containers_statuses; -1: absent
	}
	var (
		created = step{runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerState_CONTAINER_CREATED}
		started = step{runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, runtimeapi.ContainerState_CONTAINER_RUNNING}
		stopped = step{runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerState_CONTAINER_EXITED}
		deleted = step{runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, -1}
	)
	e := newCtrEnv(t)
	for _, tc := range []struct {
		name string
		cmd  []string
		life func(t *testing.T, id string) // after the create
		want []step
	}{
		{
			name: "stopped",
			cmd:  []string{"sleep", "3600"},
			life: func(t *testing.T, id string) { e.start(t, id); e.stop(t, id, 0); e.remove(t, id) },
			want: []step{created, started, stopped, deleted},
		},
		{
			name: "exits by itself",
			cmd:  []string{"true"},
			life: func(t *testing.T, id string) { e.start(t, id); e.waitExited(t, id, time.Minute); e.remove(t, id) },
			want: []step{created, started, stopped, deleted},
		},
		{
			name: "start error",
			cmd:  []string{"/no/such/binary"},
			life: func(t *testing.T, id string) {
				if _, err := e.d.runtime.StartContainer(ctxTimeout(t, time.Minute), &runtimeapi.StartContainerRequest{ContainerId: id}); err == nil {
					t.Fatal("StartContainer of a missing binary succeeded")
				}
				e.remove(t, id)
			},
			want: []step{created, stopped, deleted},
		},
		{
			name: "removed unstarted",
			cmd:  []string{"true"},
			life: func(t *testing.T, id string) { e.remove(t, id) },
			want: []step{created, deleted},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := subscribeEvents(t, e)
			since := time.Now().UnixNano()
			id := e.create(t, ctrConfig(cleanName(tc.name), tc.cmd))
			tc.life(t, id)
			var last int64
			for i, want := range tc.want {
				ev := nextEventOf(t, events, id, i, want.typ)
				if ev.ContainerEventType != want.typ {
					t.Fatalf("event %d is %s, want %s", i, ev.ContainerEventType, want.typ)
				}
				if ev.CreatedAt < since || ev.CreatedAt < last || ev.CreatedAt > time.Now().UnixNano() {
					t.Errorf("%s: created_at %d not in [%d, now] after %d", want.typ, ev.CreatedAt, since, last)
				}
				last = ev.CreatedAt
				if ev.PodSandboxStatus.GetId() != e.pod {
					t.Errorf("%s: pod_sandbox_status is of %q, want %q", want.typ, ev.PodSandboxStatus.GetId(), e.pod)
				}
				i := slices.IndexFunc(ev.ContainersStatuses, func(s *runtimeapi.ContainerStatus) bool { return s.Id == id })
				switch {
				case want.state == -1 && i >= 0:
					t.Errorf("%s: the removed container is still among the statuses", want.typ)
				case want.state != -1 && i < 0:
					t.Errorf("%s: the container is not among the statuses %v", want.typ, ev.ContainersStatuses)
				case want.state != -1 && ev.ContainersStatuses[i].State != want.state:
					t.Errorf("%s: container state %s, want %s", want.typ, ev.ContainersStatuses[i].State, want.state)
				}
			}
		})
	}
}

// TestTelemetryPodStats: a pod with a running busybox sleep reports its container, its
// memory and processes, and its eth0 counters through the three pod stats RPCs.
func TestTelemetryPodStats(t *testing.T) {
	e := newCtrEnv(t)
	id := e.run(t, ctrConfig("sleeper", []string{"sleep", "3600"}))
	e.removeAtEnd(t, id)

	check := func(t *testing.T, rpc string, got []*runtimeapi.PodSandboxStats) {
		t.Helper()
		if len(got) != 1 || got[0].GetAttributes().GetId() != e.pod {
			t.Fatalf("%s = %v, want the pod %s alone", rpc, got, e.pod)
		}
		l := got[0].GetLinux()
		if got[0].GetAttributes().GetMetadata().GetName() != e.podCfg.Metadata.Name {
			t.Errorf("%s: metadata %v", rpc, got[0].GetAttributes().GetMetadata())
		}
		if len(l.GetContainers()) != 1 || l.Containers[0].GetAttributes().GetId() != id {
			t.Errorf("%s: containers %v, want %s", rpc, l.GetContainers(), id)
		}
		if l.GetMemory().GetWorkingSetBytes().GetValue() == 0 || l.GetMemory().GetUsageBytes().GetValue() == 0 {
			t.Errorf("%s: memory %v, want non-zero", rpc, l.GetMemory())
		}
		if l.GetContainers()[0].GetMemory().GetWorkingSetBytes().GetValue() == 0 {
			t.Errorf("%s: container memory %v, want non-zero", rpc, l.GetContainers()[0].GetMemory())
		}
		if l.GetProcess().GetProcessCount().GetValue() == 0 {
			t.Errorf("%s: process count %v, want at least the sleep", rpc, l.GetProcess())
		}
		if l.GetCpu().GetTimestamp() == 0 || l.GetCpu().GetUsageCoreNanoSeconds() == nil {
			t.Errorf("%s: cpu %v", rpc, l.GetCpu())
		}
		if l.GetNetwork().GetDefaultInterface().GetName() != "eth0" {
			t.Errorf("%s: network %v, want eth0 as the default interface", rpc, l.GetNetwork())
		}
	}

	list, err := e.d.runtime.ListPodSandboxStats(ctxTimeout(t, time.Minute), &runtimeapi.ListPodSandboxStatsRequest{
		Filter: &runtimeapi.PodSandboxStatsFilter{Id: e.pod},
	})
	if err != nil {
		t.Fatalf("ListPodSandboxStats: %v", err)
	}
	check(t, "ListPodSandboxStats", list.Stats)

	all, err := e.d.runtime.ListPodSandboxStats(ctxTimeout(t, time.Minute), &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil || len(all.Stats) != 1 {
		t.Fatalf("ListPodSandboxStats without a filter = %v, %v; want the one pod", all.GetStats(), err)
	}

	one, err := e.d.runtime.PodSandboxStats(ctxTimeout(t, time.Minute), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: e.pod})
	if err != nil {
		t.Fatalf("PodSandboxStats: %v", err)
	}
	check(t, "PodSandboxStats", []*runtimeapi.PodSandboxStats{one.Stats})

	stream, err := e.d.runtime.StreamPodSandboxStats(ctxTimeout(t, time.Minute), &runtimeapi.StreamPodSandboxStatsRequest{
		Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{}},
	})
	if err != nil {
		t.Fatalf("StreamPodSandboxStats: %v", err)
	}
	var streamed []*runtimeapi.PodSandboxStats
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("StreamPodSandboxStats: %v", err)
		}
		streamed = append(streamed, resp.PodSandboxStats...)
	}
	check(t, "StreamPodSandboxStats", streamed)

	for _, tc := range []struct {
		id   string
		code codes.Code
	}{
		{id: "", code: codes.InvalidArgument},
		{id: "0123456789abcdef-no-such-pod", code: codes.NotFound},
	} {
		_, err := e.d.runtime.PodSandboxStats(ctxTimeout(t, time.Minute), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: tc.id})
		wantCode(t, "PodSandboxStats "+tc.id, err, tc.code)
	}
}

// TestPodSandboxEvents: a pod sandbox's own run, stop and removal reach the
// GetContainerEvents stream as CREATED, STARTED, STOPPED and DELETED on the pod's id,
// with the pod's status (its last one for DELETED).
func TestPodSandboxEvents(t *testing.T) {
	e := newCtrEnv(t)
	events := subscribeEvents(t, e)
	pod := e.d.runPod(t, podConfig(t, "events-pod"))
	e.d.cleanupPods(t, pod)
	e.d.stopPod(t, pod)
	e.d.removePod(t, pod)
	want := []struct {
		typ   runtimeapi.ContainerEventType
		state runtimeapi.PodSandboxState
	}{
		{runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.PodSandboxState_SANDBOX_READY},
		{runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, runtimeapi.PodSandboxState_SANDBOX_READY},
		{runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.PodSandboxState_SANDBOX_NOTREADY},
		{runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, runtimeapi.PodSandboxState_SANDBOX_NOTREADY},
	}
	for i, w := range want {
		ev := nextEventOf(t, events, pod, i, w.typ)
		if ev.ContainerEventType != w.typ || ev.PodSandboxStatus.GetId() != pod || ev.PodSandboxStatus.GetState() != w.state {
			t.Fatalf("event %d: %s for pod %q in state %s; want %s, %q, %s", i,
				ev.ContainerEventType, ev.PodSandboxStatus.GetId(), ev.PodSandboxStatus.GetState(), w.typ, pod, w.state)
		}
	}
}

// nextEventOf waits up to 30 s for the next event of the container (or pod) id on
// events, skipping the others'; i and typ, the event expected, name it in failures.
func nextEventOf(t *testing.T, events <-chan *runtimeapi.ContainerEventResponse, id string, i int, typ runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
	t.Helper()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream ended before event %d (%s)", i, typ)
			}
			if ev.ContainerId == id {
				return ev
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no event %d (%s) within 30s", i, typ)
		}
	}
}
