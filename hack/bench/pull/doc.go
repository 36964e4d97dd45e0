// Command pull measures berth's image service on the path a CRI PullImage takes, against
// a registry served in-process on 127.0.0.1 (package hack/testimages), and compares it
// with the floor any implementation pays: one HTTP GET of the layer blob, gunzip and
// untar into a fresh directory with the Go standard library.
//
//	go run ./hack/bench/pull [-n 30] [-root DIR] [-format docker|oci] [-zstd] [-layers 1]
//	                         [-cpuprofile FILE] [-trace FILE] [-phases]
//
// Each iteration runs, interleaved so that the machine's noise hits every row alike:
//
//	floor          GET blob + gunzip + untar (stdlib, modes only), no sync
//	floor + syncfs the same plus one syncfs of the filesystem, the cheapest durability
//	floor: rm -rf  os.RemoveAll of the synced floor's tree (flushed, as a snapshot is)
//	cold pull      Pull of an absent image (a remove came before)
//	image status   Get by tag           (CRI ImageStatus)
//	list images    List("")             (CRI ListImages)
//	warm pull      Pull of a present image by tag (manifest GET, no blob)
//	remove         Remove by tag        (CRI RemoveImage)
//
// The service is image.New on -root (default a directory under /var/tmp, so that the
// fsyncs hit a real disk, not tmpfs), configured as berthd is for hack/cmd/testregistry:
// the registry is a plain-HTTP mirror of docker.io with mirrors_only. The image is the
// ~1.4 MB (compressed) static busybox single-layer image that hack/busybox/build.sh
// builds once per machine: 2.7 MB unpacked, 8 files, 14 directories, 702 hardlinks. The
// numbers are server-side: no gRPC, which adds some tens of microseconds. berthd.sh in
// this directory measures the same RPCs through a real berthd and crictl, from the
// "cri call" durations berthd logs.
//
// The run is bounded: -n iterations (at most 1000, after one unrecorded warm-up) and
// -max wall time, whichever comes first. It prints mean, p50 and p95 in milliseconds
// and, as "ratio", the mean over the floor's (cold pull to GET+gunzip+untar, remove to
// rm -rf). -phases adds the duration attributes of the service's "pulled image" log
// records for the cold pulls (summed over layers), with their share of the cold pull.
package main
