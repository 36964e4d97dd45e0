package testimages

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

var (
	catalogueOnce   sync.Once
	catalogueImages []Image
	catalogueErr    error
)

// testCatalogue builds the catalogue once per test binary, building busybox
// through hack/busybox/build.sh if it is not cached yet (about a minute).
func testCatalogue(t *testing.T) []Image {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the catalogue needs the static busybox (hack/busybox/build.sh)")
	}
	catalogueOnce.Do(func() {
		bb, err := EnsureBusybox(context.Background())
		if err != nil {
			catalogueErr = err
			return
		}
		catalogueImages, catalogueErr = Build(bb)
	})
	if catalogueErr != nil {
		t.Fatalf("building the catalogue: %v", catalogueErr)
	}
	return catalogueImages
}

func byRef(t *testing.T, images []Image, ref string) Image {
	t.Helper()
	for _, img := range images {
		for _, r := range img.Refs {
			if r == ref {
				return img
			}
		}
	}
	t.Fatalf("catalogue has no %s", ref)
	return Image{}
}

// files flattens an image into its tar headers and regular file contents.
func files(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	hdrs, contents := map[string]*tar.Header{}, map[string]string{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg && h.Size < 1<<16 {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			contents[name] = string(b)
		}
	}
	return hdrs, contents
}

// criticalRefs are the references critest v1.37.0 pulls (pkg/validate and
// pkg/framework), except the digest-pinned test-image-digest.
var criticalRefs = []string{
	"gcr.io/k8s-staging-cri-tools/test-image-1:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-2:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-3:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-latest:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:1",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:2",
	"gcr.io/k8s-staging-cri-tools/test-image-tags:3",
	"gcr.io/k8s-staging-cri-tools/test-image-tag:test",
	"gcr.io/k8s-staging-cri-tools/test-image-tag:all",
	"gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-user-username:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-user-uid-group:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-user-username-group:latest",
	"gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest",
	HostNetWebServerImage,
	"registry.k8s.io/e2e-test-images/busybox:1.29-2",
	"registry.k8s.io/e2e-test-images/nginx:1.14-2",
	"registry.k8s.io/e2e-test-images/httpd:2.4.39-4",
	"registry.k8s.io/e2e-test-images/nonewprivs:1.3",
	"registry.k8s.io/pause:3.9",
	"k8s.gcr.io/pause:3.9",
	"docker.io/library/busybox:latest",
}

func TestCatalogueRefs(t *testing.T) {
	images := testCatalogue(t)
	for _, ref := range criticalRefs {
		byRef(t, images, ref)
	}
	// No two images may be served under one mirror path and tag.
	served := map[string]v1.Hash{}
	for _, img := range images {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range img.Refs {
			repo, tag, err := MirrorPath(ref)
			if err != nil {
				t.Fatal(err)
			}
			key := repo + ":" + tag
			if prev, ok := served[key]; ok && prev != d {
				t.Errorf("%s: two images under %s", ref, key)
			}
			served[key] = d
		}
	}
}

func TestCatalogueImageIDs(t *testing.T) {
	images := testCatalogue(t)
	// Each catalogue entry has its own image ID...
	owner := map[v1.Hash]string{}
	for _, img := range images {
		id, err := img.ID()
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := owner[id]; ok {
			t.Errorf("%s and %s have the same image ID %s", prev, img.Refs[0], id)
		}
		owner[id] = img.Refs[0]
	}
	// ...and these references name one image.
	for _, same := range [][]string{
		{CRIToolsPrefix + "test-image-tags:1", CRIToolsPrefix + "test-image-tags:2", CRIToolsPrefix + "test-image-tags:3"},
		{PauseImage, LegacyPauseImage},
	} {
		want, _ := byRef(t, images, same[0]).ID()
		for _, ref := range same[1:] {
			if got, _ := byRef(t, images, ref).ID(); got != want {
				t.Errorf("%s has ID %s, want %s like %s", ref, got, want, same[0])
			}
		}
	}
}

func TestCatalogueConfigs(t *testing.T) {
	images := testCatalogue(t)
	for _, tc := range []struct {
		ref        string
		user       string
		cmd        string
		entrypoint string
	}{
		{CRIToolsPrefix + "test-image-user-uid:latest", "1002", "sh", ""},
		{CRIToolsPrefix + "test-image-user-username:latest", "www-data", "sh", ""},
		{CRIToolsPrefix + "test-image-user-uid-group:latest", "1003:1004", "sh", ""},
		{CRIToolsPrefix + "test-image-user-username-group:latest", "www-data:1004", "sh", ""},
		{CRIToolsPrefix + "test-image-predefined-group:latest", "1000", "sh", ""},
		{CRIToolsPrefix + "test-image-1:latest", "", "sh", ""},
		{DefaultTestImage, "", "sh", ""},
		{BusyboxImage, "", "sh", ""},
		{WebServerTestImage, "", "nginx -g daemon off;", ""},
		{HostNetWebServerImage, "", "nginx -g daemon off;", ""},
		{HttpdTestImage, "", "httpd-foreground", ""},
		{NoNewPrivsImage, "", "/usr/local/bin/nnp", ""},
		{PauseImage, "65535:65535", "", "/pause"},
		{K8sPauseImage, "65535:65535", "", "/pause"},
		{K8sBusyboxImage, "", "sh", ""},
		{K8sNginxImage, "", "nginx -g daemon off;", ""},
		{K8sNonRootImage, "1234", "sh", ""},
		{K8sNoNewPrivsImage, "", "/usr/local/bin/nnp", ""},
		{K8sIpcUtilsImage, "", "sh", ""},
		{K8sGlibcDNSImage, "", "sh", ""},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			cf, err := byRef(t, images, tc.ref).Image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			if c.User != tc.user || strings.Join(c.Cmd, " ") != tc.cmd || strings.Join(c.Entrypoint, " ") != tc.entrypoint {
				t.Errorf("user %q cmd %q entrypoint %q, want %q %q %q", c.User, c.Cmd, c.Entrypoint, tc.user, tc.cmd, tc.entrypoint)
			}
			if cf.OS != "linux" || cf.Architecture != HostPlatform().Architecture {
				t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
			}
		})
	}
}

func TestCatalogueIndexes(t *testing.T) {
	images := testCatalogue(t)
	for _, img := range images {
		m, err := img.Image.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		wantFormat := Docker
		if strings.HasPrefix(img.Refs[0], "docker.io/") {
			wantFormat = OCI
		}
		if m.MediaType != wantFormat.ManifestMediaType() {
			t.Errorf("%s: manifest media type %s", img.Refs[0], m.MediaType)
		}
		if img.Index == nil {
			continue
		}
		im, err := img.Index.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Image.Digest()
		found := 0
		host := HostPlatform()
		for _, desc := range im.Manifests {
			if desc.Platform != nil && desc.Platform.Equals(host) {
				found++
				if desc.Digest != d {
					t.Errorf("%s: host entry %s, want %s", img.Refs[0], desc.Digest, d)
				}
			}
		}
		if found != 1 || im.MediaType != wantFormat.IndexMediaType() {
			t.Errorf("%s: %d host entries, media type %s", img.Refs[0], found, im.MediaType)
		}
	}
}

func TestBusyboxRootfsLinks(t *testing.T) {
	images := testCatalogue(t)
	hdrs, contents := files(t, byRef(t, images, DefaultTestImage).Image)
	bb := hdrs["bin/busybox"]
	if bb == nil || bb.Typeflag != tar.TypeReg || bb.Mode != 0o755 {
		t.Fatalf("bin/busybox: %+v", bb)
	}
	links := 0
	for name, h := range hdrs {
		if h.Typeflag == tar.TypeSymlink {
			t.Errorf("%s is a symlink; applets must be hard links", name)
		}
		if h.Typeflag == tar.TypeLink {
			links++
			if h.Linkname != "bin/busybox" {
				t.Errorf("%s links to %s", name, h.Linkname)
			}
		}
	}
	for _, applet := range []string{"sh", "ls", "cat", "echo", "sleep", "top", "ps", "id", "hostname",
		"ipcs", "pgrep", "pidof", "nc", "httpd", "wget", "nslookup", "touch", "grep", "ping", "netstat", "brctl"} {
		if h := hdrs["bin/"+applet]; h == nil || h.Typeflag != tar.TypeLink {
			t.Errorf("bin/%s is not a hard link to busybox: %+v", applet, h)
		}
	}
	if links < 300 {
		t.Errorf("only %d hard links", links)
	}
	for _, tc := range []struct {
		path string
		typ  byte
		mode int64
	}{
		{"tmp", tar.TypeDir, 0o1777},
		{"root", tar.TypeDir, 0o700},
		{"home", tar.TypeDir, 0o755},
		{"var", tar.TypeDir, 0o755},
		{"etc/hostname", tar.TypeReg, 0o644},
		{"etc/resolv.conf", tar.TypeReg, 0o644},
		{"etc/hosts", tar.TypeReg, 0o644},
		{"etc/passwd", tar.TypeReg, 0o644},
		{"etc/group", tar.TypeReg, 0o644},
	} {
		if h := hdrs[tc.path]; h == nil || h.Typeflag != tc.typ || h.Mode != tc.mode {
			t.Errorf("%s: %+v, want type %c mode %o", tc.path, h, tc.typ, tc.mode)
		}
	}
	for _, line := range []string{"root:x:0:0:", "daemon:x:1:1:", "bin:x:2:2:", "sys:x:3:3:", "sync:x:4:",
		"mail:x:8:8:", "www-data:x:33:33:", "operator:x:37:37:", "nobody:x:65534:65534:"} {
		if !strings.Contains(contents["etc/passwd"], "\n"+line) && !strings.HasPrefix(contents["etc/passwd"], line) {
			t.Errorf("/etc/passwd lacks %q", line)
		}
	}
	for _, line := range []string{"root:x:0:", "www-data:x:33:", "nogroup:x:65534:"} {
		if !strings.Contains(contents["etc/group"], line) {
			t.Errorf("/etc/group lacks %q", line)
		}
	}
}

func TestSpecialImages(t *testing.T) {
	images := testCatalogue(t)
	for _, tc := range []struct {
		ref      string
		path     string
		mode     int64
		contains string // in the file's content, if set
	}{
		{CRIToolsPrefix + "test-image-1:latest", "test-image-1", 0o644, ""},
		{CRIToolsPrefix + "test-image-tags:2", "same-image", 0o644, ""},
		{CRIToolsPrefix + "test-image-tag:all", "all", 0o644, ""},
		{CRIToolsPrefix + "test-image-predefined-group:latest", "etc/passwd", 0o644, "default-user:x:1000:1000:"},
		{CRIToolsPrefix + "test-image-predefined-group:latest", "etc/group", 0o644, "group-defined-in-image:x:50000:default-user"},
		{WebServerTestImage, "usr/sbin/nginx", 0o755, ""},
		{WebServerTestImage, "etc/nginx/conf.d/default.conf", 0o644, "listen       80;"},
		{WebServerTestImage, "usr/share/nginx/html/index.html", 0o644, "nginx"},
		{HostNetWebServerImage, "etc/nginx/conf.d/default.conf", 0o644, "listen       12003;"},
		{HttpdTestImage, "usr/local/apache2/bin/httpd-foreground", 0o755, ""},
		{NoNewPrivsImage, "usr/local/bin/nnp", 0o4755, ""},
		{PauseImage, "pause", 0o755, ""},
	} {
		t.Run(tc.ref+"/"+path.Base(tc.path), func(t *testing.T) {
			hdrs, contents := files(t, byRef(t, images, tc.ref).Image)
			h := hdrs[tc.path]
			if h == nil || h.Typeflag != tar.TypeReg || h.Mode != tc.mode || h.Uid != 0 {
				t.Fatalf("%s: %+v, want a root-owned file with mode %o", tc.path, h, tc.mode)
			}
			if tc.contains != "" && !strings.Contains(contents[tc.path], tc.contains) {
				t.Errorf("%s lacks %q:\n%s", tc.path, tc.contains, contents[tc.path])
			}
		})
	}
	if hdrs, _ := files(t, byRef(t, images, PauseImage).Image); len(hdrs) != 1 {
		t.Errorf("pause image has %d entries, want only /pause", len(hdrs))
	}
}

func TestCatalogueAgnhost(t *testing.T) {
	bb, err := EnsureBusybox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBuilder(bb)
	if err != nil {
		t.Fatal(err)
	}
	images, err := b.Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range images {
		if img.Refs[0] == AgnhostImage {
			t.Fatal("agnhost in the catalogue without SetAgnhost")
		}
	}
	fake := filepath.Join(t.TempDir(), "agnhost")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.SetAgnhost(fake); err != nil {
		t.Fatal(err)
	}
	if images, err = b.Catalogue(); err != nil {
		t.Fatal(err)
	}
	cf, err := byRef(t, images, AgnhostPrevImage).Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " ") + " " + strings.Join(cf.Config.Cmd, " "); got != "/agnhost pause" {
		t.Errorf("agnhost runs %q, want \"/agnhost pause\"", got)
	}
}
