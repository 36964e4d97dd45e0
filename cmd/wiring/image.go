package wiring

import (
	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/config"
)

// ImageConfig returns the image service's options for [image] c, with its state under
// root.
func ImageConfig(c config.Image, root string) image.Config {
	out := image.Config{
		Root:                   root,
		MaxConcurrentDownloads: c.MaxConcurrentDownloads,
		StallTimeout:           c.StallTimeout.Duration,
		MaxLayerSize:           c.MaxLayerSize,
		Platform:               c.Platform,
		PinnedImages:           c.PinnedImages,
		Registry: image.RegistryConfig{
			Mirrors:     c.Registry.Mirrors,
			MirrorsOnly: c.Registry.MirrorsOnly,
		},
	}
	if c.Registry.Hosts != nil {
		out.Registry.Hosts = make(map[string]image.HostConfig, len(c.Registry.Hosts))
	}
	for host, h := range c.Registry.Hosts {
		out.Registry.Hosts[host] = image.HostConfig(h)
	}
	return out
}
