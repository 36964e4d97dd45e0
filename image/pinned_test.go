package image

import (
	"context"
	"slices"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestPinList(t *testing.T) {
	const id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name     string
		patterns []string
		names    []string
		want     bool
		invalid  bool
	}{
		{name: "nothing pinned", names: []string{"docker.io/library/busybox:latest"}},
		{name: "exact normalised", patterns: []string{"busybox"}, names: []string{"docker.io/library/busybox:latest"}, want: true},
		{name: "exact other tag", patterns: []string{"busybox:1.36"}, names: []string{"docker.io/library/busybox:latest"}},
		{name: "exact digest", patterns: []string{"registry.k8s.io/pause@" + id}, names: []string{"registry.k8s.io/pause@" + id}, want: true},
		{name: "image ID", patterns: []string{id}, names: []string{id, "docker.io/library/x:1"}, want: true},
		{name: "bare ID", patterns: []string{id[len("sha256:"):]}, names: []string{id}, want: true},
		{name: "prefix", patterns: []string{"registry.k8s.io/pause*"}, names: []string{"registry.k8s.io/pause:3.10"}, want: true},
		{name: "prefix no match", patterns: []string{"registry.k8s.io/pause*"}, names: []string{"docker.io/library/pause:1"}},
		{name: "keyword", patterns: []string{"*pause*"}, names: []string{"docker.io/library/pause:1"}, want: true},
		{name: "one of several names", patterns: []string{"quay.io/x*"}, names: []string{"docker.io/a:1", "quay.io/x/y:2"}, want: true},
		{name: "star inside", patterns: []string{"docker.io/*/busybox"}, invalid: true},
		{name: "bad reference", patterns: []string{"Not A Ref"}, invalid: true},
		{name: "empty", patterns: []string{""}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := newPinList(tc.patterns)
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("newPinList(%q) = %v, want InvalidArgument", tc.patterns, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.pinned(tc.names...); got != tc.want {
				t.Errorf("pinned(%v) with %q = %v, want %v", tc.names, tc.patterns, got, tc.want)
			}
		})
	}
}

// TestPinnedImagesReported pulls two images with one of them pinned by configuration:
// Pull, Get and List report it Pinned, the other not.
func TestPinnedImagesReported(t *testing.T) {
	reg := newTestRegistry(t)
	pinnedRef := reg.push(t, "infra/pause:3.10", twoLayerImage(t, "0"))
	otherRef := reg.push(t, "team/app:v1", twoLayerImage(t, "1000"))
	s := newTestService(t, func(c *Config) { c.PinnedImages = []string{reg.host() + "/infra/*"} }, nil)
	for _, tc := range []struct {
		ref  string
		want bool
	}{{pinnedRef, true}, {otherRef, false}} {
		img, err := s.Pull(context.Background(), tc.ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if img.Pinned != tc.want || got.Pinned != tc.want {
			t.Errorf("%s: pinned after pull %v, on lookup %v; want %v", tc.ref, img.Pinned, got.Pinned, tc.want)
		}
	}
	for _, img := range s.List("") {
		if want := slices.Contains(img.RepoTags, pinnedRef); img.Pinned != want {
			t.Errorf("List: %v pinned %v, want %v", img.RepoTags, img.Pinned, want)
		}
	}
}
