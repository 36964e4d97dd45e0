package network

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Manager attaches pods to the node's CNI network and detaches them. Its methods are safe
// for concurrent use; calls for different pods run their plugins in parallel.
type Manager struct {
	cfg Config
	log *slog.Logger
	cni *libcni.CNIConfig

	// mu guards conf, the configuration in use. It is held only to read or swap the
	// pointer (and to load the directory), never while a plugin runs.
	mu   sync.RWMutex
	conf *netConf

	// cidrMu guards podCIDR, kubelet's pod CIDR as ipRanges (SetPodCIDR).
	cidrMu  sync.RWMutex
	podCIDR [][]IPRange
}

// New returns a Manager for cfg. A missing or broken configuration is not an error here:
// Status reports it (NetworkReady false) until the directory is fixed.
func New(cfg Config, log *slog.Logger) (*Manager, error) {
	switch {
	case cfg.ConfDir == "":
		return nil, errdefs.InvalidArgument("network: no CNI configuration directory")
	case len(cfg.BinDirs) == 0:
		return nil, errdefs.InvalidArgument("network: no CNI plugin directories")
	case cfg.CacheDir == "":
		return nil, errdefs.InvalidArgument("network: no CNI cache directory")
	}
	if err := cfg.Default.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "network")
	// An explicit Exec: libcni would otherwise create one lazily, racing between callers.
	exec := &invoke.DefaultExec{
		RawExec:       &invoke.RawExec{Stderr: stderrLog{log}},
		PluginDecoder: version.PluginDecoder{},
	}
	m := &Manager{
		cfg: cfg,
		log: log,
		cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, exec),
	}
	m.loadPodCIDR()
	m.Reload()
	return m, nil
}

// Reload reads the configuration directory now. Calling it is optional: Setup, Status
// and a Teardown with nothing cached reload on their own whenever the directory's
// fingerprint (the mtime of the directory, and the mtime and size of each configuration
// file) changed. That check costs a few stats per call and needs no watcher goroutine,
// no inotify instance and no dependency, and it sees symlinked files being repointed,
// which inotify on the directory does not. Its one blind spot is a file rewritten in
// place with the same size within one timestamp granule; Reload covers that.
func (m *Manager) Reload() {
	c := loadConf(m.cfg.ConfDir, m.cfg.Default, dirStamp(m.cfg.ConfDir))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.swap(c)
}

// current returns the configuration in use, reloading it first when the directory
// changed (see Reload).
func (m *Manager) current() *netConf {
	stamp := dirStamp(m.cfg.ConfDir)
	m.mu.RLock()
	c := m.conf
	m.mu.RUnlock()
	if c.stamp == stamp {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conf.stamp != stamp { // not reloaded by another caller meanwhile
		m.swap(loadConf(m.cfg.ConfDir, m.cfg.Default, stamp))
	}
	return m.conf
}

// swap installs c and logs what changed. m.mu must be held.
func (m *Manager) swap(c *netConf) {
	old := m.conf
	m.conf = c
	switch {
	case c.err != nil && (old == nil || old.err == nil || old.err.Error() != c.err.Error()):
		m.log.Warn("no usable CNI network", "dir", m.cfg.ConfDir, "error", c.err)
	case c.err == nil && (old == nil || old.source != c.source || old.list.Name != c.list.Name):
		m.log.Info("CNI network loaded", "network", c.list.Name, "source", c.source, "cniVersion", c.list.CNIVersion)
	}
}

// usable returns the configuration in use and its lists, or why pods cannot be networked.
func (m *Manager) usable() (*netConf, []*libcni.NetworkConfigList, error) {
	c := m.current()
	if c.err != nil {
		return nil, nil, c.err
	}
	lists := []*libcni.NetworkConfigList{c.list}
	if c.ownLoopback {
		lists = append(lists, loopbackList)
	}
	if err := checkPlugins(m.cfg.BinDirs, lists...); err != nil {
		return nil, nil, fmt.Errorf("network %q: %w", c.list.Name, err)
	}
	return c, lists, nil
}

// Status reports whether pods can be networked (the CRI NetworkReady condition): a
// configuration is loaded, its plugins are installed, and, for configurations of CNI
// 1.1.0 or newer, every plugin answers STATUS with success.
func (m *Manager) Status(ctx context.Context) error {
	c, _, err := m.usable()
	if err != nil {
		return err
	}
	if err := m.cni.GetStatusNetworkList(ctx, c.list); err != nil {
		return fmt.Errorf("network %q: CNI STATUS: %w: %w", c.list.Name, errdefs.ErrFailedPrecondition, err)
	}
	return nil
}

// stderrLog passes what plugins print on stderr to the log, one record per plugin run.
type stderrLog struct{ log *slog.Logger }

func (w stderrLog) Write(p []byte) (int, error) {
	w.log.Debug("CNI plugin stderr", "output", strings.TrimSpace(string(p)))
	return len(p), nil
}
