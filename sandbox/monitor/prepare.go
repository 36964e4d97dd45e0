package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/berth-runtime/berth/internal/memtrim"
)

// startOp is a prepared monitor's start (or abort) request, answered by the main
// goroutine once the runtime has run.
type startOp struct {
	conn  *net.UnixConn
	abort bool
}

// startOrAbort hands the first start or abort op of a prepared monitor to the main
// goroutine; any other is refused at once.
func (s *controlServer) startOrAbort(c *net.UnixConn, abort bool) {
	s.mu.Lock()
	starts := s.starts
	s.starts = nil
	s.mu.Unlock()
	if starts == nil {
		s.answer(c, mustJSON(report{Error: "the container was started already, or its monitor was not prepared"}))
		return
	}
	starts <- startOp{conn: c, abort: abort}
}

// prepared is the life of a monitor started by Prepare: ready on fd 3, then one start
// op (run the container, answer its pid, monitor it) or abort op (exit at once, leaving
// nothing). It returns the process's exit code.
func (m *monitor) prepared() int {
	starts := m.ctl.starts
	m.report(report{Ready: true})
	op := <-starts
	if op.abort {
		m.ctl.answer(op.conn, mustJSON(report{}))
		m.diag.Print("aborted before the start")
		m.cleanupFailed()
		return 0
	}
	if err := m.launch(); err != nil {
		m.diag.Printf("start failed: %v", err)
		m.ctl.answer(op.conn, mustJSON(report{Error: err.Error()}))
		m.cleanupFailed()
		return 1
	}
	m.ctl.answer(op.conn, mustJSON(report{PID: m.pid}))
	memtrim.Text() // the start-up is over; a monitor lives as long as its container
	m.run()
	return 0
}

// Spawn starts the monitor for cfg as Launch does, without waiting for it: the monitor
// sets up (log, stdio, control socket), reports ready and waits for Start. berthd
// spawns it at the beginning of CreateContainer, so that the monitor's own start
// overlaps the create's other work; Pending.Ready then waits for the rest. The monitor
// is this process's child until Wait, Abort or Kill reaps it.
func Spawn(binary string, cfg Config) (*Pending, error) {
	cfg.Prepare = true
	return spawn(binary, cfg)
}

// Prepare is Spawn and Ready: a monitor set up and waiting for Start.
func Prepare(ctx context.Context, binary string, cfg Config) (int, error) {
	p, err := Spawn(binary, cfg)
	if err != nil {
		return 0, err
	}
	return p.PID, p.Ready(ctx)
}

// Start has a prepared monitor run its container (`run --detach`) and returns the
// init's pid. A runtime failure is a *CreateError (the monitor has exited, leaving
// nothing); a monitor that is gone or was started already: an error wrapping
// errdefs.ErrFailedPrecondition.
func Start(ctx context.Context, dir, id string) (int, error) {
	line, err := request1(ctx, dir, request{Op: "start"})
	if err != nil {
		return 0, err
	}
	var r report
	if err := json.Unmarshal(line, &r); err != nil {
		return 0, fmt.Errorf("monitor in %s: bad answer %q: %w", dir, line, err)
	}
	if r.Error != "" || r.PID <= 0 {
		return 0, &CreateError{ID: id, Message: r.Error}
	}
	return r.PID, nil
}

// Abort ends a prepared monitor that was never started, and reaps it when monitorPID
// is this process's child. A monitor that is gone is not an error; one that started
// its container refuses (the container is Stop's business).
func Abort(ctx context.Context, dir string, monitorPID int) error {
	line, err := request1(ctx, dir, request{Op: "abort"})
	if err != nil {
		if !errors.Is(err, errMonitorGone) {
			return err
		}
		if monitorPID > 0 {
			reap(monitorPID) // gone already: collect it if it was ours
		}
		return nil
	}
	var r report
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("monitor in %s: bad answer %q: %w", dir, line, err)
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	if monitorPID > 0 {
		reap(monitorPID)
	}
	return nil
}
