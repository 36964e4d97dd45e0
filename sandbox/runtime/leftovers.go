package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// removeEmptyCgroup removes, in every cgroup hierarchy, the cgroup that the bundle's
// spec names, if it is empty. A runtime killed between making a container's cgroup and
// recording the container's state leaves that cgroup behind, and `delete` cannot find
// it; the container's init dies with the runtime, so the cgroup is empty.
//
// rmdir(2) never removes a cgroup that has processes or child cgroups, so this cannot
// disturb a live container. With the systemd driver systemd owns the cgroup and
// collects an empty scope itself, and a relative cgroupsPath was resolved against the
// dead runtime's own cgroup: both are left alone, as is every parent cgroup.
func removeEmptyCgroup(bundle string, systemd bool) error {
	if systemd {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("%s: %w", bundle, err)
	}
	if spec.Linux == nil || !path.IsAbs(spec.Linux.CgroupsPath) || path.Clean(spec.Linux.CgroupsPath) == "/" {
		return nil
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		dir := filepath.Join(m, path.Clean(spec.Linux.CgroupsPath))
		if err := removeCgroupDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// busyRetries and busyWait bound how long removeCgroupDir waits for an init that is
// still dying (killed with its runtime) to leave the cgroup.
const (
	busyRetries = 10
	busyWait    = 20 * time.Millisecond
)

// removeCgroupDir removes one empty cgroup directory; absent is fine.
func removeCgroupDir(dir string) error {
	for i := 0; ; i++ {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || i == busyRetries {
			return err
		}
		time.Sleep(busyWait)
	}
}

// cgroupMounts lists the mount points of cgroup (v1) and cgroup2 file systems in this
// mount namespace, from /proc/self/mountinfo.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseCgroupMounts(bufio.NewScanner(f))
}

// parseCgroupMounts picks the cgroup mount points out of mountinfo lines:
// "id parent major:minor root mountpoint options [optional...] - fstype source superoptions".
func parseCgroupMounts(sc *bufio.Scanner) ([]string, error) {
	var mounts []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) {
			continue
		}
		if fstype := fields[sep+1]; fstype == "cgroup" || fstype == "cgroup2" {
			mounts = append(mounts, unescapeMountinfo(fields[4]))
		}
	}
	return mounts, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
