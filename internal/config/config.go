// Package config loads berthd's configuration: the embedded defaults (default.toml, also
// what `berthd config default` prints), then /etc/berth/berth.toml, then the drop-ins in
// /etc/berth/berth.d/*.toml in name order. Later files override earlier ones key by key;
// an unknown key is an error, so a typo never goes unnoticed.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Default is the commented default configuration, embedded in berthd.
//
//go:embed default.toml
var Default string

// Config is berthd's whole configuration.
type Config struct {
	Root           string             `toml:"root"`
	State          string             `toml:"state"`
	Listen         string             `toml:"listen"`
	LogLevel       string             `toml:"log_level"`
	CgroupDriver   string             `toml:"cgroup_driver"`
	DefaultRuntime string             `toml:"default_runtime"`
	MonitorPath    string             `toml:"monitor_path"`
	Runtimes       map[string]Runtime `toml:"runtimes"`
	Image          Image              `toml:"image"`
	Network        Network            `toml:"network"`
	Pod            Pod                `toml:"pod"`
	Streaming      Streaming          `toml:"streaming"`
	NRI            NRI                `toml:"nri"`
	CDI            CDI                `toml:"cdi"`
}

// NRI configures the Node Resource Interface (sandbox/nri).
type NRI struct {
	// Enable serves NRI: plugins are called at every pod and container event.
	Enable bool `toml:"enable"`
	// SocketPath is where external plugins connect; "" accepts none.
	SocketPath string `toml:"socket_path"`
	// PluginPath holds plugins berthd launches itself; PluginConfigPath their drop-in
	// configuration.
	PluginPath       string `toml:"plugin_path"`
	PluginConfigPath string `toml:"plugin_config_path"`
	// PluginRegistrationTimeout bounds a plugin's registration; PluginRequestTimeout
	// each request to one plugin. A plugin past it is dropped and the event goes on.
	PluginRegistrationTimeout Duration `toml:"plugin_registration_timeout"`
	PluginRequestTimeout      Duration `toml:"plugin_request_timeout"`
}

// CDI configures Container Device Interface devices.
type CDI struct {
	// SpecDirs are the directories of CDI specs, in rising priority.
	SpecDirs []string `toml:"spec_dirs"`
}

// Pod configures pod sandboxes.
type Pod struct {
	// ShmSize is the size in bytes of each pod's /dev/shm tmpfs.
	ShmSize int64 `toml:"shm_size"`
	// CreateTimeout bounds one RunPodSandbox, which goes on past kubelet's deadline.
	CreateTimeout Duration `toml:"create_timeout"`
	// RestrictOOMScoreAdj is "auto", "always" or "never" (see default.toml).
	RestrictOOMScoreAdj string `toml:"restrict_oom_score_adj"`
	// DiskUsageInterval is how often the containers' writable layers are measured for
	// the stats kubelet reads.
	DiskUsageInterval Duration `toml:"disk_usage_interval"`
}

// Runtime is one OCI runtime handler.
type Runtime struct {
	Path string `toml:"path"`
}

// Network configures CNI.
type Network struct {
	ConfDir string   `toml:"conf_dir"`
	BinDirs []string `toml:"bin_dirs"`
	// DefaultNetwork lets berth's embedded network serve while ConfDir is empty.
	DefaultNetwork bool `toml:"default_network"`
}

// Streaming configures the exec/attach/port-forward server.
type Streaming struct {
	Address string `toml:"address"`
}

// Defaults returns the embedded default configuration.
func Defaults() Config {
	var c Config
	if _, err := toml.Decode(Default, &c); err != nil {
		panic("config: embedded default.toml is invalid: " + err.Error())
	}
	return c
}

// Load returns the defaults overridden by the file at path (if it exists) and by the
// drop-ins in dropinDir (if it exists). Missing files are not an error: a node may have
// none. It returns the files that were read, in order.
func Load(path, dropinDir string) (Config, []string, error) {
	c := Defaults()
	var files []string
	if path != "" {
		ok, err := decodeFile(path, &c)
		if err != nil {
			return Config{}, nil, err
		}
		if ok {
			files = append(files, path)
		}
	}
	if dropinDir != "" {
		dropins, err := listDropins(dropinDir)
		if err != nil {
			return Config{}, nil, err
		}
		for _, f := range dropins {
			if _, err := decodeFile(f, &c); err != nil {
				return Config{}, nil, err
			}
			files = append(files, f)
		}
	}
	return c, files, c.Validate()
}

func decodeFile(path string, c *Config) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return false, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return false, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return true, nil
}

func listDropins(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".toml") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// Validate checks the settings that berthd cannot start without.
func (c Config) Validate() error {
	var errs []error
	if !filepath.IsAbs(c.Root) {
		errs = append(errs, fmt.Errorf("root %q must be an absolute path", c.Root))
	}
	if !filepath.IsAbs(c.State) {
		errs = append(errs, fmt.Errorf("state %q must be an absolute path", c.State))
	}
	if _, err := ListenPath(c.Listen); err != nil {
		errs = append(errs, err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.CgroupDriver {
	case "cgroupfs", "systemd":
	default:
		errs = append(errs, fmt.Errorf("cgroup_driver %q: want cgroupfs or systemd", c.CgroupDriver))
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		errs = append(errs, fmt.Errorf("default_runtime %q is not in [runtimes]", c.DefaultRuntime))
	}
	for name, rt := range c.Runtimes {
		if rt.Path == "" {
			errs = append(errs, fmt.Errorf("runtimes.%s: path is empty", name))
		}
	}
	if c.Image.MaxConcurrentDownloads < 1 {
		errs = append(errs, fmt.Errorf("image.max_concurrent_downloads must be at least 1"))
	}
	if c.Image.StallTimeout.Duration <= 0 {
		errs = append(errs, fmt.Errorf("image.stall_timeout must be positive"))
	}
	if c.Pod.ShmSize < 1<<20 {
		errs = append(errs, fmt.Errorf("pod.shm_size must be at least 1 MiB"))
	}
	if c.Pod.CreateTimeout.Duration < time.Second {
		errs = append(errs, fmt.Errorf("pod.create_timeout must be at least 1s"))
	}
	if d := c.Pod.DiskUsageInterval.Duration; d < time.Second || d > 5*time.Minute {
		errs = append(errs, fmt.Errorf("pod.disk_usage_interval %v: want 1s to 5m", d))
	}
	switch c.Pod.RestrictOOMScoreAdj {
	case "auto", "always", "never":
	default:
		errs = append(errs, fmt.Errorf("pod.restrict_oom_score_adj %q: want auto, always or never", c.Pod.RestrictOOMScoreAdj))
	}
	errs = append(errs, c.NRI.validate()...)
	for _, d := range c.CDI.SpecDirs {
		if !filepath.IsAbs(d) {
			errs = append(errs, fmt.Errorf("cdi.spec_dirs: %q must be an absolute path", d))
		}
	}
	if c.Image.MaxLayerSize < 0 {
		errs = append(errs, fmt.Errorf("image.max_layer_size must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// maxNRITimeout caps the NRI timeouts: a plugin must never hold a pod up for long.
const maxNRITimeout = 5 * time.Minute

func (n NRI) validate() []error {
	if !n.Enable {
		return nil
	}
	var errs []error
	for _, p := range []struct{ key, path string }{
		{"socket_path", n.SocketPath}, {"plugin_path", n.PluginPath}, {"plugin_config_path", n.PluginConfigPath},
	} {
		if p.path != "" && !filepath.IsAbs(p.path) {
			errs = append(errs, fmt.Errorf("nri.%s %q must be an absolute path (or empty)", p.key, p.path))
		}
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"plugin_registration_timeout", n.PluginRegistrationTimeout.Duration}, {"plugin_request_timeout", n.PluginRequestTimeout.Duration}} {
		if t.d < 10*time.Millisecond || t.d > maxNRITimeout {
			errs = append(errs, fmt.Errorf("nri.%s %s: want 10ms to %s", t.key, t.d, maxNRITimeout))
		}
	}
	return errs
}

// ListenPath returns the socket path of a unix:// listen address.
func ListenPath(listen string) (string, error) {
	path, ok := strings.CutPrefix(listen, "unix://")
	if !ok || !filepath.IsAbs(path) {
		return "", fmt.Errorf("listen %q: want unix:///absolute/path", listen)
	}
	return path, nil
}

// redactedValue replaces a secret in what berthd shows of its configuration.
const redactedValue = "REDACTED"

// Redacted returns a copy of the configuration without its secrets: every registry
// host's password, auth string and identity token (set ones become "REDACTED", so an
// operator still sees that they are set). What berthd shows others goes through it.
func (c Config) Redacted() Config {
	hosts := c.Image.Registry.Hosts
	if hosts == nil {
		return c
	}
	c.Image.Registry.Hosts = make(map[string]Host, len(hosts))
	hide := func(s *string) {
		if *s != "" {
			*s = redactedValue
		}
	}
	for name, h := range hosts {
		hide(&h.Password)
		hide(&h.Auth)
		hide(&h.IdentityToken)
		c.Image.Registry.Hosts[name] = h
	}
	return c
}

// Keyed returns the configuration, redacted, as nested maps keyed by the TOML names, so
// that what berthd reports (verbose Status, which any CRI client may read) reads like
// the file an operator writes and holds no secret.
func (c Config) Keyed() (map[string]any, error) {
	var buf strings.Builder
	if err := toml.NewEncoder(&buf).Encode(c.Redacted()); err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return nil, err
	}
	return m, nil
}
