// Package testimages builds the container images that berth's tests and
// cri-tools' critest pull, and serves them from an in-process registry on
// 127.0.0.1, so that no test needs the network.
//
// Every image is built from a static busybox binary (see hack/busybox/build.sh
// and EnsureBusybox) plus a few tiny static helper programs written in C
// (helpers/*.c, compiled with gcc -static and cached under hack/.cache). The
// catalogue (Build) mirrors what critest v1.37.0 references:
//
//   - gcr.io/k8s-staging-cri-tools/test-image-* (busybox plus a marker file, or
//     busybox with a USER), hostnet-nginx-<arch>;
//   - registry.k8s.io/e2e-test-images/{busybox,nginx,httpd,nonewprivs};
//   - registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9 (one image);
//   - docker.io/library/busybox:latest.
//
// A Registry serves images under their repository path (for example
// "e2e-test-images/busybox:1.29-2" or "library/busybox:latest"), which is how a
// CRI runtime configured with the registry as a mirror for docker.io, gcr.io,
// registry.k8s.io and k8s.gcr.io asks for them. It counts requests per path and
// per blob, and can be told to serve wrong content for a blob, so tests can
// check caching and digest verification.
//
// ServeCatalogue is the one-call setup for tests: busybox, catalogue and a
// registry on a free port; Registry.MirrorTOML is the matching berthd
// configuration. Tar, NewLayer, NewRawLayer, NewImage and NewIndex build
// arbitrary (also broken) images; Registry.Push publishes them.
package testimages
