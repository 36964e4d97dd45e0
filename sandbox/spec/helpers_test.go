package spec

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// buildOrInvalid builds a spec from opts. When wantInvalid is set it checks that Build
// refused the options as invalid input and returns nil; otherwise it fails the test on
// any error and returns the spec.
func buildOrInvalid(t *testing.T, wantInvalid bool, opts ...Opt) *specs.Spec {
	t.Helper()
	s, err := Build(opts...)
	if wantInvalid {
		if !errdefs.IsInvalidArgument(err) {
			t.Fatalf("err = %v, want invalid argument", err)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}
