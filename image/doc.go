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
