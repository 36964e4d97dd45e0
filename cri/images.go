package cri

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// imageService serves ImageService.
type imageService struct {
	runtimeapi.UnimplementedImageServiceServer
	images      ImageService
	containerFs ContainerFsService // nil: no container filesystem reported
	log         *slog.Logger
}

// streamBatch is how many images one StreamImages message carries: small enough to stay
// far below the gRPC message limit whatever the tags, large enough to be cheap.
const streamBatch = 100

// PullImage pulls an image and returns its id, which every other RPC accepts as a
// reference and reports back as Image.id / image_ref.
func (s *imageService) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("PullImage: image reference is empty")
	}
	img, err := s.images.Pull(ctx, ref, authConfig(req.GetAuth()))
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

func authConfig(a *runtimeapi.AuthConfig) *image.AuthConfig {
	if a == nil {
		return nil
	}
	return &image.AuthConfig{
		Username:      a.GetUsername(),
		Password:      a.GetPassword(),
		Auth:          a.GetAuth(),
		ServerAddress: a.GetServerAddress(),
		IdentityToken: a.GetIdentityToken(),
		RegistryToken: a.GetRegistryToken(),
	}
}

// ListImages lists every image, or those matching the filter's reference.
func (s *imageService) ListImages(_ context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs := s.images.List(req.GetFilter().GetImage().GetImage())
	resp := &runtimeapi.ListImagesResponse{Images: make([]*runtimeapi.Image, len(imgs))}
	for i, img := range imgs {
		resp.Images[i] = toCRIImage(img)
	}
	return resp, nil
}

// StreamImages is ListImages in batches, for nodes with more images than one message holds.
func (s *imageService) StreamImages(req *runtimeapi.StreamImagesRequest, stream runtimeapi.ImageService_StreamImagesServer) error {
	imgs := s.images.List(req.GetFilter().GetImage().GetImage())
	for start := 0; start < len(imgs); start += streamBatch {
		end := min(start+streamBatch, len(imgs))
		batch := make([]*runtimeapi.Image, 0, end-start)
		for _, img := range imgs[start:end] {
			batch = append(batch, toCRIImage(img))
		}
		if err := stream.Send(&runtimeapi.StreamImagesResponse{Images: batch}); err != nil {
			return err
		}
	}
	return nil
}

// ImageStatus answers with a nil image, not an error, when the image is absent: that is
// how kubelet learns it must pull.
func (s *imageService) ImageStatus(_ context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("ImageStatus: image reference is empty")
	}
	img, err := s.images.Get(ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if req.GetVerbose() {
		info, err := verboseImageInfo(img)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

// verboseImageInfo is the image's OCI config plus where berth keeps its layers.
func verboseImageInfo(img image.Image) (string, error) {
	info := struct {
		ImageSpec json.RawMessage `json:"imageSpec"`
		ChainIDs  []string        `json:"chainIDs"`
	}{ImageSpec: json.RawMessage(img.Config), ChainIDs: img.ChainIDs}
	if len(img.Config) == 0 {
		info.ImageSpec = json.RawMessage("null")
	}
	b, err := json.Marshal(info)
	return string(b), err
}

// RemoveImage is idempotent: removing an absent image succeeds.
func (s *imageService) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("RemoveImage: image reference is empty")
	}
	if err := s.images.Remove(ctx, ref); err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the image filesystem's usage from recorded sizes, and the
// container filesystem's (the writable layers) from the background refresh: never a walk.
func (s *imageService) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	u := s.images.Usage()
	fs := &runtimeapi.FilesystemUsage{
		Timestamp:  u.Timestamp.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: u.Mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: u.UsedBytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: u.InodesUsed},
	}
	resp := &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}}
	if s.containerFs != nil {
		resp.ContainerFilesystems = []*runtimeapi.FilesystemUsage{s.containerFs.ContainerFsUsage()}
	}
	return resp, nil
}

func toCRIImage(img image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
		Pinned:      img.Pinned,
	}
	out.Uid, out.Username = imageUser(img.User)
	return out
}

// imageUser splits an image's USER into what the CRI reports: a numeric user becomes
// uid, a name becomes username; the group part never matters here.
func imageUser(user string) (*runtimeapi.Int64Value, string) {
	name, _, _ := strings.Cut(user, ":")
	if name == "" {
		return nil, ""
	}
	if uid, err := strconv.ParseInt(name, 10, 64); err == nil {
		return &runtimeapi.Int64Value{Value: uid}, ""
	}
	return nil, name
}
