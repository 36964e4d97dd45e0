package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// removeRetries and removeBackoff bound the wait for the kernel to let go of a cgroup
// whose last process just exited (rmdir answers EBUSY meanwhile).
const (
	removeRetries = 5
	removeBackoff = 10 * time.Millisecond
)

// removeCgroups deletes the cgroup directories dirs (one per hierarchy) with all the
// child cgroups below them. It first checks that no process is left anywhere in them;
// if one is, it removes nothing and fails with errdefs.ErrFailedPrecondition. Missing
// directories are skipped.
func removeCgroups(dirs []string) error {
	for _, dir := range dirs {
		pid, err := firstProcess(dir)
		if err != nil {
			return err
		}
		if pid != 0 {
			return fmt.Errorf("cgroups: %s still holds process %d: %w", dir, pid, errdefs.ErrFailedPrecondition)
		}
	}
	var errs []error
	for _, dir := range dirs {
		errs = append(errs, removeTree(dir))
	}
	return errors.Join(errs...)
}

// firstProcess returns a pid found in a cgroup.procs file at or below dir, or 0.
func firstProcess(dir string) (int, error) {
	var found int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // the cgroup, or a child of it, went away meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if line, _, _ := bytes.Cut(bytes.TrimSpace(data), []byte("\n")); len(line) > 0 {
			found, err = strconv.Atoi(string(line))
			if err != nil {
				return fmt.Errorf("%s/cgroup.procs: %w", path, err)
			}
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cgroups: look for processes in %s: %w", dir, err)
	}
	return found, nil
}

// removeTree removes a cgroup directory and its child cgroups, retrying while the
// kernel reports it busy. On a real cgroupfs rmdir succeeds on a directory that only
// holds interface files, and os.RemoveAll reaches the children first; on a fake one
// (tests) the files are ordinary and go too.
func removeTree(dir string) error {
	delay := removeBackoff
	var err error
	for i := 0; i < removeRetries; i++ {
		if i > 0 {
			time.Sleep(delay)
			delay *= 2
		}
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
	}
	return fmt.Errorf("cgroups: remove %s: %w", dir, err)
}
