package image

import "time"

// Image is what berth knows of one pulled image. Values handed out are copies: callers
// may keep them without locking.
type Image struct {
	// ID is the digest of the image's config blob ("sha256:…"), as the CRI expects.
	ID string
	// RepoTags are normalised tagged references ("docker.io/library/busybox:latest").
	RepoTags []string
	// RepoDigests are normalised digested references ("docker.io/library/busybox@sha256:…")
	// naming the manifest (or index) that was pulled.
	RepoDigests []string
	// Size is the sum of the compressed sizes of the layers plus config and manifest,
	// the number kubelet's image GC accounts with.
	Size uint64
	// Config is the raw OCI image config JSON (verbose ImageStatus returns it).
	Config []byte
	// User is the config's User field, unparsed ("1000", "www-data:1004", ...).
	User string
	// ChainIDs are the snapshot keys of the layers, base layer first.
	ChainIDs []string
	// Pinned images are never garbage-collected by kubelet.
	Pinned bool
	// Created is when berth finished pulling the image.
	Created time.Time
}

// AuthConfig carries the credentials of one pull, as the CRI hands them over.
type AuthConfig struct {
	Username      string
	Password      string
	Auth          string // base64("user:password")
	ServerAddress string
	IdentityToken string
	RegistryToken string
}

// Usage is the space the image filesystem takes.
type Usage struct {
	// Mountpoint is the directory holding the images (Config.Root).
	Mountpoint string
	UsedBytes  uint64
	InodesUsed uint64
	// Timestamp is when the numbers were measured.
	Timestamp time.Time
}
