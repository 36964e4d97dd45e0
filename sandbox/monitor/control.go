package monitor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The streams of attach frames.
const (
	streamStdout byte = 1
	streamStderr byte = 2
	streamExit   byte = 3
)

const (
	// frameTimeout bounds how long the container's output waits for one attached
	// client; a client slower than that is disconnected.
	frameTimeout = 500 * time.Millisecond
	// requestTimeout bounds the wait for a client's request line.
	requestTimeout = 10 * time.Second
	// stdinOnceGrace is how long an attach session with StdinOnce goes on after its
	// stdin ended, for the output the last input caused.
	stdinOnceGrace = 2 * time.Second
)

// request is a control request, one JSON line.
type request struct {
	Op     string `json:"op"`
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	Signal int    `json:"signal,omitempty"`
}

// reply answers reopen, resize and attach.
type reply struct {
	Error string `json:"error,omitempty"`
}

type attachment struct {
	conn           *net.UnixConn
	stdout, stderr bool
}

// controlServer serves ctl.sock in the monitor.
type controlServer struct {
	ln        *net.UnixListener
	diag      *log.Logger
	reopen    func() error
	stdinOnce bool

	stdinMu    sync.Mutex // serialises the stdin writes of several clients
	stdin      io.Writer  // the container's stdin (pipe or pty master); nil: none
	closeStdin func()     // ends the container's stdin (StdinOnce)
	stdinDone  bool       // closeStdin was called; later input is dropped

	mu     sync.Mutex
	resize func(width, height uint16) error // set once the container is created
	signal func(sig unix.Signal) error      // signals the init; set with resize
	// starts takes the one start or abort op of a prepared monitor (nil otherwise);
	// the main goroutine answers it.
	starts   chan startOp
	exit     []byte // the Exit's JSON once recorded
	closed   bool
	conns    map[*net.UnixConn]struct{}
	waiters  []*net.UnixConn
	attached []*attachment
}

func (s *controlServer) serve() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return // closed by finish or abort
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *controlServer) handle(c *net.UnixConn) {
	br := bufio.NewReaderSize(c, 4096) // the request line, then attach's stdin
	_ = c.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := br.ReadSlice('\n')
	var req request
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		s.drop(c)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch req.Op {
	case "wait":
		s.mu.Lock()
		if s.exit != nil {
			s.mu.Unlock()
			s.answer(c, s.exit)
			return
		}
		s.waiters = append(s.waiters, c)
		s.mu.Unlock()
		waitGone(c)
		s.drop(c)
	case "reopen":
		s.answerErr(c, s.reopen())
	case "resize":
		s.mu.Lock()
		resize := s.resize
		s.mu.Unlock()
		err := errors.New("the container is not created yet")
		if resize != nil {
			err = resize(req.Width, req.Height)
		}
		s.answerErr(c, err)
	case "signal":
		s.mu.Lock()
		signal := s.signal
		s.mu.Unlock()
		err := errors.New("the container is not created yet")
		if signal != nil {
			err = signal(unix.Signal(req.Signal))
		}
		s.answerErr(c, err)
	case "start", "abort":
		s.startOrAbort(c, req.Op == "abort")
	case "attach":
		s.attach(c, br, req)
	default:
		s.answer(c, mustJSON(reply{Error: "unknown op " + req.Op}))
	}
}

// waitGone returns when the client closed its connection (or finish closed it): the
// only way to notice a client that gave up waiting, without a buffer of its own.
func waitGone(c *net.UnixConn) {
	var b [1]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

func (s *controlServer) answerErr(c *net.UnixConn, err error) {
	var r reply
	if err != nil {
		r.Error = err.Error()
	}
	s.answer(c, mustJSON(r))
}

// answer writes one line and ends the connection.
func (s *controlServer) answer(c *net.UnixConn, line []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(append(line[:len(line):len(line)], '\n'))
	s.drop(c)
}

func (s *controlServer) attach(c *net.UnixConn, br *bufio.Reader, req request) {
	a := &attachment{conn: c, stdout: req.Stdout, stderr: req.Stderr}
	s.mu.Lock()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.Write([]byte("{}\n"))
	if err == nil && s.exit != nil {
		_ = writeFrame(c, streamExit, s.exit)
		err = io.EOF
	}
	if err == nil {
		s.attached = append(s.attached, a)
	}
	s.mu.Unlock()
	if err != nil {
		s.drop(c)
		return
	}
	if !req.Stdin {
		waitGone(c)
		s.drop(c)
		return
	}
	buf := make([]byte, 4096)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			s.writeStdin(buf[:n])
		}
		if err != nil {
			break
		}
	}
	// Stdin ended: the client half-closed, or it is gone.
	if s.stdinOnce && s.endStdin() {
		time.AfterFunc(stdinOnceGrace, func() { s.drop(c) })
	}
}

func (s *controlServer) writeStdin(p []byte) {
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if s.stdin == nil || s.stdinDone {
		return
	}
	if _, err := s.stdin.Write(p); err != nil {
		// The container closed its stdin or exited; the input has nowhere to go.
		s.diag.Printf("stdin: %v", err)
	}
}

// endStdin closes the container's stdin once; false when the container has none.
func (s *controlServer) endStdin() bool {
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if s.stdin == nil {
		return false
	}
	if !s.stdinDone {
		s.stdinDone = true
		s.closeStdin()
	}
	return true
}

// broadcast sends a chunk of output to the clients attached to its stream.
func (s *controlServer) broadcast(stream byte, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.attached[:0]
	for _, a := range s.attached {
		if (stream == streamStdout && !a.stdout) || (stream == streamStderr && !a.stderr) {
			kept = append(kept, a)
			continue
		}
		if err := writeFrame(a.conn, stream, data); err != nil {
			s.diag.Printf("attach: client dropped: %v", err)
			delete(s.conns, a.conn)
			_ = a.conn.Close()
			continue
		}
		kept = append(kept, a)
	}
	clear(s.attached[len(kept):])
	s.attached = kept
}

func writeFrame(c *net.UnixConn, stream byte, data []byte) error {
	var hdr [5]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(data)))
	_ = c.SetWriteDeadline(time.Now().Add(frameTimeout))
	bufs := net.Buffers{hdr[:], data}
	_, err := bufs.WriteTo(c)
	return err
}

// drop forgets and closes a connection.
func (s *controlServer) drop(c *net.UnixConn) {
	s.mu.Lock()
	delete(s.conns, c)
	for i, w := range s.waiters {
		if w == c {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			break
		}
	}
	for i, a := range s.attached {
		if a.conn == c {
			s.attached = append(s.attached[:i], s.attached[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	_ = c.Close()
}

// finish answers the waiters and attached clients with the recorded exit, closes every
// connection and the listener (which removes ctl.sock).
func (s *controlServer) finish(exit []byte) {
	s.mu.Lock()
	s.exit = exit
	line := append(exit[:len(exit):len(exit)], '\n')
	for _, w := range s.waiters {
		_ = w.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = w.Write(line)
	}
	for _, a := range s.attached {
		_ = writeFrame(a.conn, streamExit, exit)
	}
	s.closeAllLocked()
	s.mu.Unlock()
	_ = s.ln.Close()
}

// abort closes everything without an exit to tell (create failed).
func (s *controlServer) abort() {
	s.mu.Lock()
	s.closeAllLocked()
	s.mu.Unlock()
	_ = s.ln.Close()
}

func (s *controlServer) closeAllLocked() {
	for c := range s.conns {
		_ = c.Close()
	}
	s.conns, s.waiters, s.attached, s.closed = nil, nil, nil, true
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are marshalled
	}
	return data
}
