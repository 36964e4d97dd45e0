package spec

import (
	"reflect"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

func TestBuildBase(t *testing.T) {
	s, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.0.2" || !s.Process.NoNewPrivileges {
		t.Errorf("version %q no_new_privs %v", s.Version, s.Process.NoNewPrivileges)
	}
	want := map[string]bool{"/proc": true, "/dev": true, "/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true, "/sys": true, "/sys/fs/cgroup": true}
	for _, m := range s.Mounts {
		delete(want, m.Destination)
	}
	if len(want) != 0 {
		t.Errorf("missing mounts %v", want)
	}
	if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Error("default masked/readonly paths missing")
	}
	// Two builds must not share slices.
	s.Linux.MaskedPaths[0] = "x"
	s2, _ := Build()
	if s2.Linux.MaskedPaths[0] == "x" {
		t.Error("base shares the default masked paths slice")
	}
}

func TestWithProcessArgs(t *testing.T) {
	img := &imagespec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"cmd"}}
	for _, tc := range []struct {
		name          string
		img           *imagespec.ImageConfig
		command, args []string
		want          []string
		wantErr       bool
	}{
		{"image only", img, nil, nil, []string{"/ep", "cmd"}, false},
		{"command drops cmd", img, []string{"/c"}, nil, []string{"/c"}, false},
		{"args replaces cmd", img, nil, []string{"a"}, []string{"/ep", "a"}, false},
		{"both", img, []string{"/c"}, []string{"a", "b"}, []string{"/c", "a", "b"}, false},
		{"nil image args only", nil, nil, []string{"/a"}, []string{"/a"}, false},
		{"cmd only image", &imagespec.ImageConfig{Cmd: []string{"sh"}}, nil, nil, []string{"sh"}, false},
		{"nothing", &imagespec.ImageConfig{}, nil, nil, nil, true},
		{"nil image nothing", nil, nil, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantErr, WithProcessArgs(tc.img, tc.command, tc.args))
			if s == nil {
				return
			}
			if !reflect.DeepEqual(s.Process.Args, tc.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tc.want)
			}
		})
	}
}

func TestWithEnv(t *testing.T) {
	kv := func(k, v string) *runtimeapi.KeyValue { return &runtimeapi.KeyValue{Key: k, Value: []byte(v)} }
	for _, tc := range []struct {
		name    string
		image   []string
		cri     []*runtimeapi.KeyValue
		want    []string
		wantErr bool
	}{
		{"empty gets PATH", nil, nil, []string{defaultPath}, false},
		{"image PATH kept", []string{"PATH=/x", "A=1"}, nil, []string{"PATH=/x", "A=1"}, false},
		{"cri overrides in place", []string{"PATH=/x", "A=1", "B=2"}, []*runtimeapi.KeyValue{kv("A", "9"), kv("C", "3")},
			[]string{"PATH=/x", "A=9", "B=2", "C=3"}, false},
		{"cri PATH", nil, []*runtimeapi.KeyValue{kv("PATH", "/y")}, []string{"PATH=/y"}, false},
		{"value with equals", []string{"PATH=/x"}, []*runtimeapi.KeyValue{kv("A", "b=c")}, []string{"PATH=/x", "A=b=c"}, false},
		{"empty cri value", []string{"PATH=/x"}, []*runtimeapi.KeyValue{kv("A", "")}, []string{"PATH=/x", "A="}, false},
		{"later cri wins", []string{"PATH=/x"}, []*runtimeapi.KeyValue{kv("A", "1"), kv("A", "2")}, []string{"PATH=/x", "A=2"}, false},
		{"empty key", nil, []*runtimeapi.KeyValue{kv("", "v")}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildOrInvalid(t, tc.wantErr, WithEnv(tc.image, tc.cri))
			if s == nil {
				return
			}
			if !reflect.DeepEqual(s.Process.Env, tc.want) {
				t.Errorf("env = %q, want %q", s.Process.Env, tc.want)
			}
		})
	}
}

func TestWithWorkingDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		img     *imagespec.ImageConfig
		cri     string
		want    string
		wantErr bool
	}{
		{"default", nil, "", "/", false},
		{"image", &imagespec.ImageConfig{WorkingDir: "/app"}, "", "/app", false},
		{"cri wins", &imagespec.ImageConfig{WorkingDir: "/app"}, "/w", "/w", false},
		{"relative", nil, "w", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Build(WithWorkingDir(tc.img, tc.cri))
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || s.Process.Cwd != tc.want {
				t.Errorf("cwd = %q (%v), want %q", s.Process.Cwd, err, tc.want)
			}
		})
	}
}

func TestSimpleProcessOptions(t *testing.T) {
	s, err := Build(WithTTY(true), WithOOMScoreAdj(-998), WithHostname("h"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Process.Terminal || s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != -998 || s.Hostname != "h" {
		t.Errorf("tty %v oom %v hostname %q", s.Process.Terminal, s.Process.OOMScoreAdj, s.Hostname)
	}
	s, _ = Build(WithTTY(false))
	if s.Process.Terminal || s.Process.OOMScoreAdj != nil {
		t.Error("defaults changed")
	}
}
