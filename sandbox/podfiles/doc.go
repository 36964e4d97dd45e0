// Package podfiles makes the files a pod's containers share, in the pod's directory under
// berth's state directory:
//
//	hostname      the pod's hostname and a newline
//	hosts         for a pod with its own network: localhost entries and the pod's
//	              addresses with its hostname; for a host-network pod: the node's /etc/hosts
//	resolv.conf   rendered from the pod's DNSConfig; without one: the node's resolv.conf
//	shm/          a tmpfs of its own (size from the configuration), unless the pod uses
//	              the node's IPC namespace
//
// Containers (a later issue) bind-mount them. The DNS settings come from kubelet, but a
// newline in one of them would add arbitrary lines to the file, so they are validated
// (ValidateDNS) before anything is written. The files are not fsynced: they live in the
// volatile state directory and are rewritten by nothing; a pod never outlives a reboot.
package podfiles
