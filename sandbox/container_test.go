package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestContainerLogPath(t *testing.T) {
	for _, tc := range []struct {
		name, dir, rel, want string
		invalid              bool
	}{
		{name: "joined", dir: "/var/log/pods/p", rel: "c/0.log", want: "/var/log/pods/p/c/0.log"},
		{name: "no log directory", dir: "", rel: "c/0.log", want: ""},
		{name: "no log path", dir: "/var/log/pods/p", rel: "", want: ""},
		{name: "cleaned inside", dir: "/var/log/pods/p", rel: "c/../d.log", want: "/var/log/pods/p/d.log"},
		{name: "escapes", dir: "/var/log/pods/p", rel: "../escape.log", invalid: true},
		{name: "escapes deep", dir: "/var/log/pods/p", rel: "c/../../../etc/passwd", invalid: true},
		{name: "absolute", dir: "/var/log/pods/p", rel: "/etc/passwd", invalid: true},
		{name: "the directory itself", dir: "/var/log/pods/p", rel: "c/..", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := containerLogPath(tc.dir, tc.rel)
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("containerLogPath(%q, %q) = %q, %v; want InvalidArgument", tc.dir, tc.rel, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("containerLogPath(%q, %q) = %q, %v; want %q", tc.dir, tc.rel, got, err, tc.want)
			}
		})
	}
}

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cri     runtimeapi.Signal
		image   string
		want    syscall.Signal
		invalid bool
	}{
		{name: "default", want: syscall.SIGTERM},
		{name: "CRI wins", cri: runtimeapi.Signal_SIGNAL_SIGQUIT, image: "SIGINT", want: syscall.SIGQUIT},
		{name: "image by name", image: "SIGINT", want: syscall.SIGINT},
		{name: "image without SIG", image: "usr1", want: syscall.SIGUSR1},
		{name: "image by number", image: "9", want: syscall.SIGKILL},
		{name: "image nonsense", image: "SIGNOPE", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &container{config: &runtimeapi.ContainerConfig{StopSignal: tc.cri}, meta: ContainerMetadata{StopSignal: tc.image}}
			got, err := stopSignal(c)
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("stopSignal = %v, %v; want InvalidArgument", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("stopSignal = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestLegacySeccomp(t *testing.T) {
	for _, tc := range []struct {
		path string
		want runtimeapi.SecurityProfile_ProfileType
		ref  string
	}{
		{"unconfined", runtimeapi.SecurityProfile_Unconfined, ""},
		{"runtime/default", runtimeapi.SecurityProfile_RuntimeDefault, ""},
		{"docker/default", runtimeapi.SecurityProfile_RuntimeDefault, ""},
		{"localhost//etc/p.json", runtimeapi.SecurityProfile_Localhost, "/etc/p.json"},
		{"/etc/p.json", runtimeapi.SecurityProfile_Localhost, "/etc/p.json"},
	} {
		got := legacySeccomp(tc.path)
		if got.GetProfileType() != tc.want || got.GetLocalhostRef() != tc.ref {
			t.Errorf("legacySeccomp(%q) = %v %q, want %v %q", tc.path, got.GetProfileType(), got.GetLocalhostRef(), tc.want, tc.ref)
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	var b cappedBuffer
	chunk := []byte(strings.Repeat("x", 1<<20))
	for range 20 {
		if n, err := b.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v; the writer must never see a short write", n, err)
		}
	}
	if b.Len() != MaxExecOutput {
		t.Fatalf("kept %d bytes, want %d", b.Len(), MaxExecOutput)
	}
}

func TestSubPath(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, os.Symlink("/etc", filepath.Join(root, "abs")))
	must(t, os.Symlink("a/b", filepath.Join(root, "rel")))
	for _, tc := range []struct {
		sub, want string
		invalid   bool
	}{
		{sub: "", want: root},
		{sub: "a/b", want: filepath.Join(root, "a", "b")},
		{sub: "../../a", want: filepath.Join(root, "a")},
		{sub: "rel", want: filepath.Join(root, "a", "b")},
		{sub: "missing", invalid: true},
		{sub: "abs", invalid: true},
	} {
		got, err := subPath(root, tc.sub)
		if tc.invalid {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("subPath(%q) = %q, %v; want InvalidArgument", tc.sub, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("subPath(%q) = %q, %v; want %q", tc.sub, got, err, tc.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestResolveHostPath(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"link": real, "chain": filepath.Join(dir, "link"), "dangling": filepath.Join(dir, "gone")} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, host, want string
		invalid          bool
	}{
		{name: "directory", host: real, want: real},
		{name: "symlink resolved", host: filepath.Join(dir, "link"), want: real},
		{name: "chain of links", host: filepath.Join(dir, "chain"), want: real},
		{name: "missing", host: filepath.Join(dir, "missing"), invalid: true},
		{name: "dangling link", host: filepath.Join(dir, "dangling"), invalid: true},
		{name: "relative", host: "real", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &runtimeapi.Mount{ContainerPath: "/mnt", HostPath: tc.host, Readonly: true}
			got, err := resolveHostPath(in)
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("resolveHostPath(%s) = %v, %v; want InvalidArgument", tc.host, got, err)
				}
				return
			}
			if err != nil || got.GetHostPath() != tc.want || !got.GetReadonly() {
				t.Fatalf("resolveHostPath(%s) = %v, %v; want host path %s", tc.host, got, err, tc.want)
			}
			if in.GetHostPath() != tc.host {
				t.Errorf("the request's mount was changed to %s", in.GetHostPath())
			}
		})
	}
}

func TestCRIStopSignal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cri   runtimeapi.Signal
		image string
		want  runtimeapi.Signal
	}{
		{name: "nothing set is SIGTERM", want: runtimeapi.Signal_SIGNAL_SIGTERM},
		{name: "config wins", cri: runtimeapi.Signal_SIGNAL_SIGQUIT, image: "SIGINT", want: runtimeapi.Signal_SIGNAL_SIGQUIT},
		{name: "image by name", image: "SIGUSR1", want: runtimeapi.Signal_SIGNAL_SIGUSR1},
		{name: "image by number", image: "9", want: runtimeapi.Signal_SIGNAL_SIGKILL},
		{name: "image short name", image: "int", want: runtimeapi.Signal_SIGNAL_SIGINT},
		{name: "image real-time signal", image: "40", want: runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT},
		{name: "image nonsense", image: "SIGNOPE", want: runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &container{config: &runtimeapi.ContainerConfig{StopSignal: tc.cri}, meta: ContainerMetadata{StopSignal: tc.image}}
			if got := criStopSignal(c); got != tc.want {
				t.Errorf("criStopSignal = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestContainerImageSpec(t *testing.T) {
	const id = "sha256:81d8a469890f79a393b9d36fe90146b88bd88695c68b5bf917f348ec586c8e90"
	for _, tc := range []struct {
		name  string
		spec  *runtimeapi.ImageSpec
		image string // the metadata's image, as kubelet named it at create
		want  string
	}{
		{name: "kubelet: id and the pod spec's reference", spec: &runtimeapi.ImageSpec{Image: id, UserSpecifiedImage: "registry.k8s.io/e2e-test-images/busybox:1.37.0-2"}, image: id, want: "registry.k8s.io/e2e-test-images/busybox:1.37.0-2"},
		{name: "a reference alone", spec: &runtimeapi.ImageSpec{Image: "busybox:latest"}, image: "busybox:latest", want: "busybox:latest"},
		{name: "an id alone", spec: &runtimeapi.ImageSpec{Image: id}, image: id, want: id},
		{name: "no image spec", spec: nil, image: "busybox:latest", want: "busybox:latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &container{
				meta:   ContainerMetadata{Image: tc.image, ImageID: id},
				config: &runtimeapi.ContainerConfig{Image: tc.spec},
			}
			got := c.imageSpec()
			if got.GetImage() != tc.want || got.GetImageRef() != id {
				t.Errorf("image %q ref %q, want %q %q", got.GetImage(), got.GetImageRef(), tc.want, id)
			}
			if tc.spec != nil && tc.spec.GetImage() != tc.image {
				t.Errorf("the config's spec changed to %q", tc.spec.GetImage())
			}
		})
	}
}
