package image

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"
)

// runPipe feeds src through a pipe from a producer goroutine and returns the pipe and
// the channel the producer's fill result arrives on.
func runPipe(src io.Reader, tail error) (*pipe, chan error) {
	p := newPipe(false)
	done := make(chan error, 1)
	go func() {
		err := p.fill(src)
		if err == nil {
			err = tail
		}
		p.closeWrite(err)
		done <- err
	}()
	return p, done
}

func TestPipeCarriesEverything(t *testing.T) {
	data := make([]byte, 5*pipeChunk+123)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	for _, size := range []int{0, 1, 1000, pipeChunk, len(data)} {
		p, done := runPipe(iotest.HalfReader(bytes.NewReader(data[:size])), nil)
		got, err := io.ReadAll(iotest.OneByteReader(p))
		if err != nil || !bytes.Equal(got, data[:size]) {
			t.Errorf("size %d: read %d bytes, %v", size, len(got), err)
		}
		if err := <-done; err != nil {
			t.Errorf("size %d: producer: %v", size, err)
		}
	}
}

func TestPipeErrorFollowsTheData(t *testing.T) {
	boom := errors.New("boom")
	// An error of the source, after some data.
	p, _ := runPipe(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)), nil)
	got, err := io.ReadAll(p)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Errorf("read %q, %v; want abc then boom", got, err)
	}
	// An error the producer finds after the source's end (a digest mismatch).
	p, _ = runPipe(bytes.NewReader([]byte("abc")), boom)
	got, err = io.ReadAll(p)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Errorf("read %q, %v; want abc then boom", got, err)
	}
}

func TestPipeStopReleasesProducer(t *testing.T) {
	// An endless source: the producer fills the queue and blocks until stop.
	p, done := runPipe(iotest.HalfReader(zeroes{}), nil)
	if _, err := io.ReadFull(p, make([]byte, 3*pipeChunk)); err != nil {
		t.Fatal(err)
	}
	p.stop()
	p.stop()
	select {
	case err := <-done:
		if !errors.Is(err, errPipeStopped) {
			t.Errorf("producer returned %v, want errPipeStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("producer still running after stop")
	}
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestPipeSideSeesEverything(t *testing.T) {
	data := make([]byte, 7*pipeChunk+5)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	p := newPipe(true)
	go func() { p.closeWrite(p.fill(iotest.HalfReader(bytes.NewReader(data)))) }()
	side := make(chan []byte)
	go func() {
		var got []byte
		p.drainSide(func(b []byte) { got = append(got, b...) })
		side <- got
	}()
	got, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("consumer read %d bytes, %v", len(got), err)
	}
	if s := <-side; !bytes.Equal(s, data) {
		t.Errorf("side reader saw %d bytes, want %d", len(s), len(data))
	}

	// A consumer that stops early: the producer and the side reader both finish.
	p = newPipe(true)
	done := make(chan error, 1)
	go func() { err := p.fill(zeroes{}); p.closeWrite(err); done <- err }()
	go func() { p.drainSide(func([]byte) {}); side <- nil }()
	if _, err := io.ReadFull(p, make([]byte, pipeChunk+1)); err != nil {
		t.Fatal(err)
	}
	p.stop()
	if err := <-done; !errors.Is(err, errPipeStopped) {
		t.Errorf("producer returned %v", err)
	}
	<-side
}
