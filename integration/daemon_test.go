package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestDaemonBasics(t *testing.T) {
	d := startDaemon(t, daemonOptions{})
	ctx := ctxTimeout(t, 30*time.Second)

	st, err := os.Stat(d.socket)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o660 {
		t.Errorf("socket mode %o, want 660", mode)
	}
	v, err := d.runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "berth" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	status, err := d.runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range status.Status.Conditions {
		if c.Type == runtimeapi.RuntimeReady && !c.Status {
			t.Errorf("RuntimeReady is false: %s", c.Message)
		}
	}
	if !strings.Contains(status.Info["config"], d.dir) {
		t.Errorf("verbose Status does not show the effective config: %v", status.Info)
	}
}

func TestSecondDaemonOnSameRootRefuses(t *testing.T) {
	d := startDaemon(t, daemonOptions{})
	out, err := exec.Command(berthdBinary, "--config", d.config, "--root", filepath.Join(d.dir, "root"),
		"--state", filepath.Join(d.dir, "state2"), "--listen", "unix://"+filepath.Join(d.dir, "b2.sock")).CombinedOutput()
	if err == nil {
		t.Fatalf("second berthd started:\n%s", out)
	}
	if !strings.Contains(string(out), "another berthd") {
		t.Errorf("unclear refusal: %s", out)
	}
}

func TestConfigCommands(t *testing.T) {
	out, err := exec.Command(berthdBinary, "config", "default").Output()
	if err != nil || !strings.Contains(string(out), `root = "/var/lib/berth"`) {
		t.Fatalf("config default: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "berth.toml")
	if err := os.WriteFile(cfg, []byte("no_such_key = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(berthdBinary, "--config", cfg, "config", "effective").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown keys: no_such_key") {
		t.Fatalf("a typo in the config must stop berthd: %v\n%s", err, out)
	}
}
