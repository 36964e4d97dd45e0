package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/cleanup"
	"github.com/berth-runtime/berth/sandbox/rootfs"
)

// imageVolumes turns the CRI mounts whose source is an image into bind mounts of that
// image, mounted read-only under the container's directory (one lease per volume, so
// that removing the image does not pull it from under the container). Other mounts
// pass through. The volumes are recorded in c.meta.ImageVolumes.
func (s *Service) imageVolumes(c *container, undo *cleanup.Stack) ([]*runtimeapi.Mount, error) {
	var out []*runtimeapi.Mount
	for i, m := range c.config.GetMounts() {
		if m.GetImage().GetImage() == "" {
			if m.GetImageSubPath() != "" {
				return nil, errdefs.InvalidArgument(fmt.Sprintf("mount at %s: image_sub_path without an image", m.GetContainerPath()))
			}
			resolved, err := resolveHostPath(m)
			if err != nil {
				return nil, err
			}
			out = append(out, resolved)
			continue
		}
		if !m.GetReadonly() {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("image volume at %s must be read-only", m.GetContainerPath()))
		}
		holder := c.meta.ID + "-volume-" + strconv.Itoa(i)
		img, err := s.cfg.Images.Lease(holder, m.GetImage().GetImage())
		if err != nil {
			return nil, fmt.Errorf("image volume at %s: %w", m.GetContainerPath(), err)
		}
		undo.Push("image volume lease", func(context.Context) error { return s.cfg.Images.Release(holder) })
		c.meta.ImageVolumes = append(c.meta.ImageVolumes, ImageVolume{
			ContainerPath: m.GetContainerPath(), ImageID: img.ID, ImageRef: img.Ref, Holder: holder,
		})
		target := filepath.Join(s.volumeDir(c.meta.ID), strconv.Itoa(i))
		if err := rootfs.Mount(img.Layers, target+".rw", target, true); err != nil {
			return nil, err
		}
		undo.Push("image volume", func(context.Context) error { return rootfs.Remove(target+".rw", target) })
		src, err := subPath(target, m.GetImageSubPath())
		if err != nil {
			return nil, err
		}
		bind := proto.Clone(m).(*runtimeapi.Mount)
		bind.HostPath, bind.Image, bind.ImageSubPath = src, nil, ""
		out = append(out, bind)
	}
	return out, nil
}

// resolveHostPath checks that a CRI mount's host path exists and resolves its symbolic
// links once, on the host: the OCI runtime then binds the real path, so that a link
// swapped between this check and the start cannot redirect the mount. A missing
// source is InvalidArgument (kubelet creates the directories it means to mount).
func resolveHostPath(m *runtimeapi.Mount) (*runtimeapi.Mount, error) {
	src := m.GetHostPath()
	if !filepath.IsAbs(src) {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("mount at %s: host path %q is not absolute", m.GetContainerPath(), src))
	}
	real, err := filepath.EvalSymlinks(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("mount at %s: host path %s does not exist", m.GetContainerPath(), src))
	}
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("mount at %s: host path %s: %v", m.GetContainerPath(), src, err))
	}
	if real == src {
		return m, nil
	}
	out := proto.Clone(m).(*runtimeapi.Mount)
	out.HostPath = real
	return out, nil
}

// subPath resolves sub inside the mounted image at root; it must exist and, symlinks
// followed, stay inside root.
func subPath(root, sub string) (string, error) {
	if sub == "" {
		return root, nil
	}
	p := filepath.Join(root, filepath.Clean("/"+sub))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Sprintf("image sub path %q: %v", sub, err))
	}
	if real != root && !strings.HasPrefix(real, root+"/") {
		return "", errdefs.InvalidArgument(fmt.Sprintf("image sub path %q leaves the image", sub))
	}
	return real, nil
}

// unmountVolumes unmounts and removes the container's image volumes.
func (s *Service) unmountVolumes(c *container) error {
	dir := s.volumeDir(c.meta.ID)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".rw") {
			continue
		}
		target := filepath.Join(dir, e.Name())
		errs = append(errs, rootfs.Remove(target+".rw", target))
	}
	return errors.Join(errs...)
}
