package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-runtime/berth/hack/testimages"
)

var crictlBuild struct {
	once sync.Once
	path string
	err  error
}

// crictlBinary returns crictl as pinned in hack/tools/go.mod: the one hack/critest.sh
// cached under hack/.cache/bin if there is one, else built once per test binary.
func crictlBinary(t *testing.T) string {
	t.Helper()
	crictlBuild.once.Do(func() { crictlBuild.path, crictlBuild.err = findOrBuildCrictl() })
	if crictlBuild.err != nil {
		t.Fatalf("crictl: %v", crictlBuild.err)
	}
	return crictlBuild.path
}

func findOrBuildCrictl() (string, error) {
	repo, err := testimages.RepoRoot()
	if err != nil {
		return "", err
	}
	tools := filepath.Join(repo, "hack", "tools")
	version, err := pinnedVersion(filepath.Join(tools, "go.mod"), "sigs.k8s.io/cri-tools")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"crictl-" + version, "crictl"} {
		p := filepath.Join(repo, "hack", ".cache", "bin", name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	out := filepath.Join(binDir, "crictl")
	build := exec.Command("go", "build", "-o", out, "sigs.k8s.io/cri-tools/cmd/crictl")
	build.Dir = tools
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building crictl %s: %v\n%s", version, err, msg)
	}
	return out, nil
}

// pinnedVersion reads module's version from the require lines of a go.mod.
func pinnedVersion(gomod, module string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}

// crictl runs crictl against d and returns its stdout; err holds stderr on failure.
func crictl(t *testing.T, d *daemon, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	endpoint := "unix://" + d.socket
	cmd := exec.CommandContext(ctx, crictlBinary(t), append([]string{
		"--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "60s",
	}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// mustCrictl is crictl that fails the test on an error.
func mustCrictl(t *testing.T, d *daemon, args ...string) string {
	t.Helper()
	out, err := crictl(t, d, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrictlImages drives the image commands of crictl (the tool operators use) against
// berthd, with the test registry serving the real busybox image as Docker Hub's mirror.
func TestCrictlImages(t *testing.T) {
	t.Parallel()
	reg, img := servedBusybox(t)
	d := startDaemon(t, daemonOptions{Config: reg.MirrorTOML()})
	id := idOf(t, img)
	short := strings.TrimPrefix(id, "sha256:")[:13]

	if out := mustCrictl(t, d, "pull", "busybox"); strings.TrimSpace(out) != "Image is up to date for "+id {
		t.Errorf("crictl pull busybox: %q, want the image id %s", out, id)
	}
	t.Run("images", func(t *testing.T) {
		out := mustCrictl(t, d, "images")
		if !slices.ContainsFunc(lines(out), func(l string) bool {
			f := strings.Fields(l)
			return len(f) >= 4 && f[0] == "docker.io/library/busybox" && f[1] == "latest" && f[2] == short
		}) {
			t.Errorf("crictl images does not list docker.io/library/busybox latest %s:\n%s", short, out)
		}
		if out := mustCrictl(t, d, "images", "-q"); !slices.Equal(lines(out), []string{id}) {
			t.Errorf("crictl images -q: %q, want %s", out, id)
		}
		var listed struct {
			Images []struct {
				ID          string   `json:"id"`
				RepoTags    []string `json:"repoTags"`
				RepoDigests []string `json:"repoDigests"`
			} `json:"images"`
		}
		out = mustCrictl(t, d, "images", "-o", "json")
		if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed.Images) != 1 {
			t.Fatalf("crictl images -o json: %v\n%s", err, out)
		}
		want := "docker.io/library/busybox@" + digestOf(t, img)
		if got := listed.Images[0]; got.ID != id || !slices.Equal(got.RepoDigests, []string{want}) {
			t.Errorf("crictl images -o json: %+v, want id %s digest %s", got, id, want)
		}
	})
	t.Run("inspecti", func(t *testing.T) {
		var inspected struct {
			Status struct {
				ID       string   `json:"id"`
				RepoTags []string `json:"repoTags"`
			} `json:"status"`
			Info struct {
				ImageSpec struct {
					Config struct {
						Env []string `json:"Env"`
						Cmd []string `json:"Cmd"`
					} `json:"config"`
				} `json:"imageSpec"`
			} `json:"info"`
		}
		out := mustCrictl(t, d, "inspecti", "busybox")
		if err := json.Unmarshal([]byte(out), &inspected); err != nil {
			t.Fatalf("crictl inspecti: %v\n%s", err, out)
		}
		cfg := inspected.Info.ImageSpec.Config
		if inspected.Status.ID != id || !slices.Equal(inspected.Status.RepoTags, []string{testimages.BusyboxImage}) ||
			!slices.Equal(cfg.Cmd, []string{"sh"}) || !slices.Contains(cfg.Env, "PATH="+testimages.DefaultPath) {
			t.Errorf("crictl inspecti busybox:\n%s", out)
		}
	})
	t.Run("imagefsinfo", func(t *testing.T) {
		var info struct {
			Status struct {
				ImageFilesystems []struct {
					FsID struct {
						Mountpoint string `json:"mountpoint"`
					} `json:"fsId"`
					UsedBytes struct {
						Value json.Number `json:"value"`
					} `json:"usedBytes"`
				} `json:"imageFilesystems"`
			} `json:"status"`
		}
		out := mustCrictl(t, d, "imagefsinfo")
		if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Status.ImageFilesystems) != 1 {
			t.Fatalf("crictl imagefsinfo: %v\n%s", err, out)
		}
		fs := info.Status.ImageFilesystems[0]
		if used, err := fs.UsedBytes.Value.Int64(); err != nil || used < 1<<20 || !strings.HasPrefix(fs.FsID.Mountpoint, d.root()+"/") {
			t.Errorf("crictl imagefsinfo: want a mountpoint under %s and at least busybox's MiB used:\n%s", d.root(), out)
		}
	})
	t.Run("rmi", func(t *testing.T) {
		if out := mustCrictl(t, d, "rmi", "busybox"); strings.TrimSpace(out) != "Deleted: "+testimages.BusyboxImage {
			t.Errorf("crictl rmi busybox: %q", out)
		}
		if out := mustCrictl(t, d, "images", "-q"); len(lines(out)) != 0 {
			t.Errorf("images after crictl rmi: %q", out)
		}
		if _, err := crictl(t, d, "rmi", "busybox"); err == nil || !strings.Contains(err.Error(), "no such image") {
			t.Errorf("crictl rmi of a removed image: %v, want crictl's \"no such image\"", err)
		}
		if _, err := crictl(t, d, "inspecti", "busybox"); err == nil || !strings.Contains(err.Error(), "no such image") {
			t.Errorf("crictl inspecti of a removed image: %v", err)
		}
		mustCrictl(t, d, "pull", "docker.io/library/busybox:latest")
		if out := mustCrictl(t, d, "rmi", short); strings.TrimSpace(out) != "Deleted: "+testimages.BusyboxImage {
			t.Errorf("crictl rmi %s (short id): %q", short, out)
		}
		checkImageRootEmpty(t, d)
	})
	t.Run("pull of an absent image", func(t *testing.T) {
		_, err := crictl(t, d, "pull", "absent:1")
		if err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Errorf("crictl pull of an absent image: %v, want NotFound", err)
		}
	})
}
