package pause

import (
	"encoding/binary"
	"fmt"
)

// Linux arm64 system call numbers (include/uapi/asm-generic/unistd.h).
const (
	armSysExitGroup      = 94
	armSysRtSigprocmask  = 135
	armSysRtSigtimedwait = 137
	armSysWait4          = 260
)

// arm64Program is pause for arm64, the same algorithm as x86Program. The syscall number
// goes in x8, the arguments in x0 to x3; svc #0 returns in x0 and clobbers nothing else
// that the program uses.
func arm64Program() (*asm, error) {
	var a asm
	a.arm("movz x0, #0 ; SIG_BLOCK", movz(0, 0))
	a.armRef("adr x1, mask", adr(1), "mask")
	a.arm("movz x2, #0 ; old set: NULL", movz(2, 0))
	a.arm("movz x3, #8 ; sizeof mask", movz(3, 8))
	a.arm("movz x8, #SYS_rt_sigprocmask", movz(8, armSysRtSigprocmask))
	a.arm("svc #0", svc0)

	a.label("reap")
	a.arm("movn x0, #0 ; -1: any child", movn(0, 0))
	a.arm("movz x1, #0 ; status: NULL", movz(1, 0))
	a.arm("movz x2, #WNOHANG", movz(2, wnohang))
	a.arm("movz x3, #0 ; rusage: NULL", movz(3, 0))
	a.arm("movz x8, #SYS_wait4", movz(8, armSysWait4))
	a.arm("svc #0", svc0)
	a.arm("cmp x0, #0", cmpImm(0, 0))
	a.armRef("b.gt reap ; reaped one, try again", bcond(condGT), "reap")

	a.armRef("adr x0, mask", adr(0), "mask")
	a.arm("movz x1, #0 ; siginfo: NULL", movz(1, 0))
	a.arm("movz x2, #0 ; timeout: none", movz(2, 0))
	a.arm("movz x3, #8 ; sizeof mask", movz(3, 8))
	a.arm("movz x8, #SYS_rt_sigtimedwait", movz(8, armSysRtSigtimedwait))
	a.arm("svc #0", svc0)
	a.arm("cmp x0, #SIGINT", cmpImm(0, sigint))
	a.armRef("b.eq exit", bcond(condEQ), "exit")
	a.arm("cmp x0, #SIGTERM", cmpImm(0, sigterm))
	a.armRef("b.ne reap ; SIGCHLD, any other signal, -EINTR", bcond(condNE), "reap")

	a.label("exit")
	a.arm("movz x0, #0 ; status 0", movz(0, 0))
	a.arm("movz x8, #SYS_exit_group", movz(8, armSysExitGroup))
	a.arm("svc #0", svc0)

	a.align(8)
	a.label("mask")
	a.quad(allSignals)
	_, err := a.link()
	return &a, err
}

// arm appends one arm64 instruction.
func (a *asm) arm(text string, insn uint32) {
	a.note(text)
	a.code = binary.LittleEndian.AppendUint32(a.code, insn)
}

// armRef appends an arm64 instruction whose PC-relative field names label; patch fills
// the field in once the label is known.
func (a *asm) armRef(text string, insn armPCRel, label string) {
	a.refer(label, len(a.code), insn.patch)
	a.arm(text, insn.word)
}

// Encodings of the few arm64 instructions pause needs (Arm ARM, A64 base instructions),
// all on 64-bit registers.
const (
	svc0 = 0xd4000001 // svc #0

	condEQ = 0x0
	condNE = 0x1
	condGT = 0xc
)

// movz is MOVZ Xd, #imm16.
func movz(rd uint32, imm uint16) uint32 { return 0xd2800000 | uint32(imm)<<5 | rd }

// movn is MOVN Xd, #imm16: Xd = ^imm16.
func movn(rd uint32, imm uint16) uint32 { return 0x92800000 | uint32(imm)<<5 | rd }

// cmpImm is CMP Xn, #imm12, an alias of SUBS XZR, Xn, #imm12.
func cmpImm(rn uint32, imm uint16) uint32 {
	if imm >= 1<<12 {
		panic("pause: cmp immediate out of range")
	}
	return 0xf100001f | uint32(imm)<<10 | rn<<5
}

// armPCRel is an instruction with a PC-relative field still to fill in.
type armPCRel struct {
	word  uint32
	patch func(code []byte, insn, field, target int) error
}

// adr is ADR Xd, label: Xd = PC + a signed 21-bit byte offset, split into immlo (bits
// 29-30) and immhi (bits 5-23).
func adr(rd uint32) armPCRel {
	return armPCRel{word: 0x10000000 | rd, patch: func(code []byte, insn, _, target int) error {
		d := target - insn
		if d < -(1<<20) || d >= 1<<20 {
			return fmt.Errorf("adr out of range: %d", d)
		}
		w := binary.LittleEndian.Uint32(code[insn:])
		w |= uint32(d&3)<<29 | uint32((d>>2)&0x7ffff)<<5
		binary.LittleEndian.PutUint32(code[insn:], w)
		return nil
	}}
}

// bcond is B.cond label: a signed 19-bit offset in words (bits 5-23).
func bcond(cond uint32) armPCRel {
	return armPCRel{word: 0x54000000 | cond, patch: func(code []byte, insn, _, target int) error {
		d := target - insn
		if d%4 != 0 || d < -(1<<20) || d >= 1<<20 {
			return fmt.Errorf("b.cond out of range: %d", d)
		}
		w := binary.LittleEndian.Uint32(code[insn:])
		w |= uint32((d/4)&0x7ffff) << 5
		binary.LittleEndian.PutUint32(code[insn:], w)
		return nil
	}}
}
