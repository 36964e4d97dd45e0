package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// monitorName is the container monitor's executable (cmd/berth-monitor).
const monitorName = "berth-monitor"

// findMonitor resolves monitor_path: the configured path, else berth-monitor next to
// the berthd executable (where `go build -o bin/` and the install put both), else $PATH.
func findMonitor(configured string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("monitor_path %q: %w", configured, err)
		}
		return filepath.Abs(p)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), monitorName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(monitorName)
	if err != nil {
		return "", fmt.Errorf("%s is neither next to berthd nor in $PATH (set monitor_path): %w", monitorName, err)
	}
	return filepath.Abs(p)
}
