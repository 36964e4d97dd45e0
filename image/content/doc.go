// Package content is berth's content store: blobs addressed by their sha256 digest,
// kept under <root>/content/blobs/sha256/<hex>.
//
// A blob is written through a Writer that hashes and counts the bytes as they stream in
// to a temporary file under <root>/content/ingest, then fsyncs and renames it into place
// only when digest and size both match; a mismatch leaves nothing behind and the error
// names both digests. With DeferSync (the image service) the fsyncs are left to the
// caller, who flushes the filesystem once before recording what uses the blob. Leftovers of an interrupted write are removed when the store opens.
// The same check is available on its own as a Verifier wrapping any reader.
//
// What lives here: manifests, image indexes and image configs, the small JSON documents
// an image is made of.
//
// What does not: compressed layer blobs. The image service streams each layer once,
// HTTP body -> Verifier (digest, size) -> decompressor -> diffID hash -> unpack into a
// snapshot, and keeps only the unpacked snapshot (keyed by chain ID) plus a metadata
// record mapping the layer digest to its diffID, chain ID and size. Keeping the
// compressed blob as well would double the disk space and the write I/O of every pull
// for a copy nothing reads: containers run from snapshots, and berth does not push or
// export images. The cost is that a snapshot cannot be re-derived locally; a layer whose
// snapshot is gone is fetched again.
package content
