package network

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

const testConflist = `{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "ptp", "ipam": {"type": "static"}}, {"type": "loopback"}]}`

// TestStatusOfConfigDirectory checks which configuration Status settles on and which
// plugins it then requires, without running any plugin (no config here is CNI >= 1.1).
func TestStatusOfConfigDirectory(t *testing.T) {
	defaultPlugins := []string{"bridge", "host-local", "portmap", "bandwidth", "loopback"}
	tests := []struct {
		name    string
		conf    map[string]string // files in the conf dir
		plugins []string          // executables in the bin dir
		wantErr string
	}{
		{name: "conflist with its plugins", conf: map[string]string{"10-net.conflist": testConflist}, plugins: []string{"ptp", "static", "loopback"}},
		{name: "conflist missing its IPAM plugin", conf: map[string]string{"10-net.conflist": testConflist}, plugins: []string{"ptp", "loopback"}, wantErr: "static"},
		{name: "single .conf needs berth's loopback", conf: map[string]string{"10-net.conf": `{"cniVersion": "1.0.0", "name": "n", "type": "ptp"}`}, plugins: []string{"ptp"}, wantErr: "loopback"},
		{name: "broken config is not replaced by the default", conf: map[string]string{"10-net.conflist": "{"}, plugins: defaultPlugins, wantErr: "no valid CNI configuration"},
		{name: "first valid file wins", conf: map[string]string{"05-broken.conf": "{", "10-net.conflist": testConflist}, plugins: []string{"ptp", "static", "loopback"}},
		{name: "default network with all plugins", plugins: defaultPlugins},
		{name: "default network missing portmap", plugins: []string{"bridge", "host-local", "bandwidth", "loopback"}, wantErr: "portmap"},
		{name: "unrelated files are no config", conf: map[string]string{"README": "x"}, plugins: defaultPlugins},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confDir, binDir := t.TempDir(), t.TempDir()
			for f, content := range tt.conf {
				writeFile(t, filepath.Join(confDir, f), content, 0o644)
			}
			for _, p := range tt.plugins {
				writeFile(t, filepath.Join(binDir, p), "", 0o755)
			}
			m, err := New(Config{ConfDir: confDir, BinDirs: []string{filepath.Join(binDir, "absent"), binDir}, CacheDir: t.TempDir(),
				Default: DefaultNetwork{Enabled: true}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Status(testCtx(t))
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("err = %v, want it to wrap ErrFailedPrecondition", err)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
