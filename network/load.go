package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// confExts are the file name extensions of CNI configurations, as every CRI runtime reads them.
var confExts = []string{".conflist", ".conf", ".json"}

// netConf is one loaded state of the configuration directory. It is never modified after
// load; a reload replaces it whole.
type netConf struct {
	list   *libcni.NetworkConfigList // nil when err is set
	source string                    // the file it came from, or "embedded default"
	// ownLoopback: the list has no loopback plugin, so berth brings lo up itself with
	// a one-plugin network of its own.
	ownLoopback bool
	err         error  // why there is no usable network; wraps ErrFailedPrecondition
	stamp       string // fingerprint of the directory when it was read
	// none: the directory holds no configuration and the default network is off, so
	// no plugin can have run for a pod that has nothing cached.
	none bool
}

// loopbackList is the network berth uses to bring lo up in pods whose network does not.
var loopbackList = mustConfList(`{"cniVersion": "1.0.0", "name": "berth-loopback", "plugins": [{"type": "loopback"}]}`)

func mustConfList(s string) *libcni.NetworkConfigList {
	l, err := libcni.NetworkConfFromBytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return l
}

// confFiles lists the configuration files of dir, sorted by name.
func confFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries { // ReadDir sorts by name
		if !e.IsDir() && slices.Contains(confExts, filepath.Ext(e.Name())) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// dirStamp fingerprints dir cheaply: its own mtime (files added, removed, renamed) and
// the mtime and size of every configuration file (edited in place, or a symlink
// repointed). Two equal stamps mean nothing a load would read has changed.
func dirStamp(dir string) string {
	var b strings.Builder
	st, err := os.Stat(dir)
	if err != nil {
		return "absent"
	}
	fmt.Fprintf(&b, "%d", st.ModTime().UnixNano())
	files, _ := confFiles(dir)
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "|%s:%d:%d", filepath.Base(f), st.ModTime().UnixNano(), st.Size())
		}
	}
	return b.String()
}

// loadConf reads dir: the first file that parses is the network; a directory without
// configuration files means the default network if def is enabled, else no network yet;
// a directory whose files all fail to parse means no network (an admin's broken config
// must not silently become the default).
func loadConf(dir string, def DefaultNetwork, stamp string) *netConf {
	c := &netConf{stamp: stamp}
	files, err := confFiles(dir)
	if err != nil {
		c.err = fmt.Errorf("read CNI configuration directory: %w: %w", errdefs.ErrFailedPrecondition, err)
		return c
	}
	if len(files) == 0 && !def.Enabled {
		c.err = fmt.Errorf("no CNI configuration in %s yet: pods wait for the cluster's network plugin to write one "+
			"(berth's embedded default network is off; network.default_network = true turns it on): %w",
			dir, errdefs.ErrFailedPrecondition)
		c.none = true
		return c
	}
	if len(files) == 0 {
		b, err := def.confList()
		if err == nil {
			c.list, err = libcni.NetworkConfFromBytes(b)
		}
		if err != nil {
			c.err = fmt.Errorf("default network: %w: %w", errdefs.ErrFailedPrecondition, err)
			return c
		}
		c.source = "embedded default"
		c.ownLoopback = !hasPlugin(c.list, "loopback")
		return c
	}
	var errs []error
	for _, f := range files {
		list, err := loadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.list, c.source, c.ownLoopback = list, f, !hasPlugin(list, "loopback")
		return c
	}
	c.err = fmt.Errorf("no valid CNI configuration in %s: %w: %w", dir, errdefs.ErrFailedPrecondition, errors.Join(errs...))
	return c
}

// loadFile parses one configuration file; a single-plugin .conf/.json becomes a list of one.
func loadFile(path string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(path) == ".conflist" {
		list, err := libcni.NetworkConfFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return list, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var plugin map[string]any
	if err := json.Unmarshal(b, &plugin); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, ok := plugin["plugins"]; ok { // a list under a .conf name: accept it as one
		list, err := libcni.NetworkConfFromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return list, nil
	}
	wrapped, err := json.Marshal(map[string]any{
		"cniVersion": plugin["cniVersion"],
		"name":       plugin["name"],
		"plugins":    []any{plugin},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	list, err := libcni.NetworkConfFromBytes(wrapped)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return list, nil
}

func hasPlugin(list *libcni.NetworkConfigList, typ string) bool {
	for _, p := range list.Plugins {
		if p.Network.Type == typ {
			return true
		}
	}
	return false
}

// pluginTypes lists the executables a network runs: its plugins and their IPAM plugins.
func pluginTypes(list *libcni.NetworkConfigList) []string {
	var types []string
	for _, p := range list.Plugins {
		for _, t := range []string{p.Network.Type, p.Network.IPAM.Type} {
			if t != "" && !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return types
}

// checkPlugins returns an error wrapping ErrFailedPrecondition naming every plugin of
// the lists that is not in binDirs.
func checkPlugins(binDirs []string, lists ...*libcni.NetworkConfigList) error {
	var missing []string
	for _, l := range lists {
		for _, t := range pluginTypes(l) {
			if _, err := invoke.FindInPath(t, binDirs); err != nil && !slices.Contains(missing, t) {
				missing = append(missing, t)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("CNI plugins %s not found in %s: %w",
			strings.Join(missing, ", "), strings.Join(binDirs, ":"), errdefs.ErrFailedPrecondition)
	}
	return nil
}
