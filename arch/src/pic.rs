//! The legacy 8259 interrupt controllers, which the kernel does not use.
//!
//! Firmware leaves them delivering IRQ 0-7 on vectors 8-15, on top of CPU
//! exceptions (the BIOS timer would arrive as a fake double fault). They are
//! remapped to [`PIC_VECTOR_BASE`]..+16 and fully masked; a spurious IRQ 7
//! or 15 can still arrive there and is ignored.

use x86_64::instructions::port::Port;

/// First vector of the remapped master PIC; the slave follows at +8.
pub const PIC_VECTOR_BASE: u8 = 48;

/// Remaps both PICs above the exception vectors and masks every line.
pub fn remap_and_mask() {
    let mut m_cmd = Port::<u8>::new(0x20);
    let mut m_data = Port::<u8>::new(0x21);
    let mut s_cmd = Port::<u8>::new(0xa0);
    let mut s_data = Port::<u8>::new(0xa1);
    // SAFETY: ports 0x20/0x21/0xa0/0xa1 are the 8259 pair; the standard
    // ICW1-ICW4 sequence only changes where (and whether) they deliver.
    unsafe {
        m_cmd.write(0x11); // ICW1: edge, cascade, ICW4 follows
        s_cmd.write(0x11);
        m_data.write(PIC_VECTOR_BASE); // ICW2: vector offsets
        s_data.write(PIC_VECTOR_BASE + 8);
        m_data.write(0x04); // ICW3: slave on IRQ2
        s_data.write(0x02);
        m_data.write(0x01); // ICW4: 8086 mode
        s_data.write(0x01);
        m_data.write(0xff); // mask everything
        s_data.write(0xff);
    }
}
