package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Image.StallTimeout.Duration != time.Minute {
		t.Errorf("stall_timeout = %v, want 1m", c.Image.StallTimeout)
	}
	if c.Runtimes["runc"].Path != "runc" {
		t.Errorf("runtimes.runc.path = %q", c.Runtimes["runc"].Path)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		main    string // "" = no main file
		dropins map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name:  "no files at all",
			check: func(t *testing.T, c Config) { mustEqual(t, c.Root, "/var/lib/berth") },
		},
		{
			name: "main file overrides one key, keeps the rest",
			main: "log_level = \"debug\"\n",
			check: func(t *testing.T, c Config) {
				mustEqual(t, c.LogLevel, "debug")
				mustEqual(t, c.State, "/run/berth")
			},
		},
		{
			name: "drop-ins apply in name order after the main file",
			main: "log_level = \"debug\"\n",
			dropins: map[string]string{
				"20-b.toml":   "log_level = \"error\"\n",
				"10-a.toml":   "log_level = \"warn\"\n[image.registry.mirrors]\n\"docker.io\" = [\"http://127.0.0.1:5000\"]\n",
				"ignored.txt": "log_level = \"nonsense\"\n",
			},
			check: func(t *testing.T, c Config) {
				mustEqual(t, c.LogLevel, "error")
				mustEqual(t, strings.Join(c.Image.Registry.Mirrors["docker.io"], ","), "http://127.0.0.1:5000")
			},
		},
		{
			name: "durations parse",
			main: "[image]\nstall_timeout = \"90s\"\n",
			check: func(t *testing.T, c Config) {
				mustEqual(t, c.Image.StallTimeout.String(), "1m30s")
			},
		},
		{name: "unknown key", main: "roots = \"/x\"\n", wantErr: "unknown keys: roots"},
		{name: "bad syntax", main: "root = \n", wantErr: "config"},
		{name: "relative root", main: "root = \"var/lib\"\n", wantErr: "must be an absolute path"},
		{name: "bad listen", main: "listen = \"tcp://0.0.0.0:1\"\n", wantErr: "want unix://"},
		{name: "unknown default runtime", main: "default_runtime = \"kata\"\n", wantErr: "not in [runtimes]"},
		{name: "bad cgroup driver", main: "cgroup_driver = \"v3\"\n", wantErr: "cgroup_driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mainPath := filepath.Join(dir, "berth.toml")
			if tt.main != "" {
				write(t, mainPath, tt.main)
			}
			dropDir := filepath.Join(dir, "berth.d")
			for name, body := range tt.dropins {
				write(t, filepath.Join(dropDir, name), body)
			}
			c, _, err := Load(mainPath, dropDir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustEqual(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPodSettings(t *testing.T) {
	c := Defaults()
	if c.Pod.ShmSize != 64<<20 || c.Pod.CreateTimeout.Duration != 4*time.Minute || c.Pod.RestrictOOMScoreAdj != "auto" {
		t.Fatalf("pod defaults = %+v", c.Pod)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Pod.ShmSize = 4096 },
		func(c *Config) { c.Pod.CreateTimeout.Duration = time.Millisecond },
		func(c *Config) { c.Pod.RestrictOOMScoreAdj = "yes" },
	} {
		c := Defaults()
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", c.Pod)
		}
	}
}

func TestKeyedUsesTOMLNames(t *testing.T) {
	m, err := Defaults().Keyed()
	if err != nil {
		t.Fatal(err)
	}
	if m["root"] != "/var/lib/berth" {
		t.Errorf("root = %v", m["root"])
	}
	img, _ := m["image"].(map[string]any)
	if img["stall_timeout"] != "1m0s" {
		t.Errorf("image.stall_timeout = %v (image = %v)", img["stall_timeout"], img)
	}
}

func TestCDISettings(t *testing.T) {
	c := Defaults()
	if !slices.Equal(c.CDI.SpecDirs, []string{"/etc/cdi", "/var/run/cdi"}) {
		t.Fatalf("cdi.spec_dirs default = %v", c.CDI.SpecDirs)
	}
	for _, tc := range []struct {
		dirs  []string
		valid bool
	}{
		{nil, true},
		{[]string{"/tmp/cdi"}, true},
		{[]string{"cdi"}, false},
	} {
		c := Defaults()
		c.CDI.SpecDirs = tc.dirs
		if err := c.Validate(); (err == nil) != tc.valid {
			t.Errorf("Validate(spec_dirs %v) = %v, want valid %v", tc.dirs, err, tc.valid)
		}
	}
}

func TestKeyedRedactsSecrets(t *testing.T) {
	const (
		password = "hunter2-password"
		auth     = "dXNlcjpodW50ZXIy-auth"
		token    = "identity-token-secret"
	)
	for _, tc := range []struct {
		name string
		host Host
		want []string // what the output must still show
	}{
		{"all secrets", Host{Username: "user", Password: password, Auth: auth, IdentityToken: token}, []string{"user", redactedValue}},
		{"password only", Host{Password: password, PlainHTTP: true}, []string{redactedValue}},
		{"no secrets", Host{Username: "user", CAFile: "/ca.pem"}, []string{"user", "/ca.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			c.Image.Registry.Hosts = map[string]Host{"reg.example:5000": tc.host}
			m, err := c.Keyed()
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := json.NewEncoder(&out).Encode(m); err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{password, auth, token} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("Keyed shows a secret %q: %s", secret, out.String())
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("Keyed lost %q: %s", w, out.String())
				}
			}
			if got := c.Image.Registry.Hosts["reg.example:5000"]; got != tc.host {
				t.Errorf("Keyed changed the configuration itself: %+v", got)
			}
		})
	}
}

func TestNRISettings(t *testing.T) {
	c := Defaults()
	n := c.NRI
	if !n.Enable || n.SocketPath != "/var/run/nri/nri.sock" || n.PluginPath != "/opt/nri/plugins" ||
		n.PluginRegistrationTimeout.Duration != 5*time.Second || n.PluginRequestTimeout.Duration != 2*time.Second {
		t.Fatalf("nri defaults = %+v", n)
	}
	tests := []struct {
		name string
		edit func(*NRI)
		ok   bool
	}{
		{"no socket: launched plugins only", func(n *NRI) { n.SocketPath = "" }, true},
		{"relative socket", func(n *NRI) { n.SocketPath = "nri.sock" }, false},
		{"relative plugin path", func(n *NRI) { n.PluginPath = "plugins" }, false},
		{"request timeout 0", func(n *NRI) { n.PluginRequestTimeout.Duration = 0 }, false},
		{"request timeout past the cap", func(n *NRI) { n.PluginRequestTimeout.Duration = time.Hour }, false},
		{"registration timeout 0", func(n *NRI) { n.PluginRegistrationTimeout.Duration = 0 }, false},
		{"disabled: nothing else checked", func(n *NRI) { n.Enable = false; n.SocketPath = "x" }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.edit(&c.NRI)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", c.NRI, err, tc.ok)
			}
		})
	}
}
