// Package network gives pods their network through CNI (libcni and the node's plugins).
//
// It owns:
//
//   - the network configuration: the first valid .conflist/.conf/.json in the
//     configuration directory, or, while that directory holds none, berth's embedded
//     default network (bridge berth0 + host-local 10.88.0.0/16 + portmap + bandwidth,
//     masquerading); re-read whenever the directory's fingerprint changes (see
//     Manager.Reload for why polling and not inotify);
//   - ADD/DEL/CHECK of a pod (Manager.Setup, Teardown, Check) with the Kubernetes CNI_ARGS
//     and the capability arguments portMappings, dns, bandwidth and ipRanges, which libcni
//     passes only to plugins that declare them; ipRanges carries kubelet's pod CIDR
//     (UpdateRuntimeConfig, Manager.SetPodCIDR, kept in Config.CacheDir/pod-cidr so
//     a restarted berthd still has it) unless the pod brings ranges of its own;
//   - the pod's loopback: berth's own one-plugin network, run beside the pod network in
//     parallel whenever that network does not include the loopback plugin;
//   - NetworkReady (Manager.Status);
//   - the bandwidth annotations (BandwidthFromAnnotations, ParseQuantity).
//
// It does not create network namespaces: internal/nspin pins them and the caller passes
// the path in Pod.NetNS.
//
// # Teardown
//
// Every ADD is recorded by libcni in Config.CacheDir: the configuration as it was, the
// CNI_ARGS, the capability arguments and the result. Teardown DELs from that record, so
// a changed configuration directory or a restarted berthd still undoes exactly what was
// done. When the namespace is gone the plugins get an empty CNI_NETNS, as every CRI
// runtime passes it, and release what lives outside it (addresses, iptables rules); the
// kernel removed the pod's interfaces with the namespace. Note that the bridge plugin
// (through 1.1) removes its ipMasq rules only when it can still read the pod's addresses
// in the namespace: call Teardown before unpinning the namespace whenever possible.
//
// # Concurrency
//
// Manager's methods are safe for concurrent use. The only lock guards the pointer to the
// loaded configuration; plugins for different pods run in parallel, as kubelet expects.
package network
