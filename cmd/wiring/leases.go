package wiring

import (
	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/sandbox"
)

// Leases adapts the image service to what containers need of it (sandbox.Images):
// sandbox and image do not import each other.
type Leases struct{ Service *image.Service }

var _ sandbox.Images = Leases{}

// Lease pins ref for holder and returns its id, the reference to report (a repo
// digest, else a tag, else the id), its config and its snapshot directories.
func (l Leases) Lease(holder, ref string) (sandbox.ContainerImage, error) {
	img, err := l.Service.Acquire(holder, ref)
	if err != nil {
		return sandbox.ContainerImage{}, err
	}
	out := sandbox.ContainerImage{ID: img.ID, Ref: img.ID, Config: img.Config}
	switch {
	case len(img.RepoDigests) > 0:
		out.Ref = img.RepoDigests[0]
	case len(img.RepoTags) > 0:
		out.Ref = img.RepoTags[0]
	}
	for _, chain := range img.ChainIDs {
		out.Layers = append(out.Layers, l.Service.SnapshotPath(chain))
	}
	return out, nil
}

// Release drops holder's lease.
func (l Leases) Release(holder string) error { return l.Service.Release(holder) }

// Holders lists every lease holder.
func (l Leases) Holders() []string {
	var out []string
	for h := range l.Service.Leases() {
		out = append(out, h)
	}
	return out
}
