package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// ExecOptions are the options of Exec.
type ExecOptions struct {
	Args  []string  // command, required
	Stdin io.Reader // nil: /dev/null
	// Stdout and Stderr receive the process's output (the caller caps it); nil: discarded.
	Stdout, Stderr io.Writer
	Tty            bool // --tty (then all output arrives on Stdout)
}

// How long, once the process is killed, Exec waits for the runtime to exit by itself.
// (Once ctx has ended, Exec waits up to execStartLimit for the runtime to write the
// pid file of a process it may be starting: under emulation that can take seconds.)
const execExitWait = 2 * time.Second

// Exec runs a process in running container id (`exec --pid-file=... [--tty] -- id
// args...`), with the container's own process settings (user, env, cwd,
// capabilities...) as its base, as runc and crun do by default. It returns the exit
// code of the process, 128+signal when a signal killed it; a non-zero exit code is not
// an error.
//
// When ctx ends before the process does, the process is killed (SIGKILL to the pid in
// the pid file) and then the runtime, and Exec returns an error matching
// context.DeadlineExceeded or context.Canceled. A container that does not exist gives
// an error matching errdefs.ErrNotFound; one that is not running (created, stopped,
// paused), errdefs.ErrFailedPrecondition.
//
// The runtime's exit status is the process's, so it cannot tell "the runtime failed"
// from "the process exited non-zero". runc 1.1 exits 255 both for its own failures and
// for a process that exits 255, but only its failures leave an error entry in --log:
// an absent executable ("exec failed: unable to start container process: exec:
// \"x\": executable file not found in $PATH", or "stat /x: no such file or directory"),
// "container does not exist", "cannot exec in a stopped container", "cannot exec in a
// paused container", or for a container that died just before, "error executing setns
// process". So an error (or fatal) entry in the log makes Exec fail with an *Error
// carrying it; without one the status is the process's exit code.
//
// Output pipes may be held open by background children of the process: once the
// runtime has exited, Exec waits at most 2 s more for them (exec.Cmd.WaitDelay).
func (r *Runtime) Exec(ctx context.Context, id string, o ExecOptions) (exitCode int32, err error) {
	c := call{op: "exec", id: id}
	if !validID(id) {
		return -1, r.invalid(c, "invalid container id")
	}
	if len(o.Args) == 0 {
		return -1, r.invalid(c, "no command")
	}
	if err := ctx.Err(); err != nil {
		return -1, r.fail(ctx, c, "", err)
	}
	if c.scratch, err = scratchDir(); err != nil {
		return -1, r.fail(ctx, c, "", err)
	}
	defer os.RemoveAll(c.scratch)
	if !o.Tty && childSubreaper() {
		return r.execDetached(ctx, c, o)
	}
	pidFile := filepath.Join(c.scratch, "pid")
	logPath := filepath.Join(c.scratch, "log.json")

	args := []string{"--root=" + r.Root, "--log=" + logPath, "--log-format=json"}
	if r.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	args = append(args, "exec", "--pid-file="+pidFile)
	if o.Tty {
		args = append(args, "--tty")
	}
	// "--" ends the options before the id, so that no argument of the command is ever
	// taken for one of the runtime's.
	args = append(args, "--", id)
	args = append(args, o.Args...)

	cmd := exec.Command(r.Path, args...)
	cmd.WaitDelay = waitDelay
	// Nil interfaces make exec use /dev/null (and discard output) without a pipe.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	if o.Tty {
		// Without --detach, runc 1.1 wants a terminal on its own stdio (or a controlling
		// one) to size and set raw the container's: without one it fails with "open
		// /dev/tty". berthd has none, so the runtime's stderr becomes the slave of a pty
		// of our own; the process's output still reaches Stdout through the pty runc
		// makes in the container, and runc's own words are in its log anyway.
		master, slave, err := openPty()
		if err != nil {
			return -1, r.fail(ctx, c, "opening a pty", err)
		}
		defer master.Close()
		defer slave.Close()
		go func() { _, _ = io.Copy(io.Discard, master) }() // never let runc block on it
		cmd.Stderr = slave
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return -1, r.fail(ctx, c, "", err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	stop := make(chan struct{})
	defer close(stop)
	exited := watchExited(pidFile, stop)
	var cancelled, held bool
	var heldTimer <-chan time.Time
wait:
	for {
		select {
		case err = <-waitc:
			break wait
		case <-ctx.Done():
			cancelled = true
			tree := killExec(cmd.Process, pidFile)
			err = <-waitc
			tree.reap()
			break wait
		case <-exited:
			// Without a terminal, runc 1.1 copies the process's output through pipes
			// of its own and does not exit, nor say the exit code, before every holder
			// of them (a background child left in the container) has closed them.
			exited, heldTimer = nil, time.After(waitDelay)
		case <-heldTimer:
			held = true
			_ = cmd.Process.Kill()
			err = <-waitc
			break wait
		}
	}
	r.logger().Debug("oci runtime call", "runtime", r.Name, "op", c.op, "id", id,
		"duration", time.Since(start), "error", err)
	msg := logFailure(logPath)
	var exitErr *exec.ExitError
	switch {
	case cancelled:
		return -1, r.fail(ctx, c, msg, ctx.Err())
	case held:
		return -1, r.fail(ctx, c, "the process exited, but a process it left in the container "+
			"holds its output open, and the runtime waits for that before it reports the exit code", err)
	case msg != "":
		return -1, r.execFailed(ctx, c, msg, err)
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr) && exitErr.Exited():
		return int32(exitErr.ExitCode()), nil
	case errors.Is(err, exec.ErrWaitDelay):
		// The runtime exited and reported the process's status; only a background
		// child held our pipes open.
		return int32(cmd.ProcessState.ExitCode()), nil
	}
	// The runtime was killed by a signal nobody here sent.
	return -1, r.fail(ctx, c, msg, err)
}

// watchExited returns a channel closed once the process whose pid the runtime writes
// to pidFile has exited; it gives up when stop is closed. The pidfd pins the process:
// while the runtime, its parent, has not reaped it, its pid cannot be reused.
func watchExited(pidFile string, stop <-chan struct{}) <-chan struct{} {
	exited := make(chan struct{})
	stopped := func(d time.Duration) bool {
		select {
		case <-stop:
			return true
		case <-time.After(d):
			return false
		}
	}
	go func() {
		pid, err := readPidFile(pidFile)
		for ; err != nil; pid, err = readPidFile(pidFile) {
			if stopped(10 * time.Millisecond) {
				return
			}
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil { // already reaped
			close(exited)
			return
		}
		defer unix.Close(fd)
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(fds, 50); err == nil && n > 0 {
				close(exited)
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	return exited
}

// execFailed is the Error of an exec the runtime refused or failed to start. When the
// runtime's words fit no class, the container's state decides: an exec can only fail
// that way for a container that is gone or no longer running.
func (r *Runtime) execFailed(ctx context.Context, c call, msg string, err error) *Error {
	e := r.fail(ctx, c, msg, err)
	if e.Class != nil {
		return e
	}
	st, stErr := r.State(ctx, c.id)
	switch {
	case errdefs.IsNotFound(stErr):
		e.Class = errdefs.ErrNotFound
	case stErr == nil && st.Status != StatusRunning:
		e.Class = errdefs.ErrFailedPrecondition
	}
	return e
}

// logFailure is the message of the last error entry of the runtime's JSON log, if any.
func logFailure(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return "" // a runtime that logged nothing never created the file
	}
	defer f.Close()
	msg, _ := scanLog(f)
	return truncate(msg)
}

// killExec ends an exec whose context has ended: first the process, by the pid the
// runtime wrote, while the runtime is alive (it is the process's parent and has not
// reaped it, so the pid cannot have been reused), then the runtime, which normally
// exits by itself once it has reaped the killed process. A runtime that writes no pid
// file within execStartLimit, or does not exit, is stuck: it is killed with all it
// started, which the caller reaps (the procTree returned) once it has reaped the
// runtime.
func killExec(runtime *os.Process, pidFile string) *procTree {
	gone := func() bool { return errors.Is(runtime.Signal(syscall.Signal(0)), os.ErrProcessDone) }
	deadline := time.Now().Add(execStartLimit)
	for {
		if pid, err := readPidFile(pidFile); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			break
		}
		// No pid file yet: the runtime may be about to start the process. If it has
		// exited instead, it started nothing it did not wait for.
		if gone() || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline = time.Now().Add(execExitWait)
	for !gone() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if gone() {
		return nil
	}
	tree := &procTree{}
	tree.kill(runtime)
	return tree
}

// openPty opens a new pseudo-terminal pair.
func openPty() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}
