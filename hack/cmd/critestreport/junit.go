package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Spec is the outcome of one spec (or suite node) of a critest run.
type Spec struct {
	// Name is the full spec text as critest prints it, e.g. "[k8s.io]
	// Image Manager listImage should get exactly 3 image in the result list
	// [Conformance]"; for suite nodes it keeps its node type, e.g.
	// "[BeforeSuite]".
	Name string
	// State is ginkgo's: passed, failed, skipped, pending, panicked,
	// interrupted, aborted or timedout.
	State string
	// Message is the first line of the failure or skip message, if any.
	Message string
	// SuiteNode is true for BeforeSuite, AfterSuite and the like.
	SuiteNode bool
}

type junitReport struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Cases []junitCase `xml:"testcase"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
	Skipped *junitMessage `xml:"skipped"`
}

const itPrefix = "[It] "

// ParseJUnit reads a ginkgo JUnit report. Test case names are
// "[It] <full text> [labels]"; the "[It] " is dropped.
func ParseJUnit(r io.Reader) ([]Spec, error) {
	var rep junitReport
	dec := xml.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("parse JUnit report: %w", err)
	}
	var specs []Spec
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			spec := Spec{Name: strings.TrimSpace(c.Name), State: c.Status}
			if strings.HasPrefix(spec.Name, itPrefix) {
				spec.Name = strings.TrimSpace(strings.TrimPrefix(spec.Name, itPrefix))
			} else {
				spec.SuiteNode = true
			}
			var msg *junitMessage
			switch {
			case c.Failure != nil:
				msg = c.Failure
				if spec.State == "" {
					spec.State = "failed"
				}
			case c.Error != nil:
				msg = c.Error
				if spec.State == "" {
					spec.State = "failed"
				}
			case c.Skipped != nil:
				msg = c.Skipped
				if spec.State == "" {
					spec.State = "skipped"
				}
			}
			if spec.State == "" {
				spec.State = "passed"
			}
			if msg != nil {
				spec.Message = firstLine(msg.Message)
			}
			specs = append(specs, spec)
		}
	}
	return specs, nil
}

// firstLine condenses a failure message to one line: its first line and, for
// gomega's "Unexpected error:" dumps, the error text that follows the
// "<*type | 0x...>:" line.
func firstLine(s string) string {
	var parts []string
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l != "Unexpected error:" {
			if i == 0 && l != "" {
				parts = append(parts, l)
			}
			continue
		}
		for j := i + 1; j < len(lines); j++ {
			e := strings.TrimSpace(lines[j])
			if e == "" || strings.HasPrefix(e, "<") && strings.HasSuffix(e, ":") {
				continue
			}
			parts = append(parts, e)
			break
		}
		break
	}
	out := strings.Join(parts, ": ")
	const max = 300
	if len(out) > max {
		out = out[:max] + "…"
	}
	return out
}

// Tally counts specs (not suite nodes) by state.
func Tally(specs []Spec) map[string]int {
	n := map[string]int{}
	for _, s := range specs {
		if !s.SuiteNode {
			n[s.State]++
		}
	}
	return n
}
