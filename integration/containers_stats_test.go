package integration

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerWritableLayerStats: a container that writes 10 MB into its root
// filesystem shows at least that in ContainerStats' writable layer, in the pod's stats
// and in ImageFsInfo's container filesystem once the background refresh (1 s here) has
// run; its inodes are counted too, and a removed container leaves the total.
func TestContainerWritableLayerStats(t *testing.T) {
	e := newCtrEnvConfig(t, "\n[pod]\ndisk_usage_interval = \"1s\"\n")
	const written = 10 << 20
	id := e.run(t, ctrConfig("writer", sh(`head -c 10485760 /dev/urandom > /big && mkdir /d && touch /d/a /d/b && sync && sleep 1000`)))
	e.removeAtEnd(t, id)

	var layer *runtimeapi.FilesystemUsage
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := e.d.runtime.ContainerStats(ctxTimeout(t, 30*time.Second), &runtimeapi.ContainerStatsRequest{ContainerId: id})
		if err != nil {
			t.Fatalf("ContainerStats: %v", err)
		}
		layer = resp.GetStats().GetWritableLayer()
		if layer.GetUsedBytes().GetValue() >= written && layer.GetInodesUsed().GetValue() >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writable layer after a minute: %v, want >= %d bytes and >= 4 inodes", layer, written)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if layer.GetFsId().GetMountpoint() == "" || layer.GetTimestamp() <= 0 {
		t.Errorf("writable layer without its filesystem or time: %v", layer)
	}

	pods, err := e.d.runtime.ListPodSandboxStats(ctxTimeout(t, 30*time.Second), &runtimeapi.ListPodSandboxStatsRequest{
		Filter: &runtimeapi.PodSandboxStatsFilter{Id: e.pod},
	})
	if err != nil || len(pods.GetStats()) != 1 || len(pods.Stats[0].GetLinux().GetContainers()) != 1 {
		t.Fatalf("ListPodSandboxStats = %v, %v", pods, err)
	}
	if got := pods.Stats[0].Linux.Containers[0].GetWritableLayer().GetUsedBytes().GetValue(); got < written {
		t.Errorf("pod stats: writable layer %d bytes, want >= %d", got, written)
	}

	fs, err := e.d.images.ImageFsInfo(ctxTimeout(t, 30*time.Second), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatalf("ImageFsInfo: %v", err)
	}
	if len(fs.GetImageFilesystems()) != 1 || fs.ImageFilesystems[0].GetUsedBytes().GetValue() == 0 {
		t.Errorf("image filesystems: %v", fs.GetImageFilesystems())
	}
	if len(fs.GetContainerFilesystems()) != 1 {
		t.Fatalf("container filesystems: %v, want one", fs.GetContainerFilesystems())
	}
	cfs := fs.ContainerFilesystems[0]
	if cfs.GetUsedBytes().GetValue() < written || cfs.GetInodesUsed().GetValue() < 4 || cfs.GetFsId().GetMountpoint() != layer.GetFsId().GetMountpoint() {
		t.Errorf("container filesystem %v, want >= %d bytes on the writable layer's filesystem %q", cfs, written, layer.GetFsId().GetMountpoint())
	}

	e.stop(t, id, 0)
	e.remove(t, id)
	deadline = time.Now().Add(time.Minute)
	for {
		fs, err := e.d.images.ImageFsInfo(ctxTimeout(t, 30*time.Second), &runtimeapi.ImageFsInfoRequest{})
		if err != nil {
			t.Fatalf("ImageFsInfo: %v", err)
		}
		if fs.ContainerFilesystems[0].GetUsedBytes().GetValue() < written {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container filesystem still counts a removed container: %v", fs.ContainerFilesystems[0])
		}
		time.Sleep(200 * time.Millisecond)
	}
}
