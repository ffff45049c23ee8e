//! The terminal's input side, free of hardware: bytes from a serial line are
//! decoded into keys ([`KeyDecoder`]: escape sequences for the arrows and
//! their kin, UTF-8 kept whole, both even when their bytes arrive in
//! different interrupts), and a line discipline ([`LineEditor`]) turns keys
//! into a line, producing the echo to write back as it goes. The kernel's
//! terminal feeds it; nothing here allocates.
//!
//! Line discipline: printable characters are appended (up to the read's
//! bound; the rest of an over-long line is dropped and the line reported
//! truncated), Backspace removes one whole character, Ctrl-U the whole line,
//! Ctrl-C ends the read as interrupted, Ctrl-D on an empty line as end of
//! input, Enter completes it. Other keys (arrows, Tab, other control keys)
//! are ignored in line mode; a line editor in userspace reads keys instead.

/// Longest line a read may ask for, in bytes.
pub const MAX_LINE: usize = 4096;

/// One key as a person typed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// A printable character (never a control character).
    Char(char),
    /// Enter (CR, LF or CR LF).
    Enter,
    /// Backspace (DEL or BS).
    Backspace,
    /// The Delete key (`ESC [ 3 ~`).
    Delete,
    /// Tab.
    Tab,
    /// Escape pressed alone (an ESC not starting a known sequence).
    Escape,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Ctrl and a letter other than those above (Ctrl-C is `Ctrl(b'c')`).
    Ctrl(u8),
}

/// Where the decoder stands between bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC.
    Escape,
    /// Inside `ESC [`: the numeric parameter so far (saturating), and
    /// whether the sequence overflowed its bound (then it is dropped whole).
    Csi {
        param: u16,
        len: u8,
    },
    /// After `ESC O`.
    Ss3,
    /// Inside a UTF-8 sequence: the bytes so far and how many it needs.
    Utf8 {
        bytes: [u8; 4],
        have: u8,
        need: u8,
    },
}

/// The longest `ESC [` sequence kept (parameters and intermediates); a
/// longer one is dropped up to its final byte.
const MAX_CSI: u8 = 16;

/// Decodes a byte stream into [`Key`]s, one byte at a time; a sequence cut
/// between two calls continues in the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDecoder {
    state: State,
    /// The last byte was a CR (a following LF is the same Enter).
    after_cr: bool,
}

impl Default for KeyDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyDecoder {
    /// A decoder at the start of input.
    pub const fn new() -> Self {
        KeyDecoder {
            state: State::Ground,
            after_cr: false,
        }
    }

    /// Forgets any sequence in progress.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Whether a sequence is in progress (its bytes have not made a key).
    pub fn mid_sequence(&self) -> bool {
        self.state != State::Ground
    }

    /// Feeds one byte; calls `key` for each key it completes (at most two: a
    /// malformed sequence may end in a replacement and the key of the byte
    /// that ended it).
    pub fn push(&mut self, byte: u8, key: &mut impl FnMut(Key)) {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.state {
            State::Ground => self.ground(byte, after_cr, key),
            State::Escape => {
                self.state = State::Ground;
                match byte {
                    b'[' => self.state = State::Csi { param: 0, len: 0 },
                    b'O' => self.state = State::Ss3,
                    _ => {
                        key(Key::Escape);
                        self.ground(byte, false, key);
                    }
                }
            }
            State::Ss3 => {
                self.state = State::Ground;
                if let Some(k) = final_key(byte) {
                    key(k);
                } else if !(0x40..=0x7e).contains(&byte) {
                    // Not a final byte: not a sequence after all.
                    self.ground(byte, false, key);
                }
            }
            State::Csi { param, len } => match byte {
                b'0'..=b'9' => {
                    let param = param
                        .saturating_mul(10)
                        .saturating_add(u16::from(byte - b'0'));
                    self.state = State::Csi {
                        param,
                        len: len.saturating_add(1),
                    };
                }
                0x20..=0x3f => {
                    // Separators and intermediates: kept only as length
                    // (modifier parameters are ignored).
                    self.state = State::Csi {
                        param,
                        len: len.saturating_add(1),
                    };
                }
                0x40..=0x7e => {
                    self.state = State::Ground;
                    if len <= MAX_CSI {
                        if let Some(k) = csi_key(param, byte) {
                            key(k);
                        }
                    }
                }
                _ => {
                    // A control byte or a high byte cuts the sequence: it
                    // is dropped and the byte taken as itself.
                    self.state = State::Ground;
                    self.ground(byte, false, key);
                }
            },
            State::Utf8 {
                mut bytes,
                have,
                need,
            } => {
                if byte & 0xc0 == 0x80 {
                    bytes[usize::from(have)] = byte;
                    let have = have + 1;
                    if have == need {
                        self.state = State::Ground;
                        key(utf8_key(&bytes[..usize::from(need)]));
                    } else {
                        self.state = State::Utf8 { bytes, have, need };
                    }
                } else {
                    // Cut short: a replacement character, then the byte.
                    self.state = State::Ground;
                    key(Key::Char(char::REPLACEMENT_CHARACTER));
                    self.ground(byte, false, key);
                }
            }
        }
    }

    fn ground(&mut self, byte: u8, after_cr: bool, key: &mut impl FnMut(Key)) {
        match byte {
            b'\r' => {
                self.after_cr = true;
                key(Key::Enter);
            }
            b'\n' if after_cr => {}
            b'\n' => key(Key::Enter),
            0x7f | 0x08 => key(Key::Backspace),
            b'\t' => key(Key::Tab),
            0x1b => self.state = State::Escape,
            0x01..=0x1a => key(Key::Ctrl(b'a' + byte - 1)),
            // NUL and the other C0 bytes (FS, GS, RS, US) mean nothing here.
            0x00..=0x1f => {}
            0x20..=0x7e => key(Key::Char(char::from(byte))),
            0xc2..=0xdf => self.start_utf8(byte, 2),
            0xe0..=0xef => self.start_utf8(byte, 3),
            0xf0..=0xf4 => self.start_utf8(byte, 4),
            // A stray continuation byte or an impossible lead byte.
            _ => key(Key::Char(char::REPLACEMENT_CHARACTER)),
        }
    }

    fn start_utf8(&mut self, lead: u8, need: u8) {
        let mut bytes = [0; 4];
        bytes[0] = lead;
        self.state = State::Utf8 {
            bytes,
            have: 1,
            need,
        };
    }
}

/// The key of a complete UTF-8 sequence (a replacement character if it is
/// overlong, a surrogate or out of range, or a control character).
fn utf8_key(bytes: &[u8]) -> Key {
    match core::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.chars().next())
    {
        Some(c) if !c.is_control() => Key::Char(c),
        _ => Key::Char(char::REPLACEMENT_CHARACTER),
    }
}

/// The key of an `ESC O` final byte (or of an `ESC [` one without a
/// parameter).
fn final_key(byte: u8) -> Option<Key> {
    Some(match byte {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        _ => return None,
    })
}

/// The key of `ESC [ param final`.
fn csi_key(param: u16, byte: u8) -> Option<Key> {
    match byte {
        b'~' => match param {
            1 | 7 => Some(Key::Home),
            3 => Some(Key::Delete),
            4 | 8 => Some(Key::End),
            _ => None,
        },
        _ => final_key(byte),
    }
}

/// Whether a read's typing is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoMode {
    /// Characters are echoed as typed.
    Visible,
    /// Nothing but the final line break is echoed (passwords).
    Hidden,
}

/// How a line read ended (the values are the schema's `LineStatus`
/// ordinals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum LineStatus {
    /// A whole line (without its terminator).
    Complete = 0,
    /// Enter ended a line longer than the bound; the excess was dropped.
    Truncated = 1,
    /// Ctrl-D on an empty line.
    EndOfInput = 2,
    /// Ctrl-C: the line was thrown away.
    Interrupted = 3,
    /// The read was cancelled before a line ended (never produced by the
    /// editor itself).
    Cancelled = 4,
}

/// One line being typed.
#[derive(Clone, Debug)]
pub struct LineEditor {
    buf: [u8; MAX_LINE],
    len: usize,
    max: usize,
    truncated: bool,
    echo: EchoMode,
}

impl LineEditor {
    /// An empty line of at most `max` bytes (at most [`MAX_LINE`]).
    pub const fn new(max: usize, echo: EchoMode) -> Self {
        LineEditor {
            buf: [0; MAX_LINE],
            len: 0,
            max: if max < MAX_LINE { max } else { MAX_LINE },
            truncated: false,
            echo,
        }
    }

    /// Starts a new line with a new bound and echo, forgetting the old one.
    pub fn restart(&mut self, max: usize, echo: EchoMode) {
        self.len = 0;
        self.max = max.min(MAX_LINE);
        self.truncated = false;
        self.echo = echo;
    }

    /// The line so far.
    pub fn line(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Takes `key`; `echo` receives what to write back to the terminal.
    /// Returns how the line ended, if it did (the line stays readable through
    /// [`LineEditor::line`] until the next [`LineEditor::restart`]).
    pub fn key(&mut self, key: Key, echo: &mut impl FnMut(&[u8])) -> Option<LineStatus> {
        let visible = self.echo == EchoMode::Visible;
        match key {
            Key::Char(c) => {
                let mut utf8 = [0; 4];
                let bytes = c.encode_utf8(&mut utf8).as_bytes();
                // Once a character did not fit, the rest of the line is
                // dropped: a line is never missing a piece in the middle.
                if !self.truncated && self.len + bytes.len() <= self.max {
                    self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
                    self.len += bytes.len();
                    if visible {
                        echo(bytes);
                    }
                } else {
                    self.truncated = true;
                }
                None
            }
            Key::Backspace => {
                if let Some(at) = self.last_char_start() {
                    self.len = at;
                    if visible {
                        echo(b"\x08 \x08");
                    }
                }
                None
            }
            Key::Ctrl(b'u') => {
                while let Some(at) = self.last_char_start() {
                    self.len = at;
                    if visible {
                        echo(b"\x08 \x08");
                    }
                }
                None
            }
            Key::Ctrl(b'c') => {
                self.len = 0;
                echo(b"^C\r\n");
                Some(LineStatus::Interrupted)
            }
            Key::Ctrl(b'd') if self.len == 0 && !self.truncated => Some(LineStatus::EndOfInput),
            Key::Enter => {
                echo(b"\r\n");
                Some(if self.truncated {
                    LineStatus::Truncated
                } else {
                    LineStatus::Complete
                })
            }
            _ => None,
        }
    }

    /// Where the last whole character of the line starts.
    fn last_char_start(&self) -> Option<usize> {
        let mut at = self.len.checked_sub(1)?;
        while at > 0 && self.buf[at] & 0xc0 == 0x80 {
            at -= 1;
        }
        Some(at)
    }
}

/// Bytes of the fixed part of a `readLine` result message (see
/// [`line_result_header`]).
pub const LINE_RESULT_HEADER: usize = 32;

/// The Cap'n Proto framing of a `TerminalSession.readLine` result
/// (`(status :LineStatus, line :Data)`) whose line is `len` bytes: a
/// single-segment message of the returned header, then the line, then zero
/// padding to a whole word (`line_result_len(len) - 32 - len` bytes). Built
/// without allocating, so a read can complete from an interrupt.
pub fn line_result_header(status: u16, len: usize) -> [u8; LINE_RESULT_HEADER] {
    let data_words = len.div_ceil(8);
    // Root pointer, one data word, one pointer word, the line's words.
    let segment_words = (3 + data_words) as u32;
    let mut h = [0u8; LINE_RESULT_HEADER];
    // Segment table: one segment (count - 1 = 0), its size in words.
    h[4..8].copy_from_slice(&segment_words.to_le_bytes());
    // Root: struct pointer, offset 0, one data word, one pointer.
    let root: u64 = (1u64 << 32) | (1u64 << 48);
    h[8..16].copy_from_slice(&root.to_le_bytes());
    // Data word: `status` at bits 0-15.
    h[16..18].copy_from_slice(&status.to_le_bytes());
    // Pointer 0: a list of bytes right after this word (offset 0),
    // element size 2 (one byte), `len` elements.
    let list: u64 = 1 | (2u64 << 32) | ((len as u64) << 35);
    h[24..32].copy_from_slice(&list.to_le_bytes());
    h
}

/// Total bytes of a `readLine` result whose line is `len` bytes.
pub const fn line_result_len(len: usize) -> usize {
    LINE_RESULT_HEADER + len.div_ceil(8) * 8
}

/// The `TerminalSession.Key` union of `key`: its tag (`char` 0, `named` 1,
/// `ctrl` 2) and value (`NamedKey` ordinals in schema order).
pub fn key_union(key: Key) -> (u16, u32) {
    let named = |n: u32| (1, n);
    match key {
        Key::Char(c) => (0, u32::from(c)),
        Key::Enter => named(0),
        Key::Backspace => named(1),
        Key::Delete => named(2),
        Key::Tab => named(3),
        Key::Escape => named(4),
        Key::Up => named(5),
        Key::Down => named(6),
        Key::Left => named(7),
        Key::Right => named(8),
        Key::Home => named(9),
        Key::End => named(10),
        Key::Ctrl(letter) => (2, u32::from(letter)),
    }
}

/// Bytes of a `TerminalSession.readKey` result message.
pub const KEY_RESULT_LEN: usize = 32;

/// The whole `readKey` result (`(key :Key)`) for `key`: a single-segment
/// message of three words (the root struct with one pointer, the `Key`
/// struct it points to, one data word holding the union's value in bits
/// 0-31 and its tag in bits 32-47). Built without allocating.
pub fn key_result(key: Key) -> [u8; KEY_RESULT_LEN] {
    let (tag, value) = key_union(key);
    let mut m = [0u8; KEY_RESULT_LEN];
    m[4..8].copy_from_slice(&3u32.to_le_bytes());
    // Root: struct pointer, offset 0, no data, one pointer.
    m[8..16].copy_from_slice(&(1u64 << 48).to_le_bytes());
    // Pointer 0: struct pointer to the next word, one data word.
    m[16..24].copy_from_slice(&(1u64 << 32).to_le_bytes());
    let word = u64::from(value) | (u64::from(tag) << 32);
    m[24..32].copy_from_slice(&word.to_le_bytes());
    m
}

/// Most keys one `readKeys` answers.
pub const MAX_KEYS: usize = 128;

/// Bytes of a `readKeys` result with `n` keys.
pub const fn keys_result_len(n: usize) -> usize {
    32 + 8 * n
}

/// Writes the whole `readKeys` result (`(keys :List(Key))`) for `keys`
/// into `out` (at least [`keys_result_len`] bytes); returns its length. A
/// single-segment message: the root struct with one pointer, a composite
/// list pointer to the `Key` structs (its tag word counting them, one data
/// word and no pointers each), then one word per key as in [`key_result`].
/// Built without allocating.
pub fn keys_result(keys: &[Key], out: &mut [u8]) -> usize {
    let n = keys.len().min(MAX_KEYS);
    let len = keys_result_len(n);
    let out = &mut out[..len];
    out.fill(0);
    let segment_words = (3 + n) as u32;
    out[4..8].copy_from_slice(&segment_words.to_le_bytes());
    // Root: struct pointer, offset 0, no data, one pointer.
    out[8..16].copy_from_slice(&(1u64 << 48).to_le_bytes());
    // Pointer 0: list pointer to the next word, element size 7 (composite),
    // `n` words of elements after the tag.
    let list: u64 = 1 | (7u64 << 32) | ((n as u64) << 35);
    out[16..24].copy_from_slice(&list.to_le_bytes());
    // Tag: a struct pointer whose offset field counts the elements; each
    // one data word, no pointers.
    let tag: u64 = ((n as u64) << 2) | (1u64 << 32);
    out[24..32].copy_from_slice(&tag.to_le_bytes());
    for (i, key) in keys[..n].iter().enumerate() {
        let (tag, value) = key_union(*key);
        let word = u64::from(value) | (u64::from(tag) << 32);
        out[32 + 8 * i..40 + 8 * i].copy_from_slice(&word.to_le_bytes());
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut d = KeyDecoder::new();
        let mut out = Vec::new();
        for &b in bytes {
            d.push(b, &mut |k| out.push(k));
        }
        out
    }

    #[test]
    fn plain_text_and_enter() {
        assert_eq!(
            keys(b"hi\r\n"),
            [Key::Char('h'), Key::Char('i'), Key::Enter]
        );
        assert_eq!(
            keys(b"a\nb\r\r"),
            [
                Key::Char('a'),
                Key::Enter,
                Key::Char('b'),
                Key::Enter,
                Key::Enter
            ]
        );
    }

    #[test]
    fn arrows_and_friends() {
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1b[H\x1b[F\x1b[3~\x1bOA\x1b[1~\x1b[4~"),
            [
                Key::Up,
                Key::Down,
                Key::Right,
                Key::Left,
                Key::Home,
                Key::End,
                Key::Delete,
                Key::Up,
                Key::Home,
                Key::End
            ]
        );
        // Modifier parameters are ignored, unknown finals dropped.
        assert_eq!(keys(b"\x1b[1;5C\x1b[Zx"), [Key::Right, Key::Char('x')]);
    }

    #[test]
    fn split_sequences_continue() {
        let mut d = KeyDecoder::new();
        let mut out = Vec::new();
        for chunk in [&b"\x1b"[..], b"[", b"A\xe2", b"\x82", b"\xac!"] {
            for &b in chunk {
                d.push(b, &mut |k| out.push(k));
            }
        }
        assert_eq!(out, [Key::Up, Key::Char('€'), Key::Char('!')]);
        assert!(!d.mid_sequence());
    }

    #[test]
    fn garbage_never_panics_and_resyncs() {
        assert_eq!(
            keys(b"\xe2\x82x\xffy\x1bz"),
            [
                Key::Char(char::REPLACEMENT_CHARACTER),
                Key::Char('x'),
                Key::Char(char::REPLACEMENT_CHARACTER),
                Key::Char('y'),
                Key::Escape,
                Key::Char('z')
            ]
        );
        // An overlong encoding and a surrogate are replaced.
        assert_eq!(
            keys(b"\xe0\x80\xaf\xed\xa0\x80"),
            [
                Key::Char(char::REPLACEMENT_CHARACTER),
                Key::Char(char::REPLACEMENT_CHARACTER)
            ]
        );
        assert!(keys(&[0u8; 64]).is_empty());
        // A runaway escape sequence is dropped up to its final byte.
        let mut long = b"\x1b[".to_vec();
        long.extend(std::iter::repeat_n(b'1', 100));
        long.extend(b"Aq");
        assert_eq!(keys(&long), [Key::Char('q')]);
    }

    fn type_line(editor: &mut LineEditor, bytes: &[u8]) -> (Option<LineStatus>, Vec<u8>) {
        let mut d = KeyDecoder::new();
        let mut echo = Vec::new();
        let mut done = None;
        for &b in bytes {
            let mut ks = Vec::new();
            d.push(b, &mut |k| ks.push(k));
            for k in ks {
                if done.is_none() {
                    done = editor.key(k, &mut |e| echo.extend_from_slice(e));
                }
            }
        }
        (done, echo)
    }

    #[test]
    fn line_editing() {
        let mut e = LineEditor::new(64, EchoMode::Visible);
        let (done, echo) = type_line(&mut e, "ab€\x7fc\r".as_bytes());
        assert_eq!(done, Some(LineStatus::Complete));
        assert_eq!(e.line(), b"abc");
        assert_eq!(echo, "ab€\x08 \x08c\r\n".as_bytes());

        e.restart(64, EchoMode::Visible);
        let (done, _) = type_line(&mut e, b"junk\x15ok\r");
        assert_eq!((done, e.line()), (Some(LineStatus::Complete), &b"ok"[..]));

        e.restart(64, EchoMode::Hidden);
        let (done, echo) = type_line(&mut e, b"secret\r");
        assert_eq!(
            (done, e.line()),
            (Some(LineStatus::Complete), &b"secret"[..])
        );
        assert_eq!(echo, b"\r\n");

        e.restart(64, EchoMode::Visible);
        assert_eq!(type_line(&mut e, b"x\x03").0, Some(LineStatus::Interrupted));
        e.restart(64, EchoMode::Visible);
        assert_eq!(type_line(&mut e, b"x\x04").0, None, "Ctrl-D mid-line");
        e.restart(64, EchoMode::Visible);
        assert_eq!(type_line(&mut e, b"\x04").0, Some(LineStatus::EndOfInput));
    }

    #[test]
    fn bounded_lines_truncate_on_whole_characters() {
        let mut e = LineEditor::new(4, EchoMode::Visible);
        let (done, _) = type_line(&mut e, "abc€def\r".as_bytes());
        assert_eq!(done, Some(LineStatus::Truncated));
        assert_eq!(e.line(), b"abc");
        let mut e = LineEditor::new(1_000_000, EchoMode::Hidden);
        let long = vec![b'x'; 100_000];
        let (done, echo) = type_line(&mut e, &[&long[..], b"\r"].concat());
        assert_eq!(done, Some(LineStatus::Truncated));
        assert_eq!(e.line().len(), MAX_LINE);
        assert_eq!(echo, b"\r\n");
    }

    #[test]
    fn result_framing_sizes() {
        assert_eq!(line_result_len(0), 32);
        assert_eq!(line_result_len(1), 40);
        assert_eq!(line_result_len(8), 40);
        let h = line_result_header(1, 9);
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 5);
    }
}
