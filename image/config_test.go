package image

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// TestNewRefusesBadOptions: the defaults live in berthd's configuration, so New takes
// nothing as "use the default" and refuses what would make a useless service.
func TestNewRefusesBadOptions(t *testing.T) {
	good := func(t *testing.T) Config {
		return Config{Root: filepath.Join(t.TempDir(), "image"), MaxConcurrentDownloads: 1, StallTimeout: time.Second}
	}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no root", func(c *Config) { c.Root = "" }},
		{"no downloads", func(c *Config) { c.MaxConcurrentDownloads = 0 }},
		{"no stall timeout", func(c *Config) { c.StallTimeout = 0 }},
		{"negative layer cap", func(c *Config) { c.MaxLayerSize = -1 }},
		{"bad platform", func(c *Config) { c.Platform = "linux/" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good(t)
			tt.mod(&cfg)
			s, err := New(cfg, nil)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not InvalidArgument", err)
			}
		})
	}
}
