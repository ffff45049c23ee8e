//! The call language: `[$var =] target.method(arg, ...)` with Cap'n Proto
//! text-format values. The grammar is in `docs/shell.md`.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{ParseError, Span};

/// A parsed line: a call, bound to a variable or not.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// `$name =` before the call: the variable to bind the result to
    /// (without the `$`).
    pub bind: Option<String>,
    /// What is called.
    pub target: Target,
    /// Where the target was written.
    pub target_span: Span,
    /// The method name.
    pub method: String,
    /// Where the method name was written.
    pub method_span: Span,
    /// The arguments, in the order written.
    pub args: Vec<Arg>,
}

/// What a call is made on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A capability by name, e.g. `timer`.
    Name(String),
    /// A variable, e.g. `$t` (the name without the `$`).
    Var(String),
}

/// One argument or struct-literal field.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `name:` (or `name =`), and where it was written; `None` for a
    /// positional argument.
    pub name: Option<(String, Span)>,
    /// The value.
    pub value: Value,
}

/// A value literal and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// What was written.
    pub kind: ValueKind,
    /// Where.
    pub span: Span,
}

/// The value literals.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// `void`.
    Void,
    /// `true` or `false`.
    Bool(bool),
    /// An integer: its value and the literal as written.
    Int(i128, String),
    /// A float literal as written (`1.5`, `-2e10`, `-inf`); parsed for the
    /// field's width when encoded.
    Float(String),
    /// A quoted string, escapes resolved (bytes: `\x` escapes may make
    /// it invalid UTF-8, which only Data accepts).
    Str(Vec<u8>),
    /// `0x"..."`: bytes in hex.
    Bytes(Vec<u8>),
    /// A bare name: an enumerant, or `inf` / `nan`.
    Ident(String),
    /// `$name`: a variable.
    Var(String),
    /// `[a, b, ...]`.
    List(Vec<Value>),
    /// `(field = value, ...)`.
    Struct(Vec<Arg>),
}

impl ValueKind {
    /// What a person would call this kind of value, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            ValueKind::Void => "void",
            ValueKind::Bool(_) => "a bool",
            ValueKind::Int(..) => "an integer",
            ValueKind::Float(_) => "a float",
            ValueKind::Str(_) => "a string",
            ValueKind::Bytes(_) => "hex bytes",
            ValueKind::Ident(_) => "a name",
            ValueKind::Var(_) => "a variable",
            ValueKind::List(_) => "a list",
            ValueKind::Struct(_) => "a struct",
        }
    }
}

/// Deepest nesting of lists and structs in a literal.
const MAX_DEPTH: usize = 32;

/// Parses one line of the call language.
pub fn parse(line: &str) -> Result<Line, ParseError> {
    let mut p = Parser { s: line, pos: 0 };
    p.ws();
    let mut bind = None;
    if p.peek() == Some('$') {
        let save = p.pos;
        p.pos += 1;
        let name = p.ident("a variable name after `$`")?;
        p.ws();
        if p.eat('=') {
            bind = Some(name);
            p.ws();
        } else {
            p.pos = save;
        }
    }
    let start = p.pos;
    let target = if p.eat('$') {
        Target::Var(p.ident("a variable name after `$`")?)
    } else {
        Target::Name(p.ident("a capability name or `$variable`")?)
    };
    let target_span = Span { start, end: p.pos };
    p.ws();
    p.expect('.')?;
    p.ws();
    let mstart = p.pos;
    let method = p.ident("a method name")?;
    let method_span = Span {
        start: mstart,
        end: p.pos,
    };
    p.ws();
    p.expect('(')?;
    let args = p.fields(')', 0)?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.err("unexpected text after the call"));
    }
    Ok(Line {
        bind,
        target,
        target_span,
        method,
        method_span,
        args,
    })
}

/// Parses a single value literal (the whole string).
pub fn parse_value(text: &str) -> Result<Value, ParseError> {
    let mut p = Parser { s: text, pos: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.err("unexpected text after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            pos: self.pos,
            message: message.into(),
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the line".into(),
            Some(c) => format!("`{c}`"),
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(format!("expected `{c}`, found {}", self.found())))
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        if !self.peek().is_some_and(is_ident_start) {
            return Err(self.err(format!("expected {what}, found {}", self.found())));
        }
        let start = self.pos;
        while self.peek().is_some_and(is_ident) {
            self.bump();
        }
        Ok(self.s[start..self.pos].to_owned())
    }

    /// `field, field, ...` up to `close` (consumed); a trailing comma is allowed.
    fn fields(&mut self, close: char, depth: usize) -> Result<Vec<Arg>, ParseError> {
        let mut args = Vec::new();
        loop {
            self.ws();
            if self.eat(close) {
                return Ok(args);
            }
            if self.peek().is_none() {
                return Err(self.err(format!("expected `{close}`, found the end of the line")));
            }
            let at = self.pos;
            let arg = self.arg(depth)?;
            if arg.name.is_none() && args.iter().any(|a: &Arg| a.name.is_some()) {
                return Err(ParseError {
                    pos: at,
                    message: "a positional value cannot follow a named one".into(),
                });
            }
            args.push(arg);
            self.ws();
            if self.eat(',') {
                continue;
            }
            if self.eat(close) {
                return Ok(args);
            }
            return Err(self.err(format!("expected `,` or `{close}`, found {}", self.found())));
        }
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, ParseError> {
        let save = self.pos;
        if self.peek().is_some_and(is_ident_start) {
            let name = self.ident("a name")?;
            let span = Span {
                start: save,
                end: self.pos,
            };
            self.ws();
            if self.eat(':') || self.eat('=') {
                self.ws();
                let value = self.value(depth)?;
                return Ok(Arg {
                    name: Some((name, span)),
                    value,
                });
            }
            self.pos = save;
        }
        Ok(Arg {
            name: None,
            value: self.value(depth)?,
        })
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("values nest too deeply"));
        }
        let start = self.pos;
        let kind = match self.peek() {
            None => return Err(self.err("expected a value, found the end of the line")),
            Some('"') => ValueKind::Str(self.string()?),
            Some('[') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.eat(']') {
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(',') {
                        continue;
                    }
                    if self.eat(']') {
                        break;
                    }
                    return Err(self.err(format!("expected `,` or `]`, found {}", self.found())));
                }
                ValueKind::List(items)
            }
            Some('(') => {
                self.bump();
                ValueKind::Struct(self.fields(')', depth + 1)?)
            }
            Some('$') => {
                self.bump();
                ValueKind::Var(self.ident("a variable name after `$`")?)
            }
            Some('0')
                if matches!(self.peek2(), Some('x' | 'X')) && self.rest()[2..].starts_with('"') =>
            {
                self.pos += 2;
                ValueKind::Bytes(self.hex_bytes()?)
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => self.number()?,
            Some(c) if is_ident_start(c) => {
                let name = self.ident("a value")?;
                match name.as_str() {
                    "void" => ValueKind::Void,
                    "true" => ValueKind::Bool(true),
                    "false" => ValueKind::Bool(false),
                    _ => ValueKind::Ident(name),
                }
            }
            Some(c) => return Err(self.err(format!("expected a value, found `{c}`"))),
        };
        Ok(Value {
            kind,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    fn number(&mut self) -> Result<ValueKind, ParseError> {
        let start = self.pos;
        let negative = self.eat('-');
        if !negative {
            self.eat('+');
        }
        if self.peek().is_some_and(is_ident_start) {
            let name = self.ident("a number")?;
            return match name.as_str() {
                "inf" | "nan" => Ok(ValueKind::Float(self.s[start..self.pos].to_owned())),
                _ => Err(ParseError {
                    pos: start,
                    message: format!("expected a number, found `{}`", &self.s[start..self.pos]),
                }),
            };
        }
        let digits_start = self.pos;
        let (magnitude, float) = if self.rest().starts_with("0x") || self.rest().starts_with("0X") {
            self.pos += 2;
            let hex_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.bump();
            }
            let hex = &self.s[hex_start..self.pos];
            if hex.is_empty() {
                return Err(self.err("expected hex digits after `0x`"));
            }
            (u64::from_str_radix(hex, 16).ok(), false)
        } else {
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            if self.pos == digits_start {
                return Err(self.err(format!("expected digits, found {}", self.found())));
            }
            let mut float = false;
            if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                self.bump();
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                float = true;
                self.bump();
                if !self.eat('-') {
                    self.eat('+');
                }
                let exp_start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
                if self.pos == exp_start {
                    return Err(self.err("expected exponent digits"));
                }
            }
            let text = &self.s[digits_start..self.pos];
            (
                if float {
                    None
                } else {
                    text.parse::<u64>().ok()
                },
                float,
            )
        };
        if self.peek().is_some_and(is_ident) {
            return Err(self.err(format!("unexpected {} in a number", self.found())));
        }
        let text = self.s[start..self.pos].to_owned();
        if float {
            return Ok(ValueKind::Float(text));
        }
        let Some(m) = magnitude else {
            return Err(ParseError {
                pos: start,
                message: format!("integer {text} is too large (the largest is 2^64 - 1)"),
            });
        };
        let value = if negative {
            -i128::from(m)
        } else {
            i128::from(m)
        };
        Ok(ValueKind::Int(value, text))
    }

    /// A quoted string with escapes, as bytes.
    fn string(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect('"')?;
        let mut out = Vec::new();
        loop {
            let at = self.pos;
            let Some(c) = self.bump() else {
                return Err(self.err("unterminated string: expected `\"`"));
            };
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err(self.err("unterminated escape"));
                    };
                    match e {
                        'n' => out.push(b'\n'),
                        't' => out.push(b'\t'),
                        'r' => out.push(b'\r'),
                        'a' => out.push(0x07),
                        'b' => out.push(0x08),
                        'f' => out.push(0x0c),
                        'v' => out.push(0x0b),
                        '\\' | '"' | '\'' | '?' => out.push(e as u8),
                        'x' => {
                            let h = self
                                .rest()
                                .get(..2)
                                .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
                            let Some(h) = h else {
                                return Err(self.err("expected two hex digits after `\\x`"));
                            };
                            out.push(u8::from_str_radix(h, 16).unwrap_or(0));
                            self.pos += 2;
                        }
                        'u' => {
                            self.expect('{')?;
                            let hs = self.pos;
                            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                self.bump();
                            }
                            let ch = u32::from_str_radix(&self.s[hs..self.pos], 16)
                                .ok()
                                .and_then(char::from_u32);
                            let Some(ch) = ch else {
                                return Err(ParseError {
                                    pos: hs,
                                    message: "expected a Unicode scalar value in hex in `\\u{...}`"
                                        .into(),
                                });
                            };
                            self.expect('}')?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        '0'..='7' => {
                            let mut v = e as u32 - '0' as u32;
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ '0'..='7') => {
                                        v = v * 8 + (d as u32 - '0' as u32);
                                        self.bump();
                                    }
                                    _ => break,
                                }
                            }
                            let Ok(b) = u8::try_from(v) else {
                                return Err(ParseError {
                                    pos: at,
                                    message: "octal escape above \\377".into(),
                                });
                            };
                            out.push(b);
                        }
                        other => {
                            return Err(ParseError {
                                pos: at,
                                message: format!("unknown escape `\\{other}`"),
                            })
                        }
                    }
                }
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    /// `"6869"` after `0x`: pairs of hex digits, whitespace between pairs allowed.
    fn hex_bytes(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect('"')?;
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.eat('"') {
                return Ok(out);
            }
            let pair = self
                .rest()
                .get(..2)
                .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
            let Some(pair) = pair else {
                return Err(self.err(format!(
                    "expected a pair of hex digits or `\"`, found {}",
                    self.found()
                )));
            };
            out.push(u8::from_str_radix(pair, 16).unwrap_or(0));
            self.pos += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        let e = parse(line).unwrap_err();
        format!("{}: {}", e.pos, e.message)
    }

    #[test]
    fn calls_bindings_and_targets() {
        let l = parse(" $t = $spawner.spawn( name: \"x\" , 5, ) ").unwrap_err();
        assert_eq!(l.message, "a positional value cannot follow a named one");
        let l = parse("$t = $spawner.spawn(5, name = \"x\",)").unwrap();
        assert_eq!(l.bind.as_deref(), Some("t"));
        assert_eq!(l.target, Target::Var("spawner".into()));
        assert_eq!(l.target_span, Span { start: 5, end: 13 });
        assert_eq!(l.method, "spawn");
        assert_eq!(l.method_span, Span { start: 14, end: 19 });
        assert_eq!(l.args.len(), 2);
        assert!(l.args[0].name.is_none());
        assert_eq!(l.args[1].name.as_ref().unwrap().0, "name");
        let l = parse("timer.now()").unwrap();
        assert_eq!(
            (l.bind, l.target, l.args.len()),
            (None, Target::Name("timer".into()), 0)
        );
    }

    #[test]
    fn value_literals() {
        let v = |s: &str| parse_value(s).unwrap().kind;
        assert_eq!(v("-0x10"), ValueKind::Int(-16, "-0x10".into()));
        assert_eq!(
            v("18446744073709551615"),
            ValueKind::Int(u64::MAX.into(), "18446744073709551615".into())
        );
        assert_eq!(v("1.5e3"), ValueKind::Float("1.5e3".into()));
        assert_eq!(v("-inf"), ValueKind::Float("-inf".into()));
        assert_eq!(v("void"), ValueKind::Void);
        assert_eq!(v("false"), ValueKind::Bool(false));
        assert_eq!(v("green"), ValueKind::Ident("green".into()));
        assert_eq!(
            v(r#""a\n\t\"\\\x41\101\0\u{e9}""#),
            ValueKind::Str(b"a\n\t\"\\AA\0\xc3\xa9".to_vec())
        );
        assert_eq!(v(r#"0x"68 69""#), ValueKind::Bytes(b"hi".to_vec()));
        let ValueKind::List(items) = v("[1, [2], (a = 3)]") else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        let ValueKind::Struct(fields) = v("(a = 1, b: 2)") else {
            panic!()
        };
        assert_eq!(fields[1].name.as_ref().unwrap().0, "b");
    }

    #[test]
    fn errors_have_positions_and_say_what_was_expected() {
        assert_eq!(err("timer"), "5: expected `.`, found the end of the line");
        assert_eq!(
            err("timer.now("),
            "10: expected `)`, found the end of the line"
        );
        assert_eq!(
            err("t.m(a: 1"),
            "8: expected `,` or `)`, found the end of the line"
        );
        assert_eq!(err("timer.now() x"), "12: unexpected text after the call");
        assert_eq!(
            err(".now()"),
            "0: expected a capability name or `$variable`, found `.`"
        );
        assert_eq!(err("t.m(a: 12ab)"), "9: unexpected `a` in a number");
        assert_eq!(
            err("t.m(a: 99999999999999999999)"),
            "7: integer 99999999999999999999 is too large (the largest is 2^64 - 1)"
        );
        assert_eq!(
            err(r#"t.m(a: "abc)"#),
            "12: unterminated string: expected `\"`"
        );
        assert_eq!(err(r#"t.m(a: "\q")"#), "8: unknown escape `\\q`");
        assert_eq!(
            err(r#"t.m(a: "\x4")"#),
            "10: expected two hex digits after `\\x`"
        );
        assert_eq!(
            err(r#"t.m(a: 0x"6g")"#),
            "10: expected a pair of hex digits or `\"`, found `6`"
        );
        assert_eq!(err("t.m(a: [1 2])"), "10: expected `,` or `]`, found `2`");
        assert_eq!(err("t.m(a: @)"), "7: expected a value, found `@`");
        assert_eq!(err("t.m(a: -x)"), "7: expected a number, found `-x`");
        let deep = format!("t.m({}{})", "[".repeat(40), "]".repeat(40));
        assert_eq!(err(&deep), "37: values nest too deeply");
    }
}
