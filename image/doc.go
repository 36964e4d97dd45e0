// Package image is berth's image service: it pulls images from registries (mirrors,
// credentials, plain-HTTP and custom-CA hosts), verifies every byte against its digest,
// keeps manifests and configs in a content store, unpacks each layer once into a
// snapshot shared by every image that uses it, and answers list, status, removal and
// usage questions from an in-memory index backed by durable metadata.
//
// Sub-packages each own one job: reference (parsing and normalising image names),
// registry (endpoint resolution, credentials, talking to one endpoint), content (blobs
// by digest), unpack (applying a layer tar inside a root it can never escape), snapshot
// (one directory per layer chain) and store (image metadata).
//
// # On disk (Config.Root)
//
//	metadata.db                        images, names, layer records, leases (bbolt)
//	content/blobs/sha256/<hex>         manifests, indexes, configs
//	snapshots/<chain id hex>/fs        one unpacked layer each
//	snapshots/tmp/, content/ingest/    work in progress, emptied at start
//
// Compressed layer blobs are not kept: each layer is streamed once from the registry
// through digest verification, decompression and diffID hashing into its snapshot, and
// only the snapshot and a record (layer digest -> diffID, chain ID, size) remain. See
// package content for why.
//
// # Pull
//
// The reference is normalised (reference.Parse). A digested reference already present
// needs no network at all. Otherwise the manifest is looked up at each endpoint in turn
// (mirrors in order, then the registry; fall-through rules in package registry); from an
// index the entry for Config.Platform (default: this node) is taken. If an image with
// that config digest is present with all its snapshots, only its names are added.
// Otherwise the config is fetched, then the missing layers in parallel: all pulls share
// one bound (Config.MaxConcurrentDownloads), a layer several pulls want is fetched once
// (keyed by chain ID, the work cancelled only when no pull waits for it any more), and a
// layer whose snapshot exists is never fetched. Blobs come first from the endpoint that
// served the manifest, then from the others.
//
// Names: a tagged pull records the tag (moving it from any other image, which keeps its
// digests and stays listed, as in containerd) and <repository>@<digest of what the
// reference named: the index or the manifest>; a digested pull records only the digest
// reference. The image ID is the config digest; Size is compressed layers + config +
// manifest.
//
// A failed pull deletes the manifest and config blobs it wrote (unless used), keeps the
// snapshots of the layers it completed and verified, so that kubelet's retry of a pull
// that ran out of time does not start from zero, and leaves nothing half-made: a layer
// becomes a snapshot only by a rename after verification.
//
// A layer's bytes are decompressed on a goroutine of their own, ahead of the unpack that
// creates the files, so that inflating and system calls overlap. Connections to an
// endpoint (ping, authentication handshake) are reused across pulls (package registry).
//
// # Durability
//
// A crash at any point leaves, once New has run, either no image or a whole one: no
// record ever names a missing or partial snapshot or blob. The order that guarantees it:
//
//  1. Blobs are written to a temporary file and renamed into place; layers are unpacked
//     into a temporary directory, verified (digest and diffID), given their info.json
//     and renamed into place. None of this is flushed one by one (the content store
//     and the snapshotter defer their syncs). Large files are handed to the kernel's
//     writeback as soon as they are written, so the flush below mostly finds them on
//     disk already.
//  2. Before the metadata transaction that records the image (or adds names and blobs
//     to one), one syncfs of the image root's filesystem makes every write completed so
//     far durable: file data, inodes and the renames. Concurrent pulls share it, and a
//     pull that wrote nothing new needs none (see syncer).
//  3. The record is committed (bbolt, which fsyncs).
//
// A crash before 3 leaves blobs and snapshots that no durable record names; after the
// crash they may be damaged (empty files, a truncated info.json), since they were never
// flushed. New deletes every snapshot and blob that no record or lease names before it
// serves anything, so none of them is ever used. Within a running service they are
// whole, and a later pull that uses them flushes them before its own record. This is one
// syncfs per pull instead of one per layer plus an fsync per blob and directory; it
// flushes the whole filesystem, like the per-layer syncfs it replaces.
//
// # Remove and references
//
// Remove follows the CRI (and critest): removing an image by any of its names or its ID
// removes the image with all its tags and digests. Then everything nothing references
// is deleted — snapshots, blobs and layer records not used by a remaining image, a pull
// in progress or a lease — including what failed pulls left. Containers (a later issue)
// pin the snapshots they run on with Acquire(holder, ref) and Release(holder): a lease is
// durable, survives the image's removal, and its snapshots go when the last user does.
//
// # Locking
//
// Reads (Get, List, Usage) are served from memory under the metadata store's lock.
// Service.mu serialises the decisions about references — pins, commits, removals,
// collection — and is never held during network I/O or while a snapshot's files are
// deleted. Concurrent removals of one image: one wins, the others get NotFound.
//
// # Recovery
//
// New empties the temporary directories, drops image records whose snapshots or blobs
// are gone (kubelet pulls them again) and collects what no record or lease references.
package image
