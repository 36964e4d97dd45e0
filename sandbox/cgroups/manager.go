package cgroups

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Options configure a Manager. The zero value is the cgroupfs driver on the node's
// real cgroup root with its layout detected.
type Options struct {
	// Driver is kubelet's cgroup driver; "" means cgroupfs.
	Driver Driver
	// Root is where the hierarchies are mounted; "" means DefaultRoot.
	Root string
	// Mode forces the layout instead of detecting it from Root (tests use a fake
	// cgroupfs, whose filesystem type says nothing).
	Mode Mode
}

// Manager creates and finds pod cgroups on one node. It is safe for concurrent use.
type Manager struct {
	driver  Driver
	root    string
	mode    Mode
	backend backend
	hugetlb bool // the hugetlb controller is on the runtime's hierarchy
}

// backend is the cgroup-version specific part of a Manager.
type backend interface {
	// places lists the directories the cgroup at rel occupies, one per hierarchy.
	places(rel string) []place
	// check refuses resources this layout cannot apply, before anything is written.
	check(r *Resources) error
	// create makes the cgroup at rel where it is missing and applies r.
	create(rel string, r *Resources) error
	// update applies r to the existing cgroup at rel.
	update(rel string, r *Resources) error
	// sample reads usage and limits of the cgroup at rel.
	sample(rel string) (*Sample, error)
}

// place is one directory of a cgroup: name is the hierarchy ("memory", "unified" on
// v1; "" on v2), dir the absolute path.
type place struct {
	name string
	dir  string
}

// systemdRunDir exists when systemd is pid 1 (sd_booted(3)); tests point it elsewhere.
var systemdRunDir = "/run/systemd/system"

// NewManager checks that the node can serve opts.Driver and returns a Manager. The
// systemd driver needs a running systemd; without one it fails with
// errdefs.ErrFailedPrecondition so that berthd refuses to start with a clear message.
func NewManager(opts Options) (*Manager, error) {
	if opts.Driver == "" {
		opts.Driver = DriverCgroupfs
	}
	if _, err := ParseDriver(string(opts.Driver)); err != nil {
		return nil, err
	}
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if opts.Mode == ModeUnknown {
		mode, err := DetectMode(opts.Root)
		if err != nil {
			return nil, err
		}
		opts.Mode = mode
	}
	if opts.Driver == DriverSystemd {
		if _, err := os.Stat(systemdRunDir); err != nil {
			return nil, fmt.Errorf("cgroups: cgroup driver %q needs systemd as init, and %s is missing "+
				"(use the cgroupfs driver on this node): %w", DriverSystemd, systemdRunDir, errdefs.ErrFailedPrecondition)
		}
	}
	m := &Manager{driver: opts.Driver, root: opts.Root, mode: opts.Mode, hugetlb: probeHugetlb(opts.Root, opts.Mode)}
	switch opts.Mode {
	case ModeUnified:
		m.backend = &v2Backend{root: opts.Root}
	case ModeLegacy, ModeHybrid:
		b, err := newV1Backend(opts.Root, opts.Mode == ModeHybrid)
		if err != nil {
			return nil, err
		}
		m.backend = b
	default:
		return nil, fmt.Errorf("cgroups: unknown mode %d: %w", opts.Mode, errdefs.ErrInvalidArgument)
	}
	return m, nil
}

// Mode returns the node's cgroup layout.
func (m *Manager) Mode() Mode { return m.mode }

// Driver returns the cgroup driver.
func (m *Manager) Driver() Driver { return m.driver }

// PodState is what must be stored with a pod to find its cgroup again after a berthd
// restart (Manager.Open).
type PodState struct {
	// Parent is kubelet's cgroup_parent.
	Parent string `json:"parent"`
	// Created lists the hierarchies in which berth created the pod cgroup ("" on v2);
	// only those are removed.
	Created []string `json:"created,omitempty"`
}

// PodCgroup is one pod's cgroup. Its methods are safe for concurrent use.
type PodCgroup struct {
	m    *Manager
	path string // relative to the hierarchy root

	mu      sync.Mutex
	parent  string
	created []string
}

// Create makes the cgroup of a pod whose cgroup_parent is parent, unless kubelet
// already made it, and applies r (nil applies nothing). With the systemd driver
// nothing is created: the pod slice is kubelet's and runc asks systemd for the
// container scopes. Invalid input fails with errdefs.ErrInvalidArgument; on any
// failure, what Create made is removed again.
func (m *Manager) Create(parent string, r *Resources) (*PodCgroup, error) {
	if parent == "" {
		return nil, invalid("cgroup parent is empty: berth creates no pod cgroup without one")
	}
	p, err := m.Open(PodState{Parent: parent})
	if err != nil {
		return nil, err
	}
	if m.driver == DriverSystemd {
		return p, nil
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := m.backend.check(r); err != nil {
		return nil, err
	}
	var created []string
	for _, pl := range m.backend.places(p.path) {
		if _, err := os.Stat(pl.dir); errors.Is(err, os.ErrNotExist) {
			created = append(created, pl.name)
		} else if err != nil {
			return nil, fmt.Errorf("cgroups: pod cgroup %s: %w", pl.dir, err)
		}
	}
	p.created = created
	if err := m.backend.create(p.path, orEmpty(r)); err != nil {
		if rmErr := p.removeCreated(); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", rmErr))
		}
		return nil, fmt.Errorf("cgroups: create pod cgroup %s: %w", p.path, err)
	}
	return p, nil
}

// Open returns the pod cgroup described by state (from PodCgroup.State) without
// touching the filesystem.
func (m *Manager) Open(state PodState) (*PodCgroup, error) {
	path, err := PodPath(m.driver, state.Parent)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, invalid("cgroup parent is empty")
	}
	return &PodCgroup{m: m, path: path, parent: state.Parent, created: slices.Clone(state.Created)}, nil
}

// State returns what to persist to Open this pod cgroup again.
func (p *PodCgroup) State() PodState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PodState{Parent: p.parent, Created: slices.Clone(p.created)}
}

// Path is the pod cgroup's path relative to the hierarchy root.
func (p *PodCgroup) Path() string { return p.path }

// Update applies r to the pod cgroup (UpdatePodSandboxResources). It fails with
// errdefs.ErrNotFound when the cgroup is gone, and with errdefs.ErrUnimplemented under
// the systemd driver, where kubelet owns the pod slice.
func (p *PodCgroup) Update(r *Resources) error {
	if p.m.driver == DriverSystemd {
		return fmt.Errorf("cgroups: pod resources under the systemd driver are kubelet's: %w", errdefs.ErrUnimplemented)
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if err := p.m.backend.check(r); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exists() {
		return errdefs.NotFound(fmt.Sprintf("cgroups: pod cgroup %s does not exist", p.path))
	}
	if err := p.m.backend.update(p.path, orEmpty(r)); err != nil {
		return fmt.Errorf("cgroups: update pod cgroup %s: %w", p.path, err)
	}
	return nil
}

// Remove deletes the pod cgroup in every hierarchy where berth created it, once no
// process is left in it or below it; it kills nothing. If a process remains, nothing
// is removed and the error wraps errdefs.ErrFailedPrecondition. Removing again, or a
// cgroup berth did not create, is a no-op.
func (p *PodCgroup) Remove() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.removeCreated()
}

// exists reports whether the pod cgroup is present in any hierarchy.
func (p *PodCgroup) exists() bool {
	for _, pl := range p.m.backend.places(p.path) {
		if _, err := os.Stat(pl.dir); err == nil {
			return true
		}
	}
	return false
}

func (p *PodCgroup) removeCreated() error {
	var dirs []string
	for _, pl := range p.m.backend.places(p.path) {
		if slices.Contains(p.created, pl.name) {
			dirs = append(dirs, pl.dir)
		}
	}
	return removeCgroups(dirs)
}

func orEmpty(r *Resources) *Resources {
	if r == nil {
		return &Resources{}
	}
	return r
}
