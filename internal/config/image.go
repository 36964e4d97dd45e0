package config

// Image configures the image service: [image] in berth.toml. berthd hands it to
// image.New as plain options (cmd/wiring).
type Image struct {
	// MaxConcurrentDownloads bounds the layers fetched at once across all pulls.
	MaxConcurrentDownloads int `toml:"max_concurrent_downloads"`
	// StallTimeout fails a pull that received no byte for this long.
	StallTimeout Duration `toml:"stall_timeout"`
	// MaxLayerSize caps the unpacked size of one layer in bytes (0: no cap). A
	// decompression bomb is refused past it with a clear error.
	MaxLayerSize int64 `toml:"max_layer_size"`
	// Platform selects the manifest from an image index, as os/arch[/variant].
	// Empty means this node's platform.
	Platform string `toml:"platform"`
	// PinnedImages are images reported Pinned, which kubelet's image garbage
	// collection never removes: exact references or IDs, "prefix*" or "*keyword*".
	PinnedImages []string `toml:"pinned_images"`
	// Registry holds mirrors, insecure hosts and credentials.
	Registry Registry `toml:"registry"`
}

// Registry says how to reach registries: [image.registry] in berth.toml.
type Registry struct {
	// Mirrors maps a registry host (docker.io, registry.k8s.io, ...) to endpoints tried in
	// order before the registry itself, e.g. "http://127.0.0.1:5000" or "https://mirror.local".
	Mirrors map[string][]string `toml:"mirrors"`
	// Hosts holds per-host settings, keyed by host[:port] of a registry or a mirror.
	Hosts map[string]Host `toml:"hosts"`
	// MirrorsOnly never contacts a registry itself, only its mirrors (air-gapped nodes).
	MirrorsOnly bool `toml:"mirrors_only"`
}

// Host holds the settings of one registry or mirror host.
type Host struct {
	// PlainHTTP talks HTTP instead of HTTPS to this host.
	PlainHTTP bool `toml:"plain_http"`
	// InsecureSkipVerify accepts any TLS certificate from this host.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// CAFile is a PEM bundle trusted for this host in addition to the system roots.
	CAFile string `toml:"ca_file"`
	// Credentials used when the CRI request carries none.
	Username      string `toml:"username"`
	Password      string `toml:"password"`
	Auth          string `toml:"auth"` // base64("user:password")
	IdentityToken string `toml:"identity_token"`
}
