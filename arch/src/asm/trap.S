/*
 * trap.S: entry stubs for CPU exceptions and APIC interrupts.
 *
 * On entry the CPU has pushed SS, RSP, RFLAGS, CS, RIP (and, for some
 * exceptions, an error code) on the kernel stack: the TSS RSP0 stack when
 * coming from ring 3, the IST stack for vectors given one, else the current
 * stack. In 64-bit mode the CPU first aligns RSP down to 16 bytes.
 *
 * Each stub makes the frame uniform (a zero error code where the CPU pushes
 * none, then the vector number) and jumps to trap_common, which
 *   - runs SWAPGS if the trap came from ring 3 (CS.RPL != 0), so GS always
 *     points at this CPU's PerCpu block while in the kernel, and clears
 *     RFLAGS.AC (left as ring 3 had it by the CPU) so SMAP holds,
 *   - saves the fifteen general registers, giving the TrapFrame layout
 *     declared in trap.rs (r15 at the lowest address),
 *   - calls trap_dispatch(&mut TrapFrame) with RSP 16-byte aligned
 *     (5 CPU words + 2 stub words + 15 registers = 22 words = 176 bytes),
 *   - restores the registers, undoes SWAPGS for ring 3, drops the vector and
 *     error code, and returns with IRETQ.
 */

    .section .text.trap, "ax"
    .code64
trap_stub_0:
    pushq $0
    pushq $0
    jmp trap_common
trap_stub_1:
    pushq $0
    pushq $1
    jmp trap_common
trap_stub_2:
    pushq $0
    pushq $2
    jmp trap_common
trap_stub_3:
    pushq $0
    pushq $3
    jmp trap_common
trap_stub_4:
    pushq $0
    pushq $4
    jmp trap_common
trap_stub_5:
    pushq $0
    pushq $5
    jmp trap_common
trap_stub_6:
    pushq $0
    pushq $6
    jmp trap_common
trap_stub_7:
    pushq $0
    pushq $7
    jmp trap_common
trap_stub_8:
    pushq $8
    jmp trap_common
trap_stub_9:
    pushq $0
    pushq $9
    jmp trap_common
trap_stub_10:
    pushq $10
    jmp trap_common
trap_stub_11:
    pushq $11
    jmp trap_common
trap_stub_12:
    pushq $12
    jmp trap_common
trap_stub_13:
    pushq $13
    jmp trap_common
trap_stub_14:
    pushq $14
    jmp trap_common
trap_stub_15:
    pushq $0
    pushq $15
    jmp trap_common
trap_stub_16:
    pushq $0
    pushq $16
    jmp trap_common
trap_stub_17:
    pushq $17
    jmp trap_common
trap_stub_18:
    pushq $0
    pushq $18
    jmp trap_common
trap_stub_19:
    pushq $0
    pushq $19
    jmp trap_common
trap_stub_20:
    pushq $0
    pushq $20
    jmp trap_common
trap_stub_21:
    pushq $21
    jmp trap_common
trap_stub_22:
    pushq $0
    pushq $22
    jmp trap_common
trap_stub_23:
    pushq $0
    pushq $23
    jmp trap_common
trap_stub_24:
    pushq $0
    pushq $24
    jmp trap_common
trap_stub_25:
    pushq $0
    pushq $25
    jmp trap_common
trap_stub_26:
    pushq $0
    pushq $26
    jmp trap_common
trap_stub_27:
    pushq $0
    pushq $27
    jmp trap_common
trap_stub_28:
    pushq $0
    pushq $28
    jmp trap_common
trap_stub_29:
    pushq $29
    jmp trap_common
trap_stub_30:
    pushq $30
    jmp trap_common
trap_stub_31:
    pushq $0
    pushq $31
    jmp trap_common
trap_stub_32:
    pushq $0
    pushq $32
    jmp trap_common
trap_stub_33:
    pushq $0
    pushq $33
    jmp trap_common
trap_stub_34:
    pushq $0
    pushq $34
    jmp trap_common
trap_stub_35:
    pushq $0
    pushq $35
    jmp trap_common
trap_stub_36:
    pushq $0
    pushq $36
    jmp trap_common
trap_stub_37:
    pushq $0
    pushq $37
    jmp trap_common
trap_stub_38:
    pushq $0
    pushq $38
    jmp trap_common
trap_stub_39:
    pushq $0
    pushq $39
    jmp trap_common
trap_stub_40:
    pushq $0
    pushq $40
    jmp trap_common
trap_stub_41:
    pushq $0
    pushq $41
    jmp trap_common
trap_stub_42:
    pushq $0
    pushq $42
    jmp trap_common
trap_stub_43:
    pushq $0
    pushq $43
    jmp trap_common
trap_stub_44:
    pushq $0
    pushq $44
    jmp trap_common
trap_stub_45:
    pushq $0
    pushq $45
    jmp trap_common
trap_stub_46:
    pushq $0
    pushq $46
    jmp trap_common
trap_stub_47:
    pushq $0
    pushq $47
    jmp trap_common
trap_stub_48:
    pushq $0
    pushq $48
    jmp trap_common
trap_stub_49:
    pushq $0
    pushq $49
    jmp trap_common
trap_stub_50:
    pushq $0
    pushq $50
    jmp trap_common
trap_stub_51:
    pushq $0
    pushq $51
    jmp trap_common
trap_stub_52:
    pushq $0
    pushq $52
    jmp trap_common
trap_stub_53:
    pushq $0
    pushq $53
    jmp trap_common
trap_stub_54:
    pushq $0
    pushq $54
    jmp trap_common
trap_stub_55:
    pushq $0
    pushq $55
    jmp trap_common
trap_stub_56:
    pushq $0
    pushq $56
    jmp trap_common
trap_stub_57:
    pushq $0
    pushq $57
    jmp trap_common
trap_stub_58:
    pushq $0
    pushq $58
    jmp trap_common
trap_stub_59:
    pushq $0
    pushq $59
    jmp trap_common
trap_stub_60:
    pushq $0
    pushq $60
    jmp trap_common
trap_stub_61:
    pushq $0
    pushq $61
    jmp trap_common
trap_stub_62:
    pushq $0
    pushq $62
    jmp trap_common
trap_stub_63:
    pushq $0
    pushq $63
    jmp trap_common
trap_stub_255:
    pushq $0
    pushq $255
    jmp trap_common

trap_common:
    /* Stack: vector at 0, error code at 8, RIP at 16, CS at 24. */
    testb $3, 24(%rsp)
    jz 1f
    swapgs
    /* Interrupt delivery does not clear RFLAGS.AC, which ring 3 may set:
     * clear it so SMAP stays in force here and in whatever context a switch
     * from this handler resumes (context_switch keeps RFLAGS). IRETQ
     * restores the user's own flags. (CLAC would #UD without SMAP.) */
    pushfq
    andq $~(1 << 18), (%rsp)
    popfq
1:  pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    cld
    call trap_dispatch
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    /* Vector at 0 again, CS at 24. */
    testb $3, 24(%rsp)
    jz 2f
    swapgs
2:  addq $16, %rsp
    iretq

/* Stub addresses for the vectors above, in the order of TRAP_STUB_VECTORS in trap.rs. */
    .section .rodata.trap_stubs, "a"
    .balign 8
    .global trap_stub_table
trap_stub_table:
    .quad trap_stub_0
    .quad trap_stub_1
    .quad trap_stub_2
    .quad trap_stub_3
    .quad trap_stub_4
    .quad trap_stub_5
    .quad trap_stub_6
    .quad trap_stub_7
    .quad trap_stub_8
    .quad trap_stub_9
    .quad trap_stub_10
    .quad trap_stub_11
    .quad trap_stub_12
    .quad trap_stub_13
    .quad trap_stub_14
    .quad trap_stub_15
    .quad trap_stub_16
    .quad trap_stub_17
    .quad trap_stub_18
    .quad trap_stub_19
    .quad trap_stub_20
    .quad trap_stub_21
    .quad trap_stub_22
    .quad trap_stub_23
    .quad trap_stub_24
    .quad trap_stub_25
    .quad trap_stub_26
    .quad trap_stub_27
    .quad trap_stub_28
    .quad trap_stub_29
    .quad trap_stub_30
    .quad trap_stub_31
    .quad trap_stub_32
    .quad trap_stub_33
    .quad trap_stub_34
    .quad trap_stub_35
    .quad trap_stub_36
    .quad trap_stub_37
    .quad trap_stub_38
    .quad trap_stub_39
    .quad trap_stub_40
    .quad trap_stub_41
    .quad trap_stub_42
    .quad trap_stub_43
    .quad trap_stub_44
    .quad trap_stub_45
    .quad trap_stub_46
    .quad trap_stub_47
    .quad trap_stub_48
    .quad trap_stub_49
    .quad trap_stub_50
    .quad trap_stub_51
    .quad trap_stub_52
    .quad trap_stub_53
    .quad trap_stub_54
    .quad trap_stub_55
    .quad trap_stub_56
    .quad trap_stub_57
    .quad trap_stub_58
    .quad trap_stub_59
    .quad trap_stub_60
    .quad trap_stub_61
    .quad trap_stub_62
    .quad trap_stub_63
    .quad trap_stub_255
