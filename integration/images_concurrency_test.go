package integration

import (
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/hack/testimages"
)

// TestConcurrentPulls pulls one image ten times at once: each blob is fetched once and
// every call gets the same image. Then a pull of the present image fetches no blob, and
// concurrent removals of it all succeed.
func TestConcurrentPulls(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	var layers []v1.Layer
	for _, name := range []string{"one", "two", "three"} {
		layers = append(layers, newLayer(t, testimages.Dir(name, 0o755),
			testimages.Reg(name+"/data", 0o644, strings.Repeat(name, 20000))))
	}
	img := newImage(t, v1.Config{Labels: map[string]string{"test": "concurrent"}}, layers...)
	repo := reg.Addr() + "/test/concurrent"
	ref := repo + ":1"
	push(t, reg, img, ref)
	d := startDaemon(t, daemonOptions{})
	cfgDigest, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	blobs := append(layerDigests(t, img), cfgDigest)

	const pulls = 10
	got := make([]string, pulls)
	errs := make([]error, pulls)
	var wg sync.WaitGroup
	for i := range pulls {
		wg.Go(func() {
			resp, err := d.images.PullImage(ctxTimeout(t, pullTimeout), &runtimeapi.PullImageRequest{Image: spec(ref)})
			got[i], errs[i] = resp.GetImageRef(), err
		})
	}
	wg.Wait()
	for i := range pulls {
		if errs[i] != nil || got[i] != idOf(t, img) {
			t.Errorf("pull %d: %q, %v; want %s", i, got[i], errs[i], idOf(t, img))
		}
	}
	for _, b := range blobs {
		if n := reg.BlobFetches(b); n != 1 {
			t.Errorf("blob %s fetched %d times by %d concurrent pulls, want once", b, n, pulls)
		}
	}

	t.Run("present image", func(t *testing.T) {
		reg.ResetCounts()
		d.pull(t, ref)
		for _, b := range blobs {
			if n := reg.BlobFetches(b); n != 0 {
				t.Errorf("pulling a present image fetched blob %s %d times", b, n)
			}
		}
		reg.ResetCounts()
		d.pull(t, repo+"@"+digestOf(t, img))
		if c := reg.Counts(); len(c) != 0 {
			t.Errorf("pulling a present image by digest made requests: %v", c)
		}
	})

	t.Run("concurrent removal", func(t *testing.T) {
		names := []string{ref, idOf(t, img), repo + "@" + digestOf(t, img)}
		errs := make([]error, 3*len(names))
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = d.images.RemoveImage(ctxTimeout(t, 30*time.Second),
					&runtimeapi.RemoveImageRequest{Image: spec(names[i%len(names)])})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("RemoveImage(%s): %v", names[i%len(names)], err)
			}
		}
		if imgs := d.list(t, ""); len(imgs) != 0 {
			t.Errorf("images left: %v", imgs)
		}
		checkImageRootEmpty(t, d)
	})
}

// TestPullDeadline stalls a layer blob: a PullImage with a one-second deadline fails
// with DeadlineExceeded, berthd gives up the download, and the next pull works. A caller
// that gives up while another pull waits for the same layer does not cancel its download.
func TestPullDeadline(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	img := newImage(t, v1.Config{Labels: map[string]string{"test": "deadline"}},
		newLayer(t, testimages.Reg("slow", 0o644, "slow\n")))
	ref := reg.Addr() + "/test/slow:1"
	push(t, reg, img, ref)
	blob := layerDigests(t, img)[0]
	stall := stallBlob(t, reg, blob)
	d := startDaemon(t, daemonOptions{})

	start := time.Now()
	_, err := d.images.PullImage(ctxTimeout(t, time.Second), &runtimeapi.PullImageRequest{Image: spec(ref)})
	wantCode(t, "PullImage with a stalled blob", err, codes.DeadlineExceeded)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("PullImage with a 1 s deadline took %v", took)
	}
	recv(t, stall.arrived, time.Second, "the pull never reached the stalled blob")
	recv(t, stall.hungUp, 15*time.Second, "berthd did not hang up on the stalled blob after the caller gave up")
	// berthd's side of the call ends with its own deadline or with the client's
	// cancellation, whichever reaches it first; either way never as a failure of its own.
	if line := waitLog(t, d, "method=PullImage", "code="); !strings.Contains(line, "code=DeadlineExceeded") && !strings.Contains(line, "code=Canceled") {
		t.Errorf("berthd ended the stalled PullImage with: %s", line)
	}

	t.Run("one waiter gives up, another keeps the download", func(t *testing.T) {
		patient := make(chan error, 1)
		go func() {
			_, err := d.images.PullImage(ctxTimeout(t, pullTimeout), &runtimeapi.PullImageRequest{Image: spec(ref)})
			patient <- err
		}()
		recv(t, stall.arrived, 15*time.Second, "the patient pull never reached the stalled blob")
		_, err := d.images.PullImage(ctxTimeout(t, time.Second), &runtimeapi.PullImageRequest{Image: spec(ref)})
		wantCode(t, "impatient PullImage", err, codes.DeadlineExceeded)
		select {
		case <-stall.hungUp:
			t.Error("berthd dropped a download another pull still waits for")
		case <-time.After(500 * time.Millisecond):
		}
		stall.releaseAll()
		select {
		case err := <-patient:
			if err != nil {
				t.Errorf("the patient pull: %v", err)
			}
		case <-time.After(pullTimeout):
			t.Fatal("the patient pull did not finish")
		}
		if n := reg.BlobFetches(blob); n != 2 {
			t.Errorf("layer fetched %d times, want 2 (abandoned, then shared by both pulls)", n)
		}
	})
	if st := d.status(t, ref); st == nil || st.Id != idOf(t, img) {
		t.Errorf("ImageStatus after the pulls = %v, want %s", st, idOf(t, img))
	}
}

// TestImagesSurviveRestart pulls, ends berthd (SIGTERM or SIGKILL) and starts it again
// on the same root: the image is there with the same id and names, its snapshots too.
func TestImagesSurviveRestart(t *testing.T) {
	t.Parallel()
	for _, end := range []struct {
		name string
		stop func(*daemon)
	}{{"SIGTERM", (*daemon).stop}, {"SIGKILL", (*daemon).kill}} {
		t.Run(end.name, func(t *testing.T) {
			t.Parallel()
			reg := serveRegistry(t)
			img := newImage(t, v1.Config{Labels: map[string]string{"test": "restart"}},
				newLayer(t, testimages.Reg("a", 0o644, "a\n")), newLayer(t, testimages.Reg("b", 0o644, "b\n")))
			ref := reg.Addr() + "/test/restart:1"
			push(t, reg, img, ref)
			d := startDaemon(t, daemonOptions{})
			d.pull(t, ref)
			before, usage := d.status(t, ref), d.fsUsage(t)
			end.stop(d)

			d2 := startDaemon(t, daemonOptions{Dir: d.dir})
			listed := d2.list(t, "")
			if len(listed) != 1 || listed[0].Id != before.Id || !slices.Equal(listed[0].RepoTags, before.RepoTags) ||
				!slices.Equal(listed[0].RepoDigests, before.RepoDigests) || listed[0].Size != before.Size {
				t.Fatalf("after restart: %v, want %v", listed, before)
			}
			if after := d2.fsUsage(t); after.UsedBytes.GetValue() != usage.UsedBytes.GetValue() {
				t.Errorf("image fs usage %d after restart, %d before", after.UsedBytes.GetValue(), usage.UsedBytes.GetValue())
			}
			reg.ResetCounts()
			d2.pull(t, ref)
			for _, b := range layerDigests(t, img) {
				if n := reg.BlobFetches(b); n != 0 {
					t.Errorf("layer %s fetched again after restart", b)
				}
			}
			d2.remove(t, ref)
			checkImageRootEmpty(t, d2)
		})
	}
}

// TestKillDuringPull kills berthd while a pull has unpacked one layer and waits for the
// other: after a restart nothing of the pull is left, and the pull works.
func TestKillDuringPull(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	fast, slow := newLayer(t, testimages.Reg("fast", 0o644, "fast\n")), newLayer(t, testimages.Reg("slow", 0o644, "slow\n"))
	img := newImage(t, v1.Config{Labels: map[string]string{"test": "kill during pull"}}, fast, slow)
	ref := reg.Addr() + "/test/killed:1"
	push(t, reg, img, ref)
	slowDigest, err := slow.Digest()
	if err != nil {
		t.Fatal(err)
	}
	stall := stallBlob(t, reg, slowDigest)
	d := startDaemon(t, daemonOptions{})
	pulled := make(chan error, 1)
	go func() {
		_, err := d.images.PullImage(ctxTimeout(t, pullTimeout), &runtimeapi.PullImageRequest{Image: spec(ref)})
		pulled <- err
	}()
	recv(t, stall.arrived, 15*time.Second, "the pull never reached the stalled layer")
	d.kill()
	if err := <-pulled; err == nil {
		t.Fatal("the pull succeeded although berthd was killed during it")
	}

	d2 := startDaemon(t, daemonOptions{Dir: d.dir})
	if imgs := d2.list(t, ""); len(imgs) != 0 {
		t.Errorf("images after a pull killed half-way: %v", imgs)
	}
	checkImageRootEmpty(t, d2)
	stall.releaseAll()
	if got := d2.pull(t, ref); got != idOf(t, img) {
		t.Errorf("pull after the restart = %s, want %s", got, idOf(t, img))
	}
}

// TestPullsRaceRemovals pulls and removes one image from several goroutines at once:
// every call succeeds, and the image that is left at the end is whole.
func TestPullsRaceRemovals(t *testing.T) {
	t.Parallel()
	reg := serveRegistry(t)
	img := newImage(t, v1.Config{Labels: map[string]string{"test": "race"}},
		newLayer(t, testimages.Reg("a", 0o644, strings.Repeat("a", 50000))),
		newLayer(t, testimages.Reg("b", 0o644, strings.Repeat("b", 50000))))
	ref := reg.Addr() + "/test/race:1"
	push(t, reg, img, ref)
	d := startDaemon(t, daemonOptions{})

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range 4 {
		wg.Go(func() {
			for range 5 {
				_, err := d.images.PullImage(ctxTimeout(t, pullTimeout), &runtimeapi.PullImageRequest{Image: spec(ref)})
				if err == nil {
					_, err = d.images.RemoveImage(ctxTimeout(t, 30*time.Second), &runtimeapi.RemoveImageRequest{Image: spec(ref)})
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("pull or removal racing others: %v", err)
	}

	d.pull(t, ref)
	for _, c := range chainIDs(t, d, ref) {
		if _, err := os.Stat(snapshotDir(d, c)); err != nil {
			t.Errorf("the image's snapshot %s: %v", c, err)
		}
	}
	d.remove(t, ref)
	checkImageRootEmpty(t, d)
}
