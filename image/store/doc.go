// Package store keeps the image service's metadata durable in one bbolt database
// (<root>/metadata.db) and answers every read from an in-memory copy loaded at Open, so
// listing and status never touch the disk.
//
// Buckets, each keyed by a string and holding JSON values:
//
//	images  image ID (config digest)  -> Image (everything but the names)
//	refs    normalised tag or digest reference -> image ID
//	layers  compressed layer digest   -> Layer (diffID, chain ID, size)
//	leases  holder (e.g. a container ID) -> Lease (the chain IDs it pins)
//
// The refs bucket is the only place names live: an image's RepoTags and RepoDigests are
// derived from it, so a tag that moves to another image can never be listed twice. Every
// write is one bbolt transaction, applied to the in-memory copy only after it committed.
package store
