/*
 * boot.S: the multiboot2 header and the path from GRUB's 32-bit protected
 * mode to the 64-bit higher-half Rust entry.
 *
 * Machine state GRUB leaves us (multiboot2 spec, i386 machine state):
 *   EAX = 0x36d76289, EBX = physical address of the multiboot2 information,
 *   CS/DS/ES/SS flat 32-bit segments, CR0.PE = 1, CR0.PG = 0, IF = 0,
 *   no usable stack, A20 enabled. The same holds when GRUB runs on UEFI.
 *
 * Machine state we leave for `kernel_entry` (Rust, System V ABI):
 *   long mode, CR0.PG|WP, CR4.PAE, EFER.LME|NXE, CR3 = early_pml4 which
 *   identity-maps physical 0..4 GiB and maps the kernel window
 *   0xffffffff80000000.. onto physical 0..2 GiB and the direct-map window
 *   0xffff800000000000.. onto physical 0..4 GiB (2 MiB pages, RW),
 *   RSP = top of the boot stack in the higher half, EDI = multiboot2 magic,
 *   ESI = multiboot2 information physical address, interrupts off.
 *   The kernel replaces these tables with its own before it does anything else.
 */

    .set KERNEL_OFFSET,   0xffffffff80000000
    .set MB2_HEADER_MAGIC, 0xe85250d6
    .set MB2_BOOT_MAGIC,   0x36d76289
    .set MB2_ARCH_I386,    0
    .set COM1,             0x3f8
    .set VGA_TEXT,         0xb8000
    .set MSR_EFER,         0xc0000080
    .set EFER_LME,         (1 << 8)
    .set EFER_NXE,         (1 << 11)
    .set CR0_PE,           (1 << 0)
    .set CR0_WP,           (1 << 16)
    .set CR0_PG,           (1 << 31)
    .set CR4_PAE,          (1 << 5)
    .set PTE_PRESENT_RW,   0x3
    .set PDE_HUGE_RW,      0x83

/*
 * The multiboot2 header. GRUB looks for it 8-byte aligned within the first
 * 32 KiB of the image; the linker script places this section first.
 */
    .section .multiboot2_header, "a"
    .balign 8
mb2_header_start:
    .long MB2_HEADER_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header_start
    /* The four header words must sum to zero modulo 2^32. */
    .long 0x100000000 - (MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header_start))

    /* Module alignment tag (type 6): modules start on page boundaries. */
    .balign 8
    .word 6, 0
    .long 8

    /* End tag. */
    .balign 8
    .word 0, 0
    .long 8
mb2_header_end:

/* ---------------------------------------------------------------------- */
    .section .boot.text, "ax"
    .code32
    .global _start32
_start32:
    /* Interrupts stay off until the kernel has an IDT. Set a tiny stack. */
    cli
    cld
    movl $boot_stack32_top, %esp

    /* Keep the two values GRUB hands us; CPUID below clobbers EAX..EDX. */
    movl %eax, mb2_saved_magic
    movl %ebx, mb2_saved_info

    call early_serial_init

    cmpl $MB2_BOOT_MAGIC, mb2_saved_magic
    jne .Lno_multiboot

    /* CPUID exists iff EFLAGS.ID (bit 21) can be toggled. */
    pushfl
    popl %eax
    movl %eax, %ecx
    xorl $(1 << 21), %eax
    pushl %eax
    popfl
    pushfl
    popl %eax
    pushl %ecx
    popfl
    cmpl %eax, %ecx
    je .Lno_long_mode

    /* Extended leaf 0x80000001 must exist; its EDX has LM (29) and NX (20). */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb .Lno_long_mode
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 29), %edx
    jz .Lno_long_mode
    testl $(1 << 20), %edx
    jz .Lno_nx

    /*
     * Early page tables. GRUB zero-fills NOLOAD sections, but we clear them
     * anyway so a loader that does not cannot leave stale entries.
     */
    movl $early_tables_start, %edi
    movl $((early_tables_end - early_tables_start) / 4), %ecx
    xorl %eax, %eax
    rep stosl

    /* PML4[0] -> identity PDPT, PML4[256] -> the same PDPT (so the kernel's
     * direct map at 0xffff800000000000 already covers 0..4 GiB), PML4[511]
     * -> kernel-window PDPT. */
    movl $early_pdpt_low, %eax
    orl $PTE_PRESENT_RW, %eax
    movl %eax, early_pml4
    movl %eax, early_pml4 + 256 * 8
    movl $early_pdpt_high, %eax
    orl $PTE_PRESENT_RW, %eax
    movl %eax, early_pml4 + 511 * 8

    /* Identity PDPT[0..4] -> the four page directories: physical 0..4 GiB. */
    movl $early_pd, %eax
    orl $PTE_PRESENT_RW, %eax
    xorl %ecx, %ecx
1:  movl %eax, early_pdpt_low(, %ecx, 8)
    addl $4096, %eax
    incl %ecx
    cmpl $4, %ecx
    jne 1b

    /* Kernel-window PDPT[510], [511] -> PD0, PD1: -2 GiB maps physical 0..2 GiB. */
    movl $early_pd, %eax
    orl $PTE_PRESENT_RW, %eax
    movl %eax, early_pdpt_high + 510 * 8
    addl $4096, %eax
    movl %eax, early_pdpt_high + 511 * 8

    /* 2048 page-directory entries, entry i maps i * 2 MiB with a 2 MiB page. */
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $PDE_HUGE_RW, %eax
    movl %eax, early_pd(, %ecx, 8)
    incl %ecx
    cmpl $2048, %ecx
    jne 2b

    /* PAE on, CR3 -> PML4, EFER.LME|NXE, then paging on: we are in long mode
     * (compatibility submode) as soon as CR0.PG is set. */
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $early_pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $(EFER_LME | EFER_NXE), %eax
    wrmsr
    movl %cr0, %eax
    orl $(CR0_PG | CR0_WP | CR0_PE), %eax
    movl %eax, %cr0

    /* A 64-bit code segment makes the far jump land in 64-bit mode. */
    lgdt early_gdt_ptr
    ljmp $0x08, $long_mode_low

/*
 * Fatal early error: EBX points at a NUL-terminated message. Print it on
 * COM1 (polling) and in white-on-red on the VGA text screen, then halt.
 * On UEFI there may be no VGA text buffer; the write is then harmless.
 */
.Lno_multiboot:
    movl $msg_no_multiboot, %ebx
    jmp early_fail
.Lno_long_mode:
    movl $msg_no_long_mode, %ebx
    jmp early_fail
.Lno_nx:
    movl $msg_no_nx, %ebx
    jmp early_fail

early_fail:
    movl $VGA_TEXT, %edi
1:  movb (%ebx), %al
    testb %al, %al
    jz 3f
    movb %al, %ah
    movw $(COM1 + 5), %dx          /* line status: wait for THR empty */
2:  inb %dx, %al
    testb $0x20, %al
    jz 2b
    movb %ah, %al
    movw $COM1, %dx
    outb %al, %dx
    cmpb $0x0a, %al                 /* newlines are for serial only */
    je 4f
    cmpb $0x0d, %al
    je 4f
    movb $0x4f, %ah                 /* white on red */
    movw %ax, (%edi)
    addl $2, %edi
4:  incl %ebx
    jmp 1b
3:  cli
    hlt
    jmp 3b

/* COM1 at 115200 8N1, FIFO on, interrupts off (the kernel polls). */
early_serial_init:
    movw $(COM1 + 1), %dx
    xorb %al, %al
    outb %al, %dx                   /* IER = 0 */
    movw $(COM1 + 3), %dx
    movb $0x80, %al
    outb %al, %dx                   /* DLAB = 1 */
    movw $COM1, %dx
    movb $1, %al
    outb %al, %dx                   /* divisor low = 1 -> 115200 baud */
    movw $(COM1 + 1), %dx
    xorb %al, %al
    outb %al, %dx                   /* divisor high = 0 */
    movw $(COM1 + 3), %dx
    movb $0x03, %al
    outb %al, %dx                   /* 8 data bits, no parity, 1 stop, DLAB = 0 */
    movw $(COM1 + 2), %dx
    movb $0xc7, %al
    outb %al, %dx                   /* FIFO on, cleared, 14-byte threshold */
    movw $(COM1 + 4), %dx
    movb $0x03, %al
    outb %al, %dx                   /* DTR + RTS */
    ret

/* ---------------------------------------------------------------------- */
    .code64
long_mode_low:
    /* Still executing at the low (identity) address. Flat data segments,
     * then an absolute jump into the kernel window. */
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $higher_half_entry, %rax
    jmp *%rax

/* ---------------------------------------------------------------------- */
    .section .boot.data, "aw"
    .balign 8
early_gdt:
    .quad 0                         /* null */
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10: data, DPL 0 */
early_gdt_end:
early_gdt_ptr:
    .word early_gdt_end - early_gdt - 1
    .long early_gdt

    .balign 4
mb2_saved_magic:
    .long 0
mb2_saved_info:
    .long 0

msg_no_multiboot:
    .asciz "capOS: boot halted: not started by a multiboot2 loader (bad magic in EAX)\r\n"
msg_no_long_mode:
    .asciz "capOS: boot halted: this CPU does not support 64-bit long mode (CPUID 0x80000001 EDX.LM)\r\n"
msg_no_nx:
    .asciz "capOS: boot halted: this CPU does not support no-execute pages (CPUID 0x80000001 EDX.NX)\r\n"

/* ---------------------------------------------------------------------- */
    .section .boot.bss, "aw", @nobits
    .balign 4096
    .global early_pml4
early_tables_start:
early_pml4:
    .skip 4096
early_pdpt_low:
    .skip 4096
early_pdpt_high:
    .skip 4096
early_pd:
    .skip 4096 * 4
early_tables_end:
boot_stack32:
    .skip 1024
boot_stack32_top:

/* ---------------------------------------------------------------------- */
    .section .text.boot64, "ax"
    .code64
higher_half_entry:
    /* Now running in the kernel window. Switch to the higher-half boot stack
     * (the linker script puts an unmapped guard page below it), clear the
     * frame pointer so backtraces stop here, and enter Rust. The saved
     * multiboot2 words are at low addresses, still identity-mapped. */
    movabsq $__boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl mb2_saved_magic, %edi
    movl mb2_saved_info, %esi
    call kernel_entry
1:  cli
    hlt
    jmp 1b
