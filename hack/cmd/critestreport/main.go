package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

type options struct {
	junit, ratchet, log, focus string
	update                     bool
}

func main() {
	var o options
	flag.StringVar(&o.junit, "junit", "", "ginkgo JUnit report `file` of the critest run")
	flag.StringVar(&o.ratchet, "ratchet", "hack/critest-pass.txt", "ratchet `file`: specs that must pass")
	flag.StringVar(&o.log, "log", "", "critest's output `file`, to copy its summary lines from")
	flag.StringVar(&o.focus, "focus", "", "only ratchet specs matching this `regexp` must pass (a focused run)")
	flag.BoolVar(&o.update, "update", false, "rewrite the ratchet file to the passing set, keeping comments")
	flag.Parse()
	if o.junit == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(os.Stdout, o))
}

// run prints the report and returns the exit code: 0 when every required
// ratchet spec passed, 1 when some did not, 2 when the inputs are unusable.
func run(w io.Writer, o options) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(w, "critestreport: "+format+"\n", args...)
		return 2
	}
	f, err := os.Open(o.junit)
	if err != nil {
		return fail("%v", err)
	}
	specs, err := ParseJUnit(f)
	f.Close()
	if err != nil {
		return fail("%s: %v", o.junit, err)
	}
	content, err := os.ReadFile(o.ratchet)
	if err != nil && !os.IsNotExist(err) {
		return fail("%v", err)
	}
	r := ParseRatchet(string(content))
	var focus *regexp.Regexp
	if o.focus != "" {
		if o.update {
			return fail("-update needs a full run, not a focused one")
		}
		if focus, err = regexp.Compile(o.focus); err != nil {
			return fail("-focus: %v", err)
		}
	}

	for _, line := range summary(o.log, specs) {
		fmt.Fprintln(w, "critest:", line)
	}
	for _, s := range specs {
		if s.SuiteNode && s.State != "passed" {
			fmt.Fprintf(w, "critest: %s %s: %s\n", s.Name, s.State, s.Message)
		}
	}
	if len(specs) == 0 || Tally(specs)["passed"]+Tally(specs)["failed"]+Tally(specs)["skipped"] == 0 {
		return fail("%s holds no specs: did critest start at all?", o.junit)
	}
	for _, d := range r.Duplicates {
		fmt.Fprintf(w, "ratchet: %s lists twice: %s\n", o.ratchet, d)
	}

	c := Compare(r, specs, focus)
	fmt.Fprintf(w, "ratchet: %d specs passed; %s lists %d\n", len(c.Passed), o.ratchet, len(r.Specs))
	if len(c.New) > 0 {
		fmt.Fprintf(w, "\n%d specs pass but are not in %s; add these lines (or run with CRITEST_UPDATE=1):\n", len(c.New), o.ratchet)
		for _, name := range c.New {
			fmt.Fprintln(w, name)
		}
	}
	if o.update {
		if err := os.WriteFile(o.ratchet, []byte(r.Update(c.Passed)), 0o644); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(w, "\nratchet: rewrote %s with the %d passing specs\n", o.ratchet, len(c.Passed))
		return 0
	}
	if len(c.Missing) > 0 {
		fmt.Fprintf(w, "\nFAIL: %d specs listed in %s did not pass:\n", len(c.Missing), o.ratchet)
		for _, s := range c.Missing {
			detail := s.State
			if s.Message != "" {
				detail += ": " + s.Message
			}
			fmt.Fprintf(w, "  %s\n      (%s)\n", s.Name, detail)
		}
		// The plain closing line CI reads: the ratchet's specs, passed and failed.
		if focus == nil {
			fmt.Fprintf(w, "ratchet: %d passed, %d failed\n", len(r.Specs)-len(c.Missing), len(c.Missing))
		}
		return 1
	}
	fmt.Fprintf(w, "ratchet: OK, every listed spec passed\n")
	if focus == nil {
		fmt.Fprintf(w, "ratchet: %d passed, 0 failed\n", len(r.Specs))
	}
	return 0
}

var (
	ansi        = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	ranLine     = regexp.MustCompile(`Ran \d+ of \d+ Specs? in [0-9.]+ seconds`)
	outcomeLine = regexp.MustCompile(`(SUCCESS|FAIL)! .*\d+ Passed \| \d+ Failed.*`)
)

// summary returns ginkgo's "Ran N of M Specs" and "X Passed | Y Failed"
// lines from critest's output, or equivalent lines computed from specs.
func summary(logPath string, specs []Spec) []string {
	if logPath != "" {
		if data, err := os.ReadFile(logPath); err == nil {
			var lines []string
			for _, l := range strings.Split(ansi.ReplaceAllString(string(data), ""), "\n") {
				if m := ranLine.FindString(l); m != "" {
					lines = append(lines, m)
				} else if m := outcomeLine.FindString(l); m != "" {
					lines = append(lines, strings.TrimSpace(m))
				}
			}
			if len(lines) > 0 {
				return lines
			}
		}
	}
	n := Tally(specs)
	total := 0
	for _, v := range n {
		total += v
	}
	ran := total - n["skipped"] - n["pending"]
	return []string{fmt.Sprintf("Ran %d of %d Specs (from the JUnit report): %d Passed | %d Failed | %d Pending | %d Skipped",
		ran, total, n["passed"], ran-n["passed"], n["pending"], n["skipped"])}
}
