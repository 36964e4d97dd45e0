package apparmor

import (
	"fmt"
	"os"
	"strings"
	"sync"

	moby "github.com/moby/profiles/apparmor"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DefaultProfile is the name berth loads its RuntimeDefault profile under.
const DefaultProfile = "berth-default"

// Host is what the decision needs to know about the node.
type Host interface {
	// Enabled reports whether the kernel enforces AppArmor.
	Enabled() bool
	// Loaded reports whether a profile of that name is loaded.
	Loaded(name string) (bool, error)
	// InstallDefault generates and loads the default profile under name.
	InstallDefault(name string) error
}

// Node is this node's AppArmor; it loads the default profile when it is not
// loaded yet (a failed load is retried on the next request).
type Node struct {
	mu        sync.Mutex
	installed bool
}

// Enabled reports AppArmor on when securityfs shows it and the module's "enabled"
// parameter says Y (the test runc itself makes).
func (*Node) Enabled() bool {
	if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
		return false
	}
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(data), "Y")
}

// Loaded looks the profile up in the kernel's list of loaded profiles.
func (*Node) Loaded(name string) (bool, error) { return moby.IsLoaded(name) }

// InstallDefault loads the default profile with apparmor_parser, once, and again if
// someone unloaded it since.
func (n *Node) InstallDefault(name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.installed {
		if ok, err := moby.IsLoaded(name); err == nil && ok {
			return nil
		}
	}
	if err := moby.InstallDefault(name); err != nil {
		return err
	}
	n.installed = true
	return nil
}

// Profile returns the profile for a container's process ("" for none) from the CRI
// request: the typed apparmor field, else the deprecated name form
// ("runtime/default", "unconfined", "localhost/<name>").
func Profile(h Host, sc *runtimeapi.LinuxContainerSecurityContext) (string, error) {
	kind, name, implicit := request(sc)
	if !h.Enabled() {
		if kind == runtimeapi.SecurityProfile_Localhost {
			return "", errdefs.FailedPrecondition(fmt.Sprintf("AppArmor profile %q asked for, but AppArmor is not enabled on this node", name))
		}
		return "", nil
	}
	switch kind {
	case runtimeapi.SecurityProfile_Unconfined:
		return "", nil
	case runtimeapi.SecurityProfile_Localhost:
		if name == "" {
			return "", errdefs.InvalidArgument("AppArmor profile type Localhost without a profile name")
		}
		ok, err := h.Loaded(name)
		if err != nil {
			return "", fmt.Errorf("AppArmor profile %q: %w", name, err)
		}
		if !ok {
			return "", errdefs.FailedPrecondition(fmt.Sprintf("AppArmor profile %q is not loaded on this node", name))
		}
		return name, nil
	}
	if err := h.InstallDefault(DefaultProfile); err != nil {
		if implicit {
			// Nothing was asked for: a node without apparmor_parser still runs pods,
			// as it did before berth applied a default.
			return "", nil
		}
		return "", fmt.Errorf("load the default AppArmor profile %s: %w", DefaultProfile, err)
	}
	return DefaultProfile, nil
}

// request reads what the CRI asks for; no request at all (implicit) is RuntimeDefault,
// except for a privileged container, which runs unconfined unless it names a profile.
func request(sc *runtimeapi.LinuxContainerSecurityContext) (kind runtimeapi.SecurityProfile_ProfileType, name string, implicit bool) {
	if p := sc.GetApparmor(); p != nil {
		return p.GetProfileType(), p.GetLocalhostRef(), false
	}
	//lint:ignore SA1019 older kubelets and crictl still send the name form
	switch legacy := sc.GetApparmorProfile(); {
	case legacy == "unconfined":
		return runtimeapi.SecurityProfile_Unconfined, "", false
	case legacy == "runtime/default":
		return runtimeapi.SecurityProfile_RuntimeDefault, "", false
	case strings.HasPrefix(legacy, "localhost/"):
		return runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(legacy, "localhost/"), false
	case legacy != "":
		return runtimeapi.SecurityProfile_Localhost, legacy, false
	}
	if sc.GetPrivileged() {
		return runtimeapi.SecurityProfile_Unconfined, "", true
	}
	return runtimeapi.SecurityProfile_RuntimeDefault, "", true
}
