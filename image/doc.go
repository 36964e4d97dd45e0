// Package image is berth's image service: it pulls images from registries (mirrors,
// credentials, plain-HTTP and custom-CA hosts), verifies every byte against its digest,
// keeps manifests and configs in a content store, unpacks each layer once into a
// snapshot shared by every image that uses it, and answers list, status, removal and
// usage questions from an in-memory index backed by durable metadata.
//
// Sub-packages each own one job: reference (parsing and normalising image names),
// registry (endpoint resolution and credentials), content (blobs by digest), unpack
// (applying a layer tar inside a root it can never escape), snapshot (one directory per
// layer chain) and store (image metadata).
package image
