package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features is what berth needs to know of an OCI runtime's abilities.
type Features struct {
	// Path is the resolved executable.
	Path string
	// RecursiveReadOnlyMounts: the runtime understands the "rro" mount option.
	RecursiveReadOnlyMounts bool
	// UserNamespaces: the runtime can create user namespaces with idmapped mounts, which
	// Kubernetes' user-namespaced pods need.
	UserNamespaces bool
}

// probeTimeout bounds one `<runtime> features` call; a wedged binary must not block
// berthd's start.
const probeTimeout = 10 * time.Second

// Probe asks the runtime at path (looked up in $PATH when it has no slash) what it
// supports, via `<runtime> features` (runc ≥ 1.1, crun ≥ 1.5). A runtime without that
// command is reported with no optional features rather than as an error: it still runs
// containers.
func Probe(ctx context.Context, path string) (Features, error) {
	resolved, err := exec.LookPath(path)
	if err != nil {
		return Features{}, fmt.Errorf("oci runtime %q: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, resolved, "features")
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return Features{Path: resolved}, nil
	}
	f, err := parseFeatures(stdout.Bytes())
	if err != nil {
		return Features{Path: resolved}, fmt.Errorf("oci runtime %s features: %w", resolved, err)
	}
	f.Path = resolved
	return f, nil
}

func parseFeatures(data []byte) (Features, error) {
	var raw features.Features
	if err := json.Unmarshal(data, &raw); err != nil {
		return Features{}, err
	}
	var f Features
	f.RecursiveReadOnlyMounts = slices.Contains(raw.MountOptions, "rro")
	if l := raw.Linux; l != nil {
		userns := slices.Contains(l.Namespaces, "user")
		idmap := l.MountExtensions != nil && l.MountExtensions.IDMap != nil &&
			l.MountExtensions.IDMap.Enabled != nil && *l.MountExtensions.IDMap.Enabled
		f.UserNamespaces = userns && idmap
	}
	return f, nil
}
