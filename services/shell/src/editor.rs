//! The shell's line editor: keys in (one `TerminalSession.readKey` each),
//! terminal output and finished lines out. Left/Right, Home/End (and
//! Ctrl-A/Ctrl-E), Backspace, Delete, Ctrl-U (erase the line), Ctrl-K
//! (erase to the end), history with Up/Down, Tab completion through a
//! callback, Ctrl-C (give up the line), Ctrl-D on an empty line (end of
//! input).
//!
//! Typing or erasing at the end of the line echoes just that; any other
//! change redraws the line in place: carriage return, the prompt, the text,
//! erase to the end of the screen line, then the cursor moved back to its
//! place. Every character is taken to be one column wide.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Longest line, in characters; keys past it are refused with a bell.
pub const MAX_CHARS: usize = 4096;
/// Lines of history kept.
pub const MAX_HISTORY: usize = 100;

/// One key, as `TerminalSession.readKey` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter.
    Enter,
    /// Backspace.
    Backspace,
    /// Delete.
    Delete,
    /// Tab.
    Tab,
    /// Escape.
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
    /// Ctrl and a lower-case letter.
    Ctrl(u8),
}

/// What a key did to the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// The line goes on.
    Pending,
    /// Enter: the line is finished.
    Line(String),
    /// Ctrl-C: the line was given up.
    Interrupted,
    /// Ctrl-D on an empty line.
    EndOfInput,
}

/// What Tab may complete: the candidates for the word that ends at the
/// cursor, and where that word starts (a character index).
pub struct Completion {
    /// Where the word being completed starts.
    pub start: usize,
    /// Every word that could replace it.
    pub candidates: Vec<String>,
}

/// The line being edited, and the history.
pub struct Editor {
    prompt: String,
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position in the history while browsing it (`history.len()`: the
    /// line being typed).
    browsing: usize,
    /// The line being typed, kept while the history is browsed.
    typed: Vec<char>,
}

impl Default for Editor {
    fn default() -> Self {
        Self::new()
    }
}

impl Editor {
    /// An editor with no history.
    pub fn new() -> Self {
        Editor {
            prompt: String::new(),
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browsing: 0,
            typed: Vec::new(),
        }
    }

    /// Starts a new line after `prompt` (already on the screen); nothing
    /// is written.
    pub fn start(&mut self, prompt: &str) {
        self.prompt = String::from(prompt);
        self.line.clear();
        self.cursor = 0;
        self.browsing = self.history.len();
        self.typed.clear();
    }

    /// The line as it stands.
    pub fn text(&self) -> String {
        self.line.iter().collect()
    }

    /// The cursor, in characters from the start of the line.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The history, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Adds `line` to the history (not an empty line, nor a repeat of the
    /// last one).
    pub fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        if self.history.len() == MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(String::from(line));
    }

    /// Takes `key`; `out` receives what to write to the terminal, and
    /// `complete` answers Tab (given the line and the cursor).
    pub fn key(
        &mut self,
        key: Key,
        out: &mut Vec<u8>,
        complete: &mut dyn FnMut(&str, usize) -> Completion,
    ) -> Edit {
        match key {
            Key::Char(c) => {
                if self.line.len() >= MAX_CHARS {
                    out.push(0x07);
                    return Edit::Pending;
                }
                self.line.insert(self.cursor, c);
                self.cursor += 1;
                if self.cursor == self.line.len() {
                    // Typed at the end: only the character is new.
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    return Edit::Pending;
                }
            }
            Key::Enter => {
                self.cursor = self.line.len();
                self.redraw(out);
                out.extend_from_slice(b"\r\n");
                let line = self.text();
                self.remember(&line);
                return Edit::Line(line);
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
                if self.cursor == self.line.len() {
                    // Erased at the end: step back over one column.
                    out.extend_from_slice(b"\x08 \x08");
                    return Edit::Pending;
                }
            }
            Key::Delete if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::Left if self.cursor > 0 => self.cursor -= 1,
            Key::Right if self.cursor < self.line.len() => self.cursor += 1,
            Key::Home | Key::Ctrl(b'a') => self.cursor = 0,
            Key::End | Key::Ctrl(b'e') => self.cursor = self.line.len(),
            Key::Ctrl(b'u') => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::Ctrl(b'k') => self.line.truncate(self.cursor),
            Key::Up if self.browsing > 0 => {
                if self.browsing == self.history.len() {
                    self.typed = self.line.clone();
                }
                self.browsing -= 1;
                self.show(self.history[self.browsing].chars().collect());
            }
            Key::Down if self.browsing < self.history.len() => {
                self.browsing += 1;
                let next = if self.browsing == self.history.len() {
                    core::mem::take(&mut self.typed)
                } else {
                    self.history[self.browsing].chars().collect()
                };
                self.show(next);
            }
            Key::Tab => self.complete(out, complete),
            Key::Ctrl(b'c') => {
                self.cursor = self.line.len();
                self.redraw(out);
                out.extend_from_slice(b"^C\r\n");
                self.line.clear();
                self.cursor = 0;
                return Edit::Interrupted;
            }
            Key::Ctrl(b'd') if self.line.is_empty() => {
                out.extend_from_slice(b"\r\n");
                return Edit::EndOfInput;
            }
            // Keys that change nothing here.
            _ => return Edit::Pending,
        }
        self.redraw(out);
        Edit::Pending
    }

    fn show(&mut self, line: Vec<char>) {
        self.line = line;
        self.cursor = self.line.len();
    }

    fn complete(&mut self, out: &mut Vec<u8>, complete: &mut dyn FnMut(&str, usize) -> Completion) {
        let text = self.text();
        let Completion { start, candidates } = complete(&text, self.cursor);
        let start = start.min(self.cursor);
        let typed: String = self.line[start..self.cursor].iter().collect();
        let fitting: Vec<&String> = candidates
            .iter()
            .filter(|c| c.starts_with(typed.as_str()))
            .collect();
        let Some(first) = fitting.first() else {
            out.push(0x07);
            return;
        };
        // The longest prefix every candidate shares.
        let mut common: Vec<char> = first.chars().collect();
        for c in &fitting[1..] {
            let n = common
                .iter()
                .zip(c.chars())
                .take_while(|(a, b)| **a == *b)
                .count();
            common.truncate(n);
        }
        let add: Vec<char> = common[typed.chars().count()..].to_vec();
        let unique = fitting.len() == 1;
        for (i, c) in add.iter().enumerate() {
            self.line.insert(self.cursor + i, *c);
        }
        self.cursor += add.len();
        if unique && self.line.get(self.cursor) != Some(&' ') && !first.ends_with(['.', '(']) {
            self.line.insert(self.cursor, ' ');
            self.cursor += 1;
        }
        if !unique && add.is_empty() {
            // Ambiguous and nothing more in common: list them.
            out.extend_from_slice(b"\r\n");
            let mut list = String::new();
            for c in &fitting {
                let _ = write!(list, "{c}  ");
            }
            out.extend_from_slice(list.trim_end().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Writes the prompt and the line, erases what follows, and puts the
    /// cursor in place.
    fn redraw(&self, out: &mut Vec<u8>) {
        out.push(b'\r');
        out.extend_from_slice(self.prompt.as_bytes());
        let mut buf = [0u8; 4];
        for c in &self.line {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        out.extend_from_slice(b"\x1b[K");
        let back = self.line.len() - self.cursor;
        if back > 0 {
            let mut s = String::new();
            let _ = write!(s, "\x1b[{back}D");
            out.extend_from_slice(s.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str, at: usize) -> Completion {
        Completion {
            start: at,
            candidates: Vec::new(),
        }
    }

    fn type_keys(e: &mut Editor, keys: &[Key]) -> (Edit, Vec<u8>) {
        let mut out = Vec::new();
        let mut last = Edit::Pending;
        for k in keys {
            last = e.key(*k, &mut out, &mut none);
        }
        (last, out)
    }

    fn chars(s: &str) -> Vec<Key> {
        s.chars().map(Key::Char).collect()
    }

    #[test]
    fn typing_and_moving() {
        let mut e = Editor::new();
        e.start("> ");
        let mut keys = chars("helo");
        keys.extend([Key::Left, Key::Char('l'), Key::End, Key::Char('!')]);
        keys.extend([Key::Home, Key::Delete, Key::Char('H'), Key::Enter]);
        let (done, out) = type_keys(&mut e, &keys);
        assert_eq!(done, Edit::Line("Hello!".into()));
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("\r> Hello!\x1b[K\r\n"), "{out:?}");
        assert_eq!(e.history(), ["Hello!"]);
    }

    #[test]
    fn typing_at_the_end_echoes_only_the_new_character() {
        let mut e = Editor::new();
        e.start("> ");
        let (_, out) = type_keys(&mut e, &chars("ab"));
        assert_eq!(out, b"ab");
        let (_, out) = type_keys(&mut e, &[Key::Backspace]);
        assert_eq!(out, b"\x08 \x08");
        let (_, out) = type_keys(&mut e, &[Key::Left, Key::Char('x')]);
        assert_eq!(out, b"\r> a\x1b[K\x1b[1D\r> xa\x1b[K\x1b[1D");
    }

    #[test]
    fn erasing() {
        let mut e = Editor::new();
        e.start("");
        let mut keys = chars("abcdef");
        keys.extend([Key::Left, Key::Left, Key::Backspace, Key::Ctrl(b'k')]);
        assert_eq!(type_keys(&mut e, &keys).0, Edit::Pending);
        assert_eq!((e.text(), e.cursor()), ("abc".into(), 3));
        type_keys(&mut e, &[Key::Left, Key::Ctrl(b'u')]);
        assert_eq!((e.text(), e.cursor()), ("c".into(), 0));
        // Nothing to erase: no change, no output.
        let (_, out) = type_keys(&mut e, &[Key::Backspace, Key::Left]);
        assert!(out.is_empty());
    }

    #[test]
    fn history_browsing_keeps_the_typed_line() {
        let mut e = Editor::new();
        for line in ["one", "two", "two", ""] {
            e.start("> ");
            let mut keys = chars(line);
            keys.push(Key::Enter);
            type_keys(&mut e, &keys);
        }
        assert_eq!(e.history(), ["one", "two"]);
        e.start("> ");
        type_keys(&mut e, &chars("draft"));
        type_keys(&mut e, &[Key::Up]);
        assert_eq!(e.text(), "two");
        type_keys(&mut e, &[Key::Up, Key::Up]);
        assert_eq!(e.text(), "one");
        type_keys(&mut e, &[Key::Down, Key::Down]);
        assert_eq!(e.text(), "draft");
        let (done, _) = type_keys(&mut e, &[Key::Up, Key::Up, Key::Enter]);
        assert_eq!(done, Edit::Line("one".into()));
    }

    #[test]
    fn ctrl_c_and_ctrl_d() {
        let mut e = Editor::new();
        e.start("> ");
        let mut keys = chars("half");
        keys.push(Key::Ctrl(b'c'));
        let (done, out) = type_keys(&mut e, &keys);
        assert_eq!(done, Edit::Interrupted);
        assert!(out.ends_with(b"^C\r\n"));
        assert!(e.history().is_empty());
        e.start("> ");
        assert_eq!(
            type_keys(&mut e, &[Key::Char('x'), Key::Ctrl(b'd')]).0,
            Edit::Pending
        );
        e.start("> ");
        assert_eq!(type_keys(&mut e, &[Key::Ctrl(b'd')]).0, Edit::EndOfInput);
    }

    #[test]
    fn tab_completes_the_common_prefix_then_lists() {
        let words = ["timer", "terminal", "echo"];
        let mut complete = |line: &str, at: usize| {
            let start = line[..at].rfind(' ').map_or(0, |i| i + 1);
            Completion {
                start,
                candidates: words.iter().map(|w| String::from(*w)).collect(),
            }
        };
        let mut e = Editor::new();
        e.start("> ");
        let mut out = Vec::new();
        for k in chars("inspect e") {
            e.key(k, &mut out, &mut complete);
        }
        e.key(Key::Tab, &mut out, &mut complete);
        assert_eq!(e.text(), "inspect echo ");
        e.start("> ");
        for k in chars("t") {
            e.key(k, &mut out, &mut complete);
        }
        out.clear();
        e.key(Key::Tab, &mut out, &mut complete);
        assert_eq!(e.text(), "t", "no longer common prefix");
        let listed = String::from_utf8(out).unwrap();
        assert!(listed.contains("timer  terminal"), "{listed:?}");
        e.key(Key::Char('i'), &mut Vec::new(), &mut complete);
        e.key(Key::Tab, &mut Vec::new(), &mut complete);
        assert_eq!(e.text(), "timer ");
    }

    #[test]
    fn lines_are_bounded() {
        let mut e = Editor::new();
        e.start("");
        let mut out = Vec::new();
        for _ in 0..MAX_CHARS + 10 {
            e.key(Key::Char('x'), &mut out, &mut none);
        }
        assert_eq!(e.text().chars().count(), MAX_CHARS);
        assert_eq!(out.last(), Some(&0x07));
    }
}
