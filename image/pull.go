package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/berth-runtime/berth/image/content"
	"github.com/berth-runtime/berth/image/reference"
	"github.com/berth-runtime/berth/image/registry"
	"github.com/berth-runtime/berth/image/snapshot"
	"github.com/berth-runtime/berth/image/store"
)

// Pull fetches the image ref names, unless it is present, and records ref for it.
//
// The reference is normalised; a digested reference already known is answered without
// any network request. Otherwise the endpoints are resolved (mirrors, then the
// registry), the manifest fetched (from an index, the entry for the configured
// platform), and if an image with that config is present with all its snapshots only
// the names are added. Else the config and the missing layers are fetched, each layer
// streamed once through digest verification, decompression, diffID hashing and unpack
// into its snapshot; layers are fetched in parallel within the global download bound,
// and a layer several pulls want is fetched once.
//
// RepoTags gains ref if it is tagged (taking the tag from any image it named before);
// RepoDigests gains <repository>@<digest of the manifest or index the reference named>.
// Errors: a malformed ref wraps errdefs.ErrInvalidArgument; an image found at no
// endpoint wraps errdefs.ErrNotFound; an expired ctx wraps context.DeadlineExceeded.
func (s *Service) Pull(ctx context.Context, ref string, auth *AuthConfig) (Image, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return Image{}, err
	}
	start := time.Now()
	tm := new(timings)
	img, fetched, err := s.pull(ctx, r, auth, tm)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = withClass(err, cerr)
		}
		return Image{}, fmt.Errorf("pull %s: %w", r, err)
	}
	attrs := append([]any{"ref", r.String(), "id", img.ID, "layersFetched", fetched,
		"duration", time.Since(start).Round(time.Microsecond)}, tm.attrs()...)
	s.log.Info("pulled image", attrs...)
	return img, nil
}

// pull is the work of Pull; it also returns how many layers were fetched. A failed pull
// deletes the manifest and config blobs it stored unless something else uses them; the
// snapshots of layers it completed stay until the next collection, so that kubelet's
// retry of a pull that ran out of time does not fetch them again.
func (s *Service) pull(ctx context.Context, ref reference.Reference, auth *AuthConfig, tm *timings) (_ Image, _ int, err error) {
	if ref.IsDigested() {
		if img, ok := s.present(ref.String()); ok {
			return img, 0, nil
		}
	}
	eps, err := s.resolver.Resolve(ref.Domain, registryAuth(auth))
	if err != nil {
		return Image{}, 0, err
	}
	p := &puller{s: s, ref: ref, src: newSources(ref.Path, eps, s.log, tm), tm: tm}
	defer func() {
		p.unpinAll()
		if err != nil && p.man.Digest != "" {
			s.discardBlobs(append([]string{p.pm.Config.Digest}, p.blobs()...))
		}
	}()
	if err := p.fetchManifests(ctx); err != nil {
		return Image{}, 0, err
	}
	t := time.Now()
	if err := p.storeManifests(); err != nil {
		return Image{}, 0, err
	}
	tm.since(phBlobs, t)
	t = time.Now()
	if img, ok, err := s.addNames(p.pm.Config.Digest, p.refs(), p.blobs(), tm); ok || err != nil {
		tm.since(phRecord, t)
		return img, 0, err
	}
	t = time.Now()
	cfg, err := p.fetchConfig(ctx)
	tm.since(phConfig, t)
	if err != nil {
		return Image{}, 0, fmt.Errorf("config %s: %w", p.pm.Config.Digest, err)
	}
	pc, err := parseConfig(cfg, len(p.pm.Layers))
	if err != nil {
		return Image{}, 0, err
	}
	chainIDs := snapshot.ChainIDs(pc.DiffIDs)
	p.pin(chainIDs...)
	layers, fetched, err := p.fetchLayers(ctx, pc.DiffIDs, chainIDs)
	if err != nil {
		return Image{}, fetched, err
	}
	rec := store.Image{
		ID:      p.pm.Config.Digest,
		Size:    p.size(),
		User:    pc.User,
		Layers:  layers,
		Blobs:   append([]string{p.pm.Config.Digest}, p.blobs()...),
		Config:  cfg,
		Created: time.Now().UTC(),
	}
	t = time.Now()
	if err := s.sync.durable(); err != nil {
		return Image{}, fetched, err
	}
	tm.since(phSync, t)
	t = time.Now()
	img, err := s.commit(rec, p.refs())
	tm.since(phRecord, t)
	return img, fetched, err
}

// present returns the image a reference names if it is complete.
func (s *Service) present(ref string) (Image, bool) {
	id, ok := s.meta.Resolve(ref)
	if !ok {
		return Image{}, false
	}
	rec, ok := s.meta.Image(id)
	if !ok || s.missingParts(rec) != "" {
		return Image{}, false
	}
	return s.toImage(rec), true
}

// addNames records refs and blobs for the image id if it is present and complete.
func (s *Service) addNames(id string, refs, blobs []string, tm *timings) (Image, bool, error) {
	if _, ok := s.meta.Image(id); !ok {
		return Image{}, false, nil
	}
	if img, ok := s.alreadyNamed(id, refs, blobs); ok {
		return img, true, nil // the usual repeated pull: nothing to record
	}
	// The blobs may be new (a manifest this pull stored): durable before the record.
	t := time.Now()
	if err := s.sync.durable(); err != nil {
		return Image{}, false, err
	}
	tm.since(phSync, t)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.meta.Image(id)
	if !ok || s.missingParts(rec) != "" {
		return Image{}, false, nil
	}
	rec.Blobs = union(rec.Blobs, blobs)
	if err := s.meta.Put(rec, refs, nil); err != nil {
		return Image{}, true, err
	}
	return s.toImage(rec), true, nil
}

// alreadyNamed returns the image id if it is present and complete, refs all name it and
// its record holds blobs: then a pull has nothing to write, and nothing to flush.
func (s *Service) alreadyNamed(id string, refs, blobs []string) (Image, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.meta.Image(id)
	if !ok || s.missingParts(rec) != "" {
		return Image{}, false
	}
	for _, r := range refs {
		if named, ok := s.meta.Resolve(r); !ok || named != id {
			return Image{}, false
		}
	}
	for _, b := range blobs {
		if !slices.Contains(rec.Blobs, b) {
			return Image{}, false
		}
	}
	return s.toImage(rec), true
}

// commit stores a pulled image. Its parts are pinned by the pull, so they are there, and
// the caller made them durable (syncer.durable) after they were written.
func (s *Service) commit(rec store.Image, refs []string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if missing := s.missingParts(rec); missing != "" {
		return Image{}, fmt.Errorf("internal error: %s vanished during the pull", missing)
	}
	if old, ok := s.meta.Image(rec.ID); ok {
		rec.Blobs = union(old.Blobs, rec.Blobs)
	}
	if err := s.meta.Put(rec, refs, rec.Layers); err != nil {
		return Image{}, err
	}
	return s.toImage(rec), nil
}

// puller is the state of one pull.
type puller struct {
	s   *Service
	ref reference.Reference
	src *sources

	top, man registry.Manifest // what the reference names; the image manifest (same if no index)
	pm       parsedManifest
	unpins   []func()
	tm       *timings
}

func (p *puller) pin(keys ...string) { p.unpins = append(p.unpins, p.s.pin(keys...)) }

func (p *puller) unpinAll() {
	for _, u := range p.unpins {
		u()
	}
}

// fetchManifests finds the image manifest at the first endpoint that has it.
func (p *puller) fetchManifests(ctx context.Context) error {
	return p.src.try(ctx, "manifest", false, func(c *registry.Client) error {
		defer p.tm.since(phManifest, time.Now())
		top, err := c.Manifest(ctx, p.ref.Identifier())
		if err != nil {
			return err
		}
		man, mt := top, mediaTypeOf(top.Bytes, top.MediaType)
		if isIndex(mt) {
			d, err := pickPlatform(top.Bytes, p.s.platform)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Endpoint(), err)
			}
			if man, err = c.Manifest(ctx, d); err != nil {
				return err
			}
			mt = mediaTypeOf(man.Bytes, man.MediaType)
		}
		if !isManifest(mt) {
			return fmt.Errorf("%s: unsupported manifest media type %q", c.Endpoint(), mt)
		}
		pm, err := parseManifest(man.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Endpoint(), err)
		}
		p.top, p.man, p.pm = top, man, pm
		return nil
	})
}

// blobs are the content-store blobs of the manifests: the index (if any), the manifest.
func (p *puller) blobs() []string {
	if p.top.Digest == p.man.Digest {
		return []string{p.man.Digest}
	}
	return []string{p.top.Digest, p.man.Digest}
}

// refs are the names the pull records: the tag if any, and the digest reference.
func (p *puller) refs() []string {
	d := p.ref.WithDigest(p.top.Digest).String()
	if p.ref.IsDigested() {
		return []string{d}
	}
	return []string{p.ref.String(), d}
}

// size is what kubelet accounts the image as: compressed layers, config, manifest.
func (p *puller) size() uint64 {
	n := p.pm.Config.Size + int64(len(p.man.Bytes))
	for _, l := range p.pm.Layers {
		n += l.Size
	}
	return uint64(n)
}

// storeManifests writes the manifest blobs (pinned first, so no removal collects them
// before the image record names them).
func (p *puller) storeManifests() error {
	p.pin(p.pm.Config.Digest)
	p.pin(p.blobs()...)
	for _, m := range []registry.Manifest{p.top, p.man} {
		if p.s.content.Has(m.Digest) {
			continue
		}
		d := content.Descriptor{Digest: m.Digest, Size: int64(len(m.Bytes))}
		if err := p.s.putBlob(d, bytes.NewReader(m.Bytes)); err != nil {
			return err
		}
	}
	return nil
}

// fetchConfig returns the image config, fetched once however many pulls want it.
func (p *puller) fetchConfig(ctx context.Context) ([]byte, error) {
	d := p.pm.Config
	if !p.s.content.Has(d.Digest) {
		err := p.s.flights.Do(ctx, "blob "+d.Digest, func(fctx context.Context) error {
			if p.s.content.Has(d.Digest) {
				return nil
			}
			return p.src.try(fctx, "config", true, func(c *registry.Client) error {
				rc, err := c.Blob(fctx, d.Digest)
				if err != nil {
					return err
				}
				defer rc.Close()
				return p.s.putBlob(d, rc)
			})
		})
		if err != nil {
			return nil, err
		}
	}
	return p.s.content.ReadAll(d.Digest)
}

// putBlob writes a blob to the content store, verifying it, and publishes it through
// the syncer: durable before any record names it.
func (s *Service) putBlob(d content.Descriptor, r io.Reader) error {
	w, err := s.content.Writer(d)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return s.sync.publish(w.Commit)
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
