//! Every primitive width, defaults, lists, unions and groups, against the
//! test-only schema `tests/schema/reflect_test.capnp` and its generated
//! bindings (both built by `build.rs`), with quickcheck properties.

#[allow(clippy::all, clippy::pedantic, unused_qualifications, missing_docs)]
pub mod reflect_test_capnp {
    include!(concat!(env!("OUT_DIR"), "/reflect_test_capnp.rs"));
}

use capnp::message::ReaderOptions;
use capnp::serialize;
use capos_reflect::{decode_struct, encode, parse, parse_value, Schema, ValueKind};
use quickcheck::{quickcheck, TestResult};
use reflect_test_capnp::{test, Color};

const REQUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/reflect_test.request"));

fn schema() -> Schema {
    Schema::from_request(REQUEST).expect("the test schema reads")
}

fn encode_line(s: &Schema, line: &str) -> Result<Vec<u8>, capos_reflect::Error> {
    let l = parse(line)?;
    let iface = s.find_interface("Test").unwrap();
    Ok(encode(s, iface, &l.method, &l.args)?.params)
}

fn read(bytes: &[u8]) -> capnp::message::Reader<serialize::OwnedSegments> {
    serialize::read_message(bytes, ReaderOptions::new()).expect("a valid message")
}

fn params_id(s: &Schema, method: &str) -> u64 {
    let iface = s.find_interface("Test").unwrap();
    s.method(iface, method).unwrap().params
}

/// An integer literal for `n`, in decimal or hex.
fn literal(n: i128, hex: bool) -> String {
    match (hex, n < 0) {
        (false, _) => format!("{n}"),
        (true, false) => format!("{n:#x}"),
        (true, true) => format!("-{:#x}", n.unsigned_abs()),
    }
}

/// Checks one width: `n` encodes and reads back through the generated
/// getter when it fits, and is refused as out of range when it does not.
macro_rules! width {
    ($s:expr, $field:literal, $ty:ty, $get:ident, $n:expr, $hex:expr) => {{
        let n: i128 = $n;
        let line = format!("t.all(w: ({} = {}))", $field, literal(n, $hex));
        let fits = <$ty>::try_from(n).is_ok();
        match encode_line($s, &line) {
            Ok(bytes) => {
                let message = read(&bytes);
                let w = message
                    .get_root::<test::all_params::Reader<'_>>()
                    .unwrap()
                    .get_w()
                    .unwrap();
                if !fits || i128::from(w.$get()) != n {
                    return TestResult::error(format!("{line}: read {}", w.$get()));
                }
            }
            Err(e) => {
                let text = e.to_string();
                let refused = if n.unsigned_abs() > u128::from(u64::MAX) {
                    text.contains("is too large")
                } else {
                    text.contains("is out of its range")
                };
                if fits || !refused {
                    return TestResult::error(format!("{line}: {text}"));
                }
            }
        }
    }};
}

fn check_widths(s: &Schema, n: i128, hex: bool) -> TestResult {
    width!(s, "i8", i8, get_i8, n, hex);
    width!(s, "i16", i16, get_i16, n, hex);
    width!(s, "i32", i32, get_i32, n, hex);
    width!(s, "i64", i64, get_i64, n, hex);
    width!(s, "u8", u8, get_u8, n, hex);
    width!(s, "u16", u16, get_u16, n, hex);
    width!(s, "u32", u32, get_u32, n, hex);
    width!(s, "u64", u64, get_u64, n, hex);
    TestResult::passed()
}

#[test]
fn integers_of_every_width_round_trip_or_are_refused() {
    let s = schema();
    fn prop(n: i128, shift: u8, hex: bool) -> TestResult {
        // Spread the magnitudes over every width's range and its edges.
        let n = n >> (shift % 128);
        check_widths(&schema(), n, hex)
    }
    quickcheck(prop as fn(i128, u8, bool) -> TestResult);
    for bits in [7u32, 8, 15, 16, 31, 32, 63, 64] {
        for n in [
            1i128 << bits,
            (1i128 << bits) - 1,
            -(1i128 << bits),
            -(1i128 << bits) - 1,
        ] {
            for hex in [false, true] {
                let r = check_widths(&s, n, hex);
                assert!(!r.is_failure(), "{n}: {r:?}");
            }
        }
    }
}

#[test]
fn floats_round_trip() {
    fn prop(x: f64, y: f32) -> bool {
        let s = schema();
        let lit = |v: f64| {
            if v.is_nan() {
                "nan".to_string()
            } else if v.is_infinite() {
                if v < 0.0 {
                    "-inf".into()
                } else {
                    "inf".into()
                }
            } else {
                format!("{v:?}")
            }
        };
        let lit32 = if y.is_finite() {
            format!("{y:?}")
        } else {
            lit(f64::from(y))
        };
        let line = format!("t.all(w: (f64 = {}, f32 = {lit32}))", lit(x));
        let bytes = encode_line(&s, &line).unwrap();
        let message = read(&bytes);
        let w = message
            .get_root::<test::all_params::Reader<'_>>()
            .unwrap()
            .get_w()
            .unwrap();
        let same64 = w.get_f64().to_bits() == x.to_bits() || (x.is_nan() && w.get_f64().is_nan());
        let same32 = w.get_f32().to_bits() == y.to_bits() || (y.is_nan() && w.get_f32().is_nan());
        same64 && same32
    }
    quickcheck(prop as fn(f64, f32) -> bool);
    let s = schema();
    let e = encode_line(&s, "t.all(w: (f32 = 1e39))").unwrap_err();
    assert_eq!(
        e.to_string(),
        "at 16: `w.f32` is Float32: 1e39 is out of its range"
    );
    let bytes = encode_line(&s, "t.all(w: (f32 = 3, f64 = -2))").unwrap();
    let message = read(&bytes);
    let w = message
        .get_root::<test::all_params::Reader<'_>>()
        .unwrap()
        .get_w()
        .unwrap();
    assert_eq!((w.get_f32(), w.get_f64()), (3.0, -2.0));
}

/// `text` as a string literal of the call language, every control
/// character as `\u{..}` (Rust's own `{:?}` writes NUL as `\0`, which a
/// following digit would turn into a longer octal escape).
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn text_round_trips_through_parse_encode_decode_parse() {
    fn prop(text: String) -> TestResult {
        let s = schema();
        let line = format!("t.text(t: {})", quoted(&text));
        let bytes = match encode_line(&s, &line) {
            Ok(b) => b,
            Err(e) => return TestResult::error(format!("{line}: {e}")),
        };
        let message = read(&bytes);
        let got = message
            .get_root::<test::text_params::Reader<'_>>()
            .unwrap()
            .get_t()
            .unwrap()
            .to_string()
            .unwrap();
        if got != text {
            return TestResult::error(format!("generated reader saw {got:?}"));
        }
        let printed = decode_struct(&s, params_id(&s, "text"), &bytes).unwrap();
        let inner = printed
            .strip_prefix("(t = ")
            .and_then(|p| p.strip_suffix(')'))
            .unwrap();
        match parse_value(inner) {
            Ok(v) if v.kind == ValueKind::Str(text.clone().into_bytes()) => {}
            other => return TestResult::error(format!("{printed} parsed back as {other:?}")),
        }
        // And the printed form encodes to the same message.
        match encode_line(&s, &format!("t.text{printed}")) {
            Ok(again) if again == bytes => TestResult::passed(),
            other => TestResult::error(format!("{printed}: {other:?}")),
        }
    }
    quickcheck(prop as fn(String) -> TestResult);
    for text in [
        "",
        "\"",
        "\\",
        "a\u{0}b",
        "\u{85}\u{7f}\r\t\n",
        "é⚙🦀",
        "\\x41",
    ] {
        assert!(!prop(text.to_string()).is_failure(), "{text:?}");
    }
}

#[test]
fn data_round_trips_through_parse_encode_decode_parse() {
    fn prop(data: Vec<u8>) -> bool {
        let s = schema();
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let bytes = encode_line(&s, &format!("t.data(d: 0x\"{hex}\")")).unwrap();
        let message = read(&bytes);
        let p = message.get_root::<test::data_params::Reader<'_>>().unwrap();
        if p.get_d().unwrap() != &data[..] {
            return false;
        }
        let printed = decode_struct(&s, params_id(&s, "data"), &bytes).unwrap();
        let inner = printed
            .strip_prefix("(d = ")
            .and_then(|p| p.strip_suffix(')'))
            .unwrap();
        match parse_value(inner).unwrap().kind {
            ValueKind::Str(b) | ValueKind::Bytes(b) => b == data,
            _ => false,
        }
    }
    quickcheck(prop as fn(Vec<u8>) -> bool);
}

const FULL: &str = r#"(i8 = -128, i16 = 32767, i32 = -2147483648, i64 = 9223372036854775807, u8 = 255, u16 = 65535, u32 = 4294967295, u64 = 18446744073709551615, f32 = 1.5, f64 = -0.25, b = true, t = "text", d = 0x"0001", e = green, i32d = 0, u8d = 0, bd = false, f64d = 0.0, ed = red, li8 = [-1, 2], lb = [true, false, true], lt = ["a", ""], ll = [[1, 2], [], [3]], ls = [(x = -7, name = "n"), (x = 0, name = "")], le = [blue, red], inner = (x = 5, name = "in"), choice = (s = "chosen"), grp = (a = 9, c = "g"), v = void)"#;

#[test]
fn every_kind_of_field_reads_through_the_generated_reader_and_prints_back() {
    let s = schema();
    let bytes = encode_line(&s, &format!("t.all(w: {FULL})")).unwrap();
    let message = read(&bytes);
    let w = message
        .get_root::<test::all_params::Reader<'_>>()
        .unwrap()
        .get_w()
        .unwrap();
    assert_eq!(
        (w.get_i8(), w.get_i16(), w.get_i32()),
        (-128, 32767, i32::MIN)
    );
    assert_eq!(
        (w.get_i64(), w.get_u8(), w.get_u16()),
        (i64::MAX, 255, 65535)
    );
    assert_eq!((w.get_u32(), w.get_u64()), (u32::MAX, u64::MAX));
    assert_eq!((w.get_f32(), w.get_f64(), w.get_b()), (1.5, -0.25, true));
    assert_eq!(w.get_t().unwrap(), "text");
    assert_eq!(w.get_d().unwrap(), &[0, 1]);
    assert_eq!(w.get_e().unwrap(), Color::Green);
    // Explicit values equal to zero against non-zero defaults.
    assert_eq!(
        (w.get_i32d(), w.get_u8d(), w.get_bd(), w.get_f64d()),
        (0, 0, false, 0.0)
    );
    assert_eq!(w.get_ed().unwrap(), Color::Red);
    assert_eq!(w.get_li8().unwrap().iter().collect::<Vec<_>>(), [-1, 2]);
    assert_eq!(
        w.get_lb().unwrap().iter().collect::<Vec<_>>(),
        [true, false, true]
    );
    let lt = w.get_lt().unwrap();
    assert_eq!(
        (lt.get(0).unwrap(), lt.get(1).unwrap()),
        ("a".into(), "".into())
    );
    let ll = w.get_ll().unwrap();
    assert_eq!(ll.len(), 3);
    assert_eq!(ll.get(0).unwrap().iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(ll.get(2).unwrap().iter().collect::<Vec<_>>(), [3]);
    let ls = w.get_ls().unwrap();
    assert_eq!(
        (ls.get(0).get_x(), ls.get(0).get_name().unwrap()),
        (-7, "n".into())
    );
    let le = w.get_le().unwrap();
    assert_eq!(
        (le.get(0).unwrap(), le.get(1).unwrap()),
        (Color::Blue, Color::Red)
    );
    assert_eq!(w.get_inner().unwrap().get_x(), 5);
    assert!(matches!(
        w.get_choice().which().unwrap(),
        reflect_test_capnp::widths::choice::S(Ok(t)) if t == "chosen"
    ));
    assert_eq!(
        (w.get_grp().get_a(), w.get_grp().get_c().unwrap()),
        (9, "g".into())
    );

    // Printed back, the text is the literal it came from.
    let printed = decode_struct(&s, params_id(&s, "all"), &bytes).unwrap();
    assert_eq!(printed, format!("(w = {FULL})"));
}

#[test]
fn omitted_fields_keep_their_defaults() {
    let s = schema();
    let bytes = encode_line(&s, "t.all(w: ())").unwrap();
    let message = read(&bytes);
    let w = message
        .get_root::<test::all_params::Reader<'_>>()
        .unwrap()
        .get_w()
        .unwrap();
    assert_eq!(
        (w.get_i32d(), w.get_u8d(), w.get_bd(), w.get_f64d()),
        (-5, 200, true, 1.5)
    );
    assert_eq!(w.get_ed().unwrap(), Color::Blue);
    let printed = decode_struct(&s, params_id(&s, "all"), &bytes).unwrap();
    assert!(
        printed.contains("i32d = -5, u8d = 200, bd = true, f64d = 1.5, ed = blue"),
        "{printed}"
    );
    assert!(printed.contains("choice = (none = void)"), "{printed}");
    // No `w` at all: a null pointer, printed as the struct's defaults.
    let bytes = encode_line(&s, "t.all()").unwrap();
    let printed = decode_struct(&s, params_id(&s, "all"), &bytes).unwrap();
    assert!(printed.contains("i32d = -5"), "{printed}");
}

#[test]
fn list_and_struct_mistakes() {
    let s = schema();
    let err = |line: &str| encode_line(&s, line).unwrap_err().to_string();
    assert_eq!(
        err("t.all(w: (li8 = [1, 200]))"),
        "at 20: `w.li8[1]` is Int8 (-128 to 127): 200 is out of its range"
    );
    assert_eq!(
        err("t.all(w: (ls = [5]))"),
        "at 16: `w.ls[0]` is Inner, got an integer"
    );
    assert_eq!(
        err("t.all(w: (e = 1))"),
        "at 14: `w.e` is Color, got an integer"
    );
    assert_eq!(
        err("t.all(w: (b = 1))"),
        "at 14: `w.b` is Bool, got an integer"
    );
    assert_eq!(
        err("t.all(w: (v = 0))"),
        "at 14: `w.v` is Void, got an integer"
    );
    assert_eq!(
        err("t.all(w: (choice = (n = 1, s = \"x\")))"),
        "at 27: `n` and `s` are members of one union: give only one"
    );
    assert_eq!(
        err("t.all(w: (grp = (z = 1)))"),
        "at 17: no field `z` in grp; its fields: a, c"
    );
}
