package cri

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/image"
)

func TestImageRPCs(t *testing.T) {
	c := startServer(t, Options{Images: &fakeImages{images: map[string]image.Image{}}}, true)
	ctx := context.Background()
	spec := func(ref string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: ref} }

	pulled, err := c.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec("busybox")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec(pulled.ImageRef), Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Image.Id != pulled.ImageRef || st.Image.Uid.GetValue() != 1002 || st.Image.Username != "" {
		t.Errorf("status = %v", st.Image)
	}
	if st.Info["info"] == "" {
		t.Error("verbose status without info")
	}
	list, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: spec("busybox")}})
	if err != nil || len(list.Images) != 1 {
		t.Fatalf("ListImages = %v, %v", list, err)
	}
	fs, err := c.images.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || fs.ImageFilesystems[0].UsedBytes.Value != 10 {
		t.Fatalf("ImageFsInfo = %v, %v", fs, err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if _, err := c.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec("busybox")}); err != nil {
			t.Fatalf("RemoveImage #%d: %v", i, err)
		}
	}
	st, err = c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec("busybox")})
	if err != nil || st.Image != nil {
		t.Fatalf("status of a removed image = %v, %v; want nil image, no error", st, err)
	}
}

func TestImageRPCsRejectBadInput(t *testing.T) {
	c := startServer(t, Options{Images: &fakeImages{images: map[string]image.Image{}}}, true)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"pull without image", func() error {
			_, err := c.images.PullImage(ctx, &runtimeapi.PullImageRequest{})
			return err
		}, codes.InvalidArgument},
		{"pull malformed", func() error {
			_, err := c.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "a b"}})
			return err
		}, codes.InvalidArgument},
		{"status without image", func() error {
			_, err := c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{})
			return err
		}, codes.InvalidArgument},
		{"remove without image", func() error {
			_, err := c.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call()); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestImageUser(t *testing.T) {
	tests := []struct {
		user     string
		uid      int64
		hasUID   bool
		username string
	}{
		{"", 0, false, ""},
		{"1002", 1002, true, ""},
		{"1003:1004", 1003, true, ""},
		{"www-data", 0, false, "www-data"},
		{"www-data:1004", 0, false, "www-data"},
		{"0", 0, true, ""},
	}
	for _, tt := range tests {
		uid, name := imageUser(tt.user)
		if (uid != nil) != tt.hasUID || uid.GetValue() != tt.uid || name != tt.username {
			t.Errorf("imageUser(%q) = %v, %q", tt.user, uid, name)
		}
	}
}
