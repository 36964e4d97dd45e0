package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/nspin"
	"github.com/berth-runtime/berth/network"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/cleanup"
	"github.com/berth-runtime/berth/sandbox/infra"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/sandbox/sysctl"
)

// build makes the pod's resources, in order: directory, namespaces (with hostname and
// sysctls), shm, cgroup, then network and pause at once, then the files that need the
// pod's addresses. It returns the status listing what it made, also on failure.
func (s *Service) build(ctx context.Context, p *pod, undo *cleanup.Stack) (*Status, error) {
	st := &Status{}
	id, o := p.meta.ID, p.opts
	dir := s.podDir(id)
	// 0700: it holds the pod's /dev/shm (a 1777 tmpfs) and files its containers bind;
	// pod ids show in cgroup paths, so only the mode keeps host users out.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return st, fmt.Errorf("pod directory: %w", err)
	}
	undo.Push("pod directory", func(context.Context) error {
		if !st.released() {
			return nil // a namespace pinned in it is kept: see "namespaces"
		}
		return os.RemoveAll(dir)
	})

	if err := s.pinNamespaces(p, st, undo); err != nil {
		return st, err
	}
	if !o.hostIPC {
		shm, err := podfiles.MountShm(dir, s.cfg.ShmSize)
		if err != nil {
			return st, err
		}
		st.Shm = shm
		if err := o.userns.chownToRoot(shm); err != nil {
			return st, err
		}
		undo.Push("shm", func(context.Context) error {
			if err := podfiles.UnmountShm(shm); err != nil {
				return err
			}
			st.Shm = ""
			return nil
		})
	}
	if o.cgroupParent != "" {
		cg, err := s.cfg.Cgroups.Create(o.cgroupParent, o.resources)
		if err != nil {
			return st, err
		}
		state := cg.State()
		st.Cgroup = &state
		undo.Push("pod cgroup", func(context.Context) error {
			if err := cg.Remove(); err != nil {
				return err
			}
			st.Cgroup = nil
			return nil
		})
		if len(state.Created) > 0 {
			// Only the record can tell recovery that berth made this cgroup.
			st.State = StateCreating
			if err := s.record(p, *st); err != nil {
				return st, err
			}
		}
	}
	if err := s.startNetworkAndInfra(ctx, p, st, undo); err != nil {
		return st, err
	}
	err := podfiles.Write(dir, podfiles.Files{
		Hostname: o.hostname, HostNetwork: o.hostNetwork, IPs: st.IPs, DNS: o.dns,
	})
	if err != nil {
		return st, err
	}
	return st, o.userns.chownToRoot(filepath.Join(dir, podfiles.HostnameFile),
		filepath.Join(dir, podfiles.HostsFile), filepath.Join(dir, podfiles.ResolvConfFile))
}

// pinNamespaces pins the pod's network, IPC and UTS namespaces (UTS goes with the
// network: a host-network pod has the node's hostname), owned by the pod's user
// namespace when it has one, names the UTS namespace after the pod and sets the sysctls.
func (s *Service) pinNamespaces(p *pod, st *Status, undo *cleanup.Stack) error {
	o := p.opts
	var kinds []nspin.Kind
	if !o.hostNetwork {
		kinds = append(kinds, nspin.Net, nspin.UTS)
	}
	if !o.hostIPC {
		kinds = append(kinds, nspin.IPC)
	}
	if len(kinds) == 0 {
		return nil
	}
	nsPath := filepath.Join(s.podDir(p.meta.ID), nsDir)
	var pinned nspin.Pinned
	var err error
	if u := o.userns; u != nil {
		pinned, err = nspin.PinUser(nsPath, u.uids, u.gids, kinds...)
	} else {
		pinned, err = nspin.Pin(nsPath, kinds...)
	}
	if err != nil {
		return err
	}
	st.Namespaces = pinned
	undo.Push("namespaces", func(context.Context) error {
		if st.Network {
			// The network's undo failed: the namespace stays for the DEL that Stop or
			// Remove retries (plugins need it to find what they set up).
			return nil
		}
		return st.releaseNamespaces()
	})
	if pinned.UTS != "" {
		err := nspin.Run(pinned.UTS, nspin.UTS, func() error { return unix.Sethostname([]byte(o.hostname)) })
		if err != nil {
			return fmt.Errorf("set hostname %q: %w", o.hostname, err)
		}
	}
	return sysctl.Apply(o.sysctls, pinned)
}

// startNetworkAndInfra attaches the pod to its network and starts its pause at the same
// time: both only need the pinned namespaces, and each takes a good part of a create.
func (s *Service) startNetworkAndInfra(ctx context.Context, p *pod, st *Status, undo *cleanup.Stack) error {
	var wg sync.WaitGroup
	var netErr, infraErr error
	if !p.opts.hostNetwork {
		wg.Go(func() { netErr = s.setupNetwork(ctx, p, st, undo) })
	}
	if p.opts.sharedPID {
		wg.Go(func() { infraErr = s.startInfra(ctx, p, st, undo) })
	}
	wg.Wait()
	return errors.Join(netErr, infraErr)
}

// setupNetwork runs CNI ADD. It writes only st.Network and st.IPs.
func (s *Service) setupNetwork(ctx context.Context, p *pod, st *Status, undo *cleanup.Stack) error {
	np := s.netPod(p, st.Namespaces.Net)
	// Pushed before the ADD: a Setup that fails half-way has undone itself, but one cut
	// short by a crash has not, and a DEL of what was never added is a no-op.
	st.Network = true
	undo.Push("network", func(ctx context.Context) error {
		if err := s.cfg.Network.Teardown(ctx, np); err != nil {
			return err
		}
		st.Network = false
		return nil
	})
	res, err := s.cfg.Network.Setup(ctx, np)
	if err != nil {
		return err
	}
	st.IPs = ipStrings(res.IPs)
	return nil
}

// netPod is the pod as the network sees it.
func (s *Service) netPod(p *pod, netns string) network.Pod {
	np := network.Pod{
		ID: p.meta.ID, Name: p.meta.Name, Namespace: p.meta.Namespace, UID: p.meta.UID,
		NetNS: netns, PortMappings: p.opts.ports, Bandwidth: p.opts.bandwidth,
	}
	if d := p.opts.dns; d != nil && len(d.Servers)+len(d.Searches)+len(d.Options) > 0 {
		np.DNS = &network.DNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	return np
}

// startInfra runs the pod's pause. It writes only st.Infra and st.InfraContainer.
func (s *Service) startInfra(ctx context.Context, p *pod, st *Status, undo *cleanup.Stack) error {
	rt := s.cfg.Handlers[p.opts.handler].Runtime
	names, err := cgroups.ContainerNames(s.cfg.Cgroups.Driver(), p.opts.cgroupParent, p.meta.ID)
	if err != nil {
		return err
	}
	user, seccomp, err := pauseSecurity(p.config.GetLinux().GetSecurityContext())
	if err != nil {
		return err
	}
	spec := infra.Spec(infra.SpecOptions{
		Rootfs: s.cfg.PauseRootfs, Args: s.cfg.PauseArgs,
		NetNS: st.Namespaces.Net, IPCNS: st.Namespaces.IPC, UTSNS: st.Namespaces.UTS,
		UserNS: st.Namespaces.User, PauseID: p.opts.userns.pauseID(),
		CgroupsPath: names.CgroupsPath,
		OOMScoreAdj: s.cfg.OOMScoreAdj(infraOOMScoreAdj),
		User:        user, Seccomp: seccomp,
	})
	st.InfraContainer = true
	proc, err := infra.Start(ctx, rt, p.meta.ID, filepath.Join(s.podDir(p.meta.ID), bundleDir), spec)
	if err != nil {
		st.InfraContainer = false // a failed Run deletes what it made
		return err
	}
	st.Infra = &proc.Record
	p.proc.Store(proc)
	undo.Push("pause", func(ctx context.Context) error {
		if err := s.stopInfra(ctx, p); err != nil {
			return err
		}
		st.Infra, st.InfraContainer = nil, false
		return nil
	})
	return nil
}

// stopInfra stops the pod's pause (deletes its container, kills it if it runs) and
// forgets the process.
func (s *Service) stopInfra(ctx context.Context, p *pod) error {
	h, ok := s.cfg.Handlers[p.meta.Handler]
	if !ok || h.Runtime == nil {
		return fmt.Errorf("runtime handler %q of the pod's pause is no longer configured", p.meta.Handler)
	}
	if err := infra.Stop(ctx, h.Runtime, p.meta.ID, p.proc.Load()); err != nil {
		return err
	}
	p.proc.Store(nil)
	return nil
}

// ipStrings is net.IP.String over a slice.
func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
