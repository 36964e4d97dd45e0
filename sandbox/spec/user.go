package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// ResolveUser decides the process user. The CRI's run_as_user or
// run_as_username wins over the image's USER (uid, name, uid:gid or
// name:group); run_as_group replaces the group. Names are looked up in
// <rootfs>/etc/passwd and /etc/group, opened so that no path component, not
// even a symlink, can leave rootfs. A numeric uid absent from passwd gets
// gid 0; an unknown name is InvalidArgument. Supplemental groups are the
// primary group, then the user's /etc/group memberships (policy Merge, the default;
// not with Strict), then the CRI's supplemental_groups.
func ResolveUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (specs.User, error) {
	userPart, groupPart, _ := strings.Cut(imageUser, ":")
	if sc.GetRunAsUser() != nil {
		userPart, groupPart = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10), ""
	} else if sc.GetRunAsUsername() != "" {
		userPart, groupPart = sc.GetRunAsUsername(), ""
	}
	if userPart == "" {
		userPart = "0"
	}
	passwd, err := readConfined(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, err
	}
	groups, err := readConfined(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, err
	}

	var u specs.User
	name := ""
	if uid, ok := parseID(userPart); ok {
		u.UID = uid
		if e := findEntry(passwd, 2, userPart); e != nil {
			name = e[0]
			u.GID, _ = parseID(field(e, 3))
		}
	} else {
		e := findEntry(passwd, 0, userPart)
		if e == nil {
			return specs.User{}, errdefs.InvalidArgument(fmt.Sprintf("user %q not found in the image's /etc/passwd", userPart))
		}
		name = e[0]
		u.UID, _ = parseID(field(e, 2))
		u.GID, _ = parseID(field(e, 3))
	}
	if groupPart != "" {
		if gid, ok := parseID(groupPart); ok {
			u.GID = gid
		} else {
			e := findEntry(groups, 0, groupPart)
			if e == nil {
				return specs.User{}, errdefs.InvalidArgument(fmt.Sprintf("group %q not found in the image's /etc/group", groupPart))
			}
			u.GID, _ = parseID(field(e, 2))
		}
	}
	if g := sc.GetRunAsGroup(); g != nil {
		gid, ok := parseID(strconv.FormatInt(g.GetValue(), 10))
		if !ok {
			return specs.User{}, errdefs.InvalidArgument(fmt.Sprintf("run_as_group %d out of range", g.GetValue()))
		}
		u.GID = gid
	}

	var extra []uint32
	if sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict && name != "" {
		for _, e := range groups {
			if len(e) >= 4 && slices.Contains(strings.Split(e[3], ","), name) {
				if gid, ok := parseID(e[2]); ok {
					extra = append(extra, gid)
				}
			}
		}
	}
	for _, g := range sc.GetSupplementalGroups() {
		gid, ok := parseID(strconv.FormatInt(g, 10))
		if !ok {
			return specs.User{}, errdefs.InvalidArgument(fmt.Sprintf("supplemental group %d out of range", g))
		}
		extra = append(extra, gid)
	}
	// The primary group is among the supplementary ones, as Docker and containerd set
	// them and as kubelet expects ContainerStatus.user to report them.
	u.AdditionalGids = []uint32{u.GID}
	for _, g := range extra {
		if !slices.Contains(u.AdditionalGids, g) {
			u.AdditionalGids = append(u.AdditionalGids, g)
		}
	}
	return u, nil
}

// WithUser sets process.user, typically from ResolveUser.
func WithUser(u specs.User) Opt {
	return func(s *specs.Spec) error {
		u.AdditionalGids = slices.Clone(u.AdditionalGids)
		s.Process.User = u
		return nil
	}
}

// field returns e[i], or "" when the line is short.
func field(e []string, i int) string {
	if i < len(e) {
		return e[i]
	}
	return ""
}

func parseID(s string) (uint32, bool) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err == nil
}

// findEntry returns the first entry whose field col equals want.
func findEntry(entries [][]string, col int, want string) []string {
	for _, e := range entries {
		if len(e) > col && e[col] == want {
			return e
		}
	}
	return nil
}

// readConfined parses a colon-separated database at path inside rootfs,
// resolving every component as if rootfs were "/". A missing file is empty.
func readConfined(rootfs, path string) ([][]string, error) {
	dir, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(dir)
	var fd int
	for {
		fd, err = unix.Openat2(dir, path, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			break
		}
	}
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", path, rootfs, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return parseDB(f)
}

func parseDB(r io.Reader) ([][]string, error) {
	var out [][]string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}
