package sandbox

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/nspin"
)

// podUserns is the user namespace of a pod with its own (userns_options mode POD): one
// uid and one gid range, container id 0 first, as kubelet allocates them.
type podUserns struct {
	uids, gids []nspin.IDMap
}

// parseUserns reads userns_options: nil for the node's user namespace.
func parseUserns(u *runtimeapi.UserNamespace) (*podUserns, error) {
	switch m := u.GetMode(); {
	case u == nil || m == runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids())+len(u.GetGids()) > 0 {
			return nil, errdefs.InvalidArgument("user namespace mode NODE takes no uid or gid mappings")
		}
		return nil, nil
	case m != runtimeapi.NamespaceMode_POD:
		return nil, errdefs.InvalidArgument(fmt.Sprintf("user namespace mode %s: a pod's is POD or NODE", m))
	}
	uids, err := idMap("uid", u.GetUids())
	if err != nil {
		return nil, err
	}
	gids, err := idMap("gid", u.GetGids())
	if err != nil {
		return nil, err
	}
	return &podUserns{uids: uids, gids: gids}, nil
}

// idMap checks a CRI mapping: exactly one range (what kubelet sends; several ranges
// would make the ownership of idmapped mounts ambiguous), starting at container id 0
// (the container's root must be someone), not empty and not past the 32-bit id space.
func idMap(what string, m []*runtimeapi.IDMapping) ([]nspin.IDMap, error) {
	if len(m) != 1 {
		return nil, errdefs.InvalidArgument(fmt.Sprintf("user namespace: %d %s mappings, exactly one is supported", len(m), what))
	}
	r := m[0]
	switch {
	case r.GetContainerId() != 0:
		return nil, errdefs.InvalidArgument(fmt.Sprintf("user namespace: the %s mapping must start at container id 0, not %d", what, r.GetContainerId()))
	case r.GetLength() == 0:
		return nil, errdefs.InvalidArgument(fmt.Sprintf("user namespace: the %s mapping is empty", what))
	case uint64(r.GetHostId())+uint64(r.GetLength()) > 1<<32-1:
		return nil, errdefs.InvalidArgument(fmt.Sprintf("user namespace: the %s mapping %d+%d passes the last id", what, r.GetHostId(), r.GetLength()))
	}
	return []nspin.IDMap{{ContainerID: 0, HostID: r.GetHostId(), Size: r.GetLength()}}, nil
}

// hostRoot is the host uid and gid of the namespace's root: who owns, on the host, what
// the pod's root is to own (its /dev/shm, hostname, hosts and resolv.conf, the upper
// directory of each container's root filesystem).
func (u *podUserns) hostRoot() (uid, gid int) {
	return int(u.uids[0].HostID), int(u.gids[0].HostID)
}

// chownToRoot gives paths to the namespace's root; nothing to do without a namespace.
func (u *podUserns) chownToRoot(paths ...string) error {
	if u == nil {
		return nil
	}
	uid, gid := u.hostRoot()
	for _, p := range paths {
		if p == "" {
			continue
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("give %s to the pod's root: %w", p, err)
		}
	}
	return nil
}

// overflowID is the id pause runs as (the Kubernetes pause image's nobody).
const overflowID = 65535

// pauseID is the id pause runs as inside the namespace: the overflow id when both maps
// reach it (kubelet's ranges are 65536 long), else the namespace's root, which is no
// one on the host either.
func (u *podUserns) pauseID() uint32 {
	if u == nil || u.uids[0].Size <= overflowID || u.gids[0].Size <= overflowID {
		return 0
	}
	return overflowID
}

// checkContainerUserns checks a container's userns_options against its pod's: kubelet
// repeats the pod's; none means the pod's. A container cannot leave its pod's user
// namespace, nor have one its pod has not.
func checkContainerUserns(pod, ctr *runtimeapi.UserNamespace) error {
	if ctr == nil {
		return nil
	}
	podMode := pod.GetMode()
	if pod == nil {
		podMode = runtimeapi.NamespaceMode_NODE
	}
	if ctr.GetMode() != podMode ||
		(podMode == runtimeapi.NamespaceMode_POD && (!idMapsEqual(ctr.GetUids(), pod.GetUids()) || !idMapsEqual(ctr.GetGids(), pod.GetGids()))) {
		return errdefs.InvalidArgument(fmt.Sprintf("the container's user namespace (%s) is not its pod's (%s)", ctr.GetMode(), podMode))
	}
	return nil
}

func idMapsEqual(a, b []*runtimeapi.IDMapping) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// searchableByOthers checks that each directory above the given paths (and each path
// itself) lets others through (o+x): runc resolves a user-namespaced container's root
// filesystem, and pause's, from inside the namespace, whose root is no one on the host.
// A node whose root or state lies under a 0700 directory gets a clear error here rather
// than runc's "permission denied" on a mount.
func searchableByOthers(paths ...string) error {
	for _, p := range paths {
		for dir := filepath.Clean(p); ; dir = filepath.Dir(dir) {
			if st, err := os.Stat(dir); err == nil && st.IsDir() && st.Mode().Perm()&0o001 == 0 {
				return errdefs.FailedPrecondition(fmt.Sprintf(
					"directory %s is %04o: the root of a user-namespaced pod could not reach its files through it (make it 0711)",
					dir, st.Mode().Perm()))
			}
			if dir == "/" || dir == "." {
				break
			}
		}
	}
	return nil
}

// checkMapped refuses a container user the namespace does not map (runc could not
// switch to it): its uid, gid and every supplementary group must lie in the maps.
func (u *podUserns) checkMapped(user specs.User) error {
	if u == nil {
		return nil
	}
	if user.UID >= u.uids[0].Size {
		return errdefs.InvalidArgument(fmt.Sprintf("uid %d is not mapped in the pod's user namespace (ids 0-%d)", user.UID, u.uids[0].Size-1))
	}
	for _, g := range append([]uint32{user.GID}, user.AdditionalGids...) {
		if g >= u.gids[0].Size {
			return errdefs.InvalidArgument(fmt.Sprintf("gid %d is not mapped in the pod's user namespace (ids 0-%d)", g, u.gids[0].Size-1))
		}
	}
	return nil
}
