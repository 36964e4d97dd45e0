package image

import (
	"fmt"
	"strings"

	"github.com/berth-runtime/berth/image/reference"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// pinList says which images the node pins (image.pinned_images): ImageStatus and
// ListImages report them Pinned, and kubelet's image garbage collection never removes
// a pinned image. A pattern is an exact reference (normalised, so "busybox" is
// docker.io/library/busybox:latest) or image ID, a prefix ending in "*"
// ("registry.k8s.io/pause*"), or a keyword between two "*" ("*pause*").
type pinList struct {
	exact    map[string]bool
	prefixes []string
	keywords []string
}

func newPinList(patterns []string) (pinList, error) {
	l := pinList{exact: map[string]bool{}}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		switch {
		case len(p) > 2 && strings.HasPrefix(p, "*") && strings.HasSuffix(p, "*"):
			l.keywords = append(l.keywords, p[1:len(p)-1])
		case len(p) > 1 && strings.HasSuffix(p, "*") && !strings.Contains(p[:len(p)-1], "*"):
			l.prefixes = append(l.prefixes, p[:len(p)-1])
		case strings.Contains(p, "*"):
			return pinList{}, errdefs.InvalidArgument(fmt.Sprintf("image.pinned_images: %q: a pattern is exact, ends in *, or is *keyword*", p))
		default:
			if id, ok := reference.ParseID(p); ok {
				l.exact[id] = true
				continue
			}
			n, err := reference.Normalise(p)
			if err != nil {
				return pinList{}, fmt.Errorf("image.pinned_images: %w", err)
			}
			l.exact[n] = true
		}
	}
	return l, nil
}

// pinned reports whether any of an image's names (ID, tags, digests) matches.
func (l pinList) pinned(names ...string) bool {
	for _, n := range names {
		if l.exact[n] {
			return true
		}
		for _, p := range l.prefixes {
			if strings.HasPrefix(n, p) {
				return true
			}
		}
		for _, k := range l.keywords {
			if strings.Contains(n, k) {
				return true
			}
		}
	}
	return false
}
