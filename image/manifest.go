package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-runtime/berth/image/content"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// maxConfigSize bounds the image config blob, which is read into memory.
const maxConfigSize = 16 << 20

// platform is the os/arch/variant an image index is resolved for.
type platform struct{ OS, Arch, Variant string }

func (p platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// parsePlatform reads "os/arch[/variant]"; "" is this node's platform.
func parsePlatform(s string) (platform, error) {
	if s == "" {
		p := platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
		switch p.Arch {
		case "arm64":
			p.Variant = "v8"
		case "arm":
			p.Variant = "v7"
		}
		return p, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, errdefs.InvalidArgument(fmt.Sprintf("platform %q: want os/arch[/variant]", s))
	}
	p := platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// score says how well an index entry fits: 0 not at all, 1 compatible (an entry or a
// wanted variant left unspecified), 2 exact.
func (p platform) score(c *v1.Platform) int {
	if c == nil || c.OS != p.OS || c.Architecture != p.Arch {
		return 0
	}
	cv := c.Variant
	if p.Arch == "arm64" && cv == "" {
		cv = "v8" // arm64 images rarely say it
	}
	switch {
	case cv == p.Variant:
		return 2
	case p.Variant == "" || cv == "":
		return 1
	}
	return 0
}

func isIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

func isManifest(mt string) bool {
	return mt == string(types.OCIManifestSchema1) || mt == string(types.DockerManifestSchema2)
}

// mediaTypeOf trusts the document's own mediaType field, then the Content-Type the
// registry sent, then the shape of the JSON.
func mediaTypeOf(b []byte, contentType string) string {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Layers    json.RawMessage `json:"layers"`
	}
	_ = json.Unmarshal(b, &probe)
	for _, mt := range []string{probe.MediaType, contentType} {
		if isIndex(mt) || isManifest(mt) {
			return mt
		}
	}
	switch {
	case probe.Manifests != nil:
		return string(types.OCIImageIndex)
	case probe.Layers != nil:
		return string(types.OCIManifestSchema1)
	}
	if probe.MediaType != "" {
		return probe.MediaType
	}
	return contentType
}

// pickPlatform returns the digest of the index entry that fits p best.
func pickPlatform(b []byte, p platform) (string, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("parsing image index: %w", err)
	}
	best, bestScore := "", 0
	var seen []string
	for _, m := range idx.Manifests {
		if m.Platform != nil {
			seen = append(seen, m.Platform.String())
		}
		if !isManifest(string(m.MediaType)) && m.MediaType != "" {
			continue // nested indexes, attestations, artifacts
		}
		if sc := p.score(m.Platform); sc > bestScore {
			best, bestScore = m.Digest.String(), sc
		}
	}
	if best == "" {
		return "", errdefs.NotFound(fmt.Sprintf("no image for platform %s in the index (it has %s)", p, strings.Join(seen, ", ")))
	}
	return best, content.ValidateDigest(best)
}

// layerRef is one layer of a manifest.
type layerRef struct {
	content.Descriptor
	MediaType string
}

// parsedManifest is what a pull needs from an image manifest.
type parsedManifest struct {
	Config content.Descriptor
	Layers []layerRef
}

func parseManifest(b []byte) (parsedManifest, error) {
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return parsedManifest{}, fmt.Errorf("parsing manifest: %w", err)
	}
	out := parsedManifest{Config: content.Descriptor{Digest: m.Config.Digest.String(), Size: m.Config.Size}}
	if err := content.ValidateDigest(out.Config.Digest); err != nil {
		return parsedManifest{}, fmt.Errorf("manifest config: %w", err)
	}
	if out.Config.Size < 0 || out.Config.Size > maxConfigSize {
		return parsedManifest{}, fmt.Errorf("manifest config: size %d out of range (at most %d)", out.Config.Size, maxConfigSize)
	}
	for _, l := range m.Layers {
		d := content.Descriptor{Digest: l.Digest.String(), Size: l.Size}
		if err := content.ValidateDigest(d.Digest); err != nil {
			return parsedManifest{}, fmt.Errorf("manifest layer: %w", err)
		}
		if d.Size < 0 {
			return parsedManifest{}, fmt.Errorf("manifest layer %s: negative size", d.Digest)
		}
		out.Layers = append(out.Layers, layerRef{Descriptor: d, MediaType: string(l.MediaType)})
	}
	return out, nil
}

// parsedConfig is what a pull needs from an image config.
type parsedConfig struct {
	User    string
	DiffIDs []string
}

func parseConfig(b []byte, layers int) (parsedConfig, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(b))
	if err != nil {
		return parsedConfig{}, fmt.Errorf("parsing image config: %w", err)
	}
	out := parsedConfig{User: cf.Config.User}
	for _, d := range cf.RootFS.DiffIDs {
		if err := content.ValidateDigest(d.String()); err != nil {
			return parsedConfig{}, fmt.Errorf("image config diff_ids: %w", err)
		}
		out.DiffIDs = append(out.DiffIDs, d.String())
	}
	if len(out.DiffIDs) != layers {
		return parsedConfig{}, fmt.Errorf("image config lists %d diff_ids for %d layers", len(out.DiffIDs), layers)
	}
	return out, nil
}
