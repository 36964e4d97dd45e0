package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReady(t *testing.T) {
	tests := []struct {
		name    string
		conf    []string // files in the conf dir
		plugins []string // executables in the bin dir
		wantErr string
	}{
		{name: "a conflist is enough", conf: []string{"10-net.conflist"}},
		{name: "default network with all plugins", plugins: defaultPlugins},
		{name: "default network missing portmap", plugins: []string{"bridge", "host-local", "loopback"}, wantErr: "portmap"},
		{name: "unrelated files are no config", conf: []string{"README"}, wantErr: "no CNI configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confDir, binDir := t.TempDir(), t.TempDir()
			for _, f := range tt.conf {
				touch(t, filepath.Join(confDir, f), 0o644)
			}
			for _, p := range tt.plugins {
				touch(t, filepath.Join(binDir, p), 0o755)
			}
			err := Ready(confDir, []string{filepath.Join(binDir, "absent"), binDir})
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func touch(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, nil, mode); err != nil {
		t.Fatal(err)
	}
}
