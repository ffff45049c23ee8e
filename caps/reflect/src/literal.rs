//! Printing values as Cap'n Proto text literals that the parser reads back.

use alloc::string::String;
use core::fmt::Write;

/// Appends `bytes` as a quoted string: UTF-8 text as it is, except `"`,
/// `\` and control characters, which are escaped (`\n`, `\t`, `\r`, else
/// `\xHH` per byte); bytes that are not UTF-8 as `\xHH`.
pub(crate) fn quote(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
}

/// Appends Data: as a quoted string when it is UTF-8 text without control
/// characters other than newline and tab, else as `0x"..."` hex.
pub(crate) fn data(bytes: &[u8], out: &mut String) {
    let printable = core::str::from_utf8(bytes)
        .is_ok_and(|s| s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'));
    if printable {
        quote(bytes, out);
    } else {
        out.push_str("0x\"");
        for b in bytes {
            let _ = write!(out, "{b:02x}");
        }
        out.push('"');
    }
}

/// Appends a float the way the parser reads it back: `inf`, `-inf`, `nan`,
/// else the shortest decimal that round-trips.
pub(crate) fn float(v: f64, as_f32: Option<f32>, out: &mut String) {
    if v.is_nan() {
        out.push_str("nan");
    } else if v.is_infinite() {
        out.push_str(if v < 0.0 { "-inf" } else { "inf" });
    } else if let Some(f) = as_f32 {
        let _ = write!(out, "{f:?}");
    } else {
        let _ = write!(out, "{v:?}");
    }
}
