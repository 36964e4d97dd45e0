package spec

import (
	"strings"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// WithProcessArgs sets process.args with Kubernetes semantics: command
// replaces the image's Entrypoint and drops its Cmd; args replaces Cmd.
// img may be nil.
func WithProcessArgs(img *imagespec.ImageConfig, command, args []string) Opt {
	return func(s *specs.Spec) error {
		var entrypoint, cmd []string
		if img != nil {
			entrypoint, cmd = img.Entrypoint, img.Cmd
		}
		if len(command) > 0 {
			entrypoint, cmd = command, nil
		}
		if len(args) > 0 {
			cmd = args
		}
		out := append(append([]string(nil), entrypoint...), cmd...)
		if len(out) == 0 {
			return errdefs.InvalidArgument("no command specified: neither the container config nor the image sets one")
		}
		s.Process.Args = out
		return nil
	}
}

// WithEnv sets process.env to the image's environment followed by the CRI
// config's; a later key replaces an earlier one in place. PATH gets the
// default when neither sets it.
func WithEnv(imageEnv []string, criEnv []*runtimeapi.KeyValue) Opt {
	return func(s *specs.Spec) error {
		var out []string
		index := map[string]int{}
		set := func(kv string) {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				return
			}
			index[k] = len(out)
			out = append(out, kv)
		}
		for _, kv := range imageEnv {
			set(kv)
		}
		for _, kv := range criEnv {
			if kv == nil {
				continue
			}
			if kv.Key == "" {
				return errdefs.InvalidArgument("environment variable with an empty name")
			}
			set(kv.Key + "=" + string(kv.Value))
		}
		if _, ok := index["PATH"]; !ok {
			out = append([]string{defaultPath}, out...)
		}
		s.Process.Env = out
		return nil
	}
}

// WithWorkingDir sets process.cwd: the CRI's working_dir, else the image's
// WorkingDir, else "/". It must be absolute.
func WithWorkingDir(img *imagespec.ImageConfig, criDir string) Opt {
	return func(s *specs.Spec) error {
		dir := criDir
		if dir == "" && img != nil {
			dir = img.WorkingDir
		}
		if dir == "" {
			dir = "/"
		}
		if !strings.HasPrefix(dir, "/") {
			return errdefs.InvalidArgument("working directory " + dir + " is not absolute")
		}
		s.Process.Cwd = dir
		return nil
	}
}

// WithTTY sets process.terminal.
func WithTTY(tty bool) Opt {
	return func(s *specs.Spec) error {
		s.Process.Terminal = tty
		return nil
	}
}

// WithOOMScoreAdj sets process.oomScoreAdj to v as given; clamping it to
// what berthd may grant (oomscore.Clamp) is the caller's decision.
func WithOOMScoreAdj(v int) Opt {
	return func(s *specs.Spec) error {
		s.Process.OOMScoreAdj = &v
		return nil
	}
}

// WithHostname sets the hostname. Empty leaves it unset (the UTS namespace
// keeps whatever it has, e.g. the pod's).
func WithHostname(name string) Opt {
	return func(s *specs.Spec) error {
		s.Hostname = name
		return nil
	}
}
