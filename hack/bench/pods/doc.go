// Command pods measures berth's pod sandboxes on the path a CRI RunPodSandbox,
// StopPodSandbox and RemovePodSandbox take, next to the floor any runtime pays on this
// node: a raw `runc run --detach` of berth's pause rootfs (what starting an infra process
// costs) and a raw libcni ADD of the same network (what attaching a pod costs), measured
// in the same run.
//
//	go run ./hack/bench/pods [-n 50] [-max 5m]
//
// Each iteration runs, interleaved so that the machine's noise hits every row alike:
//
//	raw runc run           runc run --detach of the pause rootfs (new pid, net, ipc, uts,
//	                       mount namespaces), exec'd directly
//	raw runc kill+delete   runc kill KILL, wait, runc delete
//	raw CNI ADD            libcni AddNetworkList of the whole chain on a pinned netns
//	raw CNI DEL            libcni DelNetworkList
//	run (shared PID)       sandbox.Service.RunPod of a pod with no namespace options: it
//	                       shares one PID namespace, so berth starts pause beside CNI ADD
//	pod status, list pods  PodStatus, ListPods (one pod)
//	stop, remove           StopPod, RemovePod of that pod
//	run/stop/remove (per-container PID)
//	                       the same for a pod as kubelet sends it by default (PID
//	                       namespace per container): no pause at all
//
// The network is the benchmark's own: a bridge bb<hex>, a /24 in 10.197.0.0/16, no
// masquerading, host-local records in the run directory, portmap and loopback (as the
// integration tests use). Records go under -root (default a directory under /var/tmp,
// so that their fsyncs hit a real disk). Numbers are server-side (no gRPC). It needs
// root, runc and the CNI plugins in /usr/lib/cni; it removes the bridge, the run
// directory and everything it started when it ends, and puts net.ipv4.ip_forward back.
package main
