package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/sandbox"
)

// monitorName is the container monitor's executable (cmd/berth-monitor).
const monitorName = "berth-monitor"

// findMonitor resolves monitor_path: the configured path, else berth-monitor next to
// the berthd executable (where `go build -o bin/` and the install put both), else $PATH.
func findMonitor(configured string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("monitor_path %q: %w", configured, err)
		}
		return filepath.Abs(p)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), monitorName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(monitorName)
	if err != nil {
		return "", fmt.Errorf("%s is neither next to berthd nor in $PATH (set monitor_path): %w", monitorName, err)
	}
	return filepath.Abs(p)
}

// imageLeases adapts the image service to what containers need of it.
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
