package runtimetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRuntime is a "real" runtime that prints its arguments.
func fakeRuntime(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake runc") // a space, to test the quoting
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho \"real $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFailingRuntime(t *testing.T) {
	tests := []struct {
		name, sub, mode string
		args            []string
		env             []string
		wantOut         string // stdout
		wantLog         bool   // an injected error in the --log file
		hangs           bool
	}{
		{name: "other subcommand passes", sub: "create", mode: ModeFail, args: []string{"--root=/r", "state", "x"}, wantOut: "real --root=/r state x"},
		{name: "fail", sub: "create", mode: ModeFail, args: []string{"--root=/r", "create", "x"}, wantLog: true},
		{name: "fail after", sub: "kill", mode: ModeFailAfter, args: []string{"kill", "x", "9"}, wantOut: "real kill x 9", wantLog: true},
		{name: "hang", sub: "start", mode: ModeHang, args: []string{"start", "x"}, hangs: true},
		{name: "hang after", sub: "start", mode: ModeHangAfter, args: []string{"start", "x"}, wantOut: "real start x", hangs: true},
		{name: "slow after", sub: "start", mode: ModeSlowAfter, args: []string{"start", "x"}, env: []string{"BERTH_SLOW_SECONDS=0.1"}, wantOut: "real start x"},
		{name: "env overrides subcommand", sub: "create", mode: ModeFail, args: []string{"delete", "x"}, env: []string{"BERTH_FAIL_ON=delete"}, wantLog: true},
		{name: "env overrides mode", sub: "delete", mode: ModeFail, args: []string{"delete", "x"}, env: []string{"BERTH_FAIL_MODE=fail-after"}, wantOut: "real delete x", wantLog: true},
		{name: "option values are not subcommands", sub: "json", mode: ModeFail, args: []string{"--log-format=json", "list"}, wantOut: "real --log-format=json list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := FailingRuntime(t, fakeRuntime(t), tt.sub, tt.mode)
			log := filepath.Join(t.TempDir(), "log.json")
			cmd := exec.Command(script, append([]string{"--log=" + log}, tt.args...)...)
			cmd.Env = append(os.Environ(), tt.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
				if tt.hangs {
					t.Fatalf("returned: %v", err)
				}
			case <-time.After(500 * time.Millisecond):
				if !tt.hangs {
					t.Fatal("hangs")
				}
				_ = cmd.Process.Kill()
				<-done
			}
			out := strings.TrimSpace(stdout.String())
			if want := strings.TrimSpace(strings.Replace(tt.wantOut, "real ", "real --log="+log+" ", 1)); out != want {
				t.Errorf("stdout %q, want %q", out, want)
			}
			data, _ := os.ReadFile(log)
			injected := strings.Contains(string(data), `"level":"error"`) && strings.Contains(string(data), InjectedMessage)
			if injected != tt.wantLog {
				t.Errorf("log %q", data)
			}
			if tt.wantLog && (err == nil || !strings.Contains(stderr.String(), InjectedMessage)) {
				t.Errorf("exit %v, stderr %q", err, stderr.String())
			}
		})
	}
}
