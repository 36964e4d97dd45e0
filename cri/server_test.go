package cri

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// fakeImages is a stateful in-memory ImageService for the handler tests.
type fakeImages struct {
	mu     sync.Mutex
	images map[string]image.Image // by ref and by id
	panic  bool
}

func (f *fakeImages) Pull(_ context.Context, ref string, _ *image.AuthConfig) (image.Image, error) {
	if f.panic {
		panic("injected")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.ContainsAny(ref, " !") {
		return image.Image{}, errdefs.InvalidArgument("bad reference " + ref)
	}
	img := image.Image{ID: "sha256:" + strings.Repeat("a", 64), RepoTags: []string{ref}, Size: 42, User: "1002:1003"}
	f.images[ref], f.images[img.ID] = img, img
	return img, nil
}

func (f *fakeImages) Get(ref string) (image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[ref]
	if !ok {
		return image.Image{}, errdefs.NotFound("image " + ref)
	}
	return img, nil
}

func (f *fakeImages) List(ref string) []image.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []image.Image
	for k, img := range f.images {
		if k == img.ID && (ref == "" || ref == k || slices.Contains(img.RepoTags, ref)) {
			out = append(out, img)
		}
	}
	return out
}

func (f *fakeImages) Remove(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[ref]
	if !ok {
		return errdefs.NotFound("image " + ref)
	}
	delete(f.images, img.ID)
	for _, t := range img.RepoTags {
		delete(f.images, t)
	}
	return nil
}

func (f *fakeImages) Usage() image.Usage {
	return image.Usage{Mountpoint: "/var/lib/berth/image", UsedBytes: 10, InodesUsed: 2, Timestamp: time.Unix(1, 0)}
}

type clients struct {
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
}

func startServer(t *testing.T, opts Options, ready bool) clients {
	t.Helper()
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := New(opts)
	if ready {
		srv.Ready()
	}
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Stop(time.Second) })
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return clients{runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)}
}

func TestStartupGate(t *testing.T) {
	c := startServer(t, Options{Images: &fakeImages{images: map[string]image.Image{}}}, false)
	ctx := context.Background()
	if _, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("Version must pass the gate: %v", err)
	}
	_, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("ListImages before Ready: %v, want Unavailable", err)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	c := startServer(t, Options{Images: &fakeImages{images: map[string]image.Image{}, panic: true}}, true)
	_, err := c.images.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "x"}})
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want Internal", err)
	}
	// The server survives.
	if _, err := c.runtime.Version(context.Background(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestRuntimeInfo(t *testing.T) {
	c := startServer(t, Options{
		Images:          &fakeImages{images: map[string]image.Image{}},
		Handlers:        []RuntimeHandler{{Name: "crun"}, {Name: "runc", RecursiveReadOnlyMounts: true}},
		DefaultHandler:  "runc",
		CgroupDriver:    "systemd",
		NetworkReady:    func() error { return errors.New("no plugins") },
		EffectiveConfig: map[string]string{"root": "/var/lib/berth"},
	}, true)
	ctx := context.Background()
	v, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "berth" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	st, err := c.runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, cond := range st.Status.Conditions {
		conds[cond.Type] = cond
	}
	if !conds[runtimeapi.RuntimeReady].Status {
		t.Error("RuntimeReady false")
	}
	if n := conds[runtimeapi.NetworkReady]; n.Status || n.Message != "no plugins" {
		t.Errorf("NetworkReady = %v", n)
	}
	var names []string
	for _, h := range st.RuntimeHandlers {
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "crun,runc," {
		t.Errorf("handlers = %q, want crun, runc and the default (\"\")", names)
	}
	if !strings.Contains(st.Info["config"], "/var/lib/berth") {
		t.Errorf("verbose info = %v", st.Info)
	}
	rc, err := c.runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil || rc.Linux.CgroupDriver != runtimeapi.CgroupDriver_SYSTEMD {
		t.Fatalf("RuntimeConfig = %v, %v", rc, err)
	}
	_, err = c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("RunPodSandbox = %v, want Unimplemented until pods exist", err)
	}
}

func TestUpdateRuntimeConfigPodCIDR(t *testing.T) {
	var got []string
	c := startServer(t, Options{
		Images: &fakeImages{images: map[string]image.Image{}},
		SetPodCIDR: func(cidr string) error {
			if cidr == "bad" {
				return errdefs.InvalidArgument("pod CIDR bad")
			}
			got = append(got, cidr)
			return nil
		},
	}, true)
	for _, tc := range []struct {
		cidr string
		code codes.Code
	}{{"", codes.OK}, {"10.244.0.0/24", codes.OK}, {"bad", codes.InvalidArgument}} {
		_, err := c.runtime.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{
			RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: tc.cidr}},
		})
		if status.Code(err) != tc.code {
			t.Errorf("UpdateRuntimeConfig(%q) = %v, want %v", tc.cidr, err, tc.code)
		}
	}
	if strings.Join(got, " ") != "10.244.0.0/24" {
		t.Errorf("pod CIDRs handed on: %q, want the one non-empty valid CIDR", got)
	}
}
