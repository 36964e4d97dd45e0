package wiring

import (
	"reflect"
	"testing"
	"time"

	"github.com/berth-runtime/berth/image"
	"github.com/berth-runtime/berth/internal/config"
)

func TestImageConfig(t *testing.T) {
	tests := []struct {
		name string
		in   config.Image
		want image.Config
	}{
		{
			name: "defaults",
			in:   config.Defaults().Image,
			want: image.Config{Root: "/r", MaxConcurrentDownloads: 3, StallTimeout: time.Minute, MaxLayerSize: 16 << 30,
				Registry: image.RegistryConfig{Mirrors: map[string][]string{}, Hosts: map[string]image.HostConfig{}}, PinnedImages: []string{}},
		},
		{
			name: "every field",
			in: config.Image{
				MaxConcurrentDownloads: 5, StallTimeout: config.Duration{Duration: time.Second}, MaxLayerSize: 7, Platform: "linux/arm64",
				PinnedImages: []string{"registry.k8s.io/pause*"},
				Registry: config.Registry{
					Mirrors:     map[string][]string{"docker.io": {"http://127.0.0.1:5000"}},
					Hosts:       map[string]config.Host{"127.0.0.1:5000": {PlainHTTP: true, InsecureSkipVerify: true, CAFile: "/ca", Username: "u", Password: "p", Auth: "a", IdentityToken: "t"}},
					MirrorsOnly: true,
				},
			},
			want: image.Config{
				Root: "/r", MaxConcurrentDownloads: 5, StallTimeout: time.Second, MaxLayerSize: 7, Platform: "linux/arm64",
				PinnedImages: []string{"registry.k8s.io/pause*"},
				Registry: image.RegistryConfig{
					Mirrors:     map[string][]string{"docker.io": {"http://127.0.0.1:5000"}},
					Hosts:       map[string]image.HostConfig{"127.0.0.1:5000": {PlainHTTP: true, InsecureSkipVerify: true, CAFile: "/ca", Username: "u", Password: "p", Auth: "a", IdentityToken: "t"}},
					MirrorsOnly: true,
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ImageConfig(tt.in, "/r"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
