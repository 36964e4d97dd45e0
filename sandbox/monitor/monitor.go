package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/memtrim"
)

// syncFD is the descriptor of Launch's sync pipe in the monitor.
const syncFD = 3

// drainTimeout bounds the wait for the output pipes' EOF once the init exited: other
// processes (a daemonised child, a runtime exec) may still hold them.
const drainTimeout = 2 * time.Second

// report is the monitor's one line on the sync pipe.
type report struct {
	PID   int    `json:"pid,omitempty"`
	Ready bool   `json:"ready,omitempty"` // a prepared monitor waits for its start op
	Error string `json:"error,omitempty"`
}

// Main is the monitor process (cmd/berth-monitor): args are its command line,
// "berth-monitor <dir>". It returns the process's exit code: 0 once the container's
// exit is recorded, 1 when create failed, 2 for a bad command line.
func Main(args []string) int {
	diag := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds|log.LUTC)
	if len(args) != 2 {
		diag.Print("usage: berth-monitor <dir>")
		return 2
	}
	// fd 3 must not leak into the runtime and from there into the container.
	unix.CloseOnExec(syncFD)
	sync := os.NewFile(syncFD, "sync")
	m := &monitor{dir: args[1], diag: diag, sync: sync}
	err := m.setup()
	if err == nil && m.cfg.Prepare {
		return m.prepared()
	}
	if err == nil {
		err = m.launch()
	}
	if err != nil {
		diag.Printf("create failed: %v", err)
		m.report(report{Error: err.Error()})
		m.cleanupFailed()
		return 1
	}
	m.report(report{PID: m.pid})
	memtrim.Text() // the start-up is over; a monitor lives as long as its container
	m.run()
	return 0
}

type monitor struct {
	dir  string
	cfg  Config
	diag *log.Logger
	sync *os.File

	short string    // /proc/self/fd/<O_PATH fd of dir>: dir by a short path, for sockets
	pid   int       // the container's init
	oom   *oomWatch // started before the container runs (splitStart), else by run
	log   *criLog
	io    *stdio
	ctl   *controlServer
}

func (m *monitor) report(r report) {
	if m.sync == nil {
		return
	}
	if _, err := m.sync.Write(append(mustJSON(r), '\n')); err != nil {
		m.diag.Printf("report to berthd: %v", err)
	}
	_ = m.sync.Close()
	m.sync = nil
}

// setup makes everything the container's start needs: config, log, stdio, control
// socket. An error is what berthd reports.
func (m *monitor) setup() error {
	cfg, err := readConfig(m.dir)
	if err != nil {
		return err
	}
	m.cfg = cfg
	m.diag.SetPrefix(fmt.Sprintf("monitor %.12s: ", cfg.ID))
	// The container's init is orphaned when the runtime exits; as a subreaper the
	// monitor inherits it and can wait4 for its status.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set child subreaper: %w", err)
	}
	dirFD, err := unix.Open(m.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", m.dir, err)
	}
	// dirFD stays open for the monitor's life: the sockets' names go through it.
	m.short = "/proc/self/fd/" + strconv.Itoa(dirFD)
	if m.log, err = openCRILog(cfg.LogPath, m.diag); err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	if m.io, err = newStdio(cfg, m.short); err != nil {
		return err
	}
	ctlPath := m.short + "/" + ctlName
	_ = os.Remove(ctlPath) // left by a monitor killed before it could clean up
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: ctlPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on control socket: %w", err)
	}
	m.ctl = &controlServer{
		ln: ln, diag: m.diag, reopen: m.log.reopen,
		stdinOnce: cfg.StdinOnce, conns: map[*net.UnixConn]struct{}{},
	}
	if cfg.Prepare {
		m.ctl.starts = make(chan startOp, 1)
	}
	go m.ctl.serve()
	return nil
}

// launch runs the runtime and takes the container's init over.
func (m *monitor) launch() error {
	pid, err := m.create()
	if err != nil {
		return err
	}
	m.pid = pid
	// The pty master and stdin exist now; until here the control server only waits.
	m.ctl.stdinMu.Lock()
	m.ctl.stdin, m.ctl.closeStdin = m.io.stdinWriter(), m.io.endStdin
	m.ctl.stdinMu.Unlock()
	// A pidfd, opened while the init is the monitor's unreaped child, names that process
	// and no other: a signal asked for after it is reaped cannot reach a reused pid.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd of the container's init: %w", err)
	}
	m.ctl.mu.Lock()
	m.ctl.resize = m.io.resize
	m.ctl.signal = func(sig unix.Signal) error { return unix.PidfdSendSignal(pidfd, sig, nil, 0) }
	m.ctl.mu.Unlock()
	return nil
}

// create runs `runtime create` (or `run --detach` with Config.Start or Prepare) and
// returns the init's pid.
func (m *monitor) create() (int, error) {
	cfg := m.cfg
	var args []string
	if cfg.RuntimeRoot != "" {
		args = append(args, "--root="+cfg.RuntimeRoot)
	}
	if cfg.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	runtimeLog := filepath.Join(cfg.Dir, runtimeLogName)
	pidFile := filepath.Join(cfg.Dir, pidName)
	_ = os.Remove(pidFile)
	args = append(args, "--log="+runtimeLog, "--log-format=json")
	global := slices.Clone(args)
	split := m.splitStart()
	if (cfg.Start || cfg.Prepare) && !split {
		args = append(args, "run", "--detach")
	} else {
		args = append(args, "create")
	}
	args = append(args, "--bundle="+cfg.Bundle, "--pid-file="+pidFile)
	if m.io.console != nil {
		args = append(args, "--console-socket="+m.io.consolePath)
	}
	args = append(args, cfg.ID)
	if err := os.WriteFile(filepath.Join(cfg.Dir, invokedName), nil, 0o600); err != nil {
		return 0, fmt.Errorf("mark the runtime invoked: %w", err)
	}
	// syscall.ForkExec, not os.StartProcess: the latter's first call forks a throwaway
	// child to probe for pidfd support, a millisecond on every container start.
	runtimePID, err := syscall.ForkExec(cfg.Runtime, append([]string{cfg.Runtime}, args...), &syscall.ProcAttr{
		Env:   runtimeEnv(),
		Files: []uintptr{m.io.containerIn.Fd(), m.io.outW.Fd(), m.io.errW.Fd()},
	})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", cfg.Runtime, err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(runtimePID, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	// The container's ends belong to the container (and the runtime) now; closing ours
	// lets the pipes reach EOF when the container's processes are gone.
	m.io.closeContainerEnds()
	if err != nil {
		return 0, fmt.Errorf("wait for %s: %w", cfg.Runtime, err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return 0, errors.New(runtimeMessage(runtimeLog, m.io.runtimeStderr(), waitStatusString(ws)))
	}
	if err := m.io.receiveConsole(); err != nil {
		return 0, err
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("runtime's pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("runtime's pid file: bad pid %q", data)
	}
	if split {
		m.oom = watchOOM(cfg.OOMFile) // the scope exists; the process does not run yet
		if err := m.runtimeStart(global, runtimeLog); err != nil {
			return 0, err
		}
	}
	return pid, nil
}

// runtimeMessage is the runtime's own account of a failure: the last error of its JSON
// log, else the tail of its stderr, else its exit status.
func runtimeMessage(logPath, stderr, status string) string {
	data, _ := os.ReadFile(logPath)
	var msg string
	for line := range strings.Lines(string(data)) {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "error" && entry.Msg != "" {
			msg = entry.Msg
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(stderr)
	}
	if msg == "" {
		msg = "runtime create: " + status
	}
	return msg
}

// runtimeEnv is the monitor's environment less GOMAXPROCS=1, which keeps the monitor
// small but would hold the runtime (a Go program too) to one thread.
func runtimeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	return env
}

// waitStatusString says how a process ended, as os.ProcessState would.
func waitStatusString(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "signal: " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}

// cleanupFailed releases what start made when create failed.
func (m *monitor) cleanupFailed() {
	if m.ctl != nil {
		m.ctl.abort()
	}
	if m.io != nil {
		m.io.close()
	}
	if m.log != nil {
		m.log.close()
	}
}

// run copies the output until the init exits, then records the exit.
func (m *monitor) run() {
	oom := m.oom
	if oom == nil {
		oom = watchOOM(m.cfg.OOMFile)
	}
	var done []chan struct{}
	for _, src := range m.io.outputs() {
		ch := make(chan struct{})
		done = append(done, ch)
		w := newLineWriter(src.name, m.cfg.MaxLineSize, m.cfg.Terminal, m.log.write)
		go m.copyOutput(src, w, ch)
	}
	status, finished, msg := m.reap()
	deadline := time.Now().Add(drainTimeout)
	for _, src := range m.io.outputs() {
		_ = src.f.SetReadDeadline(deadline)
	}
	for _, ch := range done {
		select {
		case <-ch:
		case <-time.After(time.Until(deadline) + 100*time.Millisecond):
			m.diag.Print("output still open after the drain timeout")
		}
	}
	m.log.close()
	sigkilled := status.Signaled() && status.Signal() == unix.SIGKILL
	exit := exitFrom(status, finished, msg, oom.killed(sigkilled))
	if err := writeExit(m.dir, exit); err != nil {
		m.diag.Printf("record exit: %v", err)
	}
	m.diag.Printf("container exited: code %d, %s", exit.ExitCode, exit.Reason)
	m.ctl.finish(mustJSON(exit))
	// The stdio files are left to the process's exit: an attach or resize handler
	// may still be using them.
}

// copyOutput feeds one output stream to the CRI log and the attached clients.
func (m *monitor) copyOutput(src output, w *lineWriter, done chan<- struct{}) {
	defer close(done)
	defer w.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.f.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
			m.ctl.broadcast(src.stream, buf[:n])
		}
		if err != nil {
			// EOF for a pipe, EIO for a pty whose last slave closed, a timeout when
			// the drain ended; all of them end the stream.
			return
		}
	}
}

// reap waits for the init and reaps every other child that comes its way (orphans of
// the container reparented to the subreaper). msg explains an unknown status.
func (m *monitor) reap() (status unix.WaitStatus, finished time.Time, msg string) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			// Not our child after all (ECHILD): poll for its end, the status is lost.
			m.diag.Printf("wait4: %v; polling for pid %d", err, m.pid)
			for unix.Kill(m.pid, 0) == nil {
				time.Sleep(100 * time.Millisecond)
			}
			return unix.WaitStatus(255 << 8), time.Now(), "exit status unknown: " + err.Error()
		case pid == m.pid && (ws.Exited() || ws.Signaled()):
			return ws, time.Now(), ""
		}
	}
}

func exitFrom(ws unix.WaitStatus, finished time.Time, msg string, oom bool) Exit {
	e := Exit{FinishedAt: finished, Message: msg}
	if ws.Signaled() {
		e.Signal = int(ws.Signal())
		e.ExitCode = 128 + int32(e.Signal)
	} else {
		e.ExitCode = int32(ws.ExitStatus())
	}
	switch {
	case oom:
		e.Reason = ReasonOOMKilled
	case e.ExitCode == 0:
		e.Reason = ReasonCompleted
	default:
		e.Reason = ReasonError
	}
	return e
}
