package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-runtime/berth/cmd/wiring"
	"github.com/berth-runtime/berth/hack/bench/benchstats"
	"github.com/berth-runtime/berth/hack/testimages"
	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/config"
)

const ref = "docker.io/library/busybox:latest"

type options struct {
	n          int
	max        time.Duration
	root       string
	format     string
	zstd       bool
	layers     int
	cpuprofile string
	trace      string
	phases     bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 30, "iterations (1..1000)")
	flag.DurationVar(&o.max, "max", 2*time.Minute, "stop measuring after this long")
	flag.StringVar(&o.root, "root", "/var/tmp", "`directory` on the disk to measure, holding the run's temporary state")
	flag.StringVar(&o.format, "format", "docker", "image format: docker or oci")
	flag.BoolVar(&o.zstd, "zstd", false, "zstd-compressed layers (an OCI image; the floor decompresses with klauspost/compress/zstd)")
	flag.IntVar(&o.layers, "layers", 1, "layers: the busybox layer plus this many minus one small ones (1..20)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured loop to `file`")
	flag.StringVar(&o.trace, "trace", "", "write an execution trace of the measured loop to `file`")
	flag.BoolVar(&o.phases, "phases", false, "also print the duration attributes of the service's \"pulled image\" log records")
	flag.Parse()
	if o.n < 1 || o.n > 1000 || o.layers < 1 || o.layers > 20 || (o.format != "docker" && o.format != "oci") {
		fmt.Fprintln(os.Stderr, "pull: -n must be 1..1000, -layers 1..20, -format docker or oci")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "pull:", err)
		os.Exit(1)
	}
}

// bench is one run's state.
type bench struct {
	svc    *image.Service
	client *http.Client
	blobs  []string // layer blob URLs
	dir    string   // scratch for the floor
	phases *phaseHandler

	floor, floorSync, floorRemove, cold, status, list, warm, remove series
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	img, err := buildImage(ctx, o)
	if err != nil {
		return err
	}
	reg, err := testimages.Serve(ctx, "127.0.0.1:0", []testimages.Image{{Refs: []string{ref}, Image: img}})
	if err != nil {
		return err
	}
	defer reg.Close()
	repo, _, err := testimages.MirrorPath(ref)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var total int64
	b := &bench{client: &http.Client{}, phases: newPhaseHandler()}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		size, _ := l.Size()
		total += size
		b.blobs = append(b.blobs, reg.URL()+"/v2/"+repo+"/blobs/"+d.String())
	}

	tmp, err := os.MkdirTemp(o.root, "berth-bench-pull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b.dir = filepath.Join(tmp, "floor")
	if err := os.Mkdir(b.dir, 0o700); err != nil {
		return err
	}
	cfg := wiring.ImageConfig(config.Defaults().Image, filepath.Join(tmp, "image"))
	cfg.Registry = image.RegistryConfig{
		Mirrors:     map[string][]string{"docker.io": {reg.URL()}},
		Hosts:       map[string]image.HostConfig{reg.Addr(): {PlainHTTP: true}},
		MirrorsOnly: true,
	}
	if b.svc, err = image.New(cfg, slog.New(b.phases)); err != nil {
		return err
	}
	defer b.svc.Close()

	compression := "gzip"
	if o.zstd {
		compression, o.format = "zstd", "oci"
	}
	fmt.Printf("berth image service vs floor: %s, %d %s layer(s), %d bytes compressed, root %s, GOMAXPROCS %d\n",
		o.format, len(layers), compression, total, tmp, runtime.GOMAXPROCS(0))
	stopProfiles, err := startProfiles(o)
	if err != nil {
		return err
	}
	err = b.loop(ctx, o)
	stopProfiles()
	if err != nil {
		return err
	}
	b.report(o)
	return nil
}

func buildImage(ctx context.Context, o options) (v1.Image, error) {
	bb, err := testimages.EnsureBusybox(ctx)
	if err != nil {
		return nil, err
	}
	builder, err := testimages.NewBuilder(bb)
	if err != nil {
		return nil, err
	}
	f := testimages.Docker
	if o.format == "oci" || o.zstd {
		f = testimages.OCI
	}
	var extra [][]testimages.File
	for i := 1; i < o.layers; i++ {
		extra = append(extra, []testimages.File{
			testimages.Dir("etc", 0o755),
			testimages.Reg(fmt.Sprintf("etc/layer-%d", i), 0o644, fmt.Sprintf("layer %d\n", i)),
		})
	}
	if !o.zstd {
		return builder.BusyboxImage(f, testimages.BusyboxConfig(), extra...)
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		return nil, err
	}
	var layers []v1.Layer
	for _, files := range append([][]testimages.File{testimages.BusyboxRootfs(busybox, builder.Applets())}, extra...) {
		tarball, err := testimages.Tar(files)
		if err != nil {
			return nil, err
		}
		l, err := testimages.NewLayer(tarball, types.OCILayerZStd)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return testimages.NewImage(f, testimages.BusyboxConfig(), layers...)
}

func startProfiles(o options) (stop func(), err error) {
	var closers []func()
	stop = func() {
		for _, c := range closers {
			c()
		}
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return stop, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, err
		}
		closers = append(closers, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			stop()
			return func() {}, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			stop()
			return func() {}, err
		}
		closers = append(closers, func() { trace.Stop(); f.Close() })
	}
	return stop, nil
}

// timed runs fn and adds its duration to s.
func timed(s *series, fn func() error) error {
	start := time.Now()
	err := fn()
	s.Add(time.Since(start))
	return err
}

// loop runs the iterations. The first iteration is a warm-up and is not recorded: it
// pays for first connections, page cache and lazy initialisation once.
func (b *bench) loop(ctx context.Context, o options) error {
	deadline := time.Now().Add(o.max)
	for i := -1; i < o.n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			fmt.Printf("stopped after %d iterations (-max %s)\n", i, o.max)
			return nil
		}
		if err := b.iteration(ctx, i); err != nil {
			return fmt.Errorf("iteration %d: %w", i, err)
		}
		if i < 0 {
			b.reset()
		}
	}
	return nil
}

func (b *bench) iteration(ctx context.Context, i int) error {
	for _, sync := range []bool{false, true} {
		s := &b.floor
		if sync {
			s = &b.floorSync
		}
		dir := filepath.Join(b.dir, fmt.Sprintf("%d-%v", i, sync))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		if err := timed(s, func() error { return floor(ctx, b.client, b.blobs, dir, sync) }); err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		// The tree a remove deletes was flushed, so its blocks are allocated and must be
		// freed: the fair floor is the removal of the synced tree.
		if sync {
			err := timed(&b.floorRemove, func() error { return os.RemoveAll(dir) })
			if err != nil {
				return err
			}
		} else if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	b.phases.record(true)
	err := timed(&b.cold, func() error { _, err := b.svc.Pull(ctx, ref, nil); return err })
	b.phases.record(false)
	if err != nil {
		return fmt.Errorf("cold pull: %w", err)
	}
	if err := timed(&b.status, func() error { _, err := b.svc.Get(ref); return err }); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if err := timed(&b.list, func() error {
		if n := len(b.svc.List("")); n != 1 {
			return fmt.Errorf("%d images listed, want 1", n)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := timed(&b.warm, func() error { _, err := b.svc.Pull(ctx, ref, nil); return err }); err != nil {
		return fmt.Errorf("warm pull: %w", err)
	}
	if err := timed(&b.remove, func() error { return b.svc.Remove(ctx, ref) }); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if n := len(b.svc.List("")); n != 0 {
		return errors.New("the image is still listed after its removal")
	}
	return nil
}

func (b *bench) reset() {
	for _, s := range []*series{&b.floor, &b.floorSync, &b.floorRemove, &b.cold, &b.status, &b.list, &b.warm, &b.remove} {
		s.Samples = nil
	}
	b.phases.reset()
}

func (b *bench) report(o options) {
	b.floor.Name, b.floorSync.Name, b.floorRemove.Name = "floor: GET+gunzip+untar", "floor + syncfs", "floor: rm -rf"
	if o.zstd {
		b.floor.Name = "floor: GET+unzstd+untar"
	}
	b.floorSync.Base = &b.floor
	b.cold.Name, b.cold.Target, b.cold.Base = "cold pull", 8*time.Millisecond, &b.floor
	b.warm.Name = "warm pull"
	b.remove.Name, b.remove.Base = "remove", &b.floorRemove
	b.status.Name, b.status.Target = "image status", 700*time.Microsecond
	b.list.Name, b.list.Target = "list images", 300*time.Microsecond
	rows := []*series{&b.floor, &b.floorSync, &b.cold}
	if o.phases {
		for _, p := range b.phases.series() {
			p.Base = &b.cold
			rows = append(rows, p)
		}
	}
	rows = append(rows, &b.warm, &b.floorRemove, &b.remove, &b.status, &b.list)
	benchstats.Table(os.Stdout, rows)
}
