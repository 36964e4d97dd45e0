package testimages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed helpers/*.c
var helperSources embed.FS

// RepoRoot returns the root of the berth checkout that contains the working
// directory, or else the running executable: the nearest ancestor with
// hack/busybox/build.sh.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "hack", "busybox", "build.sh")); err == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("testimages: not inside a berth checkout (no hack/busybox/build.sh above the working directory or the executable)")
}

// CacheDir is $BERTH_CACHE_DIR if set, else hack/.cache of the checkout
// (git-ignored), else a directory under the user cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv("BERTH_CACHE_DIR"); d != "" {
		return d, nil
	}
	if root, err := RepoRoot(); err == nil {
		return filepath.Join(root, "hack", ".cache"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "berth-testimages"), nil
}

// EnsureBusybox returns the path of the static busybox the images are built
// from: $BERTH_BUSYBOX if set, else the one cached by hack/busybox/build.sh,
// running the script first (about a minute, once per machine) when needed.
func EnsureBusybox(ctx context.Context) (string, error) {
	if p := os.Getenv("BERTH_BUSYBOX"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "busybox", "build.sh"))
	if d := os.Getenv("BERTH_CACHE_DIR"); d != "" {
		cmd.Env = append(os.Environ(), "BUSYBOX_CACHE_DIR="+filepath.Join(d, "busybox"))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/busybox/build.sh: %w\n%s", err, tail(stderr.String(), 40))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	p := lines[len(lines)-1]
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("hack/busybox/build.sh printed %q: %w", p, err)
	}
	return p, nil
}

// compileHelper compiles helpers/<name>.c statically with $CC (default gcc)
// and returns the binary. Binaries are cached in dir by source hash.
func compileHelper(dir, name string) ([]byte, error) {
	src, err := helperSources.ReadFile("helpers/" + name + ".c")
	if err != nil {
		return nil, err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	flags := []string{"-static", "-Os", "-s", "-Wall", "-Wextra"}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", cc, strings.Join(flags, " "))
	h.Write(src)
	out := filepath.Join(dir, name+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if b, err := os.ReadFile(out); err == nil && len(b) > 0 {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	srcPath := filepath.Join(tmp, name+".c")
	if err := os.WriteFile(srcPath, src, 0o644); err != nil {
		return nil, err
	}
	bin := filepath.Join(tmp, name)
	args := append(append([]string{}, flags...), "-o", bin, srcPath)
	if msg, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compile %s.c with %s -static (is gcc with libc6-dev installed?): %w\n%s", name, cc, err, msg)
	}
	if err := os.Rename(bin, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
