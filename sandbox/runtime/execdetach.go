package runtime

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// drainTimeout bounds how long, once an exec'd process has exited, its output is still
// read: a background child it left may hold the pipes open for as long as it lives.
const drainTimeout = 2 * time.Second

// detachedStartLimit bounds `exec --detach`, which returns once the process runs
// (milliseconds; seconds on a loaded machine). Only a runtime stuck for this long is
// killed: whatever it started then is left to the container's end.
const detachedStartLimit = time.Minute

// childSubreaper reports whether this process adopts its descendants' orphans
// (berthd is one): then an exec'd process started with `exec --detach` becomes its
// child when the runtime exits, and wait4 gives its exit status.
func childSubreaper() bool {
	var on int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&on)), 0, 0, 0)
	return err == nil && on != 0
}

// execDetached runs o.Args with `exec --detach`: the runtime hands the process our
// pipes (it copies nothing) and exits once the process runs; the process, orphaned,
// becomes this process's child, and its exit status comes from wait4 the moment it
// exits, whatever background child still holds its output. (Without --detach, runc
// 1.1 reports nothing before every holder of the output has closed it.) The output is
// then read for at most drainTimeout more. When ctx ends first, the process is killed
// through a pidfd (it is our unreaped child: the pid cannot have been reused).
//
// The runtime itself is never killed half-way (ctx ending only stops the wait): what it started
// would be adopted by this process with no one to reap it, and a container whose init
// exits waits until every process in its PID namespace is reaped: it would never exit.
func (r *Runtime) execDetached(ctx context.Context, c call, o ExecOptions) (int32, error) {
	var closers []io.Closer
	handedOff := false
	defer func() {
		if handedOff {
			return
		}
		for _, f := range closers {
			_ = f.Close()
		}
	}()
	pipe := func() (rd, wr *os.File, err error) {
		rd, wr, err = os.Pipe()
		if err == nil {
			closers = append(closers, rd, wr)
		}
		return rd, wr, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return -1, r.fail(ctx, c, "", err)
	}
	errR, errW, err := pipe()
	if err != nil {
		return -1, r.fail(ctx, c, "", err)
	}
	c.stdout, c.stderr = outW, errW
	var inW *os.File
	if o.Stdin != nil {
		var inR *os.File
		if inR, inW, err = pipe(); err != nil {
			return -1, r.fail(ctx, c, "", err)
		}
		c.stdin = inR
	}
	// A scratch directory of this call's own: the runtime may outlive the call (and
	// Exec's scratch directory) when ctx ends first.
	if c.scratch, err = scratchDir(); err != nil {
		return -1, r.fail(ctx, c, "", err)
	}
	pidFile := filepath.Join(c.scratch, "pid")
	c.args = append([]string{"exec", "--detach", "--pid-file=" + pidFile, "--", c.id}, o.Args...)
	c.passStdio = true
	started := make(chan error, 1)
	go func() {
		// Not cancelled with ctx: a runtime killed between its start of the process and
		// its exit leaves that process to us with no record of its pid.
		rctx, cancel := context.WithTimeout(context.Background(), detachedStartLimit)
		defer cancel()
		_, err := r.run(rctx, c)
		started <- err
	}()
	select {
	case err = <-started:
	case <-ctx.Done():
		// The runtime goes on; once it is done, what it started is killed and reaped,
		// and our ends of the pipes (it has its own copies) closed.
		handedOff = true
		go func() {
			if err := <-started; err == nil {
				killAndReap(pidFile)
			}
			for _, f := range closers {
				_ = f.Close()
			}
			_ = os.RemoveAll(c.scratch)
		}()
		return -1, r.fail(ctx, c, "", ctx.Err())
	}
	defer os.RemoveAll(c.scratch)
	// The process has its own copies now; ours would keep the pipes from ending.
	_ = outW.Close()
	_ = errW.Close()
	if c.stdin != nil {
		_ = c.stdin.Close()
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Class == nil && ctx.Err() == nil {
			return -1, r.execFailed(ctx, c, e.Message, e.Err)
		}
		return -1, err
	}
	pid, err := readPidFile(pidFile)
	if err != nil {
		return -1, r.fail(ctx, c, "pid file", err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, r.fail(ctx, c, "the exec'd process", err)
	}
	defer unix.Close(pidfd)

	var copies sync.WaitGroup
	copies.Go(func() { _, _ = io.Copy(orDiscard(o.Stdout), outR) })
	copies.Go(func() { _, _ = io.Copy(orDiscard(o.Stderr), errR) })
	if inW != nil {
		go func() {
			_, _ = io.Copy(inW, o.Stdin)
			_ = inW.Close() // the end of the caller's stdin is the process's EOF
		}()
	}

	type exit struct {
		ws  unix.WaitStatus
		err error
	}
	exited := make(chan exit, 1)
	go func() {
		var e exit
		for {
			if _, e.err = unix.Wait4(pid, &e.ws, 0, nil); e.err != unix.EINTR {
				break
			}
		}
		exited <- e
	}()
	var e exit
	cancelled := false
	select {
	case e = <-exited:
	case <-ctx.Done():
		cancelled = true
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		e = <-exited
	}
	// Whatever the end, the copies are over before the caller's writers go back to it.
	deadline := time.Now().Add(drainTimeout)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	copies.Wait()
	switch {
	case cancelled:
		return -1, r.fail(ctx, c, "", ctx.Err())
	case e.err != nil:
		// Not our child after all (this process stopped being a subreaper?): the
		// status is lost.
		return -1, r.fail(ctx, c, "waiting for the exec'd process", e.err)
	}
	ws := e.ws
	if ws.Signaled() {
		return 128 + int32(ws.Signal()), nil
	}
	return int32(ws.ExitStatus()), nil
}

// killAndReap kills the process whose pid the runtime wrote to pidFile and reaps it:
// this process adopted it (a subreaper) when the runtime exited.
func killAndReap(pidFile string) {
	pid, err := readPidFile(pidFile)
	if err != nil {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone and reaped already
	}
	defer unix.Close(fd)
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
