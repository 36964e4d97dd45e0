package network

import "github.com/containernetworking/cni/libcni"

// Ready reports whether pods can be networked with the configuration in confDir (or the
// embedded default network when confDir holds none) and the plugins in binDirs: a
// configuration parses and every plugin it names is installed. It is the check of
// Manager.Status without a Manager and without CNI STATUS, for callers that only have
// the directories; the error wraps errdefs.ErrFailedPrecondition.
func Ready(confDir string, binDirs []string) error {
	c := loadConf(confDir, DefaultNetwork{}, "")
	if c.err != nil {
		return c.err
	}
	lists := []*libcni.NetworkConfigList{c.list}
	if c.ownLoopback {
		lists = append(lists, loopbackList)
	}
	return checkPlugins(binDirs, lists...)
}
