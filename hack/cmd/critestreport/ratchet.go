package main

import (
	"regexp"
	"sort"
	"strings"
)

// Ratchet is the parsed ratchet file. The leading block up to the last blank
// line before the first spec is the header; the comment and blank lines
// between two specs belong to the second; lines after the last spec are the
// footer.
type Ratchet struct {
	Header   []string
	Specs    []string
	Comments map[string][]string // spec → comment lines above it
	Footer   []string
	// Duplicates lists specs named more than once.
	Duplicates []string
}

func isComment(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || strings.HasPrefix(t, "#")
}

// ParseRatchet parses the ratchet file's content.
func ParseRatchet(content string) Ratchet {
	lines := strings.Split(strings.TrimRight(content, "\n"), "\n")
	if content == "" {
		lines = nil
	}
	r := Ratchet{Comments: map[string][]string{}}
	first := -1
	for i, l := range lines {
		if !isComment(l) {
			first = i
			break
		}
	}
	if first < 0 {
		r.Header = lines
		return r
	}
	headerEnd := 0 // lines[:headerEnd] is the header
	for i := first - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) == "" {
			headerEnd = i + 1
			break
		}
	}
	r.Header = lines[:headerEnd]
	seen := map[string]bool{}
	var pending []string
	for _, l := range lines[headerEnd:] {
		if isComment(l) {
			pending = append(pending, l)
			continue
		}
		name := strings.TrimSpace(l)
		if seen[name] {
			r.Duplicates = append(r.Duplicates, name)
		} else {
			seen[name] = true
			r.Specs = append(r.Specs, name)
			if len(pending) > 0 {
				r.Comments[name] = pending
			}
		}
		pending = nil
	}
	r.Footer = pending
	return r
}

// Comparison is the outcome of checking a run against the ratchet.
type Comparison struct {
	// Missing are ratchet specs (in focus) that did not pass, with their
	// state in the run ("not run" if absent).
	Missing []Spec
	// New are passing specs the ratchet does not list.
	New []string
	// Passed are all passing specs, sorted.
	Passed []string
}

// Compare checks specs against the ratchet. If focus is non-nil, only
// ratchet specs matching it must pass.
func Compare(r Ratchet, specs []Spec, focus *regexp.Regexp) Comparison {
	byName := map[string]Spec{}
	var c Comparison
	for _, s := range specs {
		if s.SuiteNode {
			continue
		}
		byName[s.Name] = s
		if s.State == "passed" {
			c.Passed = append(c.Passed, s.Name)
		}
	}
	sort.Strings(c.Passed)
	listed := map[string]bool{}
	for _, name := range r.Specs {
		listed[name] = true
		if focus != nil && !focus.MatchString(name) {
			continue
		}
		s, ok := byName[name]
		if !ok {
			s = Spec{Name: name, State: "not run"}
		}
		if s.State != "passed" {
			c.Missing = append(c.Missing, s)
		}
	}
	for _, name := range c.Passed {
		if !listed[name] {
			c.New = append(c.New, name)
		}
	}
	return c
}

// Update returns the ratchet file listing exactly passed (sorted), keeping
// the header, the footer and the comments of specs that are still listed
// (comments of dropped specs are dropped with them).
func (r Ratchet) Update(passed []string) string {
	var b strings.Builder
	for _, l := range r.Header {
		b.WriteString(l + "\n")
	}
	if n := len(r.Header); n > 0 && strings.TrimSpace(r.Header[n-1]) != "" && len(passed) > 0 {
		b.WriteString("\n") // keep the specs apart from a header-only file's comment
	}
	sorted := append([]string(nil), passed...)
	sort.Strings(sorted)
	for _, name := range sorted {
		for _, l := range r.Comments[name] {
			b.WriteString(l + "\n")
		}
		b.WriteString(name + "\n")
	}
	for _, l := range r.Footer {
		b.WriteString(l + "\n")
	}
	return b.String()
}
