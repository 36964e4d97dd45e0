package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/sandbox/rootfs"
)

// rawDir is the bundle of raw container id: config.json, rootfs (the overlay mount
// point), rw (its upper and work directories) and pid.
func (e *env) rawDir(id string) string { return filepath.Join(e.dir, "raw", id) }

// rawBundle copies the config.json berth wrote for container ctrID into a bundle of
// its own for raw container id: the root is a new overlay mount of the same busybox
// snapshots (timed by mount), the cgroup a leaf of rawCgroupParent. Everything else
// (namespaces: the pod's pinned ones, mounts, capabilities, seccomp, masked paths) is
// berth's spec as it is.
func (e *env) rawBundle(ctrID, id string, mount func(func() error) error) (string, error) {
	data, err := os.ReadFile(filepath.Join(e.dir, "state", "containers", ctrID, "config.json"))
	if err != nil {
		return "", err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return "", fmt.Errorf("berth's config.json of %s: %w", ctrID, err)
	}
	if spec.Root == nil || spec.Linux == nil {
		return "", fmt.Errorf("berth's config.json of %s has no root or linux section", ctrID)
	}
	dir := e.rawDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	e.rawIDs[id] = true // from here on the cleanup removes it
	target := filepath.Join(dir, "rootfs")
	if err := mount(func() error { return rootfs.Mount(e.layers, filepath.Join(dir, "rw"), target, false) }); err != nil {
		return "", err
	}
	spec.Root.Path = target
	spec.Linux.CgroupsPath = "/" + rawCgroupParent + "/" + id
	out, err := json.Marshal(&spec)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), out, 0o600)
}

// rawRun is `runc run --detach` of the bundle, with runc's stdio on /dev/null.
func (e *env) rawRun(id, bundle string) error {
	return e.runc_("run", "--detach", "--bundle="+bundle, "--pid-file="+filepath.Join(bundle, "pid"), id)
}

// rawKillDelete is `runc kill KILL`, the wait for the init (the benchmark is a
// subreaper, so it is the benchmark's child) and `runc delete`.
func (e *env) rawKillDelete(id string) error {
	if err := e.runc_("kill", id, "KILL"); err != nil {
		return err
	}
	e.reapInit(id)
	return e.runc_("delete", id)
}

func (e *env) reapInit(id string) {
	data, err := os.ReadFile(filepath.Join(e.rawDir(id), "pid"))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
	}
}

// rawRemove removes whatever of raw container id exists: the runc container (forced),
// the overlay mount, the bundle. It is the cleanup's as well as the iteration's.
func (e *env) rawRemove(id string) {
	dir := e.rawDir(id)
	if _, err := os.Stat(filepath.Join(e.dir, "rawrunc", id)); err == nil {
		if err := e.runc_("delete", "--force", id); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
		e.reapInit(id)
	}
	if err := rootfs.Remove(filepath.Join(dir, "rw"), filepath.Join(dir, "rootfs")); err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		return // never delete through a mount
	}
	_ = os.RemoveAll(dir)
	delete(e.rawIDs, id)
}

// runc_ execs runc with the benchmark's own state root, stdio on /dev/null.
func (e *env) runc_(args ...string) error {
	cmd := exec.Command(e.runc, append([]string{"--root=" + filepath.Join(e.dir, "rawrunc")}, args...)...)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd.Stdin, cmd.Stdout = null, null
	out, err := os.CreateTemp(e.dir, "runc-stderr-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return fmt.Errorf("runc %v: %v: %s", args, err, msg)
	}
	return nil
}
