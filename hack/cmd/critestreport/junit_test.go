package main

import (
	"strings"
	"testing"
)

// sampleJUnit has the shape of ginkgo v2's JUnit report for critest.
const sampleJUnit = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" disabled="1" errors="0" failures="2" time="12.5">
  <testsuite name="CRI validation" package="/tmp" tests="6" disabled="0" skipped="1" errors="0" failures="2" time="12.5" timestamp="2026-01-01T00:00:00">
    <properties><property name="SuiteSucceeded" value="false"></property></properties>
    <testcase name="[BeforeSuite]" classname="CRI validation" status="passed" time="0.01"></testcase>
    <testcase name="[It] [k8s.io] Image Manager listImage should get exactly 3 image in the result list [Conformance]" classname="CRI validation" status="passed" time="1.2">
      <system-err>STEP: pull</system-err>
    </testcase>
    <testcase name="[It] [k8s.io] Container runtime should support basic operations on container [Conformance]" classname="CRI validation" status="failed" time="0.5">
      <failure message="failed to create PodSandbox&#xA;Unexpected error: unimplemented" type="failed">details</failure>
    </testcase>
    <testcase name="[It] [k8s.io] Security Context NamespaceOption runtime should support HostPID" classname="CRI validation" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [k8s.io] Image Volume [Feature:ImageVolume] should return image digest in ContainerStatus mounts" classname="CRI validation" time="0.1">
      <error message="panic: boom" type="panicked"></error>
    </testcase>
    <testcase name="[AfterSuite]" classname="CRI validation" status="failed" time="0">
      <failure message="cleanup failed" type="failed"></failure>
    </testcase>
  </testsuite>
</testsuites>
`

func TestParseJUnit(t *testing.T) {
	specs, err := ParseJUnit(strings.NewReader(sampleJUnit))
	if err != nil {
		t.Fatal(err)
	}
	want := []Spec{
		{Name: "[BeforeSuite]", State: "passed", SuiteNode: true},
		{Name: "[k8s.io] Image Manager listImage should get exactly 3 image in the result list [Conformance]", State: "passed"},
		{Name: "[k8s.io] Container runtime should support basic operations on container [Conformance]", State: "failed", Message: "failed to create PodSandbox"},
		{Name: "[k8s.io] Security Context NamespaceOption runtime should support HostPID", State: "skipped", Message: "skipped"},
		{Name: "[k8s.io] Image Volume [Feature:ImageVolume] should return image digest in ContainerStatus mounts", State: "failed", Message: "panic: boom"},
		{Name: "[AfterSuite]", State: "failed", Message: "cleanup failed", SuiteNode: true},
	}
	if len(specs) != len(want) {
		t.Fatalf("got %d specs, want %d: %+v", len(specs), len(want), specs)
	}
	for i := range want {
		if specs[i] != want[i] {
			t.Errorf("spec %d = %+v, want %+v", i, specs[i], want[i])
		}
	}
	n := Tally(specs)
	if n["passed"] != 1 || n["failed"] != 2 || n["skipped"] != 1 {
		t.Errorf("tally %v", n)
	}
}

func TestParseJUnitErrors(t *testing.T) {
	for _, in := range []string{"", "<testsuites><testsuite>", "not xml"} {
		if _, err := ParseJUnit(strings.NewReader(in)); err == nil {
			t.Errorf("ParseJUnit(%q) succeeded", in)
		}
	}
}

func TestFirstLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"  one\ntwo", "one"},
		{strings.Repeat("x", 350), strings.Repeat("x", 300) + "…"},
		{"Unexpected error:\n    <*status.Error | 0x3b7>: \n    rpc error: code = Unimplemented desc = x\n    {\n", "rpc error: code = Unimplemented desc = x"},
		{"failed to create PodSandbox\nUnexpected error:\n    <*errors.errorString | 0x1>: {s: \"a\"}\n    boom\n", "failed to create PodSandbox: <*errors.errorString | 0x1>: {s: \"a\"}"},
		{"Expected\n    <string>: a\nto equal\n    <string>: b", "Expected"},
	} {
		if got := firstLine(tc.in); got != tc.want {
			t.Errorf("firstLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
