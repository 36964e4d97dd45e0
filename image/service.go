package image

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-runtime/berth/image/content"
	"github.com/berth-runtime/berth/image/registry"
	"github.com/berth-runtime/berth/image/snapshot"
	"github.com/berth-runtime/berth/image/store"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Service is the image service. Its methods are safe for concurrent use.
//
// Locking: mu orders the decisions about what is referenced — pins of pulls in
// progress, commits of image records, removals and the garbage collection that follows
// them. It is held only for in-memory work, metadata transactions and renames, never
// during network I/O or the deletion of a snapshot's files. Reads (Get, List, Usage) do
// not take it: the metadata store answers them from memory under its own lock.
type Service struct {
	cfg      Config
	log      *slog.Logger
	platform platform
	resolver *registry.Resolver
	content  *content.Store
	snaps    *snapshot.Snapshotter
	meta     *store.Store
	sem      chan struct{} // global bound on layer downloads
	flights  flightGroup
	sync     *syncer // makes blobs and snapshots durable before records rely on them
	pinned   pinList // image.pinned_images: images reported Pinned to kubelet

	mu   sync.Mutex
	pins map[string]int // chain IDs and blob digests that pulls in progress rely on
}

// New opens (creating if needed) the image service's state under cfg.Root, recovers it
// and cleans what an interrupted run left behind. MaxLayerSize 0 means no cap, as
// Config documents.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	return newService(cfg, log, nil)
}

// newService is New with a dialer override (tests route host names to loopback).
func newService(cfg Config, log *slog.Logger, dial registry.DialFunc) (*Service, error) {
	if cfg.Root == "" {
		return nil, errdefs.InvalidArgument("image service: no root directory")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConcurrentDownloads < 1 {
		return nil, errdefs.InvalidArgument("image service: max_concurrent_downloads below 1")
	}
	if cfg.StallTimeout <= 0 {
		return nil, errdefs.InvalidArgument("image service: stall_timeout not positive")
	}
	if cfg.MaxLayerSize < 0 {
		return nil, errdefs.InvalidArgument("image service: negative max_layer_size")
	}
	plat, err := parsePlatform(cfg.Platform)
	if err != nil {
		return nil, err
	}
	pinned, err := newPinList(cfg.PinnedImages)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("image service: %w", err)
	}
	s := &Service{
		cfg:      cfg,
		log:      log,
		platform: plat,
		sem:      make(chan struct{}, cfg.MaxConcurrentDownloads),
		pins:     map[string]int{},
		pinned:   pinned,
	}
	if err := s.open(dial); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.recover(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Service) open(dial registry.DialFunc) error {
	var err error
	s.resolver, err = registry.New(registryConfig(s.cfg.Registry), registry.Options{
		StallTimeout: s.cfg.StallTimeout,
		UserAgent:    "berth",
		Dial:         dial,
	})
	if err != nil {
		return fmt.Errorf("image service: registry configuration: %w", err)
	}
	if s.content, err = content.Open(s.cfg.Root); err != nil {
		return err
	}
	if s.snaps, err = snapshot.Open(s.cfg.Root, s.log); err != nil {
		return err
	}
	// Blobs and snapshots are flushed once per pull, before the image record: see syncer.
	s.content.DeferSync()
	s.snaps.DeferSync()
	s.sync = newSyncer(s.cfg.Root)
	s.meta, err = store.Open(filepath.Join(s.cfg.Root, "metadata.db"), s.log)
	return err
}

// Close releases the metadata database and idle connections. Pulls still running fail.
func (s *Service) Close() error {
	var err error
	if s.meta != nil {
		err = s.meta.Close()
	}
	if s.resolver != nil {
		s.resolver.Close()
	}
	return err
}

// recover reconciles the metadata with the disk after a restart. An image whose
// snapshots or config are gone is dropped (kubelet pulls it again); snapshots and blobs
// that no image or lease references — what a crash between unpack and record left —
// are removed.
func (s *Service) recover() error {
	for _, img := range s.meta.Images() {
		missing := s.missingParts(img)
		if missing == "" {
			continue
		}
		s.log.Warn("dropping incomplete image", "id", img.ID, "missing", missing)
		if _, err := s.meta.Delete(img.ID); err != nil {
			return err
		}
	}
	s.mu.Lock()
	removed, err := s.collectLocked()
	s.mu.Unlock()
	purge(s.log, removed)
	return err
}

// missingParts names the first snapshot or blob of img that is absent, or "".
func (s *Service) missingParts(img store.Image) string {
	for _, c := range img.ChainIDs() {
		if _, ok := s.snaps.Stat(c); !ok {
			return "snapshot " + c
		}
	}
	for _, b := range img.Blobs {
		if !s.content.Has(b) {
			return "blob " + b
		}
	}
	return ""
}

// pin marks keys (chain IDs, blob digests) as needed by a pull in progress, so that no
// removal collects them; the returned function unpins.
func (s *Service) pin(keys ...string) (unpin func()) {
	s.mu.Lock()
	for _, k := range keys {
		s.pins[k]++
	}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			for _, k := range keys {
				if s.pins[k]--; s.pins[k] <= 0 {
					delete(s.pins, k)
				}
			}
			s.mu.Unlock()
		})
	}
}

// registryConfig converts the registry options to the resolver's.
func registryConfig(c RegistryConfig) registry.Config {
	out := registry.Config{Mirrors: c.Mirrors, Hosts: map[string]registry.Host{}, MirrorsOnly: c.MirrorsOnly}
	for host, h := range c.Hosts {
		out.Hosts[host] = registry.Host{
			PlainHTTP:          h.PlainHTTP,
			InsecureSkipVerify: h.InsecureSkipVerify,
			CAFile:             h.CAFile,
			Credentials: registry.Credentials{
				Username:      h.Username,
				Password:      h.Password,
				Auth:          h.Auth,
				IdentityToken: h.IdentityToken,
			},
		}
	}
	return out
}

// registryAuth converts a request's credentials.
func registryAuth(a *AuthConfig) *registry.Auth {
	if a == nil {
		return nil
	}
	return &registry.Auth{
		Credentials: registry.Credentials{
			Username:      a.Username,
			Password:      a.Password,
			Auth:          a.Auth,
			IdentityToken: a.IdentityToken,
			RegistryToken: a.RegistryToken,
		},
		ServerAddress: a.ServerAddress,
	}
}

// classified adds an error class to an error without changing its text.
type classified struct {
	err   error
	class error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.class} }

func withClass(err, class error) error {
	if err == nil || errors.Is(err, class) {
		return err
	}
	return &classified{err: err, class: class}
}
