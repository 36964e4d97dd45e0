package testimages

import (
	"encoding/json"
	"fmt"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Format selects the media types of manifests, indexes, configs and layers.
type Format int

const (
	// Docker is the Docker image manifest v2 schema 2 family.
	Docker Format = iota
	// OCI is the OCI image-spec family.
	OCI
)

func (f Format) String() string {
	if f == OCI {
		return "oci"
	}
	return "docker"
}

// pick is oci for the OCI format, docker for Docker's.
func (f Format) pick(oci, docker types.MediaType) types.MediaType {
	if f == OCI {
		return oci
	}
	return docker
}

// LayerMediaType is the gzip layer media type of the format.
func (f Format) LayerMediaType() types.MediaType { return f.pick(types.OCILayer, types.DockerLayer) }

// ManifestMediaType is the image manifest media type of the format.
func (f Format) ManifestMediaType() types.MediaType {
	return f.pick(types.OCIManifestSchema1, types.DockerManifestSchema2)
}

// IndexMediaType is the index (manifest list) media type of the format.
func (f Format) IndexMediaType() types.MediaType {
	return f.pick(types.OCIImageIndex, types.DockerManifestList)
}

// ConfigMediaType is the image config media type of the format.
func (f Format) ConfigMediaType() types.MediaType {
	return f.pick(types.OCIConfigJSON, types.DockerConfigJSON)
}

// HostPlatform is linux on the architecture this program runs on.
func HostPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

// NewImage builds a single-platform image for the host platform from cfg and
// layers (bottom first).
func NewImage(f Format, cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	return NewPlatformImage(f, HostPlatform(), cfg, layers...)
}

// NewPlatformImage builds a single-platform image for platform p.
func NewPlatformImage(f Format, p v1.Platform, cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	cf := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: Epoch},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for i, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer: l,
			History: v1.History{
				Created:   v1.Time{Time: Epoch},
				CreatedBy: fmt.Sprintf("berth testimages layer %d", i),
				Comment:   "buildkit.dockerfile.v0",
			},
		})
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, f.ManifestMediaType())
	img = mutate.ConfigMediaType(img, f.ConfigMediaType())
	return img, nil
}

// NewIndex builds an index (manifest list) of images; each entry's platform
// is taken from the image's config. Descriptors carry only media type,
// size, digest and platform, as registries serve them.
func NewIndex(f Format, images ...v1.Image) (v1.ImageIndex, error) {
	idx := &Index{mediaType: f.IndexMediaType(), images: map[v1.Hash]v1.Image{}}
	idx.manifest.SchemaVersion = 2
	idx.manifest.MediaType = f.IndexMediaType()
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := cf.Platform()
		if p == nil {
			return nil, fmt.Errorf("image has no platform")
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return nil, err
		}
		idx.manifest.Manifests = append(idx.manifest.Manifests, v1.Descriptor{
			MediaType: desc.MediaType,
			Size:      desc.Size,
			Digest:    desc.Digest,
			Platform:  p,
		})
		idx.images[desc.Digest] = img
	}
	raw, err := json.Marshal(&idx.manifest)
	if err != nil {
		return nil, err
	}
	idx.raw = raw
	return idx, nil
}

// Index is an image index with a fixed manifest, built by NewIndex.
type Index struct {
	mediaType types.MediaType
	manifest  v1.IndexManifest
	raw       []byte
	images    map[v1.Hash]v1.Image
}

var _ v1.ImageIndex = (*Index)(nil)

// MediaType of the index manifest.
func (i *Index) MediaType() (types.MediaType, error) { return i.mediaType, nil }

// Digest of the index manifest.
func (i *Index) Digest() (v1.Hash, error) { return partial.Digest(i) }

// Size of the index manifest.
func (i *Index) Size() (int64, error) { return int64(len(i.raw)), nil }

// IndexManifest returns a copy of the parsed manifest.
func (i *Index) IndexManifest() (*v1.IndexManifest, error) { return i.manifest.DeepCopy(), nil }

// RawManifest returns the manifest bytes.
func (i *Index) RawManifest() ([]byte, error) { return i.raw, nil }

// Image returns the child image with digest h.
func (i *Index) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := i.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("index has no image %s", h)
}

// ImageIndex fails: these indexes hold images only.
func (i *Index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index has no child index %s", h)
}

// foreignPlatform is a platform other than the host's, for the second entry
// of multi-platform indexes (a runtime must pick the host's).
func foreignPlatform() v1.Platform {
	if runtime.GOARCH == "arm64" {
		return v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
}

// placeholderImage is a small image for the foreign platform of an index.
// It cannot run anywhere; it only has to be different from the host image.
func placeholderImage(f Format, name string) (v1.Image, error) {
	p := foreignPlatform()
	tarball, err := Tar([]File{
		Reg("README", 0o644, fmt.Sprintf("%s for %s/%s: placeholder, not runnable\n", name, p.OS, p.Architecture)),
	})
	if err != nil {
		return nil, err
	}
	l, err := NewLayer(tarball, f.LayerMediaType())
	if err != nil {
		return nil, err
	}
	return NewPlatformImage(f, p, v1.Config{Cmd: []string{"/README"}}, l)
}
