package testimages

import (
	"archive/tar"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Kubernetes' e2e images (k8s.io/kubernetes/test/utils/image, v1.37.2) that the
// cluster lane and node conformance pull, under their canonical references.
const (
	K8sBusyboxImage    = E2EPrefix + "busybox:1.37.0-2"
	K8sNginxImage      = E2EPrefix + "nginx:1.27.0-2"
	K8sNginxNewImage   = E2EPrefix + "nginx:1.28.0-2"
	K8sNoNewPrivsImage = E2EPrefix + "nonewprivs:1.4"
	K8sNonRootImage    = E2EPrefix + "nonroot:1.5"
	K8sIpcUtilsImage   = E2EPrefix + "ipc-utils:1.4"
	K8sGlibcDNSImage   = E2EPrefix + "glibc-dns-testing:2.1.1"
	K8sPauseImage      = "registry.k8s.io/pause:3.10.2"
	AgnhostImage       = E2EPrefix + "agnhost:2.66.1"
	AgnhostPrevImage   = E2EPrefix + "agnhost:2.55"
)

// SetAgnhost makes the catalogue include agnhost, built around the static
// agnhost binary at path (hack/k8s/build.sh builds it from
// k8s.io/kubernetes/test/images/agnhost).
func (b *Builder) SetAgnhost(path string) error {
	bin, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("agnhost: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.agnhost = bin
	return nil
}

// kubernetesCatalogue lists the Kubernetes e2e images; agnhost only when the
// builder has its binary.
func kubernetesCatalogue(withAgnhost bool) []entry {
	entries := []entry{
		{refs: []string{K8sBusyboxImage}, f: Docker, index: true, build: busyboxImage},
		{refs: []string{K8sNginxImage}, f: Docker, index: true, build: nginxImage(80, "SIGQUIT")},
		{refs: []string{K8sNginxNewImage}, f: Docker, index: true, build: nginxImage(80, "SIGQUIT")},
		{refs: []string{K8sNoNewPrivsImage}, f: Docker, index: true, build: noNewPrivsImage},
		{refs: []string{K8sNonRootImage}, f: Docker, index: true, build: nonRootImage},
		// ipc-utils only needs ipcs (node e2e's host IPC specs run
		// "ipcs -m"), which busybox has.
		{refs: []string{K8sIpcUtilsImage}, f: Docker, index: true, build: busyboxImage},
		// glibc-dns-testing only needs hostname and hostname -f (the
		// hostname and FQDN specs), which busybox has.
		{refs: []string{K8sGlibcDNSImage}, f: Docker, index: true, build: busyboxImage},
		{refs: []string{K8sPauseImage, "registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10"}, f: Docker, index: true, build: pauseImage},
	}
	if withAgnhost {
		entries = append(entries, entry{refs: []string{AgnhostImage, AgnhostPrevImage}, f: Docker, index: true, build: agnhostImage})
	}
	return entries
}

// nonRootImage is e2e-test-images/nonroot: the base image with USER 1234.
func nonRootImage(b *Builder, f Format) (v1.Image, error) {
	cfg := BusyboxConfig()
	cfg.User = "1234"
	return b.BusyboxImage(f, cfg)
}

// curlScript stands in for curl where only "curl [options] URL" is asked: the
// last argument that is no option is fetched to standard output.
const curlScript = `#!/bin/sh
url=
for a; do
	case "$a" in -*) ;; *) url="$a" ;; esac
done
exec wget -q -O - "$url"
`

// agnhostImage is e2e-test-images/agnhost on the busybox base: /agnhost (and
// the /agnhost-2 link), /uploads, the user and group the image defines
// (user-defined-in-image 1000, group-defined-in-image 50000), entrypoint
// /agnhost, command pause, /localhost.crt and /localhost.key for its TLS
// servers, a /bin/bash that runs busybox's sh (helpers/bash.c) and a curl that
// fetches its URL with busybox's wget (the lifecycle-hook specs run "curl URL").
// Upstream's other tools (socat, iperf, coredns, the fake registry's content)
// are not there.
func agnhostImage(b *Builder, f Format) (v1.Image, error) {
	b.mu.Lock()
	bin := b.agnhost
	b.mu.Unlock()
	if bin == nil {
		return nil, fmt.Errorf("no agnhost binary (Builder.SetAgnhost)")
	}
	bash, err := b.Helper("bash")
	if err != nil {
		return nil, err
	}
	cert, key, err := localhostCert()
	if err != nil {
		return nil, fmt.Errorf("agnhost: localhost certificate: %w", err)
	}
	passwd := Passwd + "user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh\n"
	group := Group + "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"
	cfg := BusyboxConfig()
	cfg.Entrypoint = []string{"/agnhost"}
	cfg.Cmd = []string{"pause"}
	cfg.ExposedPorts = map[string]struct{}{"80/tcp": {}, "8080/tcp": {}, "8081/tcp": {}, "9376/tcp": {}, "5000/tcp": {}}
	return b.BusyboxImage(f, cfg, []File{
		{Path: "home/user-defined-in-image", Type: tar.TypeDir, Mode: 0o755, UID: 1000, GID: 1000},
		Dir("uploads", 0o755),
		Reg("etc/passwd", 0o644, passwd),
		Reg("etc/group", 0o644, group),
		Reg("etc/shadow", 0o640, shadowFor(passwd)),
		{Path: "bin/bash", Mode: 0o755, Content: bash},
		Reg("usr/bin/curl", 0o755, curlScript),
		{Path: "localhost.crt", Mode: 0o644, Content: cert},
		{Path: "localhost.key", Mode: 0o600, Content: key},
		{Path: "agnhost", Mode: 0o755, Content: bin},
		Symlink("agnhost-2", "agnhost"),
	})
}
