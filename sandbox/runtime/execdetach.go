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
// through a pidfd (it is our unreaped child: the pid cannot have been reused), once
// the runtime has started it: killing the runtime half-way would orphan the process.
func (r *Runtime) execDetached(ctx context.Context, c call, o ExecOptions) (int32, error) {
	var closers []io.Closer
	defer func() {
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
	pidFile := filepath.Join(c.scratch, "pid")
	c.args = append([]string{"exec", "--detach", "--pid-file=" + pidFile, "--", c.id}, o.Args...)
	c.passStdio = true
	// The end of ctx does not cut the start short (execStartLimit): the runtime exits
	// as soon as the process runs, and then the process is killed below, by its pid.
	// Only a runtime stuck past the limit is killed, with whatever it started.
	startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execStartLimit)
	defer cancel()
	c.tree = true
	_, err = r.run(startCtx, c)
	// The process has its own copies now; ours would keep the pipes from ending.
	_ = outW.Close()
	_ = errW.Close()
	if c.stdin != nil {
		_ = c.stdin.Close()
	}
	if err != nil {
		if pid, perr := readPidFile(pidFile); perr == nil {
			killChild(pid) // started, and orphaned to us when the runtime was killed
		}
		var e *Error
		switch {
		case !errors.As(err, &e):
			return -1, err
		case ctx.Err() != nil:
			return -1, r.fail(ctx, c, e.Message, err)
		case e.Class == nil && startCtx.Err() == nil:
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

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
