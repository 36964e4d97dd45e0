package image

import "time"

// Config is what the image service is opened with: plain options. berthd fills them
// from [image] in berth.toml (internal/config, converted by cmd/wiring), where the
// defaults live.
type Config struct {
	// Root is the directory holding the content store, snapshots and metadata.
	Root string
	// MaxConcurrentDownloads bounds the layers fetched at once across all pulls; at
	// least 1.
	MaxConcurrentDownloads int
	// StallTimeout fails a pull that received no byte for this long; positive.
	StallTimeout time.Duration
	// MaxLayerSize caps the unpacked size of one layer in bytes (0: no cap). A
	// decompression bomb is refused past it with a clear error.
	MaxLayerSize int64
	// Platform selects the manifest from an image index, as os/arch[/variant].
	// Empty means this node's platform.
	Platform string
	// Registry holds mirrors, insecure hosts and credentials.
	Registry RegistryConfig
	// PinnedImages are images reported Pinned, which kubelet's image garbage
	// collection never removes: exact references or IDs, "prefix*" or "*keyword*".
	PinnedImages []string
}

// RegistryConfig says how to reach registries.
type RegistryConfig struct {
	// Mirrors maps a registry host (docker.io, registry.k8s.io, ...) to endpoints tried in
	// order before the registry itself, e.g. "http://127.0.0.1:5000" or "https://mirror.local".
	Mirrors map[string][]string
	// Hosts holds per-host settings, keyed by host[:port] of a registry or a mirror.
	Hosts map[string]HostConfig
	// MirrorsOnly never contacts a registry itself, only its mirrors (air-gapped nodes).
	MirrorsOnly bool
}

// HostConfig holds the settings of one registry or mirror host.
type HostConfig struct {
	// PlainHTTP talks HTTP instead of HTTPS to this host.
	PlainHTTP bool
	// InsecureSkipVerify accepts any TLS certificate from this host.
	InsecureSkipVerify bool
	// CAFile is a PEM bundle trusted for this host in addition to the system roots.
	CAFile string
	// Credentials used when the CRI request carries none.
	Username      string
	Password      string
	Auth          string // base64("user:password")
	IdentityToken string
}
