package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// pullTimeout bounds one PullImage of a test image (tiny layers over loopback; generous
// for a loaded 2-core machine running berthd with -race).
const pullTimeout = 60 * time.Second

// serveRegistry starts a loopback registry with imgs; it is closed when the test ends
// (after the daemons started later, as cleanups run last-in first-out).
func serveRegistry(t *testing.T, imgs ...testimages.Image) *testimages.Registry {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := testimages.Serve(ctx, "127.0.0.1:0", imgs)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		reg.Close()
	})
	return reg
}

// servedBusybox builds the real busybox image and serves it, from a registry of the
// test's own, as Docker Hub's busybox (testimages.BusyboxImage).
func servedBusybox(t *testing.T) (*testimages.Registry, v1.Image) {
	t.Helper()
	busybox, err := testimages.EnsureBusybox(ctxTimeout(t, 5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	b, err := testimages.NewBuilder(busybox)
	if err != nil {
		t.Fatal(err)
	}
	img, err := b.BusyboxImage(testimages.Docker, testimages.BusyboxConfig())
	if err != nil {
		t.Fatal(err)
	}
	reg := serveRegistry(t)
	push(t, reg, img, testimages.BusyboxImage)
	return reg, img
}

// push publishes img under refs (mirror paths, see testimages.MirrorPath).
func push(t *testing.T, reg *testimages.Registry, img v1.Image, refs ...string) {
	t.Helper()
	if err := reg.Push(ctxTimeout(t, 30*time.Second), testimages.Image{Refs: refs, Image: img}); err != nil {
		t.Fatal(err)
	}
}

// newLayer is a gzip layer of files, as testimages.Tar writes them.
func newLayer(t *testing.T, files ...testimages.File) *testimages.Layer {
	t.Helper()
	tarball, err := testimages.Tar(files)
	if err != nil {
		t.Fatal(err)
	}
	return tarLayer(t, tarball)
}

// tarLayer is a gzip layer of an uncompressed tar archive.
func tarLayer(t *testing.T, tarball []byte) *testimages.Layer {
	t.Helper()
	l, err := testimages.NewLayer(tarball, testimages.Docker.LayerMediaType())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// newImage is a Docker-format image of the host platform.
func newImage(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := testimages.NewImage(testimages.Docker, cfg, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tinyImage is a one-layer image whose config carries label, so that images built
// with different labels have different IDs while sharing their layer.
func tinyImage(t *testing.T, label string) v1.Image {
	t.Helper()
	layer := newLayer(t, testimages.Dir("etc", 0o755), testimages.Reg("etc/tiny", 0o644, "tiny\n"))
	return newImage(t, v1.Config{Cmd: []string{"/bin/true"}, Labels: map[string]string{"test": label}}, layer)
}

// idOf is the image ID berth must report for img: the digest of its config.
func idOf(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// digestOf is the digest of img's manifest.
func digestOf(t *testing.T, img interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// layerDigests are the digests of img's layer blobs.
func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]v1.Hash, len(layers))
	for i, l := range layers {
		if out[i], err = l.Digest(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func spec(ref string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: ref} }

// pull pulls ref and returns the image ref berthd answers with.
func (d *daemon) pull(t *testing.T, ref string) string {
	t.Helper()
	resp, err := d.images.PullImage(ctxTimeout(t, pullTimeout), &runtimeapi.PullImageRequest{Image: spec(ref)})
	if err != nil {
		t.Fatalf("PullImage(%s): %v", ref, err)
	}
	return resp.ImageRef
}

// pullErr pulls ref with auth and returns the error only.
func (d *daemon) pullErr(t *testing.T, ref string, auth *runtimeapi.AuthConfig) error {
	_, err := d.images.PullImage(ctxTimeout(t, pullTimeout), &runtimeapi.PullImageRequest{Image: spec(ref), Auth: auth})
	return err
}

// status returns the image ref names, nil if berthd has none.
func (d *daemon) status(t *testing.T, ref string) *runtimeapi.Image {
	t.Helper()
	resp, err := d.images.ImageStatus(ctxTimeout(t, 30*time.Second), &runtimeapi.ImageStatusRequest{Image: spec(ref)})
	if err != nil {
		t.Fatalf("ImageStatus(%s): %v", ref, err)
	}
	return resp.Image
}

// list lists the images, those filter names if it is not empty.
func (d *daemon) list(t *testing.T, filter string) []*runtimeapi.Image {
	t.Helper()
	req := &runtimeapi.ListImagesRequest{}
	if filter != "" {
		req.Filter = &runtimeapi.ImageFilter{Image: spec(filter)}
	}
	resp, err := d.images.ListImages(ctxTimeout(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("ListImages(%q): %v", filter, err)
	}
	return resp.Images
}

// remove removes the image ref names and fails the test on an error.
func (d *daemon) remove(t *testing.T, ref string) {
	t.Helper()
	if _, err := d.images.RemoveImage(ctxTimeout(t, 30*time.Second), &runtimeapi.RemoveImageRequest{Image: spec(ref)}); err != nil {
		t.Fatalf("RemoveImage(%s): %v", ref, err)
	}
}

// fsUsage is the single image filesystem ImageFsInfo reports.
func (d *daemon) fsUsage(t *testing.T) *runtimeapi.FilesystemUsage {
	t.Helper()
	resp, err := d.images.ImageFsInfo(ctxTimeout(t, 30*time.Second), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.ImageFilesystems); n != 1 {
		t.Fatalf("ImageFsInfo reports %d image filesystems, want 1", n)
	}
	return resp.ImageFilesystems[0]
}

// ids are the IDs of imgs, sorted.
func ids(imgs []*runtimeapi.Image) []string {
	out := make([]string, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, img.Id)
	}
	slices.Sort(out)
	return out
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, code)
	}
}

// tree lists every path under dir, relative to it, directories with a trailing "/".
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		if e.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// emptyImageRoot is what <root>/image holds when no image, pull or removal is left.
var emptyImageRoot = []string{
	"content/", "content/blobs/", "content/blobs/sha256/", "content/ingest/",
	"metadata.db", "snapshots/", "snapshots/tmp/",
}

// checkImageRootEmpty fails the test if <root>/image holds anything but empty stores:
// no blob, no snapshot, nothing in progress.
func checkImageRootEmpty(t *testing.T, d *daemon) {
	t.Helper()
	got := tree(t, d.imageRoot())
	if extra := without(got, emptyImageRoot); len(extra) > 0 {
		t.Errorf("leftovers under %s: %q", d.imageRoot(), extra)
	}
}

// without returns the elements of a not in b.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// rawTar writes entries into a tar archive exactly as given: names and link targets may
// be absolute (testimages.Tar strips their leading "/") or climb with "..".
func rawTar(t *testing.T, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o644,
			ModTime: testimages.Epoch, Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeDir:
			hdr.Mode = 0o755
		case tar.TypeReg:
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar %s: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar %s: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawEntry is one entry of rawTar.
type rawEntry struct {
	typ  byte
	name string
	link string // symlink or hardlink target
	body string // regular file content
}

func regEntry(name, body string) rawEntry { return rawEntry{typ: tar.TypeReg, name: name, body: body} }
func dirEntry(name string) rawEntry       { return rawEntry{typ: tar.TypeDir, name: name} }
func symlinkEntry(name, target string) rawEntry {
	return rawEntry{typ: tar.TypeSymlink, name: name, link: target}
}
func hardlinkEntry(name, target string) rawEntry {
	return rawEntry{typ: tar.TypeLink, name: name, link: target}
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// blobStaller holds a registry's GETs of one blob until released, or until berthd hangs
// up. arrived gets a value for each request held, hungUp for each one berthd abandoned.
type blobStaller struct {
	arrived, hungUp chan struct{}
	release         chan struct{}
	once            sync.Once
}

// stallBlob makes reg hold the GETs of blob until the test ends or releaseAll.
func stallBlob(t *testing.T, reg *testimages.Registry, blob v1.Hash) *blobStaller {
	s := &blobStaller{arrived: make(chan struct{}, 100), hungUp: make(chan struct{}, 100), release: make(chan struct{})}
	reg.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+blob.String()) {
			return false
		}
		s.arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			s.hungUp <- struct{}{}
			return true
		case <-s.release:
			return false // let the registry answer
		}
	})
	t.Cleanup(s.releaseAll)
	return s
}

// releaseAll lets every held request and every later one through.
func (s *blobStaller) releaseAll() { s.once.Do(func() { close(s.release) }) }

// recv waits for a value on ch and fails the test after timeout.
func recv(t *testing.T, ch <-chan struct{}, timeout time.Duration, failure string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatal(failure)
	}
}

// waitLog waits until a line of berthd's log holds all of parts and returns the first.
func waitLog(t *testing.T, d *daemon, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(d.log.String(), "\n") {
			if containsAll(line, parts) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("no berthd log line holds %q", parts)
			return ""
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// snapshotDir is where berthd keeps the files of the layer with chainID.
func snapshotDir(d *daemon, chainID string) string {
	return filepath.Join(d.imageRoot(), "snapshots", strings.TrimPrefix(chainID, "sha256:"), "fs")
}
