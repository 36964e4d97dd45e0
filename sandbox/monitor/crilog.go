package monitor

import (
	"bytes"
	"log"
	"os"
	"sync"
	"time"
)

// criLog is the CRI log file shared by the container's output streams. Each call of
// write gets one whole formatted line, written with one write(2), so lines of stdout
// and stderr never interleave.
type criLog struct {
	mu     sync.Mutex
	path   string // "" discards everything
	f      *os.File
	broken bool // the last write failed; noted once in monitor.log, cleared by a success
	diag   *log.Logger
}

func openCRILog(path string, diag *log.Logger) (*criLog, error) {
	l := &criLog{path: path, diag: diag}
	if path == "" {
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	l.f = f
	return l, nil
}

// write appends line. A failure (disk full, file gone) drops the line rather than
// stopping the caller: the container must keep running even when its log cannot grow.
func (l *criLog) write(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if _, err := l.f.Write(line); err != nil {
		if !l.broken {
			l.diag.Printf("CRI log %s: dropping output: %v", l.path, err)
			l.broken = true
		}
		return
	}
	l.broken = false
}

// reopen closes the log and opens its path again: kubelet renamed the file to rotate
// it and expects the new lines in a new file.
func (l *criLog) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == "" {
		return nil
	}
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		l.diag.Printf("CRI log %s: reopen: %v; output is dropped until the next reopen", l.path, err)
		return err
	}
	l.f, l.broken = f, false
	return nil
}

// close syncs and closes the log; the output is complete once the exit is recorded.
func (l *criLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if err := l.f.Sync(); err != nil {
		l.diag.Printf("CRI log %s: sync: %v", l.path, err)
	}
	_ = l.f.Close()
	l.f = nil
}

// lineWriter turns one stream's raw output into CRI log lines. It is not safe for
// concurrent use; each stream has its own, fed by one reader.
type lineWriter struct {
	stream   string // "stdout" or "stderr"
	max      int    // longest content of one line
	terminal bool   // strip the \r of a pty's \r\n
	out      func(line []byte)
	now      func() time.Time

	pending []byte // content of the current line, at most max bytes
	line    []byte // the formatted line, reused
}

func newLineWriter(stream string, max int, terminal bool, out func([]byte)) *lineWriter {
	return &lineWriter{stream: stream, max: max, terminal: terminal, out: out, now: time.Now}
}

// Write takes any amount of output. A full pending line is emitted as a P piece only
// when more content of the same line follows, so a line of exactly max bytes stays one
// F line.
func (w *lineWriter) Write(p []byte) {
	for len(p) > 0 {
		chunk, rest, eol := bytes.Cut(p, []byte{'\n'})
		for len(chunk) > 0 {
			if len(w.pending) == w.max {
				w.emit('P', w.pending)
				w.pending = w.pending[:0]
			}
			n := min(w.max-len(w.pending), len(chunk))
			w.pending = append(w.pending, chunk[:n]...)
			chunk = chunk[n:]
		}
		if !eol {
			return
		}
		content := w.pending
		if w.terminal {
			content = bytes.TrimSuffix(content, []byte{'\r'})
		}
		w.emit('F', content)
		w.pending = w.pending[:0]
		p = rest
	}
}

// Flush writes a last line the stream ended without a newline as a P piece, as
// containerd does: readers add no newline after it, so `printf DONE` is logged (and
// becomes a FallbackToLogsOnError termination message) as "DONE", not "DONE\n".
func (w *lineWriter) Flush() {
	if len(w.pending) > 0 {
		w.emit('P', w.pending)
		w.pending = w.pending[:0]
	}
}

func (w *lineWriter) emit(tag byte, content []byte) {
	b := w.now().AppendFormat(w.line[:0], time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, w.stream...)
	b = append(b, ' ', tag, ' ')
	b = append(b, content...)
	b = append(b, '\n')
	w.line = b
	w.out(b)
}
