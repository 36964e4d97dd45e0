package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const sampleRatchet = `# Specs that must pass.
# Keep sorted.

# image service
[k8s.io] B spec
[k8s.io] A spec
# flaky once, watch it
[k8s.io] C spec
[k8s.io] A spec

# end
`

func TestParseRatchet(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		header  []string
		specs   []string
		footer  []string
		dups    []string
		comment map[string][]string
	}{
		{name: "empty", in: ""},
		{name: "header only", in: "# nothing passes yet\n", header: []string{"# nothing passes yet"}},
		{
			name:   "full",
			in:     sampleRatchet,
			header: []string{"# Specs that must pass.", "# Keep sorted.", ""},
			specs:  []string{"[k8s.io] B spec", "[k8s.io] A spec", "[k8s.io] C spec"},
			footer: []string{"", "# end"},
			dups:   []string{"[k8s.io] A spec"},
			comment: map[string][]string{
				"[k8s.io] B spec": {"# image service"},
				"[k8s.io] C spec": {"# flaky once, watch it"},
			},
		},
		{name: "no header", in: "  spec one  \nspec two\n", specs: []string{"spec one", "spec two"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ParseRatchet(tc.in)
			if !reflect.DeepEqual(r.Header, tc.header) && (len(r.Header) != 0 || len(tc.header) != 0) {
				t.Errorf("header %q, want %q", r.Header, tc.header)
			}
			if !reflect.DeepEqual(r.Specs, tc.specs) {
				t.Errorf("specs %q, want %q", r.Specs, tc.specs)
			}
			if !reflect.DeepEqual(r.Footer, tc.footer) {
				t.Errorf("footer %q, want %q", r.Footer, tc.footer)
			}
			if !reflect.DeepEqual(r.Duplicates, tc.dups) {
				t.Errorf("duplicates %q, want %q", r.Duplicates, tc.dups)
			}
			if tc.comment != nil && !reflect.DeepEqual(r.Comments, tc.comment) {
				t.Errorf("comments %q, want %q", r.Comments, tc.comment)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	r := ParseRatchet("A\nB\nC\n")
	specs := []Spec{
		{Name: "[BeforeSuite]", State: "failed", SuiteNode: true},
		{Name: "A", State: "passed"},
		{Name: "B", State: "failed", Message: "boom"},
		{Name: "D", State: "passed"},
		{Name: "E", State: "skipped"},
	}
	for _, tc := range []struct {
		name    string
		focus   string
		missing []string
		states  []string
	}{
		{name: "full run", missing: []string{"B", "C"}, states: []string{"failed", "not run"}},
		{name: "focus on A", focus: "^A$"},
		{name: "focus on B", focus: "B", missing: []string{"B"}, states: []string{"failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var focus *regexp.Regexp
			if tc.focus != "" {
				focus = regexp.MustCompile(tc.focus)
			}
			c := Compare(r, specs, focus)
			var missing, states []string
			for _, s := range c.Missing {
				missing = append(missing, s.Name)
				states = append(states, s.State)
			}
			if !reflect.DeepEqual(missing, tc.missing) || !reflect.DeepEqual(states, tc.states) {
				t.Errorf("missing %q %q, want %q %q", missing, states, tc.missing, tc.states)
			}
			if !reflect.DeepEqual(c.New, []string{"D"}) || !reflect.DeepEqual(c.Passed, []string{"A", "D"}) {
				t.Errorf("new %q passed %q", c.New, c.Passed)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	r := ParseRatchet(sampleRatchet)
	got := r.Update([]string{"[k8s.io] D spec", "[k8s.io] C spec", "[k8s.io] A spec"})
	want := `# Specs that must pass.
# Keep sorted.

[k8s.io] A spec
# flaky once, watch it
[k8s.io] C spec
[k8s.io] D spec

# end
`
	if got != want {
		t.Errorf("Update:\n%s\nwant:\n%s", got, want)
	}
	if again := ParseRatchet(got).Update([]string{"[k8s.io] D spec", "[k8s.io] C spec", "[k8s.io] A spec"}); again != got {
		t.Errorf("Update is not stable:\n%s", again)
	}
	if got := ParseRatchet("# header\n").Update([]string{"X"}); got != "# header\n\nX\n" {
		t.Errorf("header-only update: %q", got)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	junit := filepath.Join(dir, "junit.xml")
	if err := os.WriteFile(junit, []byte(sampleJUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "critest.log")
	if err := os.WriteFile(log, []byte("x\n\x1b[1mRan 3 of 5 Specs in 12.500 seconds\x1b[0m\n\x1b[31mFAIL!\x1b[0m -- 1 Passed | 2 Failed | 0 Pending | 1 Skipped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const listSpec = "[k8s.io] Image Manager listImage should get exactly 3 image in the result list [Conformance]"
	const failSpec = "[k8s.io] Container runtime should support basic operations on container [Conformance]"
	for _, tc := range []struct {
		name    string
		ratchet string
		o       options
		code    int
		want    []string
	}{
		{name: "ok", ratchet: "# h\n\n" + listSpec + "\n", code: 0,
			want: []string{"Ran 3 of 5 Specs in 12.500 seconds", "FAIL! -- 1 Passed | 2 Failed", "[AfterSuite] failed: cleanup failed", "OK"}},
		{name: "regression", ratchet: listSpec + "\n" + failSpec + "\n", code: 1,
			want: []string{"FAIL: 1 specs listed", failSpec, "(failed: failed to create PodSandbox)"}},
		{name: "new pass", ratchet: "# empty\n", code: 0,
			want: []string{"1 specs pass but are not in", "\n" + listSpec + "\n"}},
		{name: "focused", ratchet: listSpec + "\n" + failSpec + "\n", o: options{focus: "Image Manager"}, code: 0},
		{name: "update", ratchet: "# keep me\n\n" + failSpec + "\n", o: options{update: true}, code: 0,
			want: []string{"rewrote"}},
		{name: "update with focus", ratchet: "", o: options{update: true, focus: "x"}, code: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ratchet := filepath.Join(t.TempDir(), "pass.txt")
			if err := os.WriteFile(ratchet, []byte(tc.ratchet), 0o644); err != nil {
				t.Fatal(err)
			}
			o := tc.o
			o.junit, o.ratchet, o.log = junit, ratchet, log
			var out strings.Builder
			if code := run(&out, o); code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tc.name == "update" {
				data, _ := os.ReadFile(ratchet)
				if string(data) != "# keep me\n\n"+listSpec+"\n" {
					t.Errorf("updated ratchet:\n%s", data)
				}
			}
		})
	}
}
