// Package memtrim lets a long-lived process give back the pages of its own executable
// that its start-up mapped but its steady state does not use.
//
// The kernel maps a file's pages around each one a process touches (fault-around,
// 64 KiB at a time), so starting a Go binary maps much of it. Those pages stay in the
// page cache either way; mapped, they count in the process's RSS and, unless another
// process maps them too, in full in its PSS — the figure berth's per-pod overhead is
// judged by. Text releases the read-only and executable mappings of the executable:
// MADV_RANDOM (no fault-around from now on) and MADV_DONTNEED (the pages leave this
// process's page tables, and come back from the file when touched again).
//
// Only for a non-PIE executable (ELF type EXEC, what `go build` makes on linux/amd64
// and arm64): in a position-independent one the dynamic linker writes into segments
// that are read-only afterwards, and dropping those pages would undo its work.
package memtrim

import (
	"bufio"
	"encoding/binary"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// etExec is the ELF e_type of a fixed-address executable.
const etExec = 2

// Text releases the executable's read-only mappings (see the package documentation).
// It does nothing when anything about the executable is unexpected.
func Text() {
	exe, err := os.Executable()
	if err != nil || !fixedAddress(exe) {
		return
	}
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer maps.Close()
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		start, end, ok := readOnlyMapping(sc.Text(), exe)
		if !ok {
			continue
		}
		// The raw call: the mapping is ours, but not memory Go knows as a slice.
		for _, advice := range []uintptr{unix.MADV_RANDOM, unix.MADV_DONTNEED} {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, start, end-start, advice)
		}
	}
}

// readOnlyMapping parses a /proc/self/maps line ("start-end perms offset dev inode
// path") and reports the range when it maps exe without write permission.
func readOnlyMapping(line, exe string) (start, end uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || f[5] != exe || strings.Contains(f[1], "w") {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(f[0], "-")
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if !found || err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}

// fixedAddress reports whether path is a little-endian ELF executable of type EXEC.
func fixedAddress(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var hdr [18]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return false
	}
	return string(hdr[:4]) == "\x7fELF" && hdr[5] == 1 && binary.LittleEndian.Uint16(hdr[16:]) == etExec
}
