/*
 * syscall.S: the SYSCALL entry point and the two ways back to ring 3.
 *
 * On SYSCALL the CPU has: RCX = user RIP, R11 = user RFLAGS, CS/SS from
 * STAR, RFLAGS masked by SFMASK (IF, DF, TF, AC cleared), RSP still the user
 * stack, GS base still the user's. Arguments: RAX = number, RDI, RSI.
 *
 * syscall_entry swaps to the kernel GS, parks the user RSP in the per-CPU
 * block, switches to the current thread's kernel stack (PerCpu.kernel_rsp),
 * and builds a SyscallFrame (layout in syscall.rs) shaped like an interrupt
 * frame on top, so the same frame can leave through SYSRET or IRETQ. It
 * calls syscall_dispatch(&mut SyscallFrame) with interrupts enabled;
 * the result is in frame.rax.
 *
 * Only the registers the Rust code may clobber are saved (RDI, RSI, RDX,
 * R8-R10, and RAX for the result): syscall_dispatch follows the C ABI, so
 * RBX, RBP and R12-R15 come back holding the user's values (a context
 * switch on the way saves and restores them with the rest of the kernel
 * context). RCX and R11 hold the user RIP and RFLAGS for SYSRET. No
 * kernel value reaches ring 3 in any register.
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
    /* Saved registers, rax (the number) last-pushed-first in the struct. */
    pushq %rax
    pushq %rdi
    pushq %rsi
    pushq %rdx
    pushq %r10
    pushq %r8
    pushq %r9
    /* 12 words = 96 bytes below a 16-byte aligned stack top: aligned. */
    movq %rsp, %rdi
    sti
    call syscall_dispatch
    cli
    popq %r9
    popq %r8
    popq %r10
    popq %rdx
    popq %rsi
    popq %rdi
    popq %rax
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
 * sched_finish_switch() completes the switch (interrupts stay off), then all
 * other registers are cleared so no kernel value leaks to the process.
 */
    .global thread_first_entry
thread_first_entry:
    call sched_finish_switch
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
