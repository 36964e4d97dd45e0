package image

import "time"

// Config is the image service's part of berthd's configuration ([image] in berth.toml).
// Zero values mean "use the default" (see Defaults).
type Config struct {
	// Root is the directory holding the content store, snapshots and metadata.
	// berthd sets it to <root>/image; it is not read from TOML.
	Root string `toml:"-"`
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
	// Registry holds mirrors, insecure hosts and credentials.
	Registry RegistryConfig `toml:"registry"`
	// PinnedImages are images reported Pinned, which kubelet's image garbage
	// collection never removes: exact references or IDs, "prefix*" or "*keyword*".
	PinnedImages []string `toml:"pinned_images"`
}

// RegistryConfig says how to reach registries: [image.registry] in berth.toml.
type RegistryConfig struct {
	// Mirrors maps a registry host (docker.io, registry.k8s.io, ...) to endpoints tried in
	// order before the registry itself, e.g. "http://127.0.0.1:5000" or "https://mirror.local".
	Mirrors map[string][]string `toml:"mirrors"`
	// Hosts holds per-host settings, keyed by host[:port] of a registry or a mirror.
	Hosts map[string]HostConfig `toml:"hosts"`
	// MirrorsOnly never contacts a registry itself, only its mirrors (air-gapped nodes).
	MirrorsOnly bool `toml:"mirrors_only"`
}

// HostConfig holds the settings of one registry or mirror host.
type HostConfig struct {
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

// Duration is a time.Duration written in TOML as a string such as "1m30s".
type Duration struct{ time.Duration }

// UnmarshalText parses "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as "1m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Defaults returns the configuration berthd uses when berth.toml says nothing.
func Defaults() Config {
	return Config{
		MaxConcurrentDownloads: 3,
		StallTimeout:           Duration{time.Minute},
		MaxLayerSize:           16 << 30,
	}
}
