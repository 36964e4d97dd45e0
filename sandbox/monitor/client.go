package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// reapTimeout bounds Wait's reaping of the monitor, which exits right after answering.
const reapTimeout = 2 * time.Second

// Launch writes cfg to <Dir>/monitor.json and starts `binary <Dir>` in a session of its
// own, with GOMAXPROCS=1 (the monitor's memory stays small), its stdio appended to
// <Dir>/monitor.log and a sync pipe as fd 3, and waits for its report.
//
// When create fails the monitor has exited (Launch reaps it) and the error is a
// *CreateError. When ctx ends first, Launch kills the monitor's process group (the
// runtime is in it), reaps it and returns ctx's error; the caller then deletes the
// container with the runtime and removes Dir. On success the monitor is this process's
// child: pass MonitorPID to Wait, which reaps it.
func Launch(ctx context.Context, binary string, cfg Config) (Started, error) {
	p, err := spawn(binary, cfg)
	if err != nil {
		return Started{}, err
	}
	r, err := p.wait(ctx)
	if err != nil {
		return Started{}, err
	}
	return Started{MonitorPID: p.PID, PID: r.PID}, nil
}

// Pending is a monitor started but whose first report has not been read yet.
type Pending struct {
	PID     int // the monitor's
	id      string
	diag    string
	cmd     *exec.Cmd
	reports chan report
	once    sync.Once
	got     report
	err     error
}

// spawn writes cfg and starts its monitor; the report is read in the background.
func spawn(binary string, cfg Config) (*Pending, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, configName), data, 0o600); err != nil {
		return nil, fmt.Errorf("monitor %s: %w", cfg.ID, err)
	}
	diagPath := filepath.Join(cfg.Dir, diagName)
	diag, err := os.OpenFile(diagPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("monitor %s: %w", cfg.ID, err)
	}
	defer diag.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, cfg.Dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = diag, diag, diag
	cmd.ExtraFiles = []*os.File{syncW}
	cmd.Env = []string{"GOMAXPROCS=1", "PATH=" + envPath()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = syncW.Close()
	if err != nil {
		_ = syncR.Close()
		return nil, fmt.Errorf("start monitor %s: %w", cfg.ID, err)
	}
	p := &Pending{PID: cmd.Process.Pid, id: cfg.ID, diag: diagPath, cmd: cmd, reports: make(chan report, 1)}
	go func() {
		defer syncR.Close()
		var r report
		line, err := bufio.NewReader(syncR).ReadBytes('\n')
		if err == nil && json.Unmarshal(line, &r) != nil {
			r = report{Error: "bad report from the monitor: " + strings.TrimSpace(string(line))}
		}
		p.reports <- r
	}()
	return p, nil
}

// wait reads the monitor's report once. A failure (the monitor exits after reporting
// it, or without a report) is a *CreateError, the monitor reaped; the end of ctx kills
// the monitor's process group (a runtime it runs is in it) and reaps it.
func (p *Pending) wait(ctx context.Context) (report, error) {
	select {
	case <-ctx.Done():
		Kill(p.PID)
		return report{}, ctx.Err()
	case r := <-p.reports:
		if (r.PID > 0 || r.Ready) && r.Error == "" {
			// Wait reaps it with wait4; Release only frees the pidfd os/exec holds.
			_ = p.cmd.Process.Release()
			return r, nil
		}
		werr := p.cmd.Wait()
		if r.Error == "" {
			r.Error = fmt.Sprintf("monitor exited without a report (%v): %s", werr, tail(p.diag, 1024))
		}
		return report{}, &CreateError{ID: p.id, Message: r.Error}
	}
}

// Ready waits until a monitor started by Spawn has set up (then it waits for Start) or
// failed (a *CreateError; the monitor is reaped). Later calls return the first answer.
func (p *Pending) Ready(ctx context.Context) error {
	p.once.Do(func() { p.got, p.err = p.wait(ctx) })
	return p.err
}

// envPath is the monitor's PATH: berthd's, for the runtime's own helpers and hooks.
func envPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// tail is the end of a file, at most n bytes, trimmed.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return strings.TrimSpace(string(data))
}

// Wait blocks until the container has exited and returns its Exit: the monitor's
// answer on the control socket, or exit.json when the monitor is already gone. Neither:
// an error matching ErrNoExit. When monitorPID > 0 and is this process's child, Wait
// reaps it. ctx ends the wait.
func Wait(ctx context.Context, dir string, monitorPID int) (Exit, error) {
	e, err := waitExit(ctx, dir)
	if monitorPID > 0 && (err == nil || errors.Is(err, ErrNoExit)) {
		reap(monitorPID)
	}
	return e, err
}

func waitExit(ctx context.Context, dir string) (Exit, error) {
	c, err := dial(ctx, dir)
	if err != nil {
		if ctx.Err() != nil {
			return Exit{}, ctx.Err()
		}
		return exitFromFile(dir)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := roundTrip(c, request{Op: "wait"})
	if ctx.Err() != nil {
		return Exit{}, ctx.Err()
	}
	if err != nil {
		// The monitor went away without answering: it exited after recording the exit
		// (read it), or it died.
		return exitFromFile(dir)
	}
	var e Exit
	if err := json.Unmarshal(line, &e); err != nil {
		return Exit{}, fmt.Errorf("monitor in %s: bad answer %q: %w", dir, line, err)
	}
	return e, nil
}

func exitFromFile(dir string) (Exit, error) {
	e, err := ReadExit(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Exit{}, fmt.Errorf("container of %s: %w", dir, ErrNoExit)
	}
	return e, err
}

// reap collects the exited monitor, which exits right after answering Wait. ECHILD (not
// our child: a monitor of an earlier berthd) ends it at once.
func reap(pid int) {
	deadline := time.Now().Add(reapTimeout)
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || (err != nil && err != unix.EINTR) || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Reopen asks the monitor to close and reopen the CRI log file (kubelet rotated it).
// When the monitor is gone: an error wrapping errdefs.ErrFailedPrecondition.
func Reopen(ctx context.Context, dir string) error {
	return call(ctx, dir, request{Op: "reopen"})
}

// Signal has the monitor send sig to the container's init through a pidfd it opened
// while the init was its unreaped child: no runtime exec, and no chance of signalling a
// reused pid. After the init's exit: an error (ESRCH). When the monitor is gone: an
// error wrapping errdefs.ErrFailedPrecondition.
func Signal(ctx context.Context, dir string, sig syscall.Signal) error {
	return call(ctx, dir, request{Op: "signal", Signal: int(sig)})
}

// resize sets the container's terminal size.
func resize(ctx context.Context, dir string, s Size) error {
	return call(ctx, dir, request{Op: "resize", Width: s.Width, Height: s.Height})
}

// call makes one request answered with {} or {"error":...}.
func call(ctx context.Context, dir string, req request) error {
	line, err := request1(ctx, dir, req)
	if err != nil {
		return err
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("monitor: bad answer %q: %w", line, err)
	}
	if r.Error != "" {
		return fmt.Errorf("monitor %s: %s", req.Op, r.Error)
	}
	return nil
}

// request1 makes one request and returns its answer line. A monitor that is gone, or
// goes without answering: an error matching errMonitorGone and
// errdefs.ErrFailedPrecondition.
func request1(ctx context.Context, dir string, req request) ([]byte, error) {
	c, err := dial(ctx, dir)
	if err != nil {
		return nil, notRunning(err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := roundTrip(c, req)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, notRunning(err)
	}
	return line, nil
}

// errMonitorGone: the monitor's socket is gone, or it closed without an answer.
var errMonitorGone = errors.New("monitor gone")

func notRunning(cause error) error {
	return fmt.Errorf("container is not running (%v): %w: %w", cause, errMonitorGone, errdefs.ErrFailedPrecondition)
}

// Kill ends a monitor at once (SIGKILL to its process group: a runtime it is running
// goes too) and reaps it when it is this process's child. For a start cut short; the
// caller then removes what the runtime may have left.
func Kill(monitorPID int) {
	if monitorPID <= 0 {
		return
	}
	_ = syscall.Kill(-monitorPID, syscall.SIGKILL)
	reap(monitorPID)
}

// dial connects to <dir>/ctl.sock by a path short enough for any dir.
func dial(ctx context.Context, dir string) (*net.UnixConn, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(fd)+"/"+ctlName)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// roundTrip sends a request line and reads one answer line.
func roundTrip(c *net.UnixConn, req request) ([]byte, error) {
	if _, err := c.Write(append(mustJSON(req), '\n')); err != nil {
		return nil, err
	}
	return bufio.NewReader(c).ReadBytes('\n')
}
