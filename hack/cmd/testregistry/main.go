package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/hack/testimages"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5111", "loopback `host:port` to listen on (port 0 picks a free one)")
	busybox := flag.String("busybox", "", "static busybox `path` (default: build or reuse hack/.cache/busybox/busybox)")
	list := flag.Bool("list", false, "print every reference of the catalogue with its image ID and digest, and exit")
	verbose := flag.Bool("v", false, "log every request to standard error")
	agnhost := flag.String("agnhost", "", "static agnhost binary `path` (hack/k8s/build.sh agnhost): also serve e2e-test-images/agnhost")
	flag.Parse()
	if err := run(*addr, *busybox, *agnhost, *list, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "testregistry:", err)
		os.Exit(1)
	}
}

func run(addr, busybox, agnhost string, list, verbose bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	start := time.Now()
	if busybox == "" {
		var err error
		if busybox, err = testimages.EnsureBusybox(ctx); err != nil {
			return err
		}
	}
	b, err := testimages.NewBuilder(busybox)
	if err != nil {
		return err
	}
	if agnhost != "" {
		if err := b.SetAgnhost(agnhost); err != nil {
			return err
		}
	}
	images, err := b.Catalogue()
	if err != nil {
		return err
	}
	if list {
		return printList(images)
	}

	var opts []testimages.Option
	if verbose {
		opts = append(opts, testimages.WithLogger(log.New(os.Stderr, "testregistry: ", log.LstdFlags|log.Lmicroseconds)))
	}
	reg, err := testimages.Serve(ctx, addr, images, opts...)
	if err != nil {
		return err
	}
	defer reg.Close()
	fmt.Fprintf(os.Stderr, "testregistry: %d images pushed in %s\n", len(images), time.Since(start).Round(time.Millisecond))
	fmt.Printf("ready %s\n", reg.Addr())
	select {
	case <-ctx.Done():
	case <-reg.Done():
	}
	return nil
}

func printList(images []testimages.Image) error {
	for _, img := range images {
		id, err := img.ID()
		if err != nil {
			return err
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		for _, ref := range img.Refs {
			fmt.Printf("%s\t%s\t%s\n", ref, id, digest)
		}
	}
	return nil
}
