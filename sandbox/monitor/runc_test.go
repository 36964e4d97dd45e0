package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRunc(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		terminal bool
		kill     bool // runc kill KILL once started
		start    bool // Config.Start: the monitor runs it, no `runtime start`
		signal   bool // SIGKILL through the monitor's Signal once started
		want     Exit // FinishedAt ignored
		wantLog  []string
	}{
		{
			name:    "stdout and stderr",
			args:    []string{"sh", "-c", "echo a; echo b >&2"},
			want:    Exit{ExitCode: 0, Reason: ReasonCompleted},
			wantLog: []string{"stdout F a", "stderr F b"},
		},
		{
			name: "exit code",
			args: []string{"sh", "-c", "exit 3"},
			want: Exit{ExitCode: 3, Reason: ReasonError},
		},
		{
			name:   "killed through the monitor",
			args:   []string{"sleep", "1000"},
			start:  true,
			signal: true,
			want:   Exit{ExitCode: 137, Signal: 9, Reason: ReasonError},
		},
		{
			name:    "run at once",
			args:    []string{"sh", "-c", "echo a; echo b >&2; exit 4"},
			start:   true,
			want:    Exit{ExitCode: 4, Reason: ReasonError},
			wantLog: []string{"stdout F a", "stderr F b"},
		},
		{
			name: "killed",
			args: []string{"sleep", "1000"},
			kill: true,
			want: Exit{ExitCode: 137, Signal: 9, Reason: ReasonError},
		},
		{
			name:     "terminal",
			args:     []string{"sh", "-c", "echo hi; echo there >&2"},
			terminal: true,
			want:     Exit{ExitCode: 0, Reason: ReasonCompleted},
			wantLog:  []string{"stdout F hi", "stdout F there"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			spec := h.spec(newID(t), tt.args...)
			spec.Process.Terminal = tt.terminal
			cfg := h.config(spec)
			cfg.Terminal = tt.terminal
			cfg.Start = tt.start
			started := h.launch(cfg)
			if started.PID <= 0 || started.MonitorPID <= 0 {
				t.Fatalf("Started %+v", started)
			}
			if !tt.start {
				h.runtime("start", cfg.ID)
			}
			if tt.kill {
				h.runtime("kill", cfg.ID, "KILL")
			}
			if tt.signal {
				if err := Signal(context.Background(), cfg.Dir, unix.SIGKILL); err != nil {
					t.Fatalf("Signal: %v", err)
				}
			}
			got := h.wait(cfg, started.MonitorPID)
			if got.FinishedAt.IsZero() || time.Since(got.FinishedAt) > time.Minute {
				t.Errorf("FinishedAt %v", got.FinishedAt)
			}
			got.FinishedAt = time.Time{}
			if got != tt.want {
				t.Errorf("exit %+v, want %+v", got, tt.want)
			}
			lines := logLines(t, cfg.LogPath)
			// stdout and stderr are separate pipes: their relative order is not kept.
			if !sameSet(lines, tt.wantLog) {
				t.Errorf("log %q, want %q", lines, tt.wantLog)
			}
			recorded, err := ReadExit(cfg.Dir)
			if err != nil || !recorded.FinishedAt.After(time.Time{}) {
				t.Errorf("ReadExit: %+v, %v", recorded, err)
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, ctlName)); !os.IsNotExist(err) {
				t.Errorf("ctl.sock left: %v", err)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestCreateFails(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(h.spec(newID(t), "/no/such/program"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Launch(ctx, h.bin, cfg)
	var ce *CreateError
	if !errors.As(err, &ce) {
		t.Fatalf("Launch: %v, want a *CreateError", err)
	}
	if !strings.Contains(ce.Message, "/no/such/program") || !strings.HasPrefix(err.Error(), "create container "+cfg.ID+": ") {
		t.Errorf("error %q does not carry runc's message", err)
	}
	t.Log(err)
	if containers, cgroups := h.env.Leftovers(); len(containers)+len(cgroups) > 0 {
		t.Errorf("left behind: containers %q, cgroups %q", containers, cgroups)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, ctlName)); !os.IsNotExist(err) {
		t.Errorf("ctl.sock left: %v", err)
	}
	if _, err := Wait(ctx, cfg.Dir, 0); !errors.Is(err, ErrNoExit) {
		t.Errorf("Wait after a failed create: %v, want ErrNoExit", err)
	}
}

func TestReopen(t *testing.T) {
	h := newHarness(t)
	spec := h.spec(newID(t), "sh", "-c", "echo one; while [ ! -e /dev/go ]; do sleep 0.05; done; echo two")
	cfg := h.config(spec)
	started := h.launch(cfg)
	h.runtime("start", cfg.ID)
	eventually(t, "the first line", func() bool { return len(logLines(t, cfg.LogPath)) == 1 })
	rotated := cfg.LogPath + ".1"
	if err := os.Rename(cfg.LogPath, rotated); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Reopen(ctx, cfg.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/dev/go", started.PID), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if e := h.wait(cfg, started.MonitorPID); e.Reason != ReasonCompleted {
		t.Errorf("exit %+v", e)
	}
	if got := logLines(t, rotated); !slices.Equal(got, []string{"stdout F one"}) {
		t.Errorf("rotated log %q", got)
	}
	if got := logLines(t, cfg.LogPath); !slices.Equal(got, []string{"stdout F two"}) {
		t.Errorf("new log %q", got)
	}
	if err := Reopen(ctx, cfg.Dir); !errors.Is(err, errdefsFailedPrecondition) {
		t.Errorf("Reopen after the exit: %v", err)
	}
}

func TestWaitAfterMonitorExited(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(h.spec(newID(t), "sh", "-c", "exit 7"))
	started := h.launch(cfg)
	h.runtime("start", cfg.ID)
	// The monitor exits by itself once the exit is recorded; nobody waited.
	var ws unix.WaitStatus
	if _, err := unix.Wait4(started.MonitorPID, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("monitor: %v, status %v", err, ws)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := Wait(ctx, cfg.Dir, started.MonitorPID) // reaping an unknown child is fine
	if err != nil || e.ExitCode != 7 || e.Reason != ReasonError {
		t.Errorf("Wait: %+v, %v", e, err)
	}
}

func TestAttachStdin(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		terminal bool
		resize   *Size    // sent before the attach
		want     []string // in stdout, in this order
		wantLog  []string // nil: not checked
	}{
		{
			name:    "pipe",
			args:    []string{"cat"},
			want:    []string{"hello\nworld\n"},
			wantLog: []string{"stdout F hello", "stdout F world"},
		},
		{
			// The pty echoes the input; stty reads the size set by resize.
			name:     "terminal",
			args:     []string{"sh", "-c", "read x; stty size; echo got $x"},
			terminal: true,
			resize:   &Size{Width: 80, Height: 25},
			want:     []string{"hello", "25 80\r\n", "got hello\r\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			spec := h.spec(newID(t), tt.args...)
			spec.Process.Terminal = tt.terminal
			cfg := h.config(spec)
			cfg.Terminal, cfg.Stdin, cfg.StdinOnce = tt.terminal, true, true
			started := h.launch(cfg)
			h.runtime("start", cfg.ID)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if tt.resize != nil {
				if err := resize(ctx, cfg.Dir, *tt.resize); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			err := Attach(ctx, cfg.Dir, Streams{Stdin: strings.NewReader("hello\nworld\n"), Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatal(err)
			}
			out := stdout.String()
			for _, w := range tt.want {
				i := strings.Index(out, w)
				if i < 0 {
					t.Fatalf("stdout %q, want %q in it", stdout.String(), tt.want)
				}
				out = out[i+len(w):]
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr %q", stderr.String())
			}
			// StdinOnce ended the container's stdin (or the shell read its line), so
			// it exits.
			if e := h.wait(cfg, started.MonitorPID); e.Reason != ReasonCompleted {
				t.Errorf("exit %+v", e)
			}
			if got := logLines(t, cfg.LogPath); tt.wantLog != nil && !slices.Equal(got, tt.wantLog) {
				t.Errorf("log %q", got)
			}
			if err := Attach(ctx, cfg.Dir, Streams{Stdout: &stdout}); !errors.Is(err, errdefsFailedPrecondition) {
				t.Errorf("Attach after the exit: %v", err)
			}
		})
	}
}

// TestSurvivesLauncher launches from a process that exits at once: the container keeps
// running and logging, and its exit is still recorded and read.
func TestSurvivesLauncher(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(h.spec(newID(t), "sh", "-c", "while true; do echo tick; sleep 0.05; done"))
	cfgJSON, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), launchHelperEnv+"="+string(cfgJSON), launchHelperEnv+"_BIN="+h.bin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("launcher: %v: %s", err, out)
	}
	var started Started
	if err := json.Unmarshal(out, &started); err != nil {
		t.Fatalf("launcher said %q: %v", out, err)
	}
	t.Cleanup(func() { _ = exec.Command(h.env.Runtime, "--root="+h.env.Root, "kill", cfg.ID, "KILL").Run() })
	if sid, err := unix.Getsid(started.MonitorPID); err != nil || sid != started.MonitorPID {
		t.Errorf("monitor's session %d (%v), want its own", sid, err)
	}
	h.runtime("start", cfg.ID)
	eventually(t, "10 lines logged", func() bool { return len(logLines(t, cfg.LogPath)) >= 10 })
	h.runtime("kill", cfg.ID, "KILL")
	e := h.wait(cfg, started.MonitorPID) // not our child: nothing to reap
	if e.ExitCode != 137 {
		t.Errorf("exit %+v", e)
	}
	eventually(t, "the monitor to exit", func() bool { return unix.Kill(started.MonitorPID, 0) != nil })
}

func TestRuncOOMKilled(t *testing.T) {
	h := newHarness(t)
	spec := h.spec(newID(t), "sh", "-c", "x=$(yes | head -c 64000000); echo survived")
	limit := int64(8 << 20)
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	cfg := h.config(spec)
	cfg.OOMFile = oomFile(t, spec.Linux.CgroupsPath)
	started := h.launch(cfg)
	h.runtime("start", cfg.ID)
	e := h.wait(cfg, started.MonitorPID)
	if e.Reason != ReasonOOMKilled || e.ExitCode != 137 {
		t.Errorf("exit %+v, want OOMKilled 137", e)
	}
}

// oomFile is the container cgroup's file with the oom_kill count.
func oomFile(t *testing.T, cgroupsPath string) string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return filepath.Join("/sys/fs/cgroup", cgroupsPath, "memory.events")
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("no memory cgroup controller")
	}
	return filepath.Join("/sys/fs/cgroup/memory", cgroupsPath, "memory.oom_control")
}

// TestMemory logs what a monitor holding a sleeping container costs, alone and then
// with more monitors sharing its executable's pages ($BERTH_MONITOR_MEMORY_N in all,
// default 4).
func TestMemory(t *testing.T) {
	h := newHarness(t)
	n, err := strconv.Atoi(os.Getenv("BERTH_MONITOR_MEMORY_N"))
	if err != nil || n < 1 {
		n = 4
	}
	var pids []int
	for i := range n {
		cfg := h.config(h.spec(newID(t), "sleep", "1000"))
		started := h.launch(cfg)
		h.runtime("start", cfg.ID)
		pids = append(pids, started.MonitorPID)
		if i == 0 {
			time.Sleep(500 * time.Millisecond) // let it settle after the start-up
			t.Logf("one monitor: %s", memory(t, started.MonitorPID))
		}
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf("first of %d monitors: %s", n, memory(t, pids[0]))
	fi, _ := os.Stat(h.bin)
	t.Logf("binary %d bytes", fi.Size())
}

// memory describes a process's RSS, PSS and threads.
func memory(t *testing.T, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	kb := map[string]int{}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			kb[strings.TrimSuffix(f[0], ":")], _ = strconv.Atoi(f[1])
		}
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	threads := ""
	for line := range strings.Lines(string(status)) {
		if strings.HasPrefix(line, "Threads:") {
			threads = strings.TrimSpace(strings.TrimPrefix(line, "Threads:"))
		}
	}
	return fmt.Sprintf("RSS %d kB, PSS %d kB (anon %d kB, file %d kB), threads %s",
		kb["Rss"], kb["Pss"], kb["Pss_Anon"], kb["Pss_File"], threads)
}
