package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/BurntSushi/toml"

	"github.com/berth-runtime/berth/internal/config"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

// flags are the command-line overrides of the configuration files.
type flags struct {
	configPath, dropinDir                 string
	root, state, listen, logLevel, logFmt string
	// defaultNetwork is set when --default-network was given (overrides
	// network.default_network).
	defaultNetwork *bool
}

func parseFlags(args []string, stderr io.Writer) (flags, []string, error) {
	var f flags
	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.configPath, "config", "/etc/berth/berth.toml", "configuration file (absent is fine)")
	fs.StringVar(&f.dropinDir, "config-dir", "/etc/berth/berth.d", "directory of drop-in *.toml files, read in name order")
	fs.StringVar(&f.root, "root", "", "durable state directory (overrides root)")
	fs.StringVar(&f.state, "state", "", "volatile state directory (overrides state)")
	fs.StringVar(&f.listen, "listen", "", "CRI endpoint, unix:///path (overrides listen)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (overrides log_level)")
	fs.StringVar(&f.logFmt, "log-format", "text", "text or json")
	defaultNetwork := fs.Bool("default-network", false,
		"serve pods on the embedded default network while the CNI directory is empty (overrides network.default_network)")
	if err := fs.Parse(args); err != nil {
		return f, nil, err
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "default-network" {
			f.defaultNetwork = defaultNetwork
		}
	})
	return f, fs.Args(), nil
}

func loadConfig(f flags) (config.Config, []string, error) {
	cfg, files, err := config.Load(f.configPath, f.dropinDir)
	if err != nil {
		return cfg, nil, err
	}
	overrides := []struct {
		value string
		dst   *string
	}{{f.root, &cfg.Root}, {f.state, &cfg.State}, {f.listen, &cfg.Listen}, {f.logLevel, &cfg.LogLevel}}
	for _, o := range overrides {
		if o.value != "" {
			*o.dst = o.value
		}
	}
	if f.defaultNetwork != nil {
		cfg.Network.DefaultNetwork = *f.defaultNetwork
	}
	return cfg, files, cfg.Validate()
}

func run(args []string, stdout, stderr io.Writer) error {
	f, rest, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 2 && rest[0] == "config" && rest[1] == "default":
		_, err := io.WriteString(stdout, config.Default)
		return err
	case len(rest) == 2 && rest[0] == "config" && rest[1] == "effective":
		cfg, _, err := loadConfig(f)
		if err != nil {
			return err
		}
		return toml.NewEncoder(stdout).Encode(cfg.Redacted())
	case len(rest) > 0:
		return fmt.Errorf("unknown command %q (want: config default | config effective)", rest)
	}
	cfg, files, err := loadConfig(f)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, f.logFmt)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		log.Info("no configuration file found: running on embedded defaults")
	} else {
		log.Info("configuration loaded", "files", files)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, cfg, log)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
