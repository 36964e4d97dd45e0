package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// podCIDRFile keeps kubelet's pod CIDR in the cache directory, so that a restarted
// berthd still hands it to new pods: kubelet says it once, not after every restart of
// the runtime.
const podCIDRFile = "pod-cidr"

// SetPodCIDR takes kubelet's pod CIDR (UpdateRuntimeConfig): one CIDR, or one per IP
// family separated by commas. Pods set up from then on get it as the "ipRanges"
// capability argument, one range set per CIDR, which libcni hands only to plugins that
// declare the capability (the bridge plugin, which hands it on to host-local): a network
// that declares none is left as it is. host-local allocates from these ranges as well
// as any it names itself, so a network meant to follow the pod CIDR names none. ""
// forgets it.
func (m *Manager) SetPodCIDR(cidrs string) error {
	ranges, err := parsePodCIDR(cidrs)
	if err != nil {
		return err
	}
	path := filepath.Join(m.cfg.CacheDir, podCIDRFile)
	if ranges == nil {
		err = os.Remove(path)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	} else {
		err = writeFileAtomic(path, []byte(cidrs+"\n"))
	}
	if err != nil {
		return fmt.Errorf("network: keep the pod CIDR: %w", err)
	}
	m.cidrMu.Lock()
	m.podCIDR = ranges
	m.cidrMu.Unlock()
	return nil
}

// loadPodCIDR reads what SetPodCIDR kept; a missing or damaged file is no pod CIDR.
func (m *Manager) loadPodCIDR() {
	data, err := os.ReadFile(filepath.Join(m.cfg.CacheDir, podCIDRFile))
	if err != nil {
		return
	}
	ranges, err := parsePodCIDR(strings.TrimSpace(string(data)))
	if err != nil {
		m.log.Warn("ignoring the kept pod CIDR", "error", err)
		return
	}
	m.podCIDR = ranges
}

// podCIDRRanges is the ipRanges argument for kubelet's pod CIDR; nil without one.
func (m *Manager) podCIDRRanges() [][]IPRange {
	m.cidrMu.RLock()
	defer m.cidrMu.RUnlock()
	return m.podCIDR
}

func parsePodCIDR(cidrs string) ([][]IPRange, error) {
	if strings.TrimSpace(cidrs) == "" {
		return nil, nil
	}
	var out [][]IPRange
	for _, c := range strings.Split(cidrs, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Sprintf("pod CIDR %q: %v", cidrs, err))
		}
		out = append(out, []IPRange{{Subnet: p.Masked().String()}})
	}
	return out, nil
}

// writeFileAtomic replaces path with data: a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
