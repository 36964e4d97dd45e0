// Package registrar reserves the names of objects being created (a pod's
// name_namespace_uid_attempt, later a container's name in its pod) so that one name never
// belongs to two objects, and so that kubelet's retry of a create that ran past its
// deadline finds the first create instead of failing.
//
// A reservation goes through two stages: pending, while its owner creates the object,
// and held, once the object exists, until Release. A second Reserve of the same name
// with the same fingerprint (a hash of the request: the retry asks for exactly the same
// object) joins the reservation instead of failing: it waits for a pending create to end
// and gets its id, or gets the id of the object at once when it is held. Only a request
// with a different fingerprint is refused (errdefs.ErrAlreadyExists), naming the holder.
// A create that fails releases the name; whoever waited for it gets its error, and the
// next request makes a fresh attempt. There is no state in which a name stays reserved
// with no create running and no object holding it.
//
// The registrar is in memory only: after a restart, the sandbox package reserves the
// names of the objects it recovers before it serves any request.
package registrar

import (
	"context"
	"fmt"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Registrar maps names to the ids of the objects that hold them. It is safe for
// concurrent use.
type Registrar struct {
	mu    sync.Mutex
	names map[string]*Reservation
}

// New returns an empty Registrar.
func New() *Registrar {
	return &Registrar{names: map[string]*Reservation{}}
}

// Reservation is one name's claim by one object.
type Reservation struct {
	Name        string
	ID          string
	Fingerprint string

	done chan struct{} // closed when the create ended
	err  error         // the create's error; read after done is closed
}

// Reserve claims name for a new object id. When the name is free it returns a pending
// reservation and owner true: the caller creates the object and must call Finish. When
// the name is reserved with the same fingerprint, it returns that reservation and owner
// false: the caller is a retry and should Wait. Any other holder makes it fail with
// errdefs.ErrAlreadyExists.
func (r *Registrar) Reserve(name, id, fingerprint string) (res *Reservation, owner bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.names[name]; ok {
		if cur.Fingerprint != fingerprint {
			return nil, false, fmt.Errorf("name %q is held by %s, created with a different configuration: %w",
				name, cur.ID, errdefs.ErrAlreadyExists)
		}
		return cur, false, nil
	}
	res = &Reservation{Name: name, ID: id, Fingerprint: fingerprint, done: make(chan struct{})}
	r.names[name] = res
	return res, true, nil
}

// Hold records that the object id, which exists already (recovered after a restart),
// holds name. A name held twice (two recovered objects with one name, which berth never
// makes) keeps its first holder and reports the conflict.
func (r *Registrar) Hold(name, id, fingerprint string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.names[name]; ok && cur.ID != id {
		return fmt.Errorf("name %q is held by %s and %s: %w", name, cur.ID, id, errdefs.ErrAlreadyExists)
	}
	done := make(chan struct{})
	close(done)
	r.names[name] = &Reservation{Name: name, ID: id, Fingerprint: fingerprint, done: done}
	return nil
}

// Finish ends the create of a pending reservation. With err nil the object exists and
// keeps the name until Release; otherwise the name is free again and every waiter gets
// err.
func (r *Registrar) Finish(res *Reservation, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-res.done:
		return // finished already
	default:
	}
	res.err = err
	close(res.done)
	if err != nil && r.names[res.Name] == res {
		delete(r.names, res.Name)
	}
}

// Release frees name if the object id holds it.
func (r *Registrar) Release(name, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.names[name]; ok && cur.ID == id {
		delete(r.names, name)
	}
}

// Lookup returns the id holding name (pending or held).
func (r *Registrar) Lookup(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.names[name]
	if !ok {
		return "", false
	}
	return cur.ID, true
}

// Wait blocks until the create of res ends or ctx is done. It returns the object's id,
// or the error the create failed with, or ctx's error.
// A finished create wins over a done ctx.
func (res *Reservation) Wait(ctx context.Context) (string, error) {
	select {
	case <-res.done:
	default:
		select {
		case <-res.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if res.err != nil {
		return "", res.err
	}
	return res.ID, nil
}
