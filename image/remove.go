package image

import (
	"context"
	"log/slog"
	"time"

	"github.com/berth-runtime/berth/image/content"
	"github.com/berth-runtime/berth/image/snapshot"
	"github.com/berth-runtime/berth/image/store"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Remove removes the image ref names (resolved as Get does) with all its tags and
// digests, as the CRI's RemoveImage and containerd do, then deletes every snapshot and
// blob that no remaining image, lease or pull in progress uses. An absent image is an
// error wrapping errdefs.ErrNotFound (the CRI layer treats it as success). Of several
// concurrent removals of one image, one succeeds and the others get NotFound. ctx is
// not consulted: removal does no network I/O and is not worth leaving half done.
func (s *Service) Remove(ctx context.Context, ref string) error {
	s.mu.Lock()
	id, err := s.lookup(ref)
	if err == nil {
		// The layer records only this image uses go in the same transaction: one
		// metadata commit per removal.
		_, err = s.meta.Delete(id, s.layersOnlyOf(id)...)
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	removed, err := s.collectLocked()
	s.mu.Unlock()
	purge(s.log, removed)
	s.log.Info("removed image", "ref", ref, "id", id, "snapshotsRemoved", len(removed))
	return err
}

// collectLocked removes the snapshots, blobs and layer records nothing uses any more:
// no image record, lease or pin. Snapshots are only renamed away here; the caller purges
// them after releasing s.mu. Orphans of failed pulls are collected too.
func (s *Service) collectLocked() ([]snapshot.Removed, error) {
	used := map[string]bool{}
	usedLayers := map[string]bool{}
	for _, img := range s.meta.Images() {
		for _, l := range img.Layers {
			used[l.ChainID] = true
			usedLayers[l.Digest] = true
		}
		for _, b := range img.Blobs {
			used[b] = true
		}
	}
	for _, l := range s.meta.Leases() {
		for _, c := range l.ChainIDs {
			used[c] = true
		}
	}
	for k := range s.pins {
		used[k] = true
	}
	var removed []snapshot.Removed
	for _, info := range s.snaps.List() {
		if used[info.ChainID] {
			continue
		}
		r, err := s.snaps.Remove(info.ChainID)
		if err != nil {
			return removed, err
		}
		removed = append(removed, r)
	}
	err := s.content.Walk(func(i content.Info) error {
		if used[i.Digest] {
			return nil
		}
		return s.content.Delete(i.Digest)
	})
	if err != nil {
		return removed, err
	}
	var stale []string
	for _, l := range s.meta.Layers() {
		if !usedLayers[l.Digest] {
			stale = append(stale, l.Digest)
		}
	}
	return removed, s.meta.DeleteLayers(stale)
}

// layersOnlyOf returns the layer digests of image id that no other image record uses.
func (s *Service) layersOnlyOf(id string) []string {
	img, ok := s.meta.Image(id)
	if !ok {
		return nil
	}
	only := map[string]bool{}
	for _, l := range img.Layers {
		only[l.Digest] = true
	}
	for _, other := range s.meta.Images() {
		if other.ID == id {
			continue
		}
		for _, l := range other.Layers {
			delete(only, l.Digest)
		}
	}
	out := make([]string, 0, len(only))
	for d := range only {
		out = append(out, d)
	}
	return out
}

// discardBlobs deletes blobs that no image record or pull in progress uses.
func (s *Service) discardBlobs(digests []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	used := map[string]bool{}
	for _, img := range s.meta.Images() {
		for _, b := range img.Blobs {
			used[b] = true
		}
	}
	for _, d := range digests {
		if d == "" || used[d] || s.pins[d] > 0 {
			continue
		}
		if err := s.content.Delete(d); err != nil {
			s.log.Warn("deleting the blob of a failed pull", "digest", d, "error", err)
		}
	}
}

// purge deletes the files of removed snapshots.
func purge(log *slog.Logger, removed []snapshot.Removed) {
	for _, r := range removed {
		if err := r.Purge(); err != nil {
			log.Warn("deleting a removed snapshot failed; it is retried at the next start", "error", err)
		}
	}
}

// Acquire pins the snapshots of the image ref names for holder (a container ID) until
// Release, whatever happens to the image meanwhile: removing the image drops its names
// and record, but not the snapshots a holder still uses. Leases are durable; acquiring
// again for a holder replaces its lease.
func (s *Service) Acquire(holder, ref string) (Image, error) {
	if holder == "" {
		return Image{}, errdefs.InvalidArgument("image lease: empty holder")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.lookup(ref)
	if err != nil {
		return Image{}, err
	}
	rec, ok := s.meta.Image(id)
	if !ok {
		return Image{}, errdefs.NotFound("image " + ref + " not found")
	}
	lease := store.Lease{Holder: holder, ImageID: id, ChainIDs: rec.ChainIDs(), Created: time.Now().UTC()}
	if err := s.meta.PutLease(lease); err != nil {
		return Image{}, err
	}
	return s.toImage(rec), nil
}

// Release drops holder's lease and deletes what nothing else uses. Releasing an unknown
// holder is not an error.
func (s *Service) Release(holder string) error {
	s.mu.Lock()
	ok, err := s.meta.DeleteLease(holder)
	if !ok || err != nil {
		s.mu.Unlock()
		return err
	}
	removed, err := s.collectLocked()
	s.mu.Unlock()
	purge(s.log, removed)
	return err
}

// Leases returns holder -> image ID of every lease, for reconciliation after a restart.
func (s *Service) Leases() map[string]string {
	out := map[string]string{}
	for _, l := range s.meta.Leases() {
		out[l.Holder] = l.ImageID
	}
	return out
}

// Usage is the space the images take, from the sizes recorded when snapshots and blobs
// were written: no walk of the filesystem.
func (s *Service) Usage() Usage {
	snapBytes, snapInodes := s.snaps.Usage()
	blobBytes, blobs := s.content.Usage()
	return Usage{
		Mountpoint: s.cfg.Root,
		UsedBytes:  uint64(snapBytes + blobBytes),
		InodesUsed: uint64(snapInodes + blobs),
		Timestamp:  time.Now(),
	}
}
