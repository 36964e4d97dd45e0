package monitor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// consoleTimeout bounds the wait for the pty master once create succeeded; the runtime
// sends it before create returns, so this only guards against a broken runtime.
const consoleTimeout = 5 * time.Second

// stdio holds the container's standard streams: the ends handed to the runtime (and
// through it to the container) and the monitor's own ends.
type stdio struct {
	terminal bool
	stdin    bool // Config.Stdin

	containerIn *os.File // the container's stdin: pipe read end or /dev/null
	stdinW      *os.File // the monitor's end of the stdin pipe; nil without Stdin
	outR, outW  *os.File // stdout; with a terminal, only the runtime's own output
	errR, errW  *os.File

	console     *net.UnixListener // with a terminal, until the master arrived
	consolePath string            // how the runtime reaches console
	consoleCh   chan consoleResult
	master      *os.File // the pty master; with Stdin it is also stdin
}

type consoleResult struct {
	f   *os.File
	err error
}

// output is one stream to copy to the log.
type output struct {
	name   string
	stream byte
	f      *os.File
}

func newStdio(cfg Config, short string) (_ *stdio, err error) {
	s := &stdio{terminal: cfg.Terminal, stdin: cfg.Stdin}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if cfg.Stdin && !cfg.Terminal {
		if s.containerIn, s.stdinW, err = os.Pipe(); err != nil {
			return nil, err
		}
	} else if s.containerIn, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if s.outR, s.outW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if s.errR, s.errW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if !cfg.Terminal {
		return s, nil
	}
	path := short + "/" + consoleName
	_ = os.Remove(path)
	if s.console, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"}); err != nil {
		return nil, fmt.Errorf("listen on console socket: %w", err)
	}
	// The runtime cannot use /proc/self of the monitor; the same directory through the
	// monitor's pid is as short.
	s.consolePath = "/proc/" + strconv.Itoa(os.Getpid()) + short[len("/proc/self"):] + "/" + consoleName
	s.consoleCh = make(chan consoleResult, 1)
	go func(ln *net.UnixListener) {
		f, err := acceptConsole(ln)
		s.consoleCh <- consoleResult{f, err}
	}(s.console)
	return s, nil
}

// acceptConsole receives the pty master the runtime sends by SCM_RIGHTS.
func acceptConsole(ln *net.UnixListener) (*os.File, error) {
	c, err := ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 4096) // the pty's name, unused
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket: no descriptor received (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return nil, fmt.Errorf("console socket: want one descriptor, got %d (%v)", len(fds), err)
	}
	unix.CloseOnExec(fds[0])
	// Non-blocking, so that the Go poller serves it and read deadlines work on it.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		_ = unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// receiveConsole waits for the pty master (terminal only).
func (s *stdio) receiveConsole() error {
	if s.console == nil {
		return nil
	}
	var r consoleResult
	select {
	case r = <-s.consoleCh:
	case <-time.After(consoleTimeout):
		r.err = errors.New("the runtime did not send the console")
	}
	_ = s.console.Close()
	s.console = nil
	if r.err != nil {
		return r.err
	}
	s.master = r.f
	return nil
}

// closeContainerEnds closes the monitor's copies of the container's ends.
func (s *stdio) closeContainerEnds() {
	closeFile(&s.containerIn)
	closeFile(&s.outW)
	closeFile(&s.errW)
}

// runtimeStderr is the tail of what a failed runtime wrote on its stderr. Nothing else
// writes there before the container is started, and a deadline guards against a
// leftover holder of the pipe.
func (s *stdio) runtimeStderr() string {
	if s.errR == nil {
		return ""
	}
	_ = s.errR.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	data, _ := io.ReadAll(io.LimitReader(s.errR, 64<<10))
	if len(data) > 1024 {
		data = data[len(data)-1024:]
	}
	return string(data)
}

// outputs are the streams to copy once the container is created.
func (s *stdio) outputs() []output {
	if s.terminal {
		return []output{{"stdout", streamStdout, s.master}}
	}
	return []output{{"stdout", streamStdout, s.outR}, {"stderr", streamStderr, s.errR}}
}

// stdinWriter is where attach input goes; nil when the container has no stdin.
func (s *stdio) stdinWriter() io.Writer {
	switch {
	case s.stdinW != nil:
		return s.stdinW
	case s.stdin && s.master != nil:
		return s.master
	}
	return nil
}

// endStdin ends the container's stdin (StdinOnce). A pty cannot be half-closed without
// losing the output, so it gets the terminal's end-of-file character instead.
func (s *stdio) endStdin() {
	if s.stdinW != nil {
		_ = s.stdinW.Close()
		return
	}
	if s.master != nil {
		_, _ = s.master.Write([]byte{4}) // ^D, VEOF in canonical mode
	}
}

// resize sets the pty's window size.
func (s *stdio) resize(width, height uint16) error {
	if s.master == nil {
		return errors.New("the container has no terminal")
	}
	conn, err := s.master.SyscallConn()
	if err != nil {
		return err
	}
	var ioctlErr error
	err = conn.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: width, Row: height})
	})
	if err == nil {
		err = ioctlErr
	}
	return err
}

// close releases everything (the exit is recorded, or create failed).
func (s *stdio) close() {
	if s.console != nil {
		_ = s.console.Close()
		s.console = nil
	}
	for _, f := range []**os.File{&s.containerIn, &s.stdinW, &s.outR, &s.outW, &s.errR, &s.errW, &s.master} {
		closeFile(f)
	}
}

func closeFile(f **os.File) {
	if *f != nil {
		_ = (*f).Close()
		*f = nil
	}
}
