package cdi

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	cdilib "tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DefaultSpecDirs are where CDI specs live, in rising priority.
var DefaultSpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// Resolver injects CDI devices declared by the specs in its directories.
type Resolver struct {
	cache *cdilib.Cache
	dirs  []string
}

// New returns a resolver over dirs (later directories win when two specs declare the
// same device). Directories that do not exist are not an error: a node may have none.
func New(dirs []string) (*Resolver, error) {
	c, err := cdilib.NewCache(cdilib.WithSpecDirs(dirs...), cdilib.WithAutoRefresh(false))
	if err != nil {
		return nil, fmt.Errorf("CDI: %w", err)
	}
	return &Resolver{cache: c, dirs: slices.Clone(dirs)}, nil
}

// Requested lists the CDI devices a container asks for, in order and without
// duplicates: its CDI_devices, then the devices named by cdi.k8s.io/ annotations (in
// key order).
func Requested(cfg *runtimeapi.ContainerConfig) ([]string, error) {
	var names []string
	add := func(n string) error {
		n = strings.TrimSpace(n)
		if !parser.IsQualifiedName(n) {
			return errdefs.InvalidArgument(fmt.Sprintf("CDI device %q: want a fully qualified name, vendor.com/class=name", n))
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
		return nil
	}
	for _, d := range cfg.GetCDIDevices() {
		if err := add(d.GetName()); err != nil {
			return nil, err
		}
	}
	var keys []string
	for k := range cfg.GetAnnotations() {
		if strings.HasPrefix(k, cdilib.AnnotationPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, n := range strings.Split(cfg.GetAnnotations()[k], ",") {
			if err := add(n); err != nil {
				return nil, fmt.Errorf("annotation %s: %w", k, err)
			}
		}
	}
	return names, nil
}

// Inject applies the edits of the named devices to s. A device that no spec declares
// is NotFound (with the spec files' own errors, which often say why); a declared
// device whose edits cannot be applied (its host node is gone) is FailedPrecondition.
func (r *Resolver) Inject(s *specs.Spec, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if r == nil {
		return errdefs.NotFound(fmt.Sprintf("CDI devices %s: no CDI spec directories are configured", strings.Join(names, ", ")))
	}
	specErrs := r.cache.Refresh()
	unresolved, err := r.cache.InjectDevices(s, names...)
	if len(unresolved) > 0 {
		msg := fmt.Sprintf("CDI devices %s are declared by no spec in %s", strings.Join(unresolved, ", "), strings.Join(r.dirs, ", "))
		if specErrs != nil {
			msg += fmt.Sprintf(" (spec errors: %v)", specErrs)
		}
		return errdefs.NotFound(msg)
	}
	if err != nil {
		return errdefs.FailedPrecondition(fmt.Sprintf("CDI devices %s: %v", strings.Join(names, ", "), err))
	}
	return nil
}
