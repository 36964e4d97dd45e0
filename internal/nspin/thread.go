package nspin

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// nsHandle is an open namespace file and the kind it is of.
type nsHandle struct {
	kind Kind
	flag int
	f    *os.File
}

// openThreadNS opens the calling thread's current namespaces of the given kinds. The
// caller must be locked to its OS thread.
func openThreadNS(kinds []Kind) ([]nsHandle, error) {
	hs := make([]nsHandle, 0, len(kinds))
	for _, k := range kinds {
		flag, err := k.flag()
		if err != nil {
			closeAll(hs)
			return nil, err
		}
		f, err := os.Open("/proc/thread-self/ns/" + string(k))
		if err != nil {
			closeAll(hs)
			return nil, fmt.Errorf("nspin: %w", err)
		}
		hs = append(hs, nsHandle{kind: k, flag: flag, f: f})
	}
	return hs, nil
}

// setnsAll moves the calling thread into every namespace of hs.
func setnsAll(hs []nsHandle) error {
	var errs []error
	for _, h := range hs {
		if err := unix.Setns(int(h.f.Fd()), h.flag); err != nil {
			errs = append(errs, fmt.Errorf("nspin: setns %s %s: %w", h.kind, h.f.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func closeAll(hs []nsHandle) {
	for _, h := range hs {
		_ = h.f.Close()
	}
}

// Run calls fn on an OS thread that has entered the namespace of kind k pinned at path,
// then moves the thread back. Sockets fn opens stay in that namespace after Run returns,
// which is how a listener or a connection inside a pod's network is made.
//
// fn runs on a goroutine of its own; goroutines it starts do not inherit the namespace.
// If the thread cannot be moved back, it is terminated, never reused.
func Run(path string, k Kind, fn func() error) error {
	flag, err := k.flag()
	if err != nil {
		return err
	}
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("nspin: enter %s namespace: %w", k, err)
	}
	defer target.Close()
	return onFreshThread(func() (bool, error) {
		orig, err := openThreadNS([]Kind{k})
		if err != nil {
			return true, err
		}
		defer closeAll(orig)
		if err := unix.Setns(int(target.Fd()), flag); err != nil {
			return true, fmt.Errorf("nspin: enter %s namespace %s: %w", k, path, err)
		}
		fnErr := fn()
		if err := setnsAll(orig); err != nil {
			return false, errors.Join(fnErr, err)
		}
		return true, fnErr
	})
}
