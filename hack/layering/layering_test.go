package layering

import (
	"bufio"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// area is the top folder of a package: "cmd", "cri", "sandbox", "internal", ...
type area string

// freeAreas may import anything: they are not part of berthd.
var freeAreas = map[area]bool{"cmd": true, "hack": true, "integration": true}

// serviceAreas are the middle layer, and the arrows allowed between them.
var serviceAreas = map[area][]area{
	"sandbox": {"network"},
	"image":   nil,
	"network": nil,
}

// allowed reports whether a package in area from may import one in area to.
func allowed(from, to area) bool {
	switch {
	case from == to || freeAreas[from]:
		return true
	case to == "cmd" || to == "hack" || to == "integration":
		return false
	case from == "cri":
		return true // cri is the top of berthd below cmd
	case to == "cri":
		return false
	}
	next, fromService := serviceAreas[from]
	_, toService := serviceAreas[to]
	switch {
	case fromService && toService:
		for _, a := range next {
			if a == to {
				return true
			}
		}
		return false
	case toService:
		return false // a leaf importing a service
	}
	return true // a leaf importing another leaf
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		from, to area
		want     bool
	}{
		{"cmd", "cri", true},
		{"cmd", "internal", true},
		{"hack", "cri", true},
		{"integration", "sandbox", true},
		{"cri", "sandbox", true},
		{"cri", "internal", true},
		{"sandbox", "cri", false},
		{"sandbox", "network", true},
		{"sandbox", "image", false},
		{"image", "sandbox", false},
		{"network", "sandbox", false},
		{"sandbox", "internal", true},
		{"internal", "image", false},
		{"internal", "sandbox", false},
		{"internal", "cri", false},
		{"internal", "network", false},
		{"internal", "cmd", false},
		{"sandbox", "hack", false},
		{"internal", "internal", true},
		{"image", "image", true},
	}
	for _, tt := range tests {
		if got := allowed(tt.from, tt.to); got != tt.want {
			t.Errorf("allowed(%s, %s) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

// TestImportDirection reads every package of the module, tests included, and fails on
// each import against the direction.
func TestImportDirection(t *testing.T) {
	root, module := moduleRoot(t)
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		from := areaOf(filepath.ToSlash(rel))
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				own, ok := strings.CutPrefix(imp, module+"/")
				if !ok || test && testHelper(own) {
					continue
				}
				if to := areaOf(own); !allowed(from, to) {
					bad = append(bad, fmt.Sprintf("%s imports %s (%s -> %s)", rel, own, from, to))
				}
			}
		}
		check(pkg.Imports, false)
		check(pkg.TestImports, true)
		check(pkg.XTestImports, true)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(bad)
	bad = slices.Compact(bad)
	for _, b := range bad {
		t.Error(b)
	}
	if len(bad) > 0 {
		t.Log("the direction: cmd -> cri -> sandbox/image/network -> leaves (see doc.go)")
	}
}

// testHelper reports whether a test may import package rel whatever its area: the test
// tooling under hack/ and the fakes and fixtures of packages named *test (cnitest,
// runtimetest), which exist only for tests.
func testHelper(rel string) bool {
	return areaOf(rel) == "hack" || strings.HasSuffix(rel[strings.LastIndex(rel, "/")+1:], "test")
}

func areaOf(rel string) area {
	top, _, _ := strings.Cut(rel, "/")
	return area(top)
}

// moduleRoot finds go.mod above this directory and the module path it names.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m, ok := strings.CutPrefix(sc.Text(), "module "); ok {
					return dir, strings.TrimSpace(m)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}
