package store

import (
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Put stores img (replacing any record with the same ID), points every reference in
// refs at it, taking each from the image it named before, and stores layers. All of it
// is one transaction.
func (s *Store) Put(img Image, refs []string, layers []Layer) error {
	if img.ID == "" {
		return errors.New("store: image without ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketImages), img.ID, img); err != nil {
			return err
		}
		for _, ref := range refs {
			if err := tx.Bucket(bucketRefs).Put([]byte(ref), []byte(img.ID)); err != nil {
				return err
			}
		}
		for _, l := range layers {
			if err := putJSON(tx.Bucket(bucketLayers), l.Digest, l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing image %s: %w", img.ID, err)
	}
	s.images[img.ID] = clone(img)
	for _, ref := range refs {
		s.setRef(ref, img.ID)
	}
	for _, l := range layers {
		s.layers[l.Digest] = l
	}
	return nil
}

// Delete removes an image record, every reference naming it and the layer records
// listed in layers (absent ones are ignored), in one transaction, and returns the
// removed record. An absent image is an error wrapping errdefs.ErrNotFound.
func (s *Store) Delete(id string, layers ...string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[id]
	if !ok {
		return Image{}, errdefs.NotFound("image " + id + " not found")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for ref := range s.names[id] {
			if err := tx.Bucket(bucketRefs).Delete([]byte(ref)); err != nil {
				return err
			}
		}
		for _, d := range layers {
			if err := tx.Bucket(bucketLayers).Delete([]byte(d)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketImages).Delete([]byte(id))
	})
	if err != nil {
		return Image{}, fmt.Errorf("deleting image %s: %w", id, err)
	}
	for ref := range s.names[id] {
		delete(s.refs, ref)
	}
	delete(s.names, id)
	delete(s.images, id)
	for _, d := range layers {
		delete(s.layers, d)
	}
	return img, nil
}

// DeleteLayers removes layer records; absent ones are ignored.
func (s *Store) DeleteLayers(digests []string) error {
	if len(digests) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, d := range digests {
			if err := tx.Bucket(bucketLayers).Delete([]byte(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting layer records: %w", err)
	}
	for _, d := range digests {
		delete(s.layers, d)
	}
	return nil
}

// PutLease stores (or replaces) a holder's lease.
func (s *Store) PutLease(l Lease) error {
	if l.Holder == "" {
		return errdefs.InvalidArgument("lease without holder")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketLeases), l.Holder, l)
	})
	if err != nil {
		return fmt.Errorf("storing lease %s: %w", l.Holder, err)
	}
	s.leases[l.Holder] = l
	return nil
}

// DeleteLease removes a holder's lease and reports whether there was one.
func (s *Store) DeleteLease(holder string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.leases[holder]; !ok {
		return false, nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).Delete([]byte(holder))
	})
	if err != nil {
		return false, fmt.Errorf("deleting lease %s: %w", holder, err)
	}
	delete(s.leases, holder)
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}
