package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// lifecycleImage is one image of TestImageLifecycle and how berthd must name it.
type lifecycleImage struct {
	name   string
	img    v1.Image
	ref    string // tagged reference into the test registry
	repo   string // ref without the tag
	digest string // what ref resolves to: the manifest, or the index around it
}

// TestImageLifecycle drives every image RPC over two images, a plain Docker manifest and
// an OCI index: pull, status by each name, verbose status, list, stream, usage, removal.
func TestImageLifecycle(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	cfg := v1.Config{
		Env:    []string{"PATH=/bin", "GREETING=hello"},
		Cmd:    []string{"/bin/sh", "-c", "true"},
		User:   "1002",
		Labels: map[string]string{"test": "lifecycle"},
	}
	base := newLayer(t, testimages.Dir("bin", 0o755), testimages.Reg("bin/tool", 0o755, "#!/bin/sh\n"))
	top := newLayer(t, testimages.Dir("etc", 0o755), testimages.Reg("etc/motd", 0o644, "hello\n"))

	plain := lifecycleImage{name: "docker manifest", img: newImage(t, cfg, base, top)}
	plain.repo = reg.Addr() + "/test/plain"
	plain.ref = plain.repo + ":1"
	plain.digest = digestOf(t, plain.img)
	push(t, reg, plain.img, plain.ref)

	cfg.Labels = map[string]string{"test": "index"}
	host, err := testimages.NewImage(testimages.OCI, cfg, base, top)
	if err != nil {
		t.Fatal(err)
	}
	other, err := testimages.NewPlatformImage(testimages.OCI, v1.Platform{OS: "linux", Architecture: "s390x"}, cfg, top)
	if err != nil {
		t.Fatal(err)
	}
	index, err := testimages.NewIndex(testimages.OCI, host, other)
	if err != nil {
		t.Fatal(err)
	}
	multi := lifecycleImage{name: "oci index", img: host, repo: reg.Addr() + "/test/multi"}
	multi.ref = multi.repo + ":2"
	multi.digest = digestOf(t, index)
	if err := reg.Push(ctxTimeout(t, 30*time.Second), testimages.Image{Refs: []string{multi.ref}, Image: host, Index: index}); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, daemonOptions{})
	if img := d.status(t, plain.ref); img != nil {
		t.Fatalf("ImageStatus of an image never pulled = %v, want nil", img)
	}
	empty := d.fsUsage(t)
	if mp := empty.FsId.GetMountpoint(); !strings.HasPrefix(mp, d.root()+"/") {
		t.Errorf("image filesystem mountpoint %q is not under the root %s", mp, d.root())
	}

	for _, li := range []lifecycleImage{plain, multi} {
		t.Run("pull "+li.name, func(t *testing.T) {
			if got, want := d.pull(t, li.ref), idOf(t, li.img); got != want {
				t.Fatalf("PullImage = %s, want the config digest %s", got, want)
			}
			checkStatusByEveryName(t, d, li)
			checkVerboseStatus(t, d, li.ref, li.img)
		})
	}
	t.Run("list and stream", func(t *testing.T) { checkListAndStream(t, d, plain, multi) })

	pulled := d.fsUsage(t)
	if pulled.UsedBytes.GetValue() <= empty.UsedBytes.GetValue() || pulled.InodesUsed.GetValue() <= empty.InodesUsed.GetValue() {
		t.Errorf("ImageFsInfo after the pulls: %d bytes, %d inodes; before: %d bytes, %d inodes",
			pulled.UsedBytes.GetValue(), pulled.InodesUsed.GetValue(), empty.UsedBytes.GetValue(), empty.InodesUsed.GetValue())
	}

	t.Run("remove", func(t *testing.T) { checkRemoval(t, d, plain) })
	d.remove(t, multi.repo+"@"+multi.digest)
	if imgs := d.list(t, ""); len(imgs) != 0 {
		t.Errorf("images left after removing both: %v", imgs)
	}
	after := d.fsUsage(t)
	if after.UsedBytes.GetValue() != empty.UsedBytes.GetValue() || after.InodesUsed.GetValue() != empty.InodesUsed.GetValue() {
		t.Errorf("ImageFsInfo after removing everything: %d bytes, %d inodes; want the empty %d, %d",
			after.UsedBytes.GetValue(), after.InodesUsed.GetValue(), empty.UsedBytes.GetValue(), empty.InodesUsed.GetValue())
	}
	checkImageRootEmpty(t, d)
}

// checkStatusByEveryName asks ImageStatus for li by each name berth accepts.
func checkStatusByEveryName(t *testing.T, d *daemon, li lifecycleImage) {
	id := idOf(t, li.img)
	names := map[string]string{
		"tag":         li.ref,
		"id":          id,
		"bare id":     strings.TrimPrefix(id, "sha256:"),
		"id prefix":   strings.TrimPrefix(id, "sha256:")[:12],
		"repo digest": li.repo + "@" + li.digest,
	}
	for kind, name := range names {
		img := d.status(t, name)
		if img == nil {
			t.Errorf("ImageStatus by %s %s: nil image", kind, name)
			continue
		}
		if img.Id != id {
			t.Errorf("ImageStatus by %s: id %s, want %s", kind, img.Id, id)
		}
		if !slices.Equal(img.RepoTags, []string{li.ref}) {
			t.Errorf("ImageStatus by %s: repo tags %q, want [%s]", kind, img.RepoTags, li.ref)
		}
		if want := li.repo + "@" + li.digest; !slices.Equal(img.RepoDigests, []string{want}) {
			t.Errorf("ImageStatus by %s: repo digests %q, want [%s]", kind, img.RepoDigests, want)
		}
		if want := imageSize(t, li.img); img.Size != want {
			t.Errorf("ImageStatus by %s: size %d, want %d (layers, config and manifest)", kind, img.Size, want)
		}
		if img.GetUid().GetValue() != 1002 || img.Username != "" {
			t.Errorf("ImageStatus by %s: uid %v, username %q; want 1002 from USER", kind, img.Uid, img.Username)
		}
		if img.Spec.GetImage() != id {
			t.Errorf("ImageStatus by %s: spec %q, want the id", kind, img.Spec.GetImage())
		}
	}
}

// imageSize is what the CRI reports as an image's size: compressed layers, config and
// manifest.
func imageSize(t *testing.T, img v1.Image) uint64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size + int64(len(raw))
	for _, l := range m.Layers {
		n += l.Size
	}
	return uint64(n)
}

// checkVerboseStatus checks that verbose ImageStatus carries the image's config.
func checkVerboseStatus(t *testing.T, d *daemon, ref string, img v1.Image) {
	resp, err := d.images.ImageStatus(ctxTimeout(t, 30*time.Second), &runtimeapi.ImageStatusRequest{Image: spec(ref), Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ImageSpec v1.ConfigFile `json:"imageSpec"`
		ChainIDs  []string      `json:"chainIDs"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.Info, err)
	}
	want, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	got := info.ImageSpec
	if !slices.Equal(got.Config.Env, want.Config.Env) || !slices.Equal(got.Config.Cmd, want.Config.Cmd) ||
		got.Config.User != want.Config.User || got.Config.Labels["test"] != want.Config.Labels["test"] {
		t.Errorf("verbose info config = %+v, want %+v", got.Config, want.Config)
	}
	if !slices.Equal(got.RootFS.DiffIDs, want.RootFS.DiffIDs) || got.Architecture != want.Architecture {
		t.Errorf("verbose info rootfs %v arch %s, want %v %s", got.RootFS.DiffIDs, got.Architecture, want.RootFS.DiffIDs, want.Architecture)
	}
	if len(info.ChainIDs) != len(want.RootFS.DiffIDs) || info.ChainIDs[0] != want.RootFS.DiffIDs[0].String() {
		t.Errorf("verbose info chain IDs %v for diff IDs %v", info.ChainIDs, want.RootFS.DiffIDs)
	}
}

// checkListAndStream compares ListImages and StreamImages, with and without filters.
func checkListAndStream(t *testing.T, d *daemon, plain, multi lifecycleImage) {
	all := []string{idOf(t, plain.img), idOf(t, multi.img)}
	slices.Sort(all)
	filters := []struct {
		filter string
		want   []string
	}{
		{"", all},
		{plain.ref, []string{idOf(t, plain.img)}},
		{idOf(t, multi.img), []string{idOf(t, multi.img)}},
		{multi.repo + "@" + multi.digest, []string{idOf(t, multi.img)}},
		{plain.repo + ":absent", []string{}},
	}
	for _, f := range filters {
		listed := ids(d.list(t, f.filter))
		if !slices.Equal(listed, f.want) {
			t.Errorf("ListImages(filter %q) = %v, want %v", f.filter, listed, f.want)
		}
		streamed := ids(streamImages(t, d, f.filter))
		if !slices.Equal(streamed, listed) {
			t.Errorf("StreamImages(filter %q) = %v, ListImages %v", f.filter, streamed, listed)
		}
	}
}

// streamImages collects every image StreamImages sends.
func streamImages(t *testing.T, d *daemon, filter string) []*runtimeapi.Image {
	t.Helper()
	req := &runtimeapi.StreamImagesRequest{}
	if filter != "" {
		req.Filter = &runtimeapi.ImageFilter{Image: spec(filter)}
	}
	stream, err := d.images.StreamImages(ctxTimeout(t, 30*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	var out []*runtimeapi.Image
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("StreamImages: %v", err)
		}
		out = append(out, resp.Images...)
	}
}

// checkRemoval removes li by each of its names, pulling it again each time, and removes
// it twice: the second removal succeeds too.
func checkRemoval(t *testing.T, d *daemon, li lifecycleImage) {
	id := idOf(t, li.img)
	for _, by := range []struct{ kind, name string }{
		{"tag", li.ref}, {"id", id}, {"repo digest", li.repo + "@" + li.digest},
	} {
		t.Run("by "+by.kind, func(t *testing.T) {
			d.pull(t, li.ref)
			d.remove(t, by.name)
			for _, name := range []string{li.ref, id, li.repo + "@" + li.digest} {
				if img := d.status(t, name); img != nil {
					t.Errorf("ImageStatus(%s) after removal = %v, want nil", name, img)
				}
			}
			if slices.Contains(ids(d.list(t, "")), id) {
				t.Errorf("ListImages still lists %s", id)
			}
			d.remove(t, by.name) // idempotent
		})
	}
	d.remove(t, li.repo+":never-pulled")
}

// TestImageReferenceNormalisation pulls short Docker Hub names and other registries'
// names through the test registry configured as their mirror.
func TestImageReferenceNormalisation(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	d := startDaemon(t, daemonOptions{Config: reg.MirrorTOML()})
	cases := []struct {
		pull    string
		tag     string   // the repo tag berthd must record
		aliases []string // other spellings ImageStatus must accept
	}{
		{"busybox", "docker.io/library/busybox:latest",
			[]string{"busybox:latest", "library/busybox", "docker.io/busybox", "index.docker.io/library/busybox:latest"}},
		{"someone/app:v1", "docker.io/someone/app:v1", []string{"docker.io/someone/app:v1"}},
		{"registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", nil},
		{"registry.k8s.io/e2e-test-images/busybox:1.29-2", "registry.k8s.io/e2e-test-images/busybox:1.29-2", nil},
	}
	for _, tc := range cases {
		t.Run(tc.pull, func(t *testing.T) {
			img := tinyImage(t, tc.tag)
			push(t, reg, img, tc.tag)
			repo, tag, err := testimages.MirrorPath(tc.tag)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.pull(t, tc.pull); got != idOf(t, img) {
				t.Fatalf("PullImage(%s) = %s, want %s", tc.pull, got, idOf(t, img))
			}
			if n := reg.Requests(http.MethodGet, "/v2/"+repo+"/manifests/"+tag) + reg.Requests(http.MethodHead, "/v2/"+repo+"/manifests/"+tag); n == 0 {
				t.Errorf("the mirror was never asked for %s:%s", repo, tag)
			}
			for _, name := range append([]string{tc.pull, tc.tag}, tc.aliases...) {
				st := d.status(t, name)
				if st == nil || st.Id != idOf(t, img) {
					t.Errorf("ImageStatus(%s) = %v, want %s", name, st, idOf(t, img))
					continue
				}
				repoName := strings.TrimSuffix(tc.tag, ":"+tag)
				if !slices.Equal(st.RepoTags, []string{tc.tag}) || !slices.Equal(st.RepoDigests, []string{repoName + "@" + digestOf(t, img)}) {
					t.Errorf("ImageStatus(%s): tags %q digests %q, want [%s] [%s@%s]", name, st.RepoTags, st.RepoDigests, tc.tag, repoName, digestOf(t, img))
				}
			}
		})
	}

	t.Run("a tag that moves", func(t *testing.T) {
		old := d.status(t, "busybox")
		if old == nil {
			t.Fatal("busybox is not there")
		}
		moved := tinyImage(t, "busybox moved")
		push(t, reg, moved, "docker.io/library/busybox:latest")
		if got := d.pull(t, "busybox"); got != idOf(t, moved) {
			t.Fatalf("PullImage(busybox) after the tag moved = %s, want %s", got, idOf(t, moved))
		}
		if st := d.status(t, "docker.io/library/busybox:latest"); st == nil || st.Id != idOf(t, moved) {
			t.Fatalf("the tag names %v, want %s", st, idOf(t, moved))
		}
		prev := d.status(t, old.Id)
		if prev == nil {
			t.Fatal("the image the tag named before is gone; it must stay, untagged")
		}
		if len(prev.RepoTags) != 0 || !slices.Equal(prev.RepoDigests, old.RepoDigests) {
			t.Errorf("the previous image has tags %q digests %q; want no tag and its digests %q", prev.RepoTags, prev.RepoDigests, old.RepoDigests)
		}
		if n := len(d.list(t, "")); n != len(cases)+1 {
			t.Errorf("ListImages has %d images, want %d", n, len(cases)+1)
		}
	})
}

// TestImageUser checks the uid and username ImageStatus derives from USER.
func TestImageUser(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	d := startDaemon(t, daemonOptions{})
	layer := newLayer(t, testimages.Reg("etc/passwd", 0o644, testimages.Passwd))
	cases := []struct {
		user     string
		uid      *int64
		username string
	}{
		{"", nil, ""},
		{"1002", ptr[int64](1002), ""},
		{"www-data", nil, "www-data"},
		{"1003:1004", ptr[int64](1003), ""},
		{"www-data:1004", nil, "www-data"},
		{"0", ptr[int64](0), ""},
	}
	for i, tc := range cases {
		t.Run("USER "+tc.user, func(t *testing.T) {
			ref := reg.Addr() + "/test/user:" + string(rune('a'+i))
			push(t, reg, newImage(t, v1.Config{User: tc.user}, layer), ref)
			d.pull(t, ref)
			img := d.status(t, ref)
			if img == nil {
				t.Fatal("nil image")
			}
			if (img.Uid == nil) != (tc.uid == nil) || (tc.uid != nil && img.Uid.Value != *tc.uid) || img.Username != tc.username {
				t.Errorf("uid %v username %q, want uid %v username %q", img.Uid, img.Username, deref(tc.uid), tc.username)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestImageBadInput checks the gRPC codes of requests that cannot succeed, and that they
// leave nothing behind.
func TestImageBadInput(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	push(t, reg, tinyImage(t, "bad input"), reg.Addr()+"/test/app:1")
	d := startDaemon(t, daemonOptions{})
	cases := []struct {
		name string
		ref  string
		code codes.Code
	}{
		{"unknown repository", reg.Addr() + "/test/absent:1", codes.NotFound},
		{"unknown tag", reg.Addr() + "/test/app:absent", codes.NotFound},
		{"unknown digest", reg.Addr() + "/test/app@sha256:" + strings.Repeat("0", 64), codes.NotFound},
		{"upper case", "UPPER/case", codes.InvalidArgument},
		{"space", "a b", codes.InvalidArgument},
		{"colons", "::", codes.InvalidArgument},
		{"trailing colon", reg.Addr() + "/test/app:", codes.InvalidArgument},
		{"short digest", reg.Addr() + "/test/app@sha256:abc", codes.InvalidArgument},
		{"image id", "sha256:" + strings.Repeat("a", 64), codes.InvalidArgument},
		{"empty", "", codes.InvalidArgument},
		{"unreachable registry", "127.0.0.1:1/test/app:1", codes.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := d.pullErr(t, tc.ref, nil)
			wantCode(t, "PullImage("+tc.ref+")", err, tc.code)
			if err != nil && tc.ref != "" && !strings.Contains(err.Error(), tc.ref) {
				t.Errorf("the error does not name the reference: %v", err)
			}
		})
	}
	t.Run("no image spec", func(t *testing.T) {
		ctx := ctxTimeout(t, 30*time.Second)
		_, err := d.images.PullImage(ctx, &runtimeapi.PullImageRequest{})
		wantCode(t, "PullImage without spec", err, codes.InvalidArgument)
		_, err = d.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec("")})
		wantCode(t, "ImageStatus of an empty spec", err, codes.InvalidArgument)
		_, err = d.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{})
		wantCode(t, "RemoveImage without spec", err, codes.InvalidArgument)
	})
	if imgs := d.list(t, ""); len(imgs) != 0 {
		t.Errorf("failed pulls left images: %v", imgs)
	}
	checkImageRootEmpty(t, d)
}
