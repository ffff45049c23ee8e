/*
 * ap_trampoline.S: the 16-bit real-mode entry of an application processor.
 *
 * The BSP copies the bytes between ap_trampoline_start and ap_trampoline_end
 * to a free page below 1 MiB (chosen at boot: 0x8000 unless a boot module or
 * the firmware uses it; see capos_kcore::memmap::trampoline_page) and sends
 * INIT-SIPI-SIPI with that page's number as the vector, so the AP starts here
 * in real mode with CS = page >> 4, IP = 0, interrupts off, paging off.
 *
 * The code runs at whatever page it was copied to: in real mode it reads its
 * own base from CS and patches the three linear addresses it needs (the GDT
 * base and the two far-jump targets) into its copy; after that every access
 * is relative to EBX, the page's linear address.
 *
 * It goes real mode -> 32-bit protected mode -> long mode on the early boot
 * page tables (early_pml4, below 4 GiB, which identity-map 0..4 GiB and so
 * this page, and map the kernel window), then jumps to ap_entry64 in the
 * kernel window. That stub switches to the kernel's own page tables and the
 * AP's own stack, both published by the BSP in the AP_BOOT_* words, and
 * calls ap_rust_entry.
 */

    .set MSR_EFER,  0xc0000080
    .set EFER_LME,  (1 << 8)
    .set EFER_NXE,  (1 << 11)
    .set CR4_PAE,   (1 << 5)
    .set CR0_PE,    (1 << 0)
    .set CR0_WP,    (1 << 16)
    .set CR0_PG,    (1 << 31)
    /* Offset of a trampoline label from the start of the page. */
    .set OFF_GDT,       tramp_gdt - ap_trampoline_start
    .set OFF_GDT_PTR,   tramp_gdt_ptr - ap_trampoline_start
    .set OFF_32,        tramp32 - ap_trampoline_start
    .set OFF_64,        tramp64 - ap_trampoline_start
    .set OFF_FAR32,     tramp_far32 - ap_trampoline_start
    .set OFF_FAR64,     tramp_far64 - ap_trampoline_start
    .set OFF_CR3,       tramp_cr3 - ap_trampoline_start
    .set OFF_ENTRY,     tramp_entry - ap_trampoline_start


    .section .rodata.ap_trampoline, "a"
    .global ap_trampoline_start
    .global ap_trampoline_end
    .code16
ap_trampoline_start:
    /* Real mode. DS = CS addresses this page from offset 0; EBX = its
     * linear (= physical) base, CS * 16. */
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    movzwl %ax, %ebx
    shll $4, %ebx

    /* Patch the linear addresses into this copy: the GDT base in the GDT
     * pointer, and the 32-bit offsets of the two far jumps' targets. Every
     * AP writes the same values, so a second AP (or a repeated SIPI) finds
     * them already right. */
    leal OFF_GDT(%ebx), %eax
    movl %eax, OFF_GDT_PTR + 2
    leal OFF_32(%ebx), %eax
    movl %eax, OFF_FAR32
    leal OFF_64(%ebx), %eax
    movl %eax, OFF_FAR64

    /* Load the GDT and enter 32-bit protected mode through an indirect far
     * jump (m16:32: offset, then selector 0x08). */
    lgdtl OFF_GDT_PTR
    movl %cr0, %eax
    orl $CR0_PE, %eax
    movl %eax, %cr0
    ljmpl *OFF_FAR32

    .code32
tramp32:
    /* Protected mode, flat segments; EBX still holds the page's base. Same
     * long-mode recipe as the BSP. */
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl OFF_CR3(%ebx), %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $(EFER_LME | EFER_NXE), %eax
    wrmsr
    movl %cr0, %eax
    orl $(CR0_PG | CR0_WP), %eax
    movl %eax, %cr0
    /* Compatibility mode now; the far jump to selector 0x18 enters 64-bit
     * mode at the identity address of tramp64. */
    ljmpl *OFF_FAR64(%ebx)

    .code64
tramp64:
    /* 64-bit mode at the identity address. The upper half of RBX is
     * undefined after the mode switch: zero-extend EBX before using it.
     * Then jump into the kernel window. */
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %ebx, %ebx
    movq OFF_ENTRY(%rbx), %rax
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
    .long 0                         /* linear base of tramp_gdt: patched */
    .balign 4
tramp_far32:
    .long 0                         /* linear address of tramp32: patched */
    .word 0x08
    .balign 4
tramp_far64:
    .long 0                         /* linear address of tramp64: patched */
    .word 0x18
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
