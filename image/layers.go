package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-runtime/berth/image/content"
	"github.com/berth-runtime/berth/image/registry"
	"github.com/berth-runtime/berth/image/store"
	"github.com/berth-runtime/berth/image/unpack"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// fetchLayers makes sure every layer has its snapshot, fetching the missing ones in
// parallel. The first failure cancels this pull's other layers (a layer another pull
// also waits for goes on for that pull). It returns the layer records and how many
// layers this pull fetched itself.
func (p *puller) fetchLayers(ctx context.Context, diffIDs, chainIDs []string) ([]store.Layer, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	layers := make([]store.Layer, len(p.pm.Layers))
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		fetched  atomic.Int32
	)
	for i, l := range p.pm.Layers {
		layers[i] = store.Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType, DiffID: diffIDs[i], ChainID: chainIDs[i]}
		if _, ok := p.s.snaps.Stat(chainIDs[i]); ok {
			continue
		}
		wg.Add(1)
		go func(l store.Layer) {
			defer wg.Done()
			err := p.s.flights.Do(ctx, "layer "+l.ChainID, func(fctx context.Context) error {
				did, err := p.fetchLayer(fctx, l)
				if did {
					fetched.Add(1)
				}
				return err
			})
			if err != nil {
				once.Do(func() {
					firstErr = fmt.Errorf("layer %s: %w", l.Digest, err)
					cancel()
				})
			}
		}(layers[i])
	}
	wg.Wait()
	return layers, int(fetched.Load()), firstErr
}

// fetchLayer fetches and unpacks one layer unless its snapshot appeared meanwhile, within
// the global download bound. It reports whether it fetched.
func (p *puller) fetchLayer(ctx context.Context, l store.Layer) (bool, error) {
	if _, ok := p.s.snaps.Stat(l.ChainID); ok {
		return false, nil
	}
	t := time.Now()
	select {
	case p.s.sem <- struct{}{}:
		defer func() { <-p.s.sem }()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	p.tm.since(phWait, t)
	if _, ok := p.s.snaps.Stat(l.ChainID); ok {
		return false, nil
	}
	err := p.src.try(ctx, "layer "+l.Digest, true, func(c *registry.Client) error {
		return p.s.unpackLayer(ctx, c, l, p.tm)
	})
	return true, err
}

// unpackLayer streams one layer from c into a new snapshot and commits it.
func (s *Service) unpackLayer(ctx context.Context, c *registry.Client, l store.Layer, tm *timings) error {
	t := time.Now()
	pending, err := s.snaps.Prepare()
	if err != nil {
		return err
	}
	defer pending.Abort()
	rc, err := c.Blob(ctx, l.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	tm.since(phFetch, t)
	t = time.Now()
	stats, err := s.applyStream(ctx, rc, l, pending.Root())
	if err != nil {
		return err
	}
	tm.since(phUnpack, t)
	t = time.Now()
	// Published through the syncer: durable before the record of any image using it.
	err = s.sync.publish(func() error {
		_, err := pending.Commit(l.ChainID, stats.Bytes, stats.Inodes)
		return err
	})
	tm.since(phSnapshot, t)
	return err
}

// applyStream is the single pass over a layer's bytes, on three goroutines joined by a
// pipe (see stream.go):
//
//	producer: body -> Verifier (digest, size) -> Decompress -> pipe
//	consumer: pipe -> unpack.Apply
//	side:     pipe -> diffID hash
//
// The side reader hashes every byte the producer sends. After Apply the consumer drains
// what the tar reader left (end-of-archive padding), so the producer reaches the end of
// the stream; after the decompressor's end the producer drains what it left through the
// Verifier, so both digests cover the whole stream. The producer's errors
// (a stall, a digest mismatch, corrupt compression) reach the consumer through the pipe
// in place of the data; a consumer that fails stops the producer. Either way the
// producer has finished before applyStream returns, so nothing reads body afterwards. A
// mismatch of either digest leaves the error; the caller discards the snapshot.
func (s *Service) applyStream(ctx context.Context, body io.Reader, l store.Layer, root string) (unpack.Stats, error) {
	v, err := content.NewVerifier(body, content.Descriptor{Digest: l.Digest, Size: l.Size})
	if err != nil {
		return unpack.Stats{}, err
	}
	p := newPipe(true)
	produced := make(chan error, 1)
	go func() {
		err := produce(v, p)
		p.closeWrite(err)
		produced <- err
	}()
	hashed := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		p.drainSide(func(b []byte) { h.Write(b) })
		hashed <- h.Sum(nil)
	}()
	stats, err := unpack.Apply(ctx, root, p, unpack.Options{MaxSize: s.cfg.MaxLayerSize, Writeback: true})
	if err == nil {
		_, err = io.Copy(io.Discard, p)
	}
	p.stop()
	perr := <-produced
	diffID := <-hashed // the hash covers every byte the producer sent, so all the consumer read
	if perr != nil && !errors.Is(perr, errPipeStopped) {
		err = perr // the root: what the consumer saw of it is an echo or a consequence
	}
	if err != nil {
		return stats, rootCause(err, v)
	}
	if got := "sha256:" + hex.EncodeToString(diffID); got != l.DiffID {
		return stats, withClass(fmt.Errorf("diffID mismatch: the image config says %s, the layer's content is %s", l.DiffID, got), errdefs.ErrDataLoss)
	}
	return stats, nil
}

// produce decompresses v into p, then reads what the decompressor left of v and checks
// its digest and size.
func produce(v *content.Verifier, p *pipe) error {
	dr, err := unpack.Decompress(v)
	if err != nil {
		return err
	}
	err = p.fill(dr)
	if cerr := dr.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		_, err = io.Copy(io.Discard, v)
	}
	if err == nil {
		err = v.Verified()
	}
	return err
}

// rootCause picks the error that explains a failed layer stream. Damaged bytes usually
// break the decompressor or the tar reader before the Verifier reaches the end of the
// data; the digest mismatch is the real story, so the rest of the stream (bounded by the
// manifest's size) is read to find out. Stalls, cancellations and the size cap are
// reported as they are.
func rootCause(err error, v *content.Verifier) error {
	var stall *registry.StallError
	switch {
	case errors.As(err, &stall):
		return stall
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, unpack.ErrTooLarge):
		return withClass(err, errdefs.ErrResourceExhausted)
	case errors.Is(err, content.ErrDigestMismatch):
		return v.Verified()
	}
	if _, derr := io.Copy(io.Discard, v); derr == nil || errors.Is(derr, content.ErrDigestMismatch) {
		if verr := v.Verified(); errors.Is(verr, content.ErrDigestMismatch) {
			return verr
		}
	}
	return err
}
