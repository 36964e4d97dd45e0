package monitor

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Size is a terminal's size.
type Size struct{ Width, Height uint16 }

// Streams are an attach session's ends.
type Streams struct {
	Stdin          io.Reader   // nil: none
	Stdout, Stderr io.Writer   // nil: not wanted. With a terminal, all output goes to Stdout.
	Resize         <-chan Size // nil: none
}

// Attach connects to the running container's stdio until the container exits, ctx
// ends, or (when Stdin is set and the container has StdinOnce) stdin ends: then the
// monitor closes the container's stdin and ends the session when the container exits
// or 2 s later. Monitor gone: errdefs.ErrFailedPrecondition. A Stdin that blocks
// forever keeps one goroutine reading it after Attach returned.
func Attach(ctx context.Context, dir string, s Streams) error {
	c, err := dial(ctx, dir)
	if err != nil {
		return notRunning(err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := request{Op: "attach", Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil}
	if _, err := c.Write(append(mustJSON(req), '\n')); err != nil {
		return notRunning(err)
	}
	br := bufio.NewReaderSize(c, 32<<10)
	line, err := br.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return notRunning(err)
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil || r.Error != "" {
		return fmt.Errorf("monitor attach: %q", line)
	}
	done := make(chan struct{})
	defer close(done)
	if s.Stdin != nil {
		go func() {
			_, _ = io.Copy(c, s.Stdin)
			_ = c.CloseWrite() // stdin's end
		}()
	}
	if s.Resize != nil {
		go resizeLoop(ctx, dir, s.Resize, done)
	}
	err = readFrames(br, s)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func resizeLoop(ctx context.Context, dir string, sizes <-chan Size, done <-chan struct{}) {
	for {
		select {
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			_ = resize(ctx, dir, sz) // a container without a terminal ignores it
		case <-done:
			return
		}
	}
}

// readFrames copies the monitor's frames to the streams until the exit frame or the
// end of the session.
func readFrames(br *bufio.Reader, s Streams) error {
	var hdr [5]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				return nil // the monitor ended the session
			}
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		if n > len(buf) {
			if n > 1<<20 {
				return fmt.Errorf("monitor attach: frame of %d bytes", n)
			}
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return err
		}
		var w io.Writer
		switch hdr[0] {
		case streamStdout:
			w = s.Stdout
		case streamStderr:
			w = s.Stderr
		case streamExit:
			return nil
		}
		if w != nil {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
	}
}
