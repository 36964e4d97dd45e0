package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// floor fetches each blob with one GET on a keep-alive client and unpacks it with the
// standard library (zstd: klauspost/compress) into its own new directory under dir: the work no implementation
// can skip. With sync it ends with one syncfs, the cheapest way to make it durable.
func floor(ctx context.Context, client *http.Client, urls []string, dir string, sync bool) error {
	for i, u := range urls {
		target := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
		if err := getAndUntar(ctx, client, u, target); err != nil {
			return err
		}
	}
	if !sync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

func getAndUntar(ctx context.Context, client *http.Client, url, dir string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	magic, err := br.Peek(2)
	if err != nil {
		return err
	}
	var zr io.Reader
	if magic[0] == 0x1f && magic[1] == 0x8b {
		if zr, err = gzip.NewReader(br); err != nil {
			return err
		}
	} else {
		// No zstd in the standard library: the decoder berth uses, configured alike.
		zd, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return err
		}
		defer zd.Close()
		zr = zd
	}
	if err := untar(tar.NewReader(zr), dir); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// untar writes directories, regular files, symlinks and hardlinks with their modes:
// no ownership, times, xattrs or whiteouts, and a name confinement that is enough for
// the benchmark's own trusted image only.
func untar(tr *tar.Reader, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if !strings.HasPrefix(name, dir) {
			return fmt.Errorf("entry %q escapes", h.Name)
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, name); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), name); err != nil {
				return err
			}
		}
	}
}
