//! The terminal: one serial line (COM2 by default, or COM1 beside the kernel
//! log, as the manifest's `kernel.terminal` says) whose input arrives by
//! interrupt, read a line or a key at a time through the `TerminalSession`
//! capability (`objects::terminal`).
//!
//! Input: the UART's receive interrupt, routed through the I/O APIC to the
//! boot CPU ([`crate::irq`]), drains the UART's FIFO. Each byte goes to the
//! read that is waiting, if any, through the key decoder and (for a line
//! read) the line discipline of `capos_kcore::term`, which echo as they go;
//! a read completes from the interrupt, writing its result into the
//! reader's buffer. With no read waiting, bytes wait in a bounded
//! type-ahead buffer (the excess is dropped and counted) and are decoded
//! and echoed when a read takes them, so a hidden read never echoes what
//! was typed ahead of it. Ctrl-\ is the kernel's dump key and never reaches
//! a reader. Without an I/O APIC the boot CPU's timer tick polls the line.
//!
//! One session at a time: the kernel mints a `TerminalSession` only while
//! no other exists, and it only moves. One read at a time. When a read is
//! cancelled (`cancelRead`, the session moved away or released, its caller
//! gone), everything typed and not yet read is thrown away.
//!
//! Lock order: the input state, then the reader's address space and ring
//! (to complete a read), then the line's output.

use crate::objects::{Call, Completion, Outcome};
use crate::ring::{ParkKey, Queue, WaitQueue};
use crate::sync::IrqLock;
use alloc::sync::{Arc, Weak};
use capos_arch::serial::{Uart, COM1, COM1_IRQ, COM2, COM2_IRQ};
use capos_caps::exception::CapException;
use capos_caps::manifest::SerialPort;
use capos_kcore::term::{self, EchoMode, Key, KeyDecoder, LineEditor, LineStatus, MAX_LINE};
use capos_ring::{Cqe, TransportError};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bytes typed while no read waits that are kept for the next read.
const TYPEAHEAD: usize = 4096;
/// Bytes written to the line per hold of its (interrupt-masking) lock.
const OUTPUT_PIECE: usize = 64;
/// Bytes taken from the UART per interrupt at most (its FIFO holds 16).
const MAX_BYTES_PER_INTERRUPT: usize = 64;

/// What the pending read waits for.
enum Reading {
    Line,
    Key,
    /// Keys, at most this many, at least one.
    Keys(usize),
}

/// The read that waits for input.
struct Pending {
    completion: Completion,
    reading: Reading,
}

/// Everything the input side keeps.
struct Input {
    typeahead: [u8; TYPEAHEAD],
    /// Index of the oldest type-ahead byte.
    start: usize,
    /// Type-ahead bytes kept.
    len: usize,
    /// A key decoded but not taken (a byte that ended a malformed sequence
    /// yields two keys; a read may complete on the first).
    leftover: Option<Key>,
    decoder: KeyDecoder,
    editor: LineEditor,
    pending: Option<Pending>,
    /// Keys gathered for a pending `readKeys`.
    keys: [Key; term::MAX_KEYS],
    gathered: usize,
    /// Where a `readKeys` result is framed.
    keys_message: [u8; term::keys_result_len(term::MAX_KEYS)],
}

impl Input {
    /// Throws away everything typed and not yet read.
    fn scrub(&mut self) {
        self.start = 0;
        self.len = 0;
        self.gathered = 0;
        self.leftover = None;
        self.decoder.reset();
        self.editor.restart(0, EchoMode::Hidden);
    }

    fn push_typeahead(&mut self, byte: u8) -> bool {
        if self.len == TYPEAHEAD {
            return false;
        }
        self.typeahead[(self.start + self.len) % TYPEAHEAD] = byte;
        self.len += 1;
        true
    }

    fn pop_typeahead(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.typeahead[self.start];
        self.start = (self.start + 1) % TYPEAHEAD;
        self.len -= 1;
        Some(byte)
    }
}

/// The terminal device.
pub struct Terminal {
    port: SerialPort,
    input: IrqLock<Input>,
    /// COM2's transmitter (COM1's belongs to the console).
    output: IrqLock<Uart>,
    /// A `TerminalSession` exists.
    held: AtomicBool,
    /// Input bytes dropped because the type-ahead buffer was full.
    dropped: AtomicU64,
    me: Weak<Terminal>,
}

static TERMINAL: spin::Once<Arc<Terminal>> = spin::Once::new();

/// For `make bench` (debug-level lines): when the last burst of input
/// arrived (TSC), and how many writes to the line followed it.
static INPUT_AT: AtomicU64 = AtomicU64::new(0);
static WRITES_AFTER_INPUT: AtomicU64 = AtomicU64::new(0);
/// The delays of the first three writes after the last input (TSC).
static WRITE_DELAYS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
/// The line is polled from the boot CPU's tick (no interrupt routing).
static POLLED: AtomicBool = AtomicBool::new(false);

/// The I/O base and ISA line of `port`.
fn wiring(port: SerialPort) -> (u16, u8) {
    match port {
        SerialPort::Com1 => (COM1, COM1_IRQ),
        SerialPort::Com2 => (COM2, COM2_IRQ),
    }
}

/// Names `port` for the log.
fn port_name(port: SerialPort) -> &'static str {
    match port {
        SerialPort::Com1 => "COM1",
        SerialPort::Com2 => "COM2",
    }
}

/// Sets the terminal up on `port` (once, at boot, from the manifest): the
/// UART programmed, its receive interrupt routed and enabled. A port with
/// no UART behind it leaves the system without a terminal (minting one
/// then fails, saying so).
pub fn configure(port: SerialPort) {
    let (base, irq) = wiring(port);
    let mut uart = Uart::new(base);
    if !uart.present() {
        crate::info!(
            "terminal: no UART at {} ({base:#x}); terminal capabilities are refused",
            port_name(port)
        );
        return;
    }
    if port != SerialPort::Com1 {
        uart.init();
    }
    let terminal = TERMINAL.call_once(|| {
        Arc::new_cyclic(|me| Terminal {
            port,
            input: IrqLock::new(Input {
                typeahead: [0; TYPEAHEAD],
                start: 0,
                len: 0,
                leftover: None,
                decoder: KeyDecoder::new(),
                editor: LineEditor::new(0, EchoMode::Hidden),
                pending: None,
                keys: [Key::Enter; term::MAX_KEYS],
                gathered: 0,
                keys_message: [0; term::keys_result_len(term::MAX_KEYS)],
            }),
            output: IrqLock::new(Uart::new(base)),
            held: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            me: me.clone(),
        })
    });
    match crate::irq::route_isa(irq, on_interrupt) {
        Ok(vector) => {
            uart.enable_receive_interrupt();
            crate::info!(
                "terminal: {} ({base:#x}), input by interrupt (ISA IRQ {irq}, vector {vector})",
                port_name(port)
            );
        }
        Err(e) => {
            POLLED.store(true, Ordering::Release);
            crate::info!(
                "terminal: {} ({base:#x}), input polled from the timer tick ({e})",
                port_name(port)
            );
        }
    }
    // Whatever arrived before the interrupt was enabled.
    terminal.receive();
}

/// Whether the terminal reads COM1 (the dump key's polling must then leave
/// the line alone).
pub fn reads_com1() -> bool {
    TERMINAL.get().is_some_and(|t| t.port == SerialPort::Com1)
}

/// The receive interrupt's handler.
fn on_interrupt() {
    if let Some(t) = TERMINAL.get() {
        t.receive();
    }
}

/// Called from the boot CPU's timer tick: reads the line if it is polled.
pub fn on_tick() {
    if POLLED.load(Ordering::Acquire) {
        on_interrupt();
    }
}

/// A new session on the terminal, unless one exists.
pub fn open_session() -> Result<Arc<Terminal>, &'static str> {
    let t = TERMINAL.get().ok_or("no terminal is configured")?;
    if t.held.swap(true, Ordering::AcqRel) {
        return Err("the terminal is held by another session");
    }
    Ok(t.clone())
}

impl Terminal {
    /// Takes what the UART has received into the type-ahead buffer, then
    /// gives it to the pending read, if any (so a key read answers every
    /// key of the burst at once).
    fn receive(&self) {
        let (base, _) = wiring(self.port);
        let mut uart = Uart::new(base);
        let arrived = capos_arch::cpu::rdtsc();
        let mut input = self.input.lock();
        let before = input.len;
        for _ in 0..MAX_BYTES_PER_INTERRUPT {
            match uart.try_read_byte() {
                Some(crate::dump::DUMP_KEY) => crate::dump::request(),
                Some(byte) => {
                    if !input.push_typeahead(byte) {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => break,
            }
        }
        if input.len != before {
            if crate::console::enabled(capos_kcore::cmdline::LogLevel::Debug) {
                report_writes();
            }
            INPUT_AT.store(arrived, Ordering::Relaxed);
            WRITES_AFTER_INPUT.store(0, Ordering::Relaxed);
        }
        if input.pending.is_some() {
            self.take_typeahead(&mut input);
        }
    }

    /// Decodes `byte` for the pending read.
    fn decode(&self, input: &mut Input, byte: u8) {
        let mut keys = [None; 2];
        let mut n = 0;
        input.decoder.push(byte, &mut |k| {
            keys[n] = Some(k);
            n += 1;
        });
        for key in keys.into_iter().flatten() {
            if input.pending.is_some() {
                self.key(input, key);
            } else {
                input.leftover = Some(key);
            }
        }
    }

    /// Feeds type-ahead to the pending read until it completes or the
    /// type-ahead runs out; a key read that has gathered keys by then
    /// completes with them.
    fn take_typeahead(&self, input: &mut Input) {
        if let Some(key) = input.leftover.take() {
            self.key(input, key);
        }
        while input.pending.is_some() {
            match input.pop_typeahead() {
                Some(byte) => self.decode(input, byte),
                None => break,
            }
        }
        let gathering = matches!(
            input.pending,
            Some(Pending {
                reading: Reading::Keys(_),
                ..
            })
        );
        if gathering && input.gathered > 0 {
            self.complete_keys(input);
        }
    }

    /// Completes the pending `readKeys` with the keys gathered.
    fn complete_keys(&self, input: &mut Input) {
        let Some(Pending { completion, .. }) = input.pending.take() else {
            return;
        };
        let n = core::mem::take(&mut input.gathered);
        let Input {
            keys, keys_message, ..
        } = input;
        let len = term::keys_result(&keys[..n], keys_message);
        finish(completion, &[&keys_message[..len]]);
    }

    /// Gives `key` to the pending read.
    fn key(&self, input: &mut Input, key: Key) {
        let Some(reading) = input.pending.as_ref().map(|p| match p.reading {
            Reading::Line => None,
            Reading::Key => Some(0),
            Reading::Keys(max) => Some(max),
        }) else {
            return;
        };
        match reading {
            // One key, answered at once.
            Some(0) => {
                let result = term::key_result(key);
                self.complete(input, &[&result]);
            }
            Some(max) => {
                let at = input.gathered;
                input.keys[at] = key;
                input.gathered += 1;
                if input.gathered >= max {
                    self.complete_keys(input);
                }
            }
            None => {
                let status = input.editor.key(key, &mut |echo| self.write(echo));
                if let Some(status) = status {
                    self.complete_line(input, status as u16);
                }
            }
        }
    }

    /// Completes the pending line read with `status` and the line so far.
    fn complete_line(&self, input: &mut Input, status: u16) {
        let line_len = input.editor.line().len();
        let header = term::line_result_header(status, line_len);
        let padding = [0u8; 8];
        let pad = term::line_result_len(line_len) - term::LINE_RESULT_HEADER - line_len;
        // The line is read out of the editor by the completion below, under
        // this same lock hold: nothing changes it meanwhile.
        let Some(Pending { completion, .. }) = input.pending.take() else {
            return;
        };
        let line = input.editor.line();
        finish(completion, &[&header, line, &padding[..pad]]);
    }

    /// Completes the pending read with the result message `parts`.
    fn complete(&self, input: &mut Input, parts: &[&[u8]]) {
        if let Some(Pending { completion, .. }) = input.pending.take() {
            finish(completion, parts);
        }
    }

    /// Writes `bytes` to the line as they are. The output lock masks
    /// interrupts (echo is written from the receive
    /// interrupt), so a long write takes it a short piece at a time: at
    /// 115,200 baud a piece is about 5 ms of a real UART, not a whole
    /// 16 KiB message's 1.4 s.
    pub fn write(&self, bytes: &[u8]) {
        note_write();
        for piece in bytes.chunks(OUTPUT_PIECE) {
            match self.port {
                SerialPort::Com1 => crate::console::write_raw(&[piece]),
                SerialPort::Com2 => {
                    let mut uart = self.output.lock();
                    for &b in piece {
                        uart.write_byte(b);
                    }
                }
            }
        }
    }

    fn queue(&self) -> Queue {
        Queue::Object(self.me.clone() as Weak<dyn WaitQueue>)
    }

    /// Starts a read for `cx`: a line of at most `max` bytes (`Some`), or a
    /// key (`None`).
    pub fn read(&self, cx: &mut Call<'_>, read: Read) -> Outcome {
        let (reading, need, line) = match read {
            Read::Line(max, echo) => (
                Reading::Line,
                term::line_result_len(max as usize),
                Some((max, echo)),
            ),
            Read::Key => (Reading::Key, term::KEY_RESULT_LEN, None),
            Read::Keys(max) => (
                Reading::Keys(max.clamp(1, term::MAX_KEYS)),
                term::keys_result_len(max),
                None,
            ),
        };
        if (cx.result_buf.len() as usize) < need {
            return Outcome::Error(TransportError::BufferTooSmall);
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped != 0 {
            crate::info!(
                "terminal: {dropped} typed bytes were dropped (no read took them in time)"
            );
        }
        let mut input = self.input.lock();
        if input.pending.is_some() {
            return Outcome::Exception(CapException::failed(
                "a read is already waiting on this terminal",
            ));
        }
        if let Some((max, echo)) = line {
            input.editor.restart(max as usize, echo);
        }
        input.gathered = 0;
        let (completion, deferred) = cx.sub.defer(self.queue());
        input.pending = Some(Pending {
            completion,
            reading,
        });
        self.take_typeahead(&mut input);
        Outcome::Deferred(deferred)
    }

    /// Ends the pending read as cancelled and throws away unread input;
    /// whether a read was pending.
    pub fn cancel_read(&self) -> bool {
        let gone = {
            let mut input = self.input.lock();
            input.scrub();
            input.pending.take()
        };
        match gone {
            Some(Pending {
                completion,
                reading: Reading::Line,
            }) => {
                let header = term::line_result_header(LineStatus::Cancelled as u16, 0);
                finish(completion, &[&header]);
                true
            }
            // A key read has no status to carry the news: it fails.
            Some(Pending {
                completion,
                reading: Reading::Key | Reading::Keys(_),
            }) => {
                completion.fail(TransportError::Cancelled);
                true
            }
            None => false,
        }
    }

    /// The session went away (released, or moved to another holder): its
    /// read, if any, is cancelled and unread input thrown away. With
    /// `release`, the terminal may be opened again.
    pub fn end_session(&self, release: bool) {
        self.cancel_read();
        if release {
            self.held.store(false, Ordering::Release);
        }
    }
}

impl WaitQueue for Terminal {
    fn cancel(&self, key: ParkKey) {
        let gone = {
            let mut input = self.input.lock();
            if input
                .pending
                .as_ref()
                .is_some_and(|p| p.completion.key() == key)
            {
                input.scrub();
                input.pending.take()
            } else {
                None
            }
        };
        drop(gone);
    }
}

/// Times a write to the line after the last burst of input (TSC delta; in
/// `make bench`'s path-length mode, instructions): the first three are
/// kept (a shell's echo, a call's result, its next prompt) and logged at
/// debug level when the next input arrives ([`report_writes`]), so that
/// logging never falls inside a timed stretch.
fn note_write() {
    if INPUT_AT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let n = WRITES_AFTER_INPUT.fetch_add(1, Ordering::Relaxed) as usize;
    if let Some(slot) = WRITE_DELAYS.get(n) {
        let delay = capos_arch::cpu::rdtsc().saturating_sub(INPUT_AT.load(Ordering::Relaxed));
        slot.store(delay, Ordering::Relaxed);
    }
}

/// Logs (debug level) the writes timed after the previous burst of input.
fn report_writes() {
    let n = WRITES_AFTER_INPUT.load(Ordering::Relaxed) as usize;
    if INPUT_AT.load(Ordering::Relaxed) == 0 || n == 0 {
        return;
    }
    let d = |i: usize| {
        if i < n {
            WRITE_DELAYS[i].load(Ordering::Relaxed)
        } else {
            0
        }
    };
    crate::debug!(
        "terminal: {n} writes after the previous input, the first at +{} +{} +{} TSC",
        d(0),
        d(1),
        d(2)
    );
}

/// Fires `completion` with the result message `parts`, written into the
/// reader's buffer (checked large enough when the read began).
fn finish(completion: Completion, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    completion.finish(false, |thread, user_data, buf| {
        match thread.process.aspace.write(buf, 0, parts) {
            Ok(()) => Cqe::success(user_data, len as u32),
            Err(_) => Cqe::error(user_data, TransportError::BadAddress),
        }
    });
}

/// The longest line a read may ask for.
pub const MAX_READ: u32 = MAX_LINE as u32;

/// What a read waits for.
pub enum Read {
    /// A line of at most this many bytes, echoed so.
    Line(u32, EchoMode),
    /// One key.
    Key,
    /// At least one key, at most this many.
    Keys(usize),
}
