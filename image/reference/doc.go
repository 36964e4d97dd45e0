// Package reference parses and normalises the image references the CRI hands over,
// the way kubelet and the other runtimes spell them:
//
//	busybox                      -> docker.io/library/busybox:latest
//	foo/bar                      -> docker.io/foo/bar:latest
//	gcr.io/x/y                   -> gcr.io/x/y:latest
//	index.docker.io/busybox      -> docker.io/library/busybox:latest
//	localhost:5000/x:1           -> localhost:5000/x:1
//	name:tag@sha256:<hex>        -> docker.io/library/name@sha256:<hex>   (the digest wins)
//
// Splitting is done by go-containerregistry's pkg/name; on top of it this package
// applies the stricter grammar of the distribution reference (lowercase path components,
// tag syntax, sha256 digests only, 255 characters at most) so that every name it
// accepts is one every other runtime and registry accepts too, and it spells Docker Hub
// "docker.io" as the CRI does (pkg/name says "index.docker.io").
//
// It also recognises image IDs ("sha256:<64 hex>" or the bare 64 hex digits) and ID
// prefixes for lookups. A bare 64-hex string is an ID, never a repository name.
//
// Every error wraps errdefs.ErrInvalidArgument.
package reference
