// Command critestreport reads the JUnit report of a critest run and compares
// the specs that passed with the ratchet file hack/critest-pass.txt (one full
// spec name per line, as critest prints it without the leading "[It]"; "#"
// comments and blank lines are allowed).
//
//	critestreport -junit report.xml -ratchet hack/critest-pass.txt [-log critest.log] [-focus REGEX] [-update]
//
// It prints critest's summary line, every ratchet spec that did not pass
// (and then exits 1) and every passing spec the ratchet does not list yet,
// as lines ready to paste. -focus limits the ratchet check to the specs a
// focused run selects. -update rewrites the ratchet to the passing set,
// keeping its comments.
package main
