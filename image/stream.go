package image

import (
	"errors"
	"io"
	"sync"
)

// A layer's bytes go through two kinds of work: reading the body, hashing it and
// decompressing it (CPU bound: inflate alone is most of a pull), and parsing the tar and
// creating the files (system calls). A pipe lets the two run on two threads: the
// producer goroutine decompresses into a bounded queue of chunks while the consumer
// unpacks from it.
const (
	pipeChunk = 64 << 10
	pipeDepth = 8 // chunks queued: at most pipeDepth*pipeChunk bytes ahead per layer
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, pipeChunk); return &b }}

// errPipeStopped is what the producer gets once the consumer stopped the pipe.
var errPipeStopped = errors.New("layer stream: consumer stopped")

type chunk struct {
	buf *[]byte
	n   int
}

// pipe carries bytes from one producer goroutine to one consumer. Unlike io.Pipe it
// buffers, so the producer runs ahead while the consumer is busy in system calls.
type pipe struct {
	full     chan chunk
	stopped  chan struct{}
	stopOnce sync.Once
	err      error // the producer's error; read by the consumer once full is closed

	// consumer side
	held *[]byte
	cur  []byte
}

func newPipe() *pipe {
	return &pipe{full: make(chan chunk, pipeDepth), stopped: make(chan struct{})}
}

// fill copies r into the pipe until r's EOF (nil) or error, or until the consumer stops
// the pipe (errPipeStopped). Producer side.
func (p *pipe) fill(r io.Reader) error {
	for {
		buf := chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(r, *buf)
		if n == 0 {
			chunkPool.Put(buf)
		} else {
			select {
			case p.full <- chunk{buf: buf, n: n}:
			case <-p.stopped:
				chunkPool.Put(buf)
				return errPipeStopped
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// closeWrite ends the stream: the consumer reads err (io.EOF if nil) after the data.
// Producer side; call it exactly once.
func (p *pipe) closeWrite(err error) {
	p.err = err
	close(p.full)
}

// Read implements io.Reader. Consumer side.
func (p *pipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.held != nil {
			chunkPool.Put(p.held)
			p.held = nil
		}
		c, ok := <-p.full
		if !ok {
			if p.err != nil {
				return 0, p.err
			}
			return 0, io.EOF
		}
		p.held, p.cur = c.buf, (*c.buf)[:c.n]
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// stop tells the producer that nobody reads any more. Consumer side; safe to call more
// than once and after the producer finished.
func (p *pipe) stop() {
	p.stopOnce.Do(func() { close(p.stopped) })
}
