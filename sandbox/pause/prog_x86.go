package pause

import (
	"encoding/binary"
	"fmt"
)

// Linux x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const (
	x86SysRtSigprocmask  = 14
	x86SysWait4          = 61
	x86SysRtSigtimedwait = 128
	x86SysExitGroup      = 231
)

// x86Program is pause for x86-64. The algorithm, the same on every architecture:
//
//	    rt_sigprocmask(SIG_BLOCK, &all, NULL, 8)
//	reap:
//	    while (wait4(-1, NULL, WNOHANG, NULL) > 0) ;
//	    sig = rt_sigtimedwait(&all, NULL, NULL, 8)   // sleeps here; no handlers at all
//	    if (sig != SIGINT && sig != SIGTERM) goto reap
//	    exit_group(0)
//
// Registers: the syscall number goes in eax (a 32-bit move clears the upper half of
// rax), the arguments in rdi, rsi, rdx, r10; syscall returns in rax and clobbers rcx and
// r11 only. Every call loads all its arguments, so nothing is kept across calls.
func x86Program() (*asm, error) {
	var a asm
	a.x86("mov eax, SYS_rt_sigprocmask", 0xb8, imm32(x86SysRtSigprocmask))
	a.x86("xor edi, edi ; SIG_BLOCK", 0x31, 0xff)
	a.x86("lea rsi, [rip+mask]", 0x48, 0x8d, 0x35, rip32("mask"))
	a.x86("xor edx, edx ; old set: NULL", 0x31, 0xd2)
	a.x86("mov r10d, 8 ; sizeof mask", 0x41, 0xba, imm32(8))
	a.x86("syscall", 0x0f, 0x05)

	a.label("reap")
	a.x86("mov eax, SYS_wait4", 0xb8, imm32(x86SysWait4))
	a.x86("or rdi, -1 ; any child", 0x48, 0x83, 0xcf, 0xff)
	a.x86("xor esi, esi ; status: NULL", 0x31, 0xf6)
	a.x86("mov edx, WNOHANG", 0xba, imm32(wnohang))
	a.x86("xor r10d, r10d ; rusage: NULL", 0x45, 0x31, 0xd2)
	a.x86("syscall", 0x0f, 0x05)
	a.x86("test rax, rax", 0x48, 0x85, 0xc0)
	a.x86("jg reap ; reaped one, try again", 0x7f, jmp8("reap"))

	a.x86("mov eax, SYS_rt_sigtimedwait", 0xb8, imm32(x86SysRtSigtimedwait))
	a.x86("lea rdi, [rip+mask]", 0x48, 0x8d, 0x3d, rip32("mask"))
	a.x86("xor esi, esi ; siginfo: NULL", 0x31, 0xf6)
	a.x86("xor edx, edx ; timeout: none", 0x31, 0xd2)
	a.x86("mov r10d, 8 ; sizeof mask", 0x41, 0xba, imm32(8))
	a.x86("syscall", 0x0f, 0x05)
	a.x86("cmp eax, SIGINT", 0x83, 0xf8, sigint)
	a.x86("je exit", 0x74, jmp8("exit"))
	a.x86("cmp eax, SIGTERM", 0x83, 0xf8, sigterm)
	a.x86("jne reap ; SIGCHLD, any other signal, -EINTR", 0x75, jmp8("reap"))

	a.label("exit")
	a.x86("mov eax, SYS_exit_group", 0xb8, imm32(x86SysExitGroup))
	a.x86("xor edi, edi ; status 0", 0x31, 0xff)
	a.x86("syscall", 0x0f, 0x05)

	a.align(8)
	a.label("mask")
	a.quad(allSignals)
	_, err := a.link()
	return &a, err
}

// Operand parts of an x86 instruction besides plain bytes.
type (
	// imm32 is a 32-bit little-endian immediate.
	imm32 uint32
	// rip32 is the disp32 of a RIP-relative operand naming a label; it must end the
	// instruction, because x86 counts the displacement from the next instruction.
	rip32 string
	// jmp8 is the rel8 of a short jump to a label; it ends the instruction too.
	jmp8 string
)

// x86 appends one x86-64 instruction made of parts: bytes (ints from 0 to 255), imm32,
// rip32 and jmp8.
func (a *asm) x86(text string, parts ...any) {
	a.note(text)
	insn := len(a.code)
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			if v < 0 || v > 0xff {
				panic(fmt.Sprintf("pause: %q: byte %d out of range", text, v))
			}
			a.code = append(a.code, byte(v))
		case imm32:
			a.code = binary.LittleEndian.AppendUint32(a.code, uint32(v))
		case rip32:
			a.refer(string(v), insn, x86Displacement(4))
			a.code = append(a.code, 0, 0, 0, 0)
		case jmp8:
			a.refer(string(v), insn, x86Displacement(1))
			a.code = append(a.code, 0)
		default:
			panic(fmt.Sprintf("pause: %q: unknown part %T", text, p))
		}
	}
}

// x86Displacement patches a trailing displacement of size bytes: the distance from the
// end of the instruction to the target.
func x86Displacement(size int) func(code []byte, insn, field, target int) error {
	return func(code []byte, _, field, target int) error {
		d := target - (field + size)
		switch size {
		case 1:
			if d < -128 || d > 127 {
				return fmt.Errorf("rel8 out of range: %d", d)
			}
			code[field] = byte(int8(d))
		case 4:
			binary.LittleEndian.PutUint32(code[field:], uint32(int32(d)))
		}
		return nil
	}
}
