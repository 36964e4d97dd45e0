package pause

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// loadAddress is where the single segment is mapped: the traditional base of a
// non-PIE executable, 64 KiB aligned so that it suits every page size.
const loadAddress = 0x400000

// segmentAlign is the p_align of the loadable segment: the largest page size of the
// architectures pause supports (arm64 kernels may use 64 KiB pages).
const segmentAlign = 0x10000

// headerSize is the ELF header plus the two program headers that precede the code.
const headerSize = 64 + 2*56

// program returns the pause machine code for a Go architecture name.
func program(goarch string) (*asm, elf.Machine, error) {
	switch goarch {
	case "amd64":
		a, err := x86Program()
		return a, elf.EM_X86_64, err
	case "arm64":
		a, err := arm64Program()
		return a, elf.EM_AARCH64, err
	}
	return nil, elf.EM_NONE, fmt.Errorf("pause: no machine code for %s", goarch)
}

// Executable returns the complete static ELF executable of pause for goarch ("amd64"
// or "arm64"): an ELF header, a PT_LOAD program header mapping the whole file read and
// execute, a PT_GNU_STACK header asking for a non-executable stack, then the code. It
// has no sections, no interpreter and no dynamic section.
func Executable(goarch string) ([]byte, error) {
	a, machine, err := program(goarch)
	if err != nil {
		return nil, err
	}
	size := uint64(headerSize + len(a.code))
	header := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     loadAddress + headerSize,
		Phoff:     64,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     2,
	}
	copy(header.Ident[:], elf.ELFMAG)
	header.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	header.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	header.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	header.Ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	progs := []elf.Prog64{{
		Type:   uint32(elf.PT_LOAD),
		Flags:  uint32(elf.PF_R | elf.PF_X),
		Off:    0,
		Vaddr:  loadAddress,
		Paddr:  loadAddress,
		Filesz: size,
		Memsz:  size,
		Align:  segmentAlign,
	}, {
		Type:  uint32(elf.PT_GNU_STACK),
		Flags: uint32(elf.PF_R | elf.PF_W),
		Align: 16,
	}}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, header); err != nil {
		return nil, err
	}
	if err := binary.Write(&buf, binary.LittleEndian, progs); err != nil {
		return nil, err
	}
	if buf.Len() != headerSize {
		return nil, fmt.Errorf("pause: ELF headers take %d bytes, want %d", buf.Len(), headerSize)
	}
	buf.Write(a.code)
	return buf.Bytes(), nil
}
