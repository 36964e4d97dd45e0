// Package store keeps the durable records of berth's sandbox objects (pods now, their
// containers later): one directory per object, holding
//
//	<dir>/<id>/metadata.json   what never changes once the object exists; written once
//	<dir>/<id>/status.json     what changes; rewritten whole on every change
//
// Each file is written to a temporary file in the same directory, fsynced, renamed over
// the old one, and the directory is fsynced: a reader (recovery after a crash or a power
// loss) sees the old content or the new one, never a mix. Both files carry a schema
// number; the status file also carries a revision that grows by one with every write,
// so that recovery can tell which of two copies is newer and a test can tell that a
// write happened.
//
// An object with metadata and no status is one whose creation had not finished when
// berthd stopped: recovery finishes or undoes it. An object whose status cannot be read
// keeps its metadata; the caller decides what an unknown status means.
//
// Delete renames the object's directory into a trash directory beside dir
// (internal/trash) and fsyncs dir: one rename and one directory fsync commit the
// removal; the owner of the store sweeps the trash later (and at start, for what a
// crash left there).
//
// Store is a thin layer over the file system: it keeps nothing in memory (the sandbox
// package holds the index kubelet's List and Status calls are answered from) and does no
// locking of its own. Callers serialise the writes to one object; writes to different
// objects may run in parallel.
package store
