package sandbox

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/sandbox/apparmor"
	"github.com/berth-runtime/berth/sandbox/cdi"
	"github.com/berth-runtime/berth/sandbox/cgroups"
	"github.com/berth-runtime/berth/sandbox/podfiles"
	"github.com/berth-runtime/berth/sandbox/spec"
)

// specInput is everything a container's OCI spec is made of.
type specInput struct {
	pod    *pod
	podSt  *revision
	cfg    *runtimeapi.ContainerConfig
	image  *imagespec.ImageConfig
	rootfs string // the mounted root filesystem
	// mounts are the CRI mounts with image volumes already turned into bind mounts.
	mounts      []*runtimeapi.Mount
	cgroupsPath string
	handler     Handler
	// targetPID is the PID namespace of the TARGET container, for NamespaceMode_TARGET.
	targetPID string
	// processLabel and mountLabel are the SELinux labels (empty without SELinux).
	processLabel, mountLabel string
}

// parseImageConfig reads the "config" part of an OCI image config.
func parseImageConfig(raw []byte) (*imagespec.ImageConfig, error) {
	var img imagespec.Image
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &img); err != nil {
			return nil, fmt.Errorf("image config: %w", err)
		}
	}
	return &img.Config, nil
}

// buildSpec composes the container's spec in the order sandbox/spec documents. It
// returns the spec and the resolved user.
func (s *Service) buildSpec(in specInput) (*specs.Spec, error) {
	cfg, sc := in.cfg, in.cfg.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.pod.config.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, errdefs.InvalidArgument("a privileged container needs a privileged pod")
	}
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return nil, errdefs.InvalidArgument("run_as_group is set without run_as_user or run_as_username")
	}
	appArmor, err := apparmor.Profile(s.cfg.AppArmor, sc)
	if err != nil {
		return nil, err
	}
	user, err := spec.ResolveUser(in.rootfs, sc, in.image.User)
	if err != nil {
		return nil, err
	}
	res, err := cgroups.FromCRI(cfg.GetLinux().GetResources())
	if err != nil {
		return nil, err
	}
	res = s.cfg.Cgroups.WithoutUnavailable(res)
	for _, m := range in.mounts {
		if err := spec.RelabelMount(m, in.mountLabel, false); err != nil {
			return nil, err
		}
	}
	devices, err := deviceNodes(cfg.GetDevices(), privileged)
	if err != nil {
		return nil, err
	}
	cdiDevices, err := cdi.Requested(cfg)
	if err != nil {
		return nil, err
	}
	nsOpts, err := s.containerNamespaces(in)
	if err != nil {
		return nil, err
	}
	seccomp := sc.GetSeccomp()
	//lint:ignore SA1019 older kubelets and crictl still send the path form
	if legacy := sc.GetSeccompProfilePath(); seccomp == nil && legacy != "" {
		seccomp = legacySeccomp(legacy)
	}
	if privileged {
		// A privileged container is the node's to administer: a filter would only
		// break it (kubelet and the conformance suite expect none).
		seccomp = nil
	}
	opts := []spec.Opt{
		spec.WithProcessArgs(in.image, cfg.GetCommand(), cfg.GetArgs()),
		spec.WithEnv(in.image.Env, cfg.GetEnvs()),
		spec.WithWorkingDir(in.image, cfg.GetWorkingDir()),
		spec.WithTTY(cfg.GetTty()),
		spec.WithOOMScoreAdj(s.cfg.OOMScoreAdj(int(cfg.GetLinux().GetResources().GetOomScoreAdj()))),
		spec.WithUser(user),
		spec.WithMaskedPaths(sc.GetMaskedPaths()),
		spec.WithReadonlyPaths(sc.GetReadonlyPaths()),
		spec.WithReadonlyRootfs(sc.GetReadonlyRootfs()),
		spec.WithCapabilities(privileged, sc.GetCapabilities().GetAddCapabilities(), sc.GetCapabilities().GetDropCapabilities()),
	}
	if privileged {
		opts = append(opts, spec.WithPrivileged())
	}
	opts = append(opts,
		spec.WithAmbientCapabilities(sc.GetCapabilities().GetAddAmbientCapabilities()),
		spec.WithSeccomp(seccomp, ""),
		nsOpts,
		spec.WithCgroupsPath(in.cgroupsPath),
		spec.WithDevices(privileged, devices),
		spec.WithResources(res),
		spec.WithMounts(s.podMounts(in), in.handler.Features.RecursiveReadOnlyMounts),
		withRootPath(in.rootfs),
		withNoNewPrivs(sc.GetNoNewPrivs()),
		spec.WithSELinuxLabels(in.processLabel, in.mountLabel),
		spec.WithAppArmorProfile(appArmor),
	)
	if !in.pod.opts.hostNetwork {
		opts = append(opts, spec.WithHostname(in.pod.opts.hostname))
	}
	sp, err := spec.Build(opts...)
	if err != nil {
		return nil, err
	}
	if err := in.pod.opts.userns.checkMapped(sp.Process.User); err != nil {
		return nil, err
	}
	// Last: a CDI spec's edits add to what the CRI asked for (device nodes and their
	// cgroup rules after the deny-all, mounts, environment, hooks).
	if err := s.cdi.Inject(sp, cdiDevices); err != nil {
		return nil, err
	}
	return sp, nil
}

// containerNamespaces joins the pod's pinned namespaces (its user namespace too, when it
// has one), and the PID namespace the container's options ask for.
func (s *Service) containerNamespaces(in specInput) (spec.Opt, error) {
	ns := in.podSt.Namespaces
	podUserns := in.pod.config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if err := checkContainerUserns(podUserns, in.cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()); err != nil {
		return nil, err
	}
	pid := spec.PIDContainer
	pidNS := ""
	switch m := in.cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid(); m {
	case runtimeapi.NamespaceMode_CONTAINER:
	case runtimeapi.NamespaceMode_POD:
		if in.podSt.Infra == nil {
			return nil, errdefs.FailedPrecondition("the pod shares no PID namespace")
		}
		pid, pidNS = spec.PIDPod, fmt.Sprintf("/proc/%d/ns/pid", in.podSt.Infra.PID)
	case runtimeapi.NamespaceMode_NODE:
		pid = spec.PIDHost
	case runtimeapi.NamespaceMode_TARGET:
		if in.targetPID == "" {
			return nil, errdefs.InvalidArgument("PID namespace mode TARGET without a running target container")
		}
		pid, pidNS = spec.PIDPod, in.targetPID
	default:
		return nil, errdefs.InvalidArgument(fmt.Sprintf("PID namespace mode %s is unknown", m))
	}
	if ns.User == "" {
		return spec.WithNamespaces(ns.Net, ns.IPC, ns.UTS, pid, pidNS), nil
	}
	if pid == spec.PIDHost {
		return nil, errdefs.InvalidArgument("a container of a pod with its own user namespace cannot use the node's PID namespace")
	}
	joinPod, joinUser := spec.WithNamespaces(ns.Net, ns.IPC, ns.UTS, pid, pidNS), spec.WithUserNamespace(ns.User)
	return func(sp *specs.Spec) error {
		if err := joinPod(sp); err != nil {
			return err
		}
		return joinUser(sp)
	}, nil
}

// podMounts adds the pod's files and /dev/shm to the CRI mounts, unless kubelet mounts
// something at the same place itself.
func (s *Service) podMounts(in specInput) []*runtimeapi.Mount {
	taken := map[string]bool{}
	for _, m := range in.mounts {
		taken[filepath.Clean(m.GetContainerPath())] = true
	}
	dir := s.podDir(in.pod.meta.ID)
	ro := in.cfg.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	var out []*runtimeapi.Mount
	add := func(ctrPath, host string, readOnly bool) {
		if !taken[ctrPath] && host != "" {
			out = append(out, &runtimeapi.Mount{ContainerPath: ctrPath, HostPath: host, Readonly: readOnly})
		}
	}
	add("/etc/hostname", filepath.Join(dir, podfiles.HostnameFile), ro)
	add("/etc/hosts", filepath.Join(dir, podfiles.HostsFile), ro)
	add("/etc/resolv.conf", filepath.Join(dir, podfiles.ResolvConfFile), ro)
	shm := in.podSt.Shm
	if in.pod.opts.hostIPC {
		shm = "/dev/shm"
	}
	add("/dev/shm", shm, false)
	return append(out, in.mounts...)
}

func withRootPath(rootfs string) spec.Opt {
	return func(sp *specs.Spec) error {
		sp.Root.Path = rootfs
		return nil
	}
}

// withNoNewPrivs follows the CRI's no_new_privs: kubelet sets it from the pod's
// allowPrivilegeEscalation, and the conformance suite checks that false lets a setuid
// binary raise its privileges.
func withNoNewPrivs(on bool) spec.Opt {
	return func(sp *specs.Spec) error {
		sp.Process.NoNewPrivileges = on
		return nil
	}
}

// legacySeccomp maps the deprecated seccomp_profile_path to a SecurityProfile.
func legacySeccomp(p string) *runtimeapi.SecurityProfile {
	switch {
	case p == "unconfined":
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	case p == "runtime/default" || p == "docker/default":
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	case strings.HasPrefix(p, "localhost/"):
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: strings.TrimPrefix(p, "localhost/")}
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: p}
}
