//! The per-CPU idle loop: interrupts on, halt until the next one.

/// Idles this CPU for ever, waking for each interrupt.
pub fn run() -> ! {
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}
