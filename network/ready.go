package network

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// defaultPlugins are the plugins berth's embedded default network chains together.
var defaultPlugins = []string{"bridge", "host-local", "portmap", "loopback"}

// Ready reports whether pods can be networked: a configuration in confDir, or the
// embedded default network, and the plugins it needs in binDirs. It returns the reason
// when they cannot.
func Ready(confDir string, binDirs []string) error {
	if hasConfig(confDir) {
		// A node's own network may use any plugin; CNI STATUS will say more once pods
		// are networked. Its presence is what NetworkReady has always meant.
		return nil
	}
	var missing []string
	for _, p := range defaultPlugins {
		if findPlugin(p, binDirs) == "" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no CNI configuration in %s and the default network's plugins %s are not in %s",
			confDir, strings.Join(missing, ", "), strings.Join(binDirs, ":"))
	}
	return nil
}

func hasConfig(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".conflist", ".conf", ".json":
			return true
		}
	}
	return false
}

func findPlugin(name string, dirs []string) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
