package monitor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/runtime/runtimetest"
)

// TestWaitWithoutMonitor: Wait and the other calls when no monitor answers.
func TestWaitWithoutMonitor(t *testing.T) {
	recorded := Exit{ExitCode: 2, Reason: ReasonError, FinishedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	tests := []struct {
		name      string
		exit      bool // exit.json present
		staleSock bool // a ctl.sock nobody listens on (monitor killed)
		wantErr   error
	}{
		{name: "exit recorded", exit: true},
		{name: "exit recorded, stale socket", exit: true, staleSock: true},
		{name: "nothing", wantErr: ErrNoExit},
		{name: "stale socket only", staleSock: true, wantErr: ErrNoExit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Longer than a socket path may be, as the real directories are.
			dir := filepath.Join(t.TempDir(), strings.Repeat("x", 120))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.exit {
				if err := writeExit(dir, recorded); err != nil {
					t.Fatal(err)
				}
			}
			if tt.staleSock {
				staleSocket(t, dir)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := Wait(ctx, dir, 0)
			if !errors.Is(err, tt.wantErr) || (err == nil && !got.FinishedAt.Equal(recorded.FinishedAt)) {
				t.Errorf("Wait: %+v, %v; want %v", got, err, tt.wantErr)
			}
			if err := Reopen(ctx, dir); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("Reopen: %v", err)
			}
			if err := Attach(ctx, dir, Streams{Stdout: os.Stdout}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("Attach: %v", err)
			}
		})
	}
}

// staleSocket leaves <dir>/ctl.sock as a killed monitor does.
func staleSocket(t *testing.T, dir string) {
	t.Helper()
	t.Chdir(dir) // the path is too long to bind directly
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: ctlName, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
}

func TestLaunchInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no id", cfg: Config{Runtime: "/r", Bundle: "/b", Dir: "/d"}},
		{name: "id with slash", cfg: Config{ID: "a/b", Runtime: "/r", Bundle: "/b", Dir: "/d"}},
		{name: "relative runtime", cfg: Config{ID: "a", Runtime: "runc", Bundle: "/b", Dir: "/d"}},
		{name: "relative log", cfg: Config{ID: "a", Runtime: "/r", Bundle: "/b", Dir: "/d", LogPath: "x.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Launch(context.Background(), "/bin/false", tt.cfg); !errdefs.IsInvalidArgument(err) {
				t.Errorf("Launch: %v, want invalid argument", err)
			}
		})
	}
}

// TestLaunchCanceled: a create that hangs is ended with ctx, the monitor's whole process
// group killed and reaped.
func TestLaunchCanceled(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(h.spec(newID(t), "true"))
	cfg.Runtime = runtimetest.FailingRuntime(t, h.env.Runtime, "create", runtimetest.ModeHang)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := Launch(ctx, h.bin, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Launch: %v, want the deadline", err)
	}
	// The hanging "create" (sleep) was in the monitor's process group: nothing runs
	// with the runtime's arguments any more.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), cfg.Dir) {
			t.Errorf("%s still runs: %q", p, data)
		}
	}
}

func TestWaitCanceled(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(h.spec(newID(t), "sleep", "1000"))
	started := h.launch(cfg)
	h.runtime("start", cfg.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Wait(ctx, cfg.Dir, started.MonitorPID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait: %v, want the deadline", err)
	}
}

// TestMonitorKilled: a monitor killed before the container exited leaves no exit, and
// Wait says so instead of waiting for ever.
func TestMonitorKilled(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(h.spec(newID(t), "sleep", "1000"))
	started := h.launch(cfg)
	h.runtime("start", cfg.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waited := make(chan error, 1)
	go func() {
		_, err := Wait(ctx, cfg.Dir, 0)
		waited <- err
	}()
	time.Sleep(100 * time.Millisecond) // let Wait connect
	if err := syscall.Kill(started.MonitorPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; !errors.Is(err, ErrNoExit) {
		t.Errorf("Wait: %v, want ErrNoExit", err)
	}
	if _, err := Wait(ctx, cfg.Dir, started.MonitorPID); !errors.Is(err, ErrNoExit) {
		t.Errorf("Wait again: %v, want ErrNoExit", err)
	}
}
