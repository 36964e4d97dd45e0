package main

import (
	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/sandbox"
)

// imageLeases adapts the image service to what containers need of it, as berthd's
// (cmd/berthd/containers.go, which is a package main) does.
type imageLeases struct{ svc *image.Service }

var _ sandbox.Images = imageLeases{}

func (l imageLeases) Lease(holder, ref string) (sandbox.ContainerImage, error) {
	img, err := l.svc.Acquire(holder, ref)
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
		out.Layers = append(out.Layers, l.svc.SnapshotPath(chain))
	}
	return out, nil
}

func (l imageLeases) Release(holder string) error { return l.svc.Release(holder) }

func (l imageLeases) Holders() []string {
	var out []string
	for h := range l.svc.Leases() {
		out = append(out, h)
	}
	return out
}
