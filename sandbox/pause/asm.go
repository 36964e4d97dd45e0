package pause

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// asm accumulates the machine code of one small program. It knows no instruction set:
// the per-architecture files spell each instruction out, with its assembly text beside
// it, and use asm for labels, for patching PC-relative references once every label is
// known, and for a listing that tests print.
type asm struct {
	code    []byte
	labels  map[string]int
	refs    []ref
	listing []line
}

// line is one instruction or label of the listing.
type line struct {
	offset int
	text   string
}

// ref is a PC-relative reference to a label, patched by link.
type ref struct {
	label string
	// insn is the offset of the referring instruction; field the offset of the bytes to
	// patch (the same on arm64, the trailing displacement on x86).
	insn, field int
	patch       func(code []byte, insn, field, target int) error
}

// label names the current position.
func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.code)
	a.listing = append(a.listing, line{len(a.code), name + ":"})
}

// note adds the text of the instruction that starts at the current position.
func (a *asm) note(text string) {
	a.listing = append(a.listing, line{len(a.code), "\t" + text})
}

// refer records a reference to label by the instruction at insn whose bytes to patch
// start at the current position.
func (a *asm) refer(label string, insn int, patch func(code []byte, insn, field, target int) error) {
	a.refs = append(a.refs, ref{label: label, insn: insn, field: len(a.code), patch: patch})
}

// align pads the code with zero bytes to a multiple of n.
func (a *asm) align(n int) {
	for len(a.code)%n != 0 {
		a.code = append(a.code, 0)
	}
}

// quad appends a 64-bit little-endian datum.
func (a *asm) quad(v uint64) {
	a.listing = append(a.listing, line{len(a.code), fmt.Sprintf("\t.quad %#x", v)})
	a.code = binary.LittleEndian.AppendUint64(a.code, v)
}

// link resolves every reference and returns the finished code.
func (a *asm) link() ([]byte, error) {
	for _, r := range a.refs {
		target, ok := a.labels[r.label]
		if !ok {
			return nil, fmt.Errorf("pause: undefined label %q", r.label)
		}
		if err := r.patch(a.code, r.insn, r.field, target); err != nil {
			return nil, fmt.Errorf("pause: reference to %q at %#x: %w", r.label, r.insn, err)
		}
	}
	return a.code, nil
}

// String is the listing: offsets, labels and instructions.
func (a *asm) String() string {
	var b strings.Builder
	for _, l := range a.listing {
		fmt.Fprintf(&b, "%04x %s\n", l.offset, l.text)
	}
	return b.String()
}

// allSignals is the signal set pause blocks and waits for: every signal from 1 to 64
// (bit n-1 stands for signal n). The kernel takes SIGKILL and SIGSTOP out by itself;
// they stay in only so that the set reads as "all".
//
// Waiting for all of them, rather than for SIGCHLD, SIGINT and SIGTERM only, is what
// makes pause ignore the others sensibly: a SIGHUP or SIGUSR1 sent from the host (where
// pid 1's default-action signals are not filtered) is consumed instead of killing the
// pod, and real-time signals cannot pile up as pending against the user's
// RLIMIT_SIGPENDING.
const allSignals = ^uint64(0)

// The signals pause acts on, and wait4's option.
const (
	sigint  = 2
	sigterm = 15
	wnohang = 1
)
