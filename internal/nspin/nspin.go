package nspin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Kind is a namespace kind that can be pinned.
type Kind string

// The kinds of namespaces a pod shares between its containers.
const (
	Net Kind = "net"
	IPC Kind = "ipc"
	UTS Kind = "uts"
	// User is a pod's user namespace; only PinUser makes one (see userns.go).
	User Kind = "user"
)

// Kinds are all the kinds a pod may have pinned, for code that finds pins by name.
var Kinds = []Kind{Net, IPC, UTS, User}

// flag is the CLONE_NEW* flag of k, for unshare(2) and setns(2).
func (k Kind) flag() (int, error) {
	switch k {
	case Net:
		return unix.CLONE_NEWNET, nil
	case IPC:
		return unix.CLONE_NEWIPC, nil
	case UTS:
		return unix.CLONE_NEWUTS, nil
	case User:
		return unix.CLONE_NEWUSER, nil
	}
	return 0, fmt.Errorf("nspin: unknown namespace kind %q", string(k))
}

// Pinned names the files that hold a pod's namespaces. A field is empty when that kind
// was not pinned. It is plain data: persist it with the pod and pass it to Remove later,
// from any process.
type Pinned struct {
	Dir string `json:"dir"`
	Net string `json:"net,omitempty"`
	IPC string `json:"ipc,omitempty"`
	UTS string `json:"uts,omitempty"`
	// User is the pod's user namespace, which owns the others (PinUser).
	User string `json:"user,omitempty"`
}

// Path returns the file that pins the namespace of kind k, or "" when none was pinned.
func (p Pinned) Path(k Kind) string {
	switch k {
	case Net:
		return p.Net
	case IPC:
		return p.IPC
	case UTS:
		return p.UTS
	case User:
		return p.User
	}
	return ""
}

func (p *Pinned) set(k Kind, path string) {
	switch k {
	case Net:
		p.Net = path
	case IPC:
		p.IPC = path
	case UTS:
		p.UTS = path
	case User:
		p.User = path
	}
}

// Pin creates new namespaces of the given kinds and pins each one to dir/<kind>. dir is
// created when missing; the files in it must not exist yet. On error nothing is left
// mounted and the files Pin created are removed.
func Pin(dir string, kinds ...Kind) (Pinned, error) {
	p := Pinned{Dir: dir}
	if len(kinds) == 0 {
		return p, errors.New("nspin: no namespace kinds to pin")
	}
	flags := 0
	for _, k := range kinds {
		f, err := k.flag()
		if err != nil {
			return p, err
		}
		if k == User {
			return p, errors.New("nspin: a user namespace is pinned with PinUser")
		}
		if flags&f != 0 {
			return p, fmt.Errorf("nspin: namespace kind %q given twice", string(k))
		}
		flags |= f
	}
	if err := p.createMountPoints(kinds); err != nil {
		return Pinned{Dir: dir}, err
	}
	if err := onFreshThread(func() (bool, error) { return pinOnThread(flags, p, kinds) }); err != nil {
		_ = p.Remove()
		return Pinned{Dir: dir}, err
	}
	return p, nil
}

// createMountPoints makes an empty file per kind in p.Dir and records it in p. On error
// the files made are removed.
func (p *Pinned) createMountPoints(kinds []Kind) error {
	if err := os.MkdirAll(p.Dir, 0o711); err != nil {
		return fmt.Errorf("nspin: create %s: %w", p.Dir, err)
	}
	for _, k := range kinds {
		path := filepath.Join(p.Dir, string(k))
		// The mount point: an empty file. O_EXCL, so a pin is never stacked on another.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			_ = p.Remove()
			return fmt.Errorf("nspin: create mount point: %w", err)
		}
		_ = f.Close()
		p.set(k, path)
	}
	return nil
}

// pinOnThread runs on a locked thread: unshare, bind-mount, restore. It reports whether
// the thread is back in its original namespaces (and may be unlocked).
func pinOnThread(flags int, p Pinned, kinds []Kind) (restored bool, err error) {
	orig, err := openThreadNS(kinds)
	if err != nil {
		return true, err
	}
	defer closeAll(orig)
	if err := unix.Unshare(flags); err != nil {
		// unshare is all or nothing: the thread is still where it was.
		return true, fmt.Errorf("nspin: unshare %v: %w", kinds, err)
	}
	var mountErr error
	for _, k := range kinds {
		src := "/proc/thread-self/ns/" + string(k)
		if err := unix.Mount(src, p.Path(k), "", unix.MS_BIND, ""); err != nil {
			mountErr = fmt.Errorf("nspin: bind-mount %s on %s: %w", src, p.Path(k), err)
			break
		}
	}
	if err := setnsAll(orig); err != nil {
		return false, errors.Join(mountErr, err)
	}
	return true, mountErr
}

// Remove unpins every namespace of p and removes its directory when that is left empty.
// It is idempotent: what is already gone counts as removed.
func (p Pinned) Remove() error {
	var errs []error
	// The user namespace last: it owns the others.
	for _, path := range []string{p.Net, p.IPC, p.UTS, p.User} {
		if path != "" {
			errs = append(errs, Unpin(path))
		}
	}
	if p.Dir != "" {
		if err := os.Remove(p.Dir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("nspin: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Unpin detaches the namespace mount at path (every layer of it, should it be mounted
// more than once) and removes the file. An absent path or a file that is no longer a
// mount point is not an error.
func Unpin(path string) error {
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil || errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point, or gone
		}
		return fmt.Errorf("nspin: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nspin: %w", err)
	}
	return nil
}

// IsPinned reports whether path is a live namespace file (a file on nsfs, which is what a
// pin is while it is mounted). An absent path is not pinned and not an error.
func IsPinned(path string) (bool, error) {
	var st unix.Statfs_t
	err := unix.Statfs(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("nspin: statfs %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// onFreshThread runs fn on a new goroutine locked to its OS thread. fn reports whether the
// thread is still (or again) in its original namespaces; only then is the thread unlocked
// and returned to the scheduler. Otherwise the goroutine exits locked, and the Go runtime
// terminates the thread rather than running other goroutines in a pod's namespace.
func onFreshThread(fn func() (restored bool, err error)) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := fn()
		if restored {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// Found lists the pin files that exist in dir, whatever their state: what a pod whose
// record was lost may have left to Remove.
func Found(dir string) Pinned {
	p := Pinned{Dir: dir}
	for _, k := range Kinds {
		path := filepath.Join(dir, string(k))
		if _, err := os.Lstat(path); err == nil {
			p.set(k, path)
		}
	}
	return p
}
