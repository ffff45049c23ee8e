/*
 * syscall.S: the SYSCALL entry point and the two ways back to ring 3.
 *
 * On SYSCALL the CPU has: RCX = user RIP, R11 = user RFLAGS, CS/SS from
 * STAR, RFLAGS masked by SFMASK (IF, DF, TF, AC cleared), RSP still the user
 * stack, GS base still the user's. Arguments: RAX = number, RDI, RSI.
 *
 * The system-call ABI is that of a C function call (docs/ring-abi.md):
 * RAX returns the result; RCX and R11 are clobbered by the CPU; RDI, RSI,
 * RDX and R8-R10 come back zero; RBX, RBP, RSP and R12-R15 are preserved.
 * So no user register needs saving here: syscall_dispatch follows the C
 * ABI and preserves RBX, RBP and R12-R15 itself (a context switch on the
 * way saves and restores them with the rest of the kernel context), and
 * the argument registers are cleared before returning, so no kernel value
 * reaches ring 3 in any register.
 *
 * syscall_entry swaps to the kernel GS, parks the user RSP in the per-CPU
 * block, switches to the current thread's kernel stack (PerCpu.kernel_rsp)
 * and builds an interrupt-shaped frame there (SS, RSP, RFLAGS, CS, RIP), so
 * the way out can be SYSRET or IRETQ. It calls
 * syscall_dispatch(number, arg0, arg1) -> result with interrupts enabled.
 *
 * Leaving: SYSRET would load RIP from RCX; if that is not canonical, SYSRET
 * faults in ring 0 on Intel CPUs with the user's RSP (the SYSRET pitfall).
 * So a return RIP at or above the end of the user half goes out through
 * IRETQ instead, where a bad RIP faults in ring 3 and only kills the process.
 */
    .set USER_END, 0x0000800000000000
    .set PERCPU_KERNEL_RSP, 8
    .set PERCPU_USER_RSP, 16
    .set USER_CS, 0x23
    .set USER_SS, 0x1b

    .section .text.syscall, "ax"
    .code64
    .global syscall_entry
syscall_entry:
    swapgs
    movq %rsp, %gs:PERCPU_USER_RSP
    movq %gs:PERCPU_KERNEL_RSP, %rsp
    /* Interrupt-frame-shaped part: SS, RSP, RFLAGS, CS, RIP. */
    pushq $USER_SS
    pushq %gs:PERCPU_USER_RSP
    pushq %r11
    pushq $USER_CS
    pushq %rcx
    /* One more word: 6 words = 48 bytes below a 16-byte aligned stack
     * top keeps the call aligned. */
    pushq %rax
    /* C arguments: RDI = number, RSI = arg0, RDX = arg1. */
    movq %rsi, %rdx
    movq %rdi, %rsi
    movq %rax, %rdi
    sti
    call syscall_dispatch
    cli
    /* RAX holds the result. Drop the alignment word and clear every
     * register the Rust code may have left a kernel value in. */
    addq $8, %rsp
    xorl %edi, %edi
    xorl %esi, %esi
    xorl %edx, %edx
    xorl %r8d, %r8d
    xorl %r9d, %r9d
    xorl %r10d, %r10d
    /* Now: RIP, CS, RFLAGS, RSP, SS. */
    movq (%rsp), %rcx
    movq $USER_END, %r11
    cmpq %r11, %rcx
    jae 1f
    movq 16(%rsp), %r11
    movq 24(%rsp), %rsp
    swapgs
    sysretq
1:  /* Non-canonical (or kernel-half) return address: leave through IRETQ. */
    swapgs
    iretq

/*
 * context_switch(save: *mut u64 [RDI], load: u64 [RSI])
 * Saves the callee-saved registers on the current kernel stack, stores RSP
 * to *save, loads RSP from `load` and restores the next thread's callee-saved
 * registers; `ret` resumes wherever that thread called context_switch (or at
 * thread_first_entry for a new thread). Interrupts are off throughout.
 */
    .global context_switch
context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

/*
 * thread_first_entry: where a new thread's first context_switch returns.
 * Its kernel stack holds, from the current RSP upwards: RDI, RSI, RDX for the
 * process entry, then an IRETQ frame (RIP, CS, RFLAGS, RSP, SS) for ring 3.
 * sched_first_entry() completes the switch (interrupts stay off) and ends
 * the process there if it was killed before it first ran (it does not
 * return then), then all other registers are cleared so no kernel value
 * leaks to the process.
 */
    .global thread_first_entry
thread_first_entry:
    call sched_first_entry
    popq %rdi
    popq %rsi
    popq %rdx
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %ebp, %ebp
    xorl %r8d, %r8d
    xorl %r9d, %r9d
    xorl %r10d, %r10d
    xorl %r11d, %r11d
    xorl %r12d, %r12d
    xorl %r13d, %r13d
    xorl %r14d, %r14d
    xorl %r15d, %r15d
    swapgs
    iretq
