package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// TestCorruptBlobs serves blobs whose bytes do not match their digest (or a layer whose
// content does not match the config's diffID): the pull fails with DataLoss and leaves
// nothing — no image, no blob, no snapshot, no temporary file. Once the registry serves
// the right bytes, the same pull works.
func TestCorruptBlobs(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	d := startDaemon(t, daemonOptions{})
	good := testimages.Reg("data", 0o644, strings.Repeat("good bytes\n", 1000))
	otherLayer := compressedLayer(t, newLayer(t, testimages.Reg("data", 0o644, "another image's layer\n")))
	cases := []struct {
		name    string
		image   func(t *testing.T) v1.Image
		corrupt corruption
	}{{
		name:    "layer of the right size",
		corrupt: serveWrong(func(n int) []byte { return bytes.Repeat([]byte("x"), n) }, layerBlob),
	}, {
		name:    "truncated layer",
		corrupt: serveWrong(func(int) []byte { return []byte("short") }, layerBlob),
	}, {
		name:    "layer of another image",
		corrupt: serveWrong(func(int) []byte { return otherLayer }, layerBlob),
	}, {
		name:    "config",
		corrupt: serveWrong(func(n int) []byte { return bytes.Repeat([]byte("{"), n) }, configBlob),
	}, {
		name: "layer that is not what the config's diffID says",
		image: func(t *testing.T) v1.Image {
			claimed, err := testimages.Tar([]testimages.File{good})
			if err != nil {
				t.Fatal(err)
			}
			other := newLayer(t, testimages.Reg("data", 0o644, "other bytes\n"))
			lying, err := testimages.NewRawLayer(claimed, compressedLayer(t, other), testimages.Docker.LayerMediaType())
			if err != nil {
				t.Fatal(err)
			}
			return newImage(t, v1.Config{Labels: map[string]string{"test": "diffid"}}, lying)
		},
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var img v1.Image
			if tc.image != nil {
				img = tc.image(t)
			} else {
				img = newImage(t, v1.Config{Labels: map[string]string{"test": tc.name}}, newLayer(t, good))
			}
			ref := reg.Addr() + "/test/corrupt:" + string(rune('a'+i))
			push(t, reg, img, ref)
			var restore func()
			if tc.corrupt != nil {
				restore = tc.corrupt(t, reg, img)
			}

			err := d.pullErr(t, ref, nil)
			wantCode(t, "PullImage of corrupt content", err, codes.DataLoss)
			if imgs := d.list(t, ""); len(imgs) != 0 {
				t.Errorf("a failed pull left images: %v", imgs)
			}
			checkImageRootEmpty(t, d)

			if restore == nil {
				return
			}
			restore()
			if got := d.pull(t, ref); got != idOf(t, img) {
				t.Errorf("pull with the right bytes = %s, want %s", got, idOf(t, img))
			}
			d.remove(t, ref)
			checkImageRootEmpty(t, d)
		})
	}
}

func layerBlob(t *testing.T, img v1.Image) v1.Hash { return layerDigests(t, img)[0] }

func configBlob(t *testing.T, img v1.Image) v1.Hash {
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// corruption makes reg serve wrong bytes for a blob of img; restore undoes it.
type corruption func(t *testing.T, reg *testimages.Registry, img v1.Image) (restore func())

// serveWrong is the corruption that serves wrong(real size) for the blob which picks.
func serveWrong(wrong func(n int) []byte, which func(*testing.T, v1.Image) v1.Hash) corruption {
	return func(t *testing.T, reg *testimages.Registry, img v1.Image) func() {
		h := which(t, img)
		n := blobSize(t, img, h)
		reg.ServeBlob(h, wrong(n))
		return func() { reg.ServeBlob(h, nil) }
	}
}

// blobSize is the size the manifest of img gives blob h.
func blobSize(t *testing.T, img v1.Image, h v1.Hash) int {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest == h {
		return int(m.Config.Size)
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return int(l.Size)
		}
	}
	t.Fatalf("%s is no blob of the image", h)
	return 0
}

func compressedLayer(t *testing.T, l *testimages.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLayerEscapes pulls layers that try to write outside their snapshot: names that
// climb with "..", absolute names, absolute and relative symlinks pointing out, hardlinks
// to outside files, paths through a symlinked parent. A canary directory next to the
// berthd root (and the host's /etc) must stay untouched, and each entry must land in its
// confined place inside the snapshot (or, where no such place exists, the pull fails).
func TestLayerEscapes(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	d := startDaemon(t, daemonOptions{})
	canary := filepath.Join(d.dir, "canary")
	canaryFiles := map[string]string{"file": "canary\n", "secret": "secret\n"}
	if err := os.Mkdir(canary, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range canaryFiles {
		if err := os.WriteFile(filepath.Join(canary, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hostFiles := map[string][]byte{}
	for _, p := range []string{"/etc/passwd", "/etc/hosts", "/etc/shadow"} {
		if b, err := os.ReadFile(p); err == nil {
			hostFiles[p] = b
		}
	}

	// in is canary's in-snapshot twin: where an entry naming canary is confined to.
	in := strings.TrimPrefix(canary, "/")
	up := strings.Repeat("../", 20)
	for i, tc := range escapeCases(canary, in, up) {
		t.Run(tc.name, func(t *testing.T) {
			var layers []v1.Layer
			for _, entries := range tc.layers {
				layers = append(layers, tarLayer(t, rawTar(t, entries...)))
			}
			img := newImage(t, v1.Config{Labels: map[string]string{"test": tc.name}}, layers...)
			ref := reg.Addr() + "/test/escape:" + string(rune('a'+i))
			push(t, reg, img, ref)
			err := d.pullErr(t, ref, nil)
			if tc.wantErr {
				if err == nil {
					t.Error("the pull succeeded; there is nowhere inside the snapshot to put its entries")
				}
				// Internal for now: unpack does not classify refusals of layer content
				// apart from berth's own failures. Never Unknown.
				if code := grpcstatus.Code(err); code == codes.Unknown {
					t.Errorf("a hostile layer fails with %v: %v", code, err)
				}
			} else if err != nil {
				t.Fatalf("PullImage: %v", err)
			}
			if !tc.wantErr {
				chains := chainIDs(t, d, ref)
				for _, w := range tc.want {
					checkEntry(t, snapshotDir(d, chains[w.layer]), w)
				}
			}
			checkCanary(t, canary, canaryFiles)
		})
	}
	for p, b := range hostFiles {
		if now, err := os.ReadFile(p); err != nil || !bytes.Equal(now, b) {
			t.Errorf("%s changed during the test (%v)", p, err)
		}
	}
	// Nothing appeared next to the berthd root or at the top of the host.
	for _, dir := range []string{d.dir, "/"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.Contains(e.Name(), "escape") || strings.HasPrefix(e.Name(), "via-") {
				t.Errorf("%s appeared in %s", e.Name(), dir)
			}
		}
	}
}

// escapeCase is one hostile image: its layers' entries and where they must land.
type escapeCase struct {
	name    string
	layers  [][]rawEntry
	wantErr bool
	want    []landed
}

// landed is an entry found in layer's snapshot at path: a file with body, a symlink to
// link, or a hardlink of (same inode as) sameAs.
type landed struct {
	layer  int
	path   string
	body   string
	link   string
	sameAs string
}

func escapeCases(canary, in, up string) []escapeCase {
	return []escapeCase{{
		name: "names climbing with dot-dot",
		layers: [][]rawEntry{{
			regEntry(up+in+"/escape-dotdot", "evil"),
			regEntry("a/../../../"+in+"/escape-dotdot-deep", "evil"),
			regEntry(up+in+"/file", "evil"),
		}},
		want: []landed{{path: in + "/escape-dotdot", body: "evil"}, {path: in + "/escape-dotdot-deep", body: "evil"},
			{path: in + "/file", body: "evil"}},
	}, {
		name:   "absolute names",
		layers: [][]rawEntry{{regEntry(canary+"/escape-abs", "evil"), regEntry(canary+"/file", "evil")}},
		want:   []landed{{path: in + "/escape-abs", body: "evil"}, {path: in + "/file", body: "evil"}},
	}, {
		name: "absolute symlink out, written through",
		layers: [][]rawEntry{{
			dirEntry(in + "/"),
			symlinkEntry("abs-link", canary),
			regEntry("abs-link/via-abs-link", "evil"),
			regEntry("abs-link/file", "evil"),
		}},
		want: []landed{{path: "abs-link", link: canary}, {path: in + "/via-abs-link", body: "evil"}, {path: in + "/file", body: "evil"}},
	}, {
		name: "relative symlink out, written through",
		layers: [][]rawEntry{{
			dirEntry(in + "/"),
			symlinkEntry("rel-link", up+in),
			regEntry("rel-link/via-rel-link", "evil"),
		}},
		want: []landed{{path: "rel-link", link: up + in}, {path: in + "/via-rel-link", body: "evil"}},
	}, {
		name:    "absolute symlink out with no twin inside",
		layers:  [][]rawEntry{{symlinkEntry("dangling", canary), regEntry("dangling/via-dangling", "evil")}},
		wantErr: true,
	}, {
		name: "hardlinks to outside files",
		layers: [][]rawEntry{{
			regEntry(in+"/secret", "inside"),
			hardlinkEntry("escape-hl-abs", canary+"/secret"),
			hardlinkEntry("escape-hl-dotdot", up+in+"/secret"),
		}},
		want: []landed{{path: "escape-hl-abs", body: "inside", sameAs: in + "/secret"},
			{path: "escape-hl-dotdot", body: "inside", sameAs: in + "/secret"}},
	}, {
		name:    "hardlink to an outside file with no twin inside",
		layers:  [][]rawEntry{{hardlinkEntry("escape-hl-out", canary+"/secret")}},
		wantErr: true,
	}, {
		name: "symlinked parent directory",
		layers: [][]rawEntry{{
			symlinkEntry("parent", up),
			regEntry("parent/"+in+"/via-parent", "evil"),
			dirEntry("d/"),
			symlinkEntry("d/up", "../.."),
			regEntry("d/up/"+in+"/via-nested-parent", "evil"),
		}},
		want: []landed{{path: in + "/via-parent", body: "evil"}, {path: in + "/via-nested-parent", body: "evil"}},
	}, {
		name: "symlink in a lower layer, written through in an upper one",
		layers: [][]rawEntry{
			{symlinkEntry("lower", canary)},
			{regEntry("lower/via-lower-layer", "evil")},
		},
		want: []landed{{layer: 0, path: "lower", link: canary}, {layer: 1, path: "lower/via-lower-layer", body: "evil"}},
	}}
}

// chainIDs are the snapshot keys of the image ref names, base first (verbose status).
func chainIDs(t *testing.T, d *daemon, ref string) []string {
	t.Helper()
	resp, err := d.images.ImageStatus(ctxTimeout(t, 30*time.Second), &runtimeapi.ImageStatusRequest{Image: spec(ref), Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ChainIDs []string `json:"chainIDs"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil || len(info.ChainIDs) == 0 {
		t.Fatalf("verbose info %q: %v", resp.Info, err)
	}
	return info.ChainIDs
}

// checkEntry checks that w landed in the snapshot directory fs.
func checkEntry(t *testing.T, fs string, w landed) {
	t.Helper()
	p := filepath.Join(fs, w.path)
	switch {
	case w.link != "":
		got, err := os.Readlink(p)
		if err != nil || got != w.link {
			t.Errorf("%s: symlink to %q (%v), want %q", w.path, got, err, w.link)
		}
	default:
		b, err := os.ReadFile(p)
		if err != nil || string(b) != w.body {
			t.Errorf("%s in the snapshot: %q (%v), want %q", w.path, b, err, w.body)
		}
	}
	if w.sameAs != "" {
		a, errA := os.Stat(p)
		b, errB := os.Stat(filepath.Join(fs, w.sameAs))
		if errA != nil || errB != nil || !os.SameFile(a, b) {
			t.Errorf("%s is not a hardlink of %s inside the snapshot (%v, %v)", w.path, w.sameAs, errA, errB)
		}
	}
}

// checkCanary checks that the canary directory holds exactly files, unchanged, each
// with a single link.
func checkCanary(t *testing.T, canary string, files map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(canary)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	var want []string
	for name := range files {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("canary directory holds %q, want %q", names, want)
	}
	for name, body := range files {
		p := filepath.Join(canary, name)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != body {
			t.Errorf("canary %s: %q (%v), want %q", name, b, err, body)
		}
		if st, err := os.Stat(p); err == nil && st.Sys().(*syscall.Stat_t).Nlink != 1 {
			t.Errorf("canary %s has %d links: something hardlinked it", name, st.Sys().(*syscall.Stat_t).Nlink)
		}
	}
}

// TestRegistryCredentials pulls from a registry behind basic auth: without credentials
// or with wrong ones the pull fails with PermissionDenied and a message that says why;
// with the CRI AuthConfig's username and password, or its base64 auth, it works.
func TestRegistryCredentials(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	const user, password = "berth", "s3cret"
	img := tinyImage(t, "private")
	ref := reg.Addr() + "/private/app:1"
	push(t, reg, img, ref)
	reg.SetHook(basicAuth(user, password))
	d := startDaemon(t, daemonOptions{})

	cases := []struct {
		name string
		auth *runtimeapi.AuthConfig
		code codes.Code
	}{
		{"no credentials", nil, codes.PermissionDenied},
		{"wrong password", &runtimeapi.AuthConfig{Username: user, Password: "wrong"}, codes.PermissionDenied},
		{"username and password", &runtimeapi.AuthConfig{Username: user, Password: password}, codes.OK},
		{"base64 auth", &runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}, codes.OK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := d.pullErr(t, ref, tc.auth)
			wantCode(t, "PullImage", err, tc.code)
			if tc.code != codes.OK {
				if msg := strings.ToLower(err.Error()); !strings.Contains(msg, "unauthorized") && !strings.Contains(msg, "authentication required") {
					t.Errorf("the error does not say the registry refused us: %v", err)
				}
				if imgs := d.list(t, ""); len(imgs) != 0 {
					t.Errorf("a refused pull left images: %v", imgs)
				}
				return
			}
			if st := d.status(t, ref); st == nil || st.Id != idOf(t, img) {
				t.Errorf("ImageStatus after the pull = %v", st)
			}
			d.remove(t, ref)
		})
	}
	checkImageRootEmpty(t, d)
}

// basicAuth is a registry hook that refuses requests without the given credentials.
func basicAuth(user, password string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == user && p == password {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
		return true
	}
}
