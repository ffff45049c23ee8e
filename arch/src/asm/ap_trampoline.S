/*
 * ap_trampoline.S: the 16-bit real-mode entry of an application processor.
 *
 * The BSP copies the bytes between ap_trampoline_start and ap_trampoline_end
 * to physical TRAMPOLINE_BASE (0x8000) and sends INIT-SIPI-SIPI with vector
 * 0x08, so the AP starts here in real mode with CS:IP = 0x0800:0000,
 * interrupts off, paging off. The code is assembled for that fixed address:
 * every absolute reference is written as (label - ap_trampoline_start +
 * TRAMPOLINE_BASE).
 *
 * It goes real mode -> 32-bit protected mode -> long mode on the early boot
 * page tables (early_pml4, below 4 GiB, which identity-map this page and map
 * the kernel window), then jumps to ap_entry64 in the kernel window. That
 * stub switches to the kernel's own page tables and the AP's own stack, both
 * published by the BSP in the AP_BOOT_* words, and calls ap_rust_entry.
 */

    .set TRAMPOLINE_BASE, 0x8000
    .set MSR_EFER,  0xc0000080
    .set EFER_LME,  (1 << 8)
    .set EFER_NXE,  (1 << 11)
    .set CR4_PAE,   (1 << 5)
    .set CR0_PE,    (1 << 0)
    .set CR0_WP,    (1 << 16)
    .set CR0_PG,    (1 << 31)


    .section .rodata.ap_trampoline, "a"
    .global ap_trampoline_start
    .global ap_trampoline_end
    .code16
ap_trampoline_start:
    /* Real mode: DS = 0 so absolute addresses below 64 KiB work. */
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl tramp_gdt_ptr - ap_trampoline_start + TRAMPOLINE_BASE
    movl %cr0, %eax
    orl $CR0_PE, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(tramp32 - ap_trampoline_start + TRAMPOLINE_BASE)

    .code32
tramp32:
    /* Protected mode, flat segments. Same long-mode recipe as the BSP. */
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl tramp_cr3 - ap_trampoline_start + TRAMPOLINE_BASE, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $(EFER_LME | EFER_NXE), %eax
    wrmsr
    movl %cr0, %eax
    orl $(CR0_PG | CR0_WP), %eax
    movl %eax, %cr0
    ljmpl $0x18, $(tramp64 - ap_trampoline_start + TRAMPOLINE_BASE)

    .code64
tramp64:
    /* 64-bit mode at the identity address. Jump into the kernel window. */
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq tramp_entry - ap_trampoline_start + TRAMPOLINE_BASE, %rax
    jmp *%rax

    .balign 8
tramp_gdt:
    .quad 0                         /* null */
    .quad 0x00cf9a000000ffff        /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff        /* 0x10: data */
    .quad 0x00af9a000000ffff        /* 0x18: 64-bit code */
tramp_gdt_end:
tramp_gdt_ptr:
    .word tramp_gdt_end - tramp_gdt - 1
    .long (tramp_gdt - ap_trampoline_start + TRAMPOLINE_BASE)
    .balign 8
tramp_cr3:
    .long early_pml4                /* physical, below 4 GiB */
    .long 0
tramp_entry:
    .quad ap_entry64
ap_trampoline_end:

/* ---------------------------------------------------------------------- */
    .section .text.ap_entry64, "ax"
    .code64
    .global ap_entry64
ap_entry64:
    /* Kernel window, early tables, no stack yet. The BSP starts one AP at a
     * time and publishes its CR3, stack top and CPU index before the SIPI;
     * this code is mapped identically in both page-table sets, so the CR3
     * switch is safe here. */
    movq AP_BOOT_CR3(%rip), %rax
    movq %rax, %cr3
    movq AP_BOOT_STACK_TOP(%rip), %rsp
    movq AP_BOOT_CPU_INDEX(%rip), %rdi
    xorl %ebp, %ebp
    call ap_rust_entry
1:  cli
    hlt
    jmp 1b
