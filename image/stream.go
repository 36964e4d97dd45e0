package image

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// A layer's bytes go through three kinds of work: reading the body, hashing it and
// decompressing it (CPU bound: inflate alone is most of a gzip pull), hashing the
// uncompressed stream (the diffID), and parsing the tar and creating the files (system
// calls; most of a zstd pull). A pipe lets them run on separate threads: the producer
// goroutine decompresses into a bounded queue of chunks, the consumer unpacks from it,
// and a side goroutine hashes every chunk too, so that the hash slows down neither of
// the other two, whichever is the bottleneck.
const (
	pipeChunk = 64 << 10
	pipeDepth = 8 // chunks queued per reader: a layer holds about pipeDepth+3 chunks at most (0.7 MiB)
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, pipeChunk); return &b }}

// errPipeStopped is what the producer gets once the consumer stopped the pipe.
var errPipeStopped = errors.New("layer stream: consumer stopped")

// chunk is a pooled buffer holding n bytes, returned to the pool by the last of its
// readers (the consumer and the side reader).
type chunk struct {
	buf  *[]byte
	n    int
	refs *atomic.Int32
}

func (c chunk) release() {
	if c.refs.Add(-1) == 0 {
		chunkPool.Put(c.buf)
	}
}

// pipe carries bytes from one producer goroutine to one consumer and, optionally, to a
// side reader that sees every byte (drainSide). Unlike io.Pipe it buffers, so the
// producer runs ahead while the consumer is busy in system calls.
type pipe struct {
	full     chan chunk
	side     chan chunk // nil without a side reader
	stopped  chan struct{}
	stopOnce sync.Once
	err      error // the producer's error; read by the consumer once full is closed

	// consumer side
	held chunk
	cur  []byte
}

func newPipe(side bool) *pipe {
	p := &pipe{full: make(chan chunk, pipeDepth), stopped: make(chan struct{})}
	if side {
		p.side = make(chan chunk, pipeDepth)
	}
	return p
}

// send hands c to the consumer, and first to the side reader if there is one.
func (p *pipe) send(c chunk) error {
	for _, ch := range []chan chunk{p.side, p.full} {
		if ch == nil {
			c.release()
			continue
		}
		select {
		case ch <- c:
		case <-p.stopped:
			return errPipeStopped
		}
	}
	return nil
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
			c := chunk{buf: buf, n: n, refs: new(atomic.Int32)}
			c.refs.Store(2)
			if serr := p.send(c); serr != nil {
				return serr // a chunk not handed on is left to the garbage collector
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
	if p.side != nil {
		close(p.side)
	}
}

// drainSide calls fn with every chunk the producer sends, in order, until the producer
// closes the pipe. The side reader runs it on a goroutine of its own; fn must not keep
// the slice.
func (p *pipe) drainSide(fn func([]byte)) {
	for c := range p.side {
		fn((*c.buf)[:c.n])
		c.release()
	}
}

// Read implements io.Reader. Consumer side.
func (p *pipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.held.buf != nil {
			p.held.release()
			p.held = chunk{}
		}
		c, ok := <-p.full
		if !ok {
			if p.err != nil {
				return 0, p.err
			}
			return 0, io.EOF
		}
		p.held, p.cur = c, (*c.buf)[:c.n]
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
