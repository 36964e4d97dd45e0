package cri

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeTelemetry hands out one event channel, which the test feeds and closes.
type fakeTelemetry struct {
	events chan *runtimeapi.ContainerEventResponse
}

func (f *fakeTelemetry) PodSandboxStats(string) (*runtimeapi.PodSandboxStats, error) {
	return &runtimeapi.PodSandboxStats{}, nil
}

func (f *fakeTelemetry) ListPodSandboxStats(*runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats {
	return nil
}

func (f *fakeTelemetry) ContainerEvents(context.Context) <-chan *runtimeapi.ContainerEventResponse {
	return f.events
}

// TestContainerEventsStreamEnds: the stream relays events, and ends with Unavailable
// when berth drops a slow client or when the server stops, the latter at once rather
// than after Stop's grace.
func TestContainerEventsStreamEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(srv *Server, f *fakeTelemetry)
	}{
		{name: "subscriber dropped", end: func(_ *Server, f *fakeTelemetry) { close(f.events) }},
		{name: "server stops", end: func(srv *Server, _ *fakeTelemetry) { srv.Stop(time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTelemetry{events: make(chan *runtimeapi.ContainerEventResponse, 1)}
			srv := New(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Telemetry: f})
			srv.Ready()
			l, err := net.Listen("unix", filepath.Join(t.TempDir(), "berth.sock"))
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(func() { srv.Stop(time.Second) })
			conn, err := grpc.NewClient("unix://"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := runtimeapi.NewRuntimeServiceClient(conn).GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Header(); err != nil {
				t.Fatalf("headers: %v", err)
			}
			f.events <- &runtimeapi.ContainerEventResponse{ContainerId: "c1"}
			if ev, err := stream.Recv(); err != nil || ev.ContainerId != "c1" {
				t.Fatalf("Recv = %v, %v; want the event of c1", ev, err)
			}
			start := time.Now()
			go tc.end(srv, f)
			_, err = stream.Recv()
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("Recv after the end = %v, want Unavailable", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("the stream took %s to end", d)
			}
		})
	}
}

func TestTelemetryUnimplementedWithoutService(t *testing.T) {
	c := startServer(t, Options{}, true)
	_, err := c.runtime.ListPodSandboxStats(context.Background(), &runtimeapi.ListPodSandboxStatsRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("ListPodSandboxStats without a telemetry service = %v, want Unimplemented", err)
	}
}
