package infra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/runtime"
)

// Record names a pause process durably: what the pod record keeps.
type Record struct {
	PID int `json:"pid"`
	// StartTime is the process's start time in clock ticks since boot
	// (/proc/<pid>/stat field 22); with PID it names the process uniquely.
	StartTime uint64 `json:"startTime"`
}

// Process is a handle on a running (or exited, not yet stopped) pause. Its methods are
// safe for concurrent use.
type Process struct {
	Record

	mu    sync.RWMutex // Alive holds it shared, Close exclusively: no poll of a closed fd
	pidfd int          // -1 once closed
}

// OCIRuntime is what infra needs of an OCI runtime driver (sandbox/runtime.Runtime).
type OCIRuntime interface {
	Run(ctx context.Context, id string, o runtime.CreateOptions) (int, error)
	Delete(ctx context.Context, id string, force bool) error
	State(ctx context.Context, id string) (runtime.State, error)
}

// Start writes spec as bundleDir/config.json and runs it as container id. On failure the
// runtime has removed what it made (see sandbox/runtime); the bundle directory is the
// caller's.
func Start(ctx context.Context, rt OCIRuntime, id, bundleDir string, spec *specs.Spec) (*Process, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("infra: encode spec: %w", err)
	}
	if err := os.MkdirAll(bundleDir, 0o700); err != nil {
		return nil, fmt.Errorf("infra: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundleDir, "config.json"), data, 0o600); err != nil {
		return nil, fmt.Errorf("infra: %w", err)
	}
	pid, err := rt.Run(ctx, id, runtime.CreateOptions{Bundle: bundleDir})
	if err != nil {
		return nil, err
	}
	p, err := open(pid, 0)
	if err != nil {
		err = fmt.Errorf("infra: pause of %s (pid %d) is gone right after its start: %w", id, pid, err)
		if derr := rt.Delete(context.WithoutCancel(ctx), id, true); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return p, nil
}

// Reattach opens the recorded process again after a restart: it fails with
// errdefs.ErrNotFound when that process (pid and start time) no longer exists.
func Reattach(rec Record) (*Process, error) {
	return open(rec.PID, rec.StartTime)
}

// open takes a pidfd on pid and checks that its start time is wantStart (0: any; the
// start time is recorded then).
func open(pid int, wantStart uint64) (*Process, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, errdefs.NotFound(fmt.Sprintf("infra: process %d does not exist", pid))
	}
	if err != nil {
		return nil, fmt.Errorf("infra: pidfd_open %d: %w", pid, err)
	}
	p := &Process{Record: Record{PID: pid}, pidfd: fd}
	// Read the start time after the pidfd exists: if the pid was reused before, the
	// start time shows it; after, the pidfd pins the process we checked.
	start, zombie, err := statOf(pid)
	if err == nil && (wantStart != 0 && start != wantStart || zombie) {
		err = errdefs.NotFound(fmt.Sprintf("infra: process %d is not the recorded pause any more", pid))
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	p.StartTime = start
	return p, nil
}

// statOf reads the start time and whether the process is a zombie from /proc/<pid>/stat.
func statOf(pid int) (start uint64, zombie bool, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, errdefs.NotFound(fmt.Sprintf("infra: process %d does not exist", pid))
	}
	if err != nil {
		return 0, false, fmt.Errorf("infra: %w", err)
	}
	// The command name (field 2) may hold blanks and parentheses: fields count from the
	// last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("infra: malformed /proc/%d/stat", pid)
	}
	fields := bytes.Fields(data[i+1:]) // fields[0] is field 3 (state)
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("infra: malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("infra: /proc/%d/stat start time: %w", pid, err)
	}
	return start, string(fields[0]) == "Z", nil
}

// Alive reports whether the process still runs. It costs one poll(2).
func (p *Process) Alive() bool {
	if p == nil {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.pidfd < 0 {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n == 0 // readable: it exited
	}
}

// Close releases the pidfd.
func (p *Process) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		_ = unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// exitWait bounds how long Stop waits for a SIGKILLed pause to die.
const exitWait = 10 * time.Second

// Stop kills the pause of container id (p may be nil when it is not known to run), reaps
// it if it is berthd's child, and deletes the container. It is idempotent: an absent
// container and an exited process are not errors.
func Stop(ctx context.Context, rt OCIRuntime, id string, p *Process) error {
	if p != nil {
		if err := p.kill(ctx); err != nil {
			return fmt.Errorf("infra: pause of %s (pid %d): %w", id, p.PID, err)
		}
	}
	err := rt.Delete(ctx, id, false)
	if errors.Is(err, errdefs.ErrFailedPrecondition) {
		// Still running as far as the runtime can tell (a pause we could not signal).
		err = rt.Delete(ctx, id, true)
	}
	if err != nil {
		return err
	}
	p.Close()
	return nil
}

// kill sends SIGKILL, waits for the exit and reaps the process if it is berthd's child.
func (p *Process) kill(ctx context.Context) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.pidfd < 0 {
		return nil
	}
	// The pod's PID namespace, read while the pidfd shows pause alive (then the pid
	// names it), and never berthd's own: its orphans are reaped while pause dies.
	ns, nsOK := pidNamespaceOf(p.PID)
	if own, ok := pidNamespaceOf(os.Getpid()); !ok || own == ns || !p.running() {
		nsOK = false
	}
	if err := unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill: %w", err)
	}
	if err := p.waitExit(ctx, ns, nsOK); err != nil {
		return err
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(p.PID, &ws, unix.WNOHANG, nil) // ECHILD: not ours; init reaps it
	return nil
}

// running reports whether the process has not exited. p.mu must be held.
func (p *Process) running() bool {
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 0
}

// waitExit polls the pidfd until the process has exited. A PID namespace's init
// exits only once every other process of the namespace is reaped: with reap, the
// zombies of namespace ns that are berthd's children are reaped meanwhile. p.mu must
// be held.
func (p *Process) waitExit(ctx context.Context, ns pidNS, reap bool) error {
	deadline := time.Now().Add(exitWait)
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	for i := 0; ; i++ {
		n, err := unix.Poll(fds, 20)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return nil
		}
		if reap && i%10 == 5 { // after 100 ms, then every 200 ms
			reapOrphansIn(ns)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still running %v after SIGKILL: %w", exitWait, syscall.EBUSY)
		}
	}
}
