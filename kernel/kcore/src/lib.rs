//! Host-testable kernel core logic: frame allocator, ACPI/MADT parsing, boot checks
#![cfg_attr(not(test), no_std)]
