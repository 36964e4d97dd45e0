package testimages

import (
	"bytes"
	"fmt"
	"os/exec"
	"path"
	"sort"
	"strings"
)

// Passwd is /etc/passwd of the busybox images, as in the official busybox image.
const Passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

// Group is /etc/group of the busybox images, as in the official busybox image.
const Group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`

// shadowFor locks every account of a passwd file.
func shadowFor(passwd string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(passwd), "\n") {
		name, _, _ := strings.Cut(line, ":")
		fmt.Fprintf(&b, "%s:*:19000:0:99999:7:::\n", name)
	}
	return b.String()
}

// DefaultPath is the PATH of the busybox images.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ListApplets runs `busybox --list-full` and returns the install path of
// every applet, relative to / (e.g. "bin/ls", "usr/bin/env").
func ListApplets(busyboxPath string) ([]string, error) {
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busyboxPath, err)
	}
	var applets []string
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			applets = append(applets, strings.TrimPrefix(line, "/"))
		}
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list-full printed no applets", busyboxPath)
	}
	return applets, nil
}

// BusyboxRootfs returns the entries of a root filesystem like the official
// busybox image: /bin/busybox with every applet as a hard link to it in /bin
// and at its --list-full location, /etc/passwd and /etc/group, /tmp (1777),
// /root, /home, /var and empty /etc/hostname, /etc/hosts and
// /etc/resolv.conf for the runtime to mount over.
//
// Hard links, not symlinks: masking /bin/ls (critest's MaskedPaths spec)
// must not mask /bin/busybox.
func BusyboxRootfs(busybox []byte, applets []string) []File {
	dirs := map[string]int64{
		"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "root": 0o700,
		"tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "sbin": 0o755,
		"var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755,
	}
	links := map[string]bool{}
	for _, a := range applets {
		name := path.Base(a)
		if name == "busybox" || name == "." || name == "/" {
			continue
		}
		links["bin/"+name] = true
		if dir := path.Dir(a); dir != "." {
			links[a] = true
			for d := dir; d != "."; d = path.Dir(d) {
				if _, ok := dirs[d]; !ok {
					dirs[d] = 0o755
				}
			}
		}
	}

	var files []File
	for _, d := range sortedKeys(dirs) {
		files = append(files, Dir(d, dirs[d]))
	}
	files = append(files,
		File{Path: "bin/busybox", Mode: 0o755, Content: busybox},
		Reg("etc/passwd", 0o644, Passwd),
		Reg("etc/group", 0o644, Group),
		Reg("etc/shadow", 0o640, shadowFor(Passwd)),
		Reg("etc/hostname", 0o644, ""),
		Reg("etc/hosts", 0o644, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
		Reg("etc/resolv.conf", 0o644, ""),
		Reg("etc/nsswitch.conf", 0o644, "hosts: files dns\npasswd: files\ngroup: files\n"),
	)
	// The links carry their target's mode, as tar writes them: an unpacker that applies
	// a hard link's header mode to the shared inode (containerd's does) would otherwise
	// leave busybox 0644 and nothing in the image executable.
	for _, l := range sortedKeys(links) {
		link := Hardlink(l, "bin/busybox")
		link.Mode = 0o755
		files = append(files, link)
	}
	return files
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
