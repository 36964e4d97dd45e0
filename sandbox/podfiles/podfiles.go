package podfiles

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// The names of the files in a pod's directory.
const (
	HostnameFile   = "hostname"
	HostsFile      = "hosts"
	ResolvConfFile = "resolv.conf"
	ShmDir         = "shm"
)

// The node's files that host-network pods (and pods without DNS settings) get a copy of.
// Variables so that tests can point them elsewhere.
var (
	NodeHosts      = "/etc/hosts"
	NodeResolvConf = "/etc/resolv.conf"
)

// DNS is a pod's resolver configuration (the CRI DNSConfig).
type DNS struct {
	Servers  []string
	Searches []string
	Options  []string
}

func (d *DNS) empty() bool {
	return d == nil || len(d.Servers)+len(d.Searches)+len(d.Options) == 0
}

// Files describes what to write.
type Files struct {
	Hostname    string
	HostNetwork bool
	// IPs are the pod's addresses; each gets a hosts entry with the hostname.
	IPs []string
	// DNS renders resolv.conf; nil or empty copies the node's.
	DNS *DNS
}

// Limits of resolv.conf as glibc and kubelet read it.
const (
	maxSearches   = 32
	maxSearchLine = 2048
	maxHostname   = 64 // HOST_NAME_MAX
)

// ValidateDNS checks DNS settings before they are written to a file: servers must be IP
// addresses, search domains and options single words. Errors wrap
// errdefs.ErrInvalidArgument.
func ValidateDNS(d *DNS) error {
	if d == nil {
		return nil
	}
	for _, s := range d.Servers {
		if net.ParseIP(s) == nil {
			return errdefs.InvalidArgument(fmt.Sprintf("dns server %q is not an IP address", s))
		}
	}
	if len(d.Searches) > maxSearches {
		return errdefs.InvalidArgument(fmt.Sprintf("%d dns search domains: at most %d", len(d.Searches), maxSearches))
	}
	if n := len(strings.Join(d.Searches, " ")); n > maxSearchLine {
		return errdefs.InvalidArgument(fmt.Sprintf("dns search line of %d bytes: at most %d", n, maxSearchLine))
	}
	for _, kind := range []struct {
		what  string
		words []string
	}{{"search domain", d.Searches}, {"option", d.Options}} {
		for _, w := range kind.words {
			if !isWord(w) {
				return errdefs.InvalidArgument(fmt.Sprintf("dns %s %q: empty, or has blanks or control characters", kind.what, w))
			}
		}
	}
	return nil
}

// ValidateHostname checks a pod's hostname: what sethostname(2) takes and what a hosts
// file can hold.
func ValidateHostname(h string) error {
	if len(h) > maxHostname {
		return errdefs.InvalidArgument(fmt.Sprintf("hostname %q: longer than %d bytes", h, maxHostname))
	}
	if h != "" && (!isWord(h) || strings.ContainsAny(h, "/#")) {
		return errdefs.InvalidArgument(fmt.Sprintf("hostname %q: has blanks, control characters, '/' or '#'", h))
	}
	return nil
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// RenderResolvConf renders d as resolv.conf content.
func RenderResolvConf(d *DNS) []byte {
	var b strings.Builder
	b.WriteString("# Written by berth from the pod's DNS configuration.\n")
	if len(d.Searches) > 0 {
		b.WriteString("search " + strings.Join(d.Searches, " ") + "\n")
	}
	for _, s := range d.Servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(d.Options) > 0 {
		b.WriteString("options " + strings.Join(d.Options, " ") + "\n")
	}
	return []byte(b.String())
}

// RenderHosts renders the hosts file of a pod with its own network.
func RenderHosts(hostname string, ips []string) []byte {
	var b strings.Builder
	b.WriteString("# Written by berth for the pod.\n" +
		"127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\n" +
		"fe00::1\tip6-allnodes\n" +
		"fe00::2\tip6-allrouters\n")
	if hostname != "" {
		for _, ip := range ips {
			b.WriteString(ip + "\t" + hostname + "\n")
		}
	}
	return []byte(b.String())
}

// Write writes hostname, hosts and resolv.conf into dir, which must exist.
func Write(dir string, f Files) error {
	hosts := RenderHosts(f.Hostname, f.IPs)
	if f.HostNetwork {
		data, err := os.ReadFile(NodeHosts)
		if err != nil {
			return fmt.Errorf("podfiles: node hosts: %w", err)
		}
		hosts = data
	}
	resolv := []byte(nil)
	if f.DNS.empty() {
		data, err := os.ReadFile(NodeResolvConf)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("podfiles: node resolv.conf: %w", err)
		}
		resolv = data // a node without resolv.conf gives its pods an empty one
	} else {
		resolv = RenderResolvConf(f.DNS)
	}
	for _, file := range []struct {
		name string
		data []byte
	}{
		{HostnameFile, []byte(f.Hostname + "\n")},
		{HostsFile, hosts},
		{ResolvConfFile, resolv},
	} {
		if err := os.WriteFile(filepath.Join(dir, file.name), file.data, 0o644); err != nil {
			return fmt.Errorf("podfiles: %w", err)
		}
	}
	return nil
}

// MountShm mounts a tmpfs of size bytes on dir/shm (created) and returns its path.
func MountShm(dir string, size int64) (string, error) {
	path := filepath.Join(dir, ShmDir)
	if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("podfiles: %w", err)
	}
	opts := fmt.Sprintf("mode=1777,size=%d", size)
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("podfiles: mount shm tmpfs on %s: %w", path, err)
	}
	return path, nil
}

// UnmountShm detaches the pod's shm tmpfs (every layer, should it be mounted twice) and
// removes the mount point. What is already gone counts as done.
func UnmountShm(path string) error {
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil || errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point any more, or gone
		}
		return fmt.Errorf("podfiles: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("podfiles: %w", err)
	}
	return nil
}
