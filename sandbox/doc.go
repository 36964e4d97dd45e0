// Package sandbox runs kubelet's pod sandboxes and their containers (Service): the pod
// RPCs (RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus,
// ListPodSandbox, UpdatePodSandboxResources), the container RPCs (see
// doc_containers.go), the streaming sessions' domain side, stats, metrics and events,
// and recovery of what an earlier berthd left. It takes and returns the CRI types,
// which are the contract, and owns every check about the domain (namespace modes,
// sysctls, hostname, DNS, ports, log directory, cgroup parent, runtime handler, users,
// mounts, devices); errors carry internal/errdefs classes.
//
// Sub-packages: store (durable records), registrar (name reservations), cleanup (the
// undo stack), podfiles (hostname, hosts, resolv.conf, shm), sysctl, infra (the pause
// container), cgroups, runtime (the OCI runtime driver), pause (the pause executable),
// spec (OCI spec options), rootfs (overlay root filesystems), monitor (the container
// monitor and its client), nri (the NRI adaptation: the Service calls it through the
// NRI interface at every pod and container event, see nri.go; berthd wires it).
//
// This file is about pods; doc_containers.go about containers.
//
// # States
//
//	RunPod ──▶ [creating] ── a step fails ──▶ undo, last step first ──▶ (gone)
//	               │                                │ an undo step fails
//	               │ every step done                ▼
//	               ▼                           [notready], the reason says what is left
//	            [ready] ── its pause exits ──▶ reported NOTREADY (recorded ready)
//	               │ StopPod: pause killed, CNI DEL, namespaces and shm released
//	               ▼
//	           [notready] ── StopPod again: no-op
//	               │ RemovePod (stops first if needed): cgroup, files, record
//	               ▼
//	            (gone)
//
// "creating" is recorded only when the create made something the pod's id does not
// lead back to (a pod cgroup berth made); a record without a status means the same. At
// start-up (pod_recover.go) such a record is undone; a [ready] record whose pause or network
// namespace is gone is reported NOTREADY; a status that cannot be read is [unknown],
// reported NOTREADY, and Stop/Remove release whatever they find of it.
//
// Only READY pods are reported SANDBOX_READY: recorded ready, and their pause (if they
// have one) still running, which is one poll(2) on a pidfd, done at each Status or List.
//
// # Where things are
//
//	<root>/pods/<id>/metadata.json    id, names, handler, creation time, the config as sent
//	<root>/pods/<id>/status.json      state, what the pod holds, addresses, revision
//	<state>/pods/<id>                 mode 0700, as <state>/containers/<id> and
//	                                  <root>/rw: they hold container files (shm is a
//	                                  1777 tmpfs); <state>/pods and <state>/containers
//	                                  are 0711 (not listable)
//	<state>/pods/<id>/ns/{net,ipc,uts} pinned namespaces (internal/nspin)
//	<state>/pods/<id>/shm             the pod's /dev/shm tmpfs
//	<state>/pods/<id>/{hostname,hosts,resolv.conf}
//	<state>/pods/<id>/bundle          the pause container's OCI bundle
//	<state>/cni                       libcni's record of every ADD (DEL after restarts),
//	                                  and kubelet's pod CIDR (pod-cidr)
//	<state>/runtime/<handler>         the OCI runtime's state (--root)
//
// Records live under root, not state: after a reboot the pods are dead, but their
// records let kubelet see them NOTREADY and remove them, which DELs their addresses
// from IPAM stores that outlive reboots.
//
// # RunPod is a transaction
//
// After validation and the name reservation, the metadata record is written first; then,
// each step pushing its undo on a cleanup.Stack: the pod directory; the network, UTS and
// IPC namespaces, pinned (UTS goes with the network: a host-network pod has the node's
// hostname); the hostname, set by sethostname(2) from a thread inside the pinned UTS
// namespace; the sysctls; the shm tmpfs; the pod cgroup (when cgroup_parent is set);
// then CNI ADD and the pause container at the same time (each needs only the pinned
// namespaces, and they are the two slow steps); then the files, which need the pod's
// addresses; last the READY status. Any failure runs the undo steps in reverse order
// under a fresh context (context.WithoutCancel with its own timeout). If every undo
// step succeeds the record goes; otherwise it stays, NOTREADY with what is left, and
// the pod is listed so that kubelet (or recovery) stops and removes it.
//
// # Decision: an infra process only for a shared PID namespace
//
// A pod's network, IPC and UTS namespaces are held by their pins, not by a process, so a
// pod whose containers have PID namespaces of their own (kubelet's default, PID mode
// CONTAINER; also NODE and, for the pod, TARGET) has no infra process at all: CRI-O's
// choice too. Only a pod that shares one PID namespace (PID mode POD, the CRI default
// and shareProcessNamespace: true) runs berth's pause (sandbox/infra) as that
// namespace's PID 1. Measured with hack/bench/pods, 50 pods, serial, this 2-vCPU VM
// (runc 1.1.5, CNI plugins 1.1.1, no host ports), server side:
//
//	                               p50 ms   p95 ms
//	raw runc run of pause           27.9     34.4
//	raw CNI ADD (libcni, chain)     18.8     24.2
//	raw CNI DEL                     39.1     53.8
//	RunPod, shared PID (pause)      33.5     46.1   (pause beside the ADD: ≈ raw runc + 5.5)
//	RunPod, PID per container       19.2     24.7   (≈ raw CNI ADD)
//	StopPod, shared PID             30.4     54.9   (≈ raw CNI DEL: the veth's deletion)
//	StopPod, PID per container      40.6     57.6
//	RemovePod                        0.6      1.2
//	PodSandboxStatus / ListPods      0.008 / 0.004
//
// Without pause a pod costs no process, no runtime state and no pause cgroup, and starts
// 14 ms sooner; with it, the pause costs 12 kB of RSS. Stop is dominated by the bridge
// plugin deleting the pod's veth inside the namespace (the kernel waits for RCU), before
// which the namespace must not go (the bridge plugin needs it to find its masquerading
// rules); the StopPod rows differ by the kernel's asynchronous teardown of the previous
// pod's namespace, which contends with it.
//
// berthd is a child subreaper (cmd/berthd), so a pause that `runc run --detach` leaves
// behind is berthd's child and is reaped when its pod stops (wait4 on its pid only). A
// pause inherited from an earlier berthd is reaped by the node's init.
//
// # Decision: sysctls set once, in-process
//
// Namespaced sysctls (package sysctl) are validated against the namespaces the pod has
// of its own and written when the pod is created, from a thread that has entered the
// pinned network or IPC namespace: the kernel resolves /proc/sys/net and the IPC
// entries in the namespaces of the thread that opens them. No process is exec'd, values
// the kernel refuses fail RunPodSandbox with InvalidArgument before kubelet creates any
// container, and containers joining the namespaces see the values without their specs
// repeating them.
//
// # Decision: one directory of JSON files per pod, not bbolt
//
// A pod's record is written about three times in its life (metadata, status READY,
// status NOTREADY), each time a temporary file, fsync, rename and directory fsync: about
// 0.5 ms here. Per-pod files let parallel RunPods write without a database-wide
// lock, keep a broken record confined to its pod (recovery skips it and goes on), and
// make the state readable with cat. Reads never touch the disk: the index in memory
// answers Status and List.
//
// # Decision: kubelet's retries join the first create (CRI-O's way)
//
// A pod's name is name_namespace_uid_attempt. RunPod reserves it with a fingerprint of
// the request (registrar). The create runs detached from the caller's context, bounded
// by pod.create_timeout: when kubelet's deadline passes first, RunPod returns
// DeadlineExceeded and the create goes on. Kubelet's retry is the same request: it joins
// the reservation, waits for the create and gets its id, or gets the id at once when the
// pod exists and is READY (also after a restart: recovered pods hold their names). A
// different request for a name that is taken, or a retry whose pod is no longer READY,
// fails with AlreadyExists. A failed create frees the name, and its waiters get its
// error: there is no "name is reserved" state that outlives a create.
//
// # Locking
//
// Service.mu guards the index map only, for a map access. Each pod has an operation
// lock (Stop, Remove, Update) and publishes its last recorded status through an atomic
// pointer, so Status and List never wait behind a Stop. Creates of different pods, and
// Stop/Remove of different pods, run in parallel.
//
// # oom_score_adj
//
// pause asks for -998, through Config.OOMScoreAdj (internal/oomscore.Clamp when berthd
// lacks CAP_SYS_RESOURCE: the value is raised to berthd's own, and berthd says so at
// start; runc would otherwise fail the start with an obscure error).
package sandbox
