package pause

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"strings"
	"testing"
)

// The generated programs, byte for byte, one instruction per field (arm64 words in
// memory order). They were checked against objdump (binutils for x86-64 and aarch64);
// a change here must be checked the same way.
const (
	goldenX86 = `b80e000000 31ff 488d3552000000 31d2 41ba08000000 0f05
		b83d000000 4883cfff 31f6 ba01000000 4531d2 0f05 4885c0 7fe6
		b880000000 488d3d22000000 31f6 31d2 41ba08000000 0f05 83f802 7405 83f80f 75c4
		b8e7000000 31ff 0f05
		000000 ffffffffffffffff`
	goldenArm64 = `000080d2 61030010 020080d2 030180d2 e81080d2 010000d4
		00008092 010080d2 220080d2 030080d2 882080d2 010000d4 1f0000f1 2cffff54
		c0010010 010080d2 020080d2 030180d2 281180d2 010000d4 1f0800f1 60000054 1f3c00f1 e1fdff54
		000080d2 c80b80d2 010000d4
		00000000 ffffffffffffffff`
)

func TestProgramsMatchGolden(t *testing.T) {
	for arch, want := range map[string]string{"amd64": goldenX86, "arm64": goldenArm64} {
		t.Run(arch, func(t *testing.T) {
			a, _, err := program(arch)
			if err != nil {
				t.Fatal(err)
			}
			want = strings.Join(strings.Fields(want), "")
			if got := hex.EncodeToString(a.code); got != want {
				t.Errorf("code changed:\n got %s\nwant %s\n%s", got, want, a)
			}
		})
	}
}

func TestExecutableIsAMinimalStaticELF(t *testing.T) {
	tests := []struct {
		goarch  string
		machine elf.Machine
	}{
		{"amd64", elf.EM_X86_64},
		{"arm64", elf.EM_AARCH64},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			exe, err := Executable(tt.goarch)
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := Executable(tt.goarch); !bytes.Equal(exe, again) {
				t.Error("not deterministic")
			}
			if len(exe) > 512 {
				t.Errorf("%d bytes", len(exe))
			}
			f, err := elf.NewFile(bytes.NewReader(exe))
			if err != nil {
				t.Fatal(err)
			}
			if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC || f.Machine != tt.machine {
				t.Errorf("header %+v", f.FileHeader)
			}
			if len(f.Sections) != 0 || len(f.Progs) != 2 {
				t.Errorf("%d sections, %d program headers", len(f.Sections), len(f.Progs))
			}
			load, stack := f.Progs[0], f.Progs[1]
			if load.Type != elf.PT_LOAD || load.Flags != elf.PF_R|elf.PF_X || load.Off != 0 ||
				load.Filesz != uint64(len(exe)) || load.Memsz != load.Filesz || load.Vaddr%load.Align != 0 {
				t.Errorf("load segment %+v", load.ProgHeader)
			}
			if stack.Type != elf.PT_GNU_STACK || stack.Flags&elf.PF_X != 0 {
				t.Errorf("stack header %+v", stack.ProgHeader)
			}
			if f.Entry != load.Vaddr+headerSize {
				t.Errorf("entry %#x", f.Entry)
			}
			if static, err := isStatic(bytes.NewReader(exe)); err != nil || !static {
				t.Errorf("isStatic = %v, %v", static, err)
			}
		})
	}
	if _, err := Executable("mips"); err == nil {
		t.Error("machine code for mips")
	}
}

func TestArm64Encodings(t *testing.T) {
	tests := []struct {
		name string
		got  uint32
		want uint32 // as objdump decodes it
	}{
		{"movz x8, #135", movz(8, 135), 0xd28010e8},
		{"movz x0, #0", movz(0, 0), 0xd2800000},
		{"movn x0, #0 (mov x0, #-1)", movn(0, 0), 0x92800000},
		{"cmp x0, #2", cmpImm(0, 2), 0xf100081f},
		{"cmp x0, #15", cmpImm(0, 15), 0xf1003c1f},
		{"svc #0", svc0, 0xd4000001},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %#08x, want %#08x", tt.name, tt.got, tt.want)
		}
	}
}

func TestPCRelativeReferences(t *testing.T) {
	tests := []struct {
		name   string
		build  func(*asm)
		want   string
		failed bool
	}{
		{
			name:  "x86 backward short jump",
			build: func(a *asm) { a.label("top"); a.x86("nop", 0x90); a.x86("jmp top", 0xeb, jmp8("top")) },
			want:  "90ebfd",
		},
		{
			name:  "x86 rip32 forward",
			build: func(a *asm) { a.x86("lea rax, [rip+d]", 0x48, 0x8d, 0x05, rip32("d")); a.label("d") },
			want:  "488d0500000000",
		},
		{
			name:  "arm64 adr forward",
			build: func(a *asm) { a.armRef("adr x1, d", adr(1), "d"); a.arm("svc", svc0); a.label("d") },
			want:  "41000010" + "010000d4",
		},
		{
			name:  "arm64 b.ne backward",
			build: func(a *asm) { a.label("top"); a.arm("svc", svc0); a.armRef("b.ne top", bcond(condNE), "top") },
			want:  "010000d4" + "e1ffff54",
		},
		{
			name: "x86 rel8 out of range",
			build: func(a *asm) {
				a.x86("jmp far", 0xeb, jmp8("far"))
				for range 200 {
					a.x86("nop", 0x90)
				}
				a.label("far")
			},
			failed: true,
		},
		{name: "undefined label", build: func(a *asm) { a.x86("jmp nowhere", 0xeb, jmp8("nowhere")) }, failed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a asm
			tt.build(&a)
			code, err := a.link()
			if tt.failed {
				if err == nil {
					t.Error("linked")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(code); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestListingNamesEveryInstruction(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		a, _, err := program(arch)
		if err != nil {
			t.Fatal(err)
		}
		listing := a.String()
		for _, want := range []string{"reap:", "exit:", "mask:", "SYS_wait4", "SYS_rt_sigtimedwait", "SYS_exit_group", ".quad 0xffffffffffffffff"} {
			if !strings.Contains(listing, want) {
				t.Errorf("%s listing lacks %q:\n%s", arch, want, listing)
			}
		}
	}
}
