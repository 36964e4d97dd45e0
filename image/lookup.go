package image

import (
	"fmt"

	"github.com/berth-runtime/berth/image/reference"
	"github.com/berth-runtime/berth/image/store"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Get returns the image ref names: a full image ID ("sha256:<hex>" or the bare hex), a
// tag or digest reference (normalised first: "busybox" finds
// "docker.io/library/busybox:latest"), or an unambiguous ID prefix (reference.IDPrefix).
// An absent image is an error wrapping errdefs.ErrNotFound.
func (s *Service) Get(ref string) (Image, error) {
	id, err := s.lookup(ref)
	if err != nil {
		return Image{}, err
	}
	img, ok := s.meta.Image(id)
	if !ok {
		return Image{}, errdefs.NotFound(fmt.Sprintf("image %q not found", ref))
	}
	return s.toImage(img), nil
}

// List returns every image when filterRef is empty, else the image filterRef names (as
// Get resolves it), if any.
func (s *Service) List(filterRef string) []Image {
	if filterRef != "" {
		img, err := s.Get(filterRef)
		if err != nil {
			return []Image{}
		}
		return []Image{img}
	}
	recs := s.meta.Images()
	out := make([]Image, 0, len(recs))
	for _, r := range recs {
		out = append(out, s.toImage(r))
	}
	return out
}

// lookup resolves ref to an image ID, in the order: full ID, reference, ID prefix.
func (s *Service) lookup(ref string) (string, error) {
	if ref == "" {
		return "", errdefs.InvalidArgument("image reference is empty")
	}
	if id, ok := reference.ParseID(ref); ok {
		if _, ok := s.meta.Image(id); ok {
			return id, nil
		}
		return "", errdefs.NotFound(fmt.Sprintf("image %q not found", ref))
	}
	if r, err := reference.Parse(ref); err == nil {
		if id, ok := s.meta.Resolve(r.String()); ok {
			return id, nil
		}
	}
	if prefix, ok := reference.IDPrefix(ref); ok {
		switch ids := s.meta.IDsWithPrefix(prefix); len(ids) {
		case 1:
			return ids[0], nil
		case 0:
		default:
			return "", errdefs.InvalidArgument(fmt.Sprintf("image ID prefix %q is ambiguous (%d images)", ref, len(ids)))
		}
	}
	return "", errdefs.NotFound(fmt.Sprintf("image %q not found", ref))
}

// toImage builds the API value of a record: names from the refs index.
func (s *Service) toImage(r store.Image) Image {
	tags, digests := s.meta.Refs(r.ID)
	return Image{
		ID:          r.ID,
		RepoTags:    nonNil(tags),
		RepoDigests: nonNil(digests),
		Size:        r.Size,
		Config:      r.Config,
		User:        r.User,
		ChainIDs:    r.ChainIDs(),
		Pinned:      r.Pinned || s.pinned.pinned(append(append([]string{r.ID}, tags...), digests...)...),
		Created:     r.Created,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SnapshotPath is the directory holding the files of a layer snapshot (an overlayfs
// lowerdir). Image.ChainIDs lists an image's snapshots base first; overlayfs wants the
// top layer first in lowerdir.
func (s *Service) SnapshotPath(chainID string) string { return s.snaps.Path(chainID) }
