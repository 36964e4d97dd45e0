// Command testregistry serves berth's test image catalogue (package
// hack/testimages) from an in-memory registry on a loopback address, for
// hack/critest.sh and manual runs. Configure it as the mirror of docker.io,
// gcr.io, registry.k8s.io and k8s.gcr.io (plain HTTP).
//
//	go run ./hack/cmd/testregistry [-addr 127.0.0.1:5111] [-busybox PATH] [-v]
//	go run ./hack/cmd/testregistry -list
//
// Without -busybox the static busybox is built (or taken from the cache) by
// hack/busybox/build.sh. Once serving it prints "ready <host:port>" on
// standard output; SIGTERM or SIGINT stop it.
package main
