package runtime

import (
	"context"
	"os/exec"
	"testing"
)

func TestParseFeatures(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Features
	}{
		{name: "runc 1.1: no rro, no idmap", json: `{"mountOptions":["bind","ro"],"linux":{"namespaces":["user","mount"]}}`},
		{name: "rro", json: `{"mountOptions":["rro"]}`, want: Features{RecursiveReadOnlyMounts: true}},
		{
			name: "user namespaces need idmapped mounts",
			json: `{"linux":{"namespaces":["user"],"mountExtensions":{"idmap":{"enabled":true}}}}`,
			want: Features{UserNamespaces: true},
		},
		{
			name: "idmap without a user namespace is not enough",
			json: `{"linux":{"namespaces":["mount"],"mountExtensions":{"idmap":{"enabled":true}}}}`,
		},
		{
			name: "idmap disabled",
			json: `{"linux":{"namespaces":["user"],"mountExtensions":{"idmap":{"enabled":false}}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFeatures([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := parseFeatures([]byte("not json")); err == nil {
		t.Error("garbage parsed without error")
	}
}

func TestProbeRealRunc(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	f, err := Probe(context.Background(), "runc")
	if err != nil {
		t.Fatal(err)
	}
	if f.Path == "" {
		t.Error("no resolved path")
	}
}

func TestProbeMissingBinary(t *testing.T) {
	if _, err := Probe(context.Background(), "/nonexistent/runc"); err == nil {
		t.Error("missing runtime probed without error")
	}
}
