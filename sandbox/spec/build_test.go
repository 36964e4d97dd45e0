package spec

import (
	"encoding/json"
	"strings"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/sandbox/cgroups"
)

// The documented composition order yields a spec that serialises and keeps
// what every option set.
func TestComposition(t *testing.T) {
	img := &imagespec.ImageConfig{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "true"}, Env: []string{"PATH=/bin"}}
	s, err := Build(
		WithProcessArgs(img, nil, nil),
		WithEnv(img.Env, nil),
		WithWorkingDir(img, ""),
		WithMaskedPaths(nil),
		WithReadonlyRootfs(true),
		WithCapabilities(false, []string{"NET_ADMIN"}, nil),
		WithSeccomp(&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, ""),
		WithNamespaces("/run/netns/p", "/run/ipc/p", "/run/uts/p", PIDContainer, ""),
		WithCgroupsPath("/kubepods/pod1/c1"),
		WithDevices(false, nil),
		WithResources(&cgroups.Resources{MemoryLimit: 64 << 20}),
		WithMounts([]*runtimeapi.Mount{{ContainerPath: "/dev/shm", HostPath: "/run/pods/p/shm"}}, false),
	)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ociVersion":"1.0.2"`, `"CAP_NET_ADMIN"`, `"/run/netns/p"`, `"seccomp"`, `"/run/pods/p/shm"`, `"cgroupsPath":"/kubepods/pod1/c1"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("spec lacks %s", want)
		}
	}
	if s.Linux.Resources.Memory == nil || len(s.Linux.Resources.Devices) != 1 {
		t.Errorf("resources %+v", s.Linux.Resources)
	}
}

func FuzzParseDB(f *testing.F) {
	f.Add(testPasswd)
	f.Add("a:b\n:::\n#x\n")
	f.Fuzz(func(t *testing.T, body string) {
		entries, err := parseDB(strings.NewReader(body))
		if err != nil {
			return
		}
		for _, e := range entries {
			_ = field(e, 3)
		}
		_ = findEntry(entries, 2, "0")
	})
}
