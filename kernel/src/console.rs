//! The kernel console on COM1 and leveled logging.
//!
//! Every line carries the time since boot (once the clock is calibrated),
//! the CPU and the level. Fault and panic reports use
//! [`emergency_write`], which takes the console lock only if it can get it
//! quickly: a CPU that faulted while holding the lock must still be heard.

use crate::sync::IrqLock;
use capos_arch::serial::{Uart, COM1};
use capos_kcore::cmdline::LogLevel;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

static UART: IrqLock<Uart> = IrqLock::new(Uart::new(COM1));
static MAX_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

/// Programs the UART. Safe to call more than once.
pub fn init() {
    UART.lock().init();
}

/// Sets the most verbose level that is printed.
pub fn set_level(level: LogLevel) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// True if messages at `level` are printed.
pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    }
}

fn write_prefix(w: &mut impl Write, level: Option<LogLevel>) -> fmt::Result {
    match crate::time::uptime_ns() {
        Some(ns) => write!(
            w,
            "[{:4}.{:06}] ",
            ns / 1_000_000_000,
            (ns / 1_000) % 1_000_000
        )?,
        None => w.write_str("[   ?.??????] ")?,
    }
    match capos_arch::percpu::cpu_index() {
        Some(cpu) => write!(w, "cpu{cpu} ")?,
        None => w.write_str("cpu? ")?,
    }
    if let Some(level) = level {
        write!(w, "{}: ", level_name(level))?;
    }
    Ok(())
}

/// Prints one log line at `level` (use the `error!`..`trace!` macros).
pub fn log(level: LogLevel, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut uart = UART.lock();
    let _ = write_prefix(&mut *uart, Some(level));
    let _ = uart.write_fmt(args);
    uart.write_str("\n");
}

/// Prints raw text with no prefix (markers and reports built line by line).
pub fn print(args: fmt::Arguments<'_>) {
    let _ = UART.lock().write_fmt(args);
}

/// Writes raw bytes (process console output), turning `\n` into `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    write_parts(&[bytes]);
}

/// Writes `parts` one after another under one hold of the console lock, so
/// a line written by one CPU is never split by another CPU's output.
pub fn write_parts(parts: &[&[u8]]) {
    let mut uart = UART.lock();
    for &b in parts.iter().flat_map(|p| p.iter()) {
        if b == b'\n' {
            uart.write_byte(b'\r');
        }
        uart.write_byte(b);
    }
}

/// Writes `parts` exactly as given (no line-break translation) under one
/// hold of the console lock: the terminal's output when it shares COM1.
pub fn write_raw(parts: &[&[u8]]) {
    let mut uart = UART.lock();
    for &b in parts.iter().flat_map(|p| p.iter()) {
        uart.write_byte(b);
    }
}

/// Writes from a fault or panic path: takes the console lock if it frees up
/// soon, otherwise writes around it (output may interleave, but is never lost
/// to a deadlock).
pub fn emergency_write(args: fmt::Arguments<'_>) {
    if let Some(mut uart) = UART.try_lock_for(1_000_000) {
        let _ = uart.write_fmt(args);
        return;
    }
    let mut raw = Uart::new(COM1);
    let _ = raw.write_fmt(args);
}

/// Logs at error level.
#[macro_export]
macro_rules! error { ($($a:tt)*) => { $crate::console::log(capos_kcore::cmdline::LogLevel::Error, format_args!($($a)*)) } }
/// Logs at warn level.
#[macro_export]
macro_rules! warn { ($($a:tt)*) => { $crate::console::log(capos_kcore::cmdline::LogLevel::Warn, format_args!($($a)*)) } }
/// Logs at info level.
#[macro_export]
macro_rules! info { ($($a:tt)*) => { $crate::console::log(capos_kcore::cmdline::LogLevel::Info, format_args!($($a)*)) } }
/// Logs at debug level.
#[macro_export]
macro_rules! debug { ($($a:tt)*) => { $crate::console::log(capos_kcore::cmdline::LogLevel::Debug, format_args!($($a)*)) } }
/// Logs at trace level.
#[macro_export]
macro_rules! trace { ($($a:tt)*) => { $crate::console::log(capos_kcore::cmdline::LogLevel::Trace, format_args!($($a)*)) } }
/// Prints text with no prefix.
#[macro_export]
macro_rules! kprint { ($($a:tt)*) => { $crate::console::print(format_args!($($a)*)) } }
