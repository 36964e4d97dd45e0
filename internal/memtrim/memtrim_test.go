package memtrim

import (
	"os"
	"testing"
)

func TestReadOnlyMapping(t *testing.T) {
	const exe = "/usr/bin/berthd"
	for _, tc := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"00400000-00511000 r-xp 00000000 fe:01 1234 /usr/bin/berthd", 0x400000, 0x511000, true},
		{"00511000-0065e000 r--p 00111000 fe:01 1234 /usr/bin/berthd", 0x511000, 0x65e000, true},
		{"0065e000-0066e000 rw-p 0025e000 fe:01 1234 /usr/bin/berthd", 0, 0, false},
		{"7f00-7f10 r-xp 00000000 fe:01 99 /usr/lib/libc.so.6", 0, 0, false},
		{"7f00-7f10 rw-p 00000000 00:00 0", 0, 0, false},
		{"zz-7f10 r-xp 00000000 fe:01 1234 /usr/bin/berthd", 0, 0, false},
		{"7f10-7f00 r-xp 00000000 fe:01 1234 /usr/bin/berthd", 0, 0, false},
	} {
		s, e, ok := readOnlyMapping(tc.line, exe)
		if ok != tc.ok || s != tc.start || e != tc.end {
			t.Errorf("readOnlyMapping(%q) = %#x, %#x, %v; want %#x, %#x, %v", tc.line, s, e, ok, tc.start, tc.end, tc.ok)
		}
	}
}

// TestText runs Text on the test binary itself: the process goes on running the
// code whose pages it dropped.
func TestText(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s fixed address: %v", exe, fixedAddress(exe))
	Text()
	Text()
	if fixedAddress("/dev/null") || fixedAddress("/nonexistent") {
		t.Fatal("fixedAddress of a non-ELF file")
	}
}
