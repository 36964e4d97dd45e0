package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func twoLayerImage(t *testing.T, user string) v1.Image {
	return imageOf(t, user,
		layerOf(t, map[string]string{"etc/": "", "etc/os-release": "ID=test\n"}),
		layerOf(t, map[string]string{"app/": "", "app/run": "#!/bin/sh\necho " + user + "\n"}),
	)
}

func TestPullAndLookups(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "1000:1000")
	ref := reg.push(t, "team/app:v1", img)
	s := newTestService(t, nil, nil)

	got, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := img.RawManifest()
	layers, _ := img.Layers()
	rawCfg, _ := img.RawConfigFile()
	wantSize := uint64(len(manifest) + len(rawCfg))
	for _, l := range layers {
		n, _ := l.Size()
		wantSize += uint64(n)
	}
	repo := reg.host() + "/team/app"
	if got.ID != configDigest(t, img) {
		t.Errorf("ID = %s, want the config digest %s", got.ID, configDigest(t, img))
	}
	if !slices.Equal(got.RepoTags, []string{ref}) || !slices.Equal(got.RepoDigests, []string{repo + "@" + digestOf(t, img)}) {
		t.Errorf("names = %v %v", got.RepoTags, got.RepoDigests)
	}
	if got.Size != wantSize || got.User != "1000:1000" || len(got.ChainIDs) != 2 || string(got.Config) != string(rawCfg) {
		t.Errorf("got size %d (want %d) user %q chains %v", got.Size, wantSize, got.User, got.ChainIDs)
	}
	if b, err := os.ReadFile(filepath.Join(s.SnapshotPath(got.ChainIDs[1]), "app", "run")); err != nil || !strings.Contains(string(b), "1000:1000") {
		t.Errorf("snapshot content = %q, %v", b, err)
	}

	for _, q := range []string{ref, got.ID, strings.TrimPrefix(got.ID, "sha256:"), got.RepoDigests[0],
		got.ID[:20], strings.TrimPrefix(got.ID, "sha256:")[:12]} {
		if g, err := s.Get(q); err != nil || g.ID != got.ID {
			t.Errorf("Get(%q) = %s, %v", q, g.ID, err)
		}
		if l := s.List(q); len(l) != 1 || l[0].ID != got.ID {
			t.Errorf("List(%q) = %v", q, l)
		}
	}
	for _, q := range []string{reg.host() + "/team/app:v2", "busybox", "sha256:" + strings.Repeat("0", 64), "abc"} {
		if _, err := s.Get(q); !errdefs.IsNotFound(err) {
			t.Errorf("Get(%q) = %v, want not found", q, err)
		}
		if l := s.List(q); len(l) != 0 {
			t.Errorf("List(%q) = %v, want none", q, l)
		}
	}
	if l := s.List(""); len(l) != 1 {
		t.Errorf("List() = %v", l)
	}
	if u := s.Usage(); u.UsedBytes == 0 || u.InodesUsed == 0 || u.Mountpoint != s.cfg.Root {
		t.Errorf("Usage = %+v", u)
	}
}

func TestPullAgainFetchesNoBlob(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	ref := reg.push(t, "app:v1", img)
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	first := reg.blobGETs()
	if len(first) != 3 {
		t.Errorf("first pull fetched %v, want config and 2 layers", first)
	}
	// Another name for the same image: manifest only, no blob.
	ref2 := reg.push(t, "other/app:v9", img)
	for _, r := range []string{ref, ref2} {
		if _, err := s.Pull(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		if got := reg.blobGETs(); len(got) != 0 {
			t.Errorf("pull of %s fetched blobs %v", r, got)
		}
	}
	got, _ := s.Get(ref)
	if len(got.RepoTags) != 2 || len(got.RepoDigests) != 2 {
		t.Errorf("names = %v %v", got.RepoTags, got.RepoDigests)
	}
}

func TestPullByDigest(t *testing.T) {
	reg := newTestRegistry(t)
	img := twoLayerImage(t, "")
	reg.push(t, "app:v1", img)
	ref := reg.host() + "/app@" + digestOf(t, img)
	s := newTestService(t, nil, nil)
	got, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.RepoTags) != 0 || !slices.Equal(got.RepoDigests, []string{ref}) {
		t.Errorf("names = %v %v", got.RepoTags, got.RepoDigests)
	}
	reg.requests()
	if _, err := s.Pull(context.Background(), ref, nil); err != nil {
		t.Fatal(err)
	}
	if n := reg.requests(); n != 0 {
		t.Errorf("pulling a present digest made %d requests", n)
	}
	// A tag and a digest in one reference: the digest wins.
	tagged := reg.host() + "/app:v1@" + digestOf(t, img)
	if got, err := s.Pull(context.Background(), tagged, nil); err != nil || len(got.RepoTags) != 0 {
		t.Errorf("Pull(%s) = %v %v, %v", tagged, got.RepoTags, got.RepoDigests, err)
	}
}

func TestConcurrentPullsFetchEachBlobOnce(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "",
		layerOf(t, map[string]string{"a": strings.Repeat("a", 4096)}),
		layerOf(t, map[string]string{"b": strings.Repeat("b", 4096)}),
		layerOf(t, map[string]string{"c": strings.Repeat("c", 4096)}),
		layerOf(t, map[string]string{"d": strings.Repeat("d", 4096)}),
	)
	ref := reg.push(t, "app:v1", img)
	s := newTestService(t, func(c *Config) { c.MaxConcurrentDownloads = 2 }, nil)
	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.Pull(context.Background(), ref, nil)
			ids[i], errs[i] = got.ID, err
		}()
	}
	wg.Wait()
	for i := range 10 {
		if errs[i] != nil || ids[i] != configDigest(t, img) {
			t.Errorf("pull %d: %s, %v", i, ids[i], errs[i])
		}
	}
	gets := reg.blobGETs()
	if len(gets) != 5 {
		t.Errorf("blobs fetched: %v, want config and 4 layers", gets)
	}
	for d, n := range gets {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", d, n)
		}
	}
	if l := s.List(""); len(l) != 1 {
		t.Errorf("List = %v", l)
	}
}

func TestPullIndexPicksPlatform(t *testing.T) {
	reg := newTestRegistry(t)
	amd := twoLayerImage(t, "amd")
	arm := twoLayerImage(t, "arm")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	ref := reg.pushIndex(t, "multi:v1", idx)
	tests := []struct {
		platform string
		want     v1.Image
		wantErr  bool
	}{
		{platform: "linux/amd64", want: amd},
		{platform: "linux/arm64", want: arm},
		{platform: "linux/arm64/v8", want: arm},
		{platform: "linux/s390x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			s := newTestService(t, func(c *Config) { c.Platform = tt.platform }, nil)
			got, err := s.Pull(context.Background(), ref, nil)
			if tt.wantErr {
				if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "linux/s390x") {
					t.Fatalf("Pull = %v, want not found naming the platform", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != configDigest(t, tt.want) {
				t.Errorf("ID = %s, want %s", got.ID, configDigest(t, tt.want))
			}
			if want := reg.host() + "/multi@" + digestOf(t, idx); !slices.Equal(got.RepoDigests, []string{want}) {
				t.Errorf("RepoDigests = %v, want [%s] (the index)", got.RepoDigests, want)
			}
		})
	}
}

func TestTagMovesToNewerImage(t *testing.T) {
	reg := newTestRegistry(t)
	old, newer := twoLayerImage(t, "old"), twoLayerImage(t, "new")
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	ref := reg.push(t, "app:latest", old)
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	reg.push(t, "app:latest", newer)
	got, err := s.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != configDigest(t, newer) || !slices.Equal(got.RepoTags, []string{ref}) {
		t.Errorf("new image = %s %v", got.ID, got.RepoTags)
	}
	prev, err := s.Get(configDigest(t, old))
	if err != nil {
		t.Fatal(err)
	}
	if len(prev.RepoTags) != 0 || !slices.Equal(prev.RepoDigests, []string{reg.host() + "/app@" + digestOf(t, old)}) {
		t.Errorf("old image keeps %v %v, want no tag and its digest", prev.RepoTags, prev.RepoDigests)
	}
	if l := s.List(""); len(l) != 2 {
		t.Errorf("List = %d images, want 2", len(l))
	}
}

func TestPullInvalidAndMissing(t *testing.T) {
	reg := newTestRegistry(t)
	s := newTestService(t, nil, nil)
	ctx := context.Background()
	if _, err := s.Pull(ctx, "Bad/Name", nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Pull(bad) = %v, want invalid argument", err)
	}
	missing := reg.host() + "/nothing:here"
	_, err := s.Pull(ctx, missing, nil)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Pull(missing) = %v, want not found naming the ref", err)
	}
}

func TestPullTooLargeLayer(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "", layerOf(t, map[string]string{"big": strings.Repeat("x", 10000)}))
	ref := reg.push(t, "big:v1", img)
	s := newTestService(t, func(c *Config) { c.MaxLayerSize = 1000 }, nil)
	_, err := s.Pull(context.Background(), ref, nil)
	if !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("Pull = %v, want resource exhausted", err)
	}
	if len(s.snaps.List()) != 0 || len(tmpLeftovers(t, s)) != 0 {
		t.Errorf("left snapshots %v, tmp %v", s.snaps.List(), tmpLeftovers(t, s))
	}
}

func TestPullTraversalStaysInside(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "", layerOf(t, map[string]string{
		"../../../../escape":   "out",
		"/abs-escape":          "out",
		"ok/../../../escape-2": "out",
		"ok/":                  "",
	}))
	ref := reg.push(t, "evil:v1", img)
	s := newTestService(t, nil, nil)
	got, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Logf("pull refused the layer: %v", err)
	}
	base := filepath.Dir(filepath.Dir(s.cfg.Root)) // the test's temp dir and its parent
	snapRoot := ""
	if err == nil {
		snapRoot = s.SnapshotPath(got.ChainIDs[0])
	}
	filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.Contains(d.Name(), "escape") && (snapRoot == "" || !strings.HasPrefix(p, snapRoot+"/")) {
			t.Errorf("%s was written outside the snapshot", p)
		}
		return nil
	})
	if snapRoot != "" {
		// Confined, the names land inside the snapshot.
		for _, n := range []string{"escape", "abs-escape", "escape-2"} {
			if _, err := os.Stat(filepath.Join(snapRoot, n)); err != nil {
				t.Errorf("%s not inside the snapshot: %v", n, err)
			}
		}
	}
	if len(tmpLeftovers(t, s)) != 0 {
		t.Errorf("tmp leftovers %v", tmpLeftovers(t, s))
	}
}
