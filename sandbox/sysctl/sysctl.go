// Package sysctl validates a pod's sysctls and sets them inside the pod's namespaces.
//
// Only sysctls that belong to a namespace the pod has of its own are allowed: net.* with
// a pod network namespace; kernel.shm*, kernel.msg*, kernel.sem* and fs.mqueue.* with a
// pod IPC namespace. Everything else would change the node for every pod
// (kernel.hostname and kernel.domainname, which live in the UTS namespace, are refused
// too: the hostname comes from the pod config). Names may be written with dots
// (net.ipv4.ip_forward) or slashes (net/ipv4/conf/eth0.100/rp_filter, for interface
// names with dots in them).
//
// Apply writes the values once, when the pod is created, from a thread that has entered
// the pinned namespace (internal/nspin.Run): the kernel resolves /proc/sys/net and the IPC
// entries in the namespaces of the thread that opens them, so no helper process is
// needed. Containers joining the namespaces later see the values; the OCI specs of the
// containers need not repeat them.
package sysctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
)

// Namespaces says which namespaces the pod has of its own.
type Namespaces struct {
	Net bool
	IPC bool
}

// maxValue bounds a value; the kernel takes at most a page.
const maxValue = 4096

// procSys is where sysctls live; tests do not change it (Apply needs the real one).
const procSys = "/proc/sys"

// setting is one validated sysctl.
type setting struct {
	name  string
	kind  nspin.Kind
	path  string // under /proc/sys
	value string
}

// Validate checks every sysctl against the pod's namespaces. Errors wrap
// errdefs.ErrInvalidArgument and name the sysctl.
func Validate(sysctls map[string]string, ns Namespaces) error {
	_, err := parse(sysctls, ns)
	return err
}

func parse(sysctls map[string]string, ns Namespaces) ([]setting, error) {
	names := make([]string, 0, len(sysctls))
	for name := range sysctls {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]setting, 0, len(names))
	for _, name := range names {
		s, err := parseOne(name, sysctls[name], ns)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("sysctl %q: %v", name, err))
		}
		out = append(out, s)
	}
	return out, nil
}

func parseOne(name, value string, ns Namespaces) (setting, error) {
	sep := "."
	if strings.Contains(name, "/") {
		sep = "/"
	}
	parts := strings.Split(name, sep)
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsRune(p, 0) || (sep == "/" && strings.ContainsRune(p, '\n')) {
			return setting{}, errors.New("not a sysctl name")
		}
	}
	if len(parts) < 2 {
		return setting{}, errors.New("not a sysctl name")
	}
	if len(value) > maxValue || strings.ContainsAny(value, "\x00\n") {
		return setting{}, fmt.Errorf("value has a NUL byte or newline, or is longer than %d bytes", maxValue)
	}
	kind, err := namespaceOf(parts, ns)
	if err != nil {
		return setting{}, err
	}
	return setting{name: name, kind: kind, path: filepath.Join(append([]string{procSys}, parts...)...), value: value}, nil
}

// namespaceOf returns the namespace a sysctl belongs to, or why the pod may not set it.
func namespaceOf(parts []string, ns Namespaces) (nspin.Kind, error) {
	switch {
	case parts[0] == "net":
		if !ns.Net {
			return "", errors.New("a pod on the node's network cannot set network sysctls")
		}
		return nspin.Net, nil
	case parts[0] == "kernel" && (parts[1] == "hostname" || parts[1] == "domainname"):
		return "", errors.New("the hostname is set by the pod's hostname field, not by a sysctl")
	case parts[0] == "kernel" && isIPCKernel(parts[1]), parts[0] == "fs" && parts[1] == "mqueue":
		if !ns.IPC {
			return "", errors.New("a pod in the node's IPC namespace cannot set IPC sysctls")
		}
		return nspin.IPC, nil
	}
	return "", errors.New("not a namespaced sysctl: it would change the whole node")
}

// isIPCKernel reports whether kernel.<name> lives in the IPC namespace.
func isIPCKernel(name string) bool {
	return strings.HasPrefix(name, "shm") || strings.HasPrefix(name, "msg") ||
		strings.HasPrefix(name, "sem") || name == "auto_msgmni"
}

// Apply validates the sysctls and writes them inside the pod's pinned namespaces. A
// sysctl the namespace does not have, or a value the kernel refuses, fails with
// errdefs.ErrInvalidArgument. Apply stops at the first failure; the values already
// written die with the namespace when the caller undoes the pod.
func Apply(sysctls map[string]string, pinned nspin.Pinned) error {
	settings, err := parse(sysctls, Namespaces{Net: pinned.Net != "", IPC: pinned.IPC != ""})
	if err != nil {
		return err
	}
	for _, kind := range []nspin.Kind{nspin.Net, nspin.IPC} {
		var group []setting
		for _, s := range settings {
			if s.kind == kind {
				group = append(group, s)
			}
		}
		if len(group) == 0 {
			continue
		}
		if err := nspin.Run(pinned.Path(kind), kind, func() error { return writeAll(group) }); err != nil {
			return err
		}
	}
	return nil
}

// writeAll runs on a thread inside the right namespace.
func writeAll(settings []setting) error {
	for _, s := range settings {
		f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(s.value)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrNotExist):
			return errdefs.InvalidArgument(fmt.Sprintf("sysctl %q does not exist in the pod's %s namespace", s.name, s.kind))
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ERANGE), errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return errdefs.InvalidArgument(fmt.Sprintf("sysctl %q: the kernel refused %q: %v", s.name, s.value, err))
		default:
			return fmt.Errorf("sysctl %q: %w", s.name, err)
		}
	}
	return nil
}
