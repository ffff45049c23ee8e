//! The terminal's key decoder and line discipline (`capos_kcore::term`):
//! input cut anywhere decodes the same, hostile bytes never break the
//! bounds, and the result messages the kernel frames by hand are what the
//! generated readers read.

use capos_caps::schema::capos_capnp::terminal_session;
use capos_kcore::term::{
    key_result, line_result_header, line_result_len, EchoMode, Key, KeyDecoder, LineEditor,
    LineStatus, MAX_LINE,
};
use quickcheck::{quickcheck, TestResult};

fn decode_in_chunks(bytes: &[u8], cuts: &[u8]) -> Vec<Key> {
    let mut d = KeyDecoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts = cuts.iter().cycle();
    while at < bytes.len() {
        let n = (usize::from(*cuts.next().unwrap_or(&1)) % 7 + 1).min(bytes.len() - at);
        for &b in &bytes[at..at + n] {
            d.push(b, &mut |k| out.push(k));
        }
        at += n;
    }
    out
}

quickcheck! {
    /// Where the interrupts cut the input does not change the keys.
    fn keys_do_not_depend_on_chunking(bytes: Vec<u8>, cuts: Vec<u8>) -> bool {
        decode_in_chunks(&bytes, &[1]) == decode_in_chunks(&bytes, &cuts)
    }

    /// Text typed as UTF-8 comes back as the same characters.
    fn utf8_text_decodes_whole(text: String) -> TestResult {
        if text.chars().any(char::is_control) {
            return TestResult::discard();
        }
        let keys = decode_in_chunks(text.as_bytes(), &[3, 1, 2]);
        let chars: Vec<Key> = text.chars().map(Key::Char).collect();
        TestResult::from_bool(keys == chars)
    }

    /// Whatever arrives, a line stays within its bound, is valid UTF-8 and
    /// contains no control characters.
    fn lines_stay_bounded_and_clean(bytes: Vec<u8>, max: u16) -> bool {
        let max = usize::from(max) % (MAX_LINE + 100);
        let mut editor = LineEditor::new(max, EchoMode::Visible);
        let mut d = KeyDecoder::new();
        let mut ok = true;
        for &b in &bytes {
            let mut keys = Vec::new();
            d.push(b, &mut |k| keys.push(k));
            for k in keys {
                let done = editor.key(k, &mut |_| {});
                let line = editor.line();
                ok &= line.len() <= max.min(MAX_LINE);
                ok &= std::str::from_utf8(line).is_ok_and(|s| !s.chars().any(char::is_control));
                if done.is_some() {
                    editor.restart(max, EchoMode::Visible);
                }
            }
        }
        ok
    }

    /// The hand-built `readLine` result reads back through the generated
    /// reader with its status and line.
    fn line_results_read_back(line: Vec<u8>, status: u8) -> bool {
        let status = u16::from(status % 5);
        let mut message = line_result_header(status, line.len()).to_vec();
        message.extend_from_slice(&line);
        message.resize(line_result_len(line.len()), 0);
        let reader = capnp::serialize::read_message(
            &mut &message[..],
            capnp::message::ReaderOptions::new(),
        )
        .unwrap();
        let r = reader
            .get_root::<terminal_session::read_line_results::Reader>()
            .unwrap();
        r.get_status().map(|s| s as u16) == Ok(status) && r.get_line().unwrap() == &line[..]
    }
}

#[test]
fn key_results_read_back() {
    use terminal_session::key::Which;
    use terminal_session::NamedKey;
    let cases = [
        (Key::Char('€'), "char 8364"),
        (Key::Up, "named Up"),
        (Key::End, "named End"),
        (Key::Enter, "named Enter"),
        (Key::Ctrl(b'c'), "ctrl 99"),
    ];
    for (key, want) in cases {
        let message = key_result(key);
        let reader =
            capnp::serialize::read_message(&mut &message[..], capnp::message::ReaderOptions::new())
                .unwrap();
        let r = reader
            .get_root::<terminal_session::read_key_results::Reader>()
            .unwrap();
        let got = match r.get_key().unwrap().which().unwrap() {
            Which::Char(c) => format!("char {c}"),
            Which::Named(n) => format!("named {:?}", n.unwrap()),
            Which::Ctrl(c) => format!("ctrl {c}"),
        };
        assert_eq!(got, want, "{key:?}");
    }
    // Every named key has its schema enumerant.
    let named = [
        Key::Enter,
        Key::Backspace,
        Key::Delete,
        Key::Tab,
        Key::Escape,
        Key::Up,
        Key::Down,
        Key::Left,
        Key::Right,
        Key::Home,
        Key::End,
    ];
    for (i, key) in named.into_iter().enumerate() {
        let (tag, value) = capos_kcore::term::key_union(key);
        assert_eq!((tag, value as usize), (1, i));
        assert!(NamedKey::try_from(value as u16).is_ok());
    }
}

#[test]
fn a_flood_is_one_truncated_line() {
    let mut editor = LineEditor::new(MAX_LINE, EchoMode::Visible);
    let mut d = KeyDecoder::new();
    let mut statuses = Vec::new();
    let mut echoed = 0;
    let input: Vec<u8> = std::iter::repeat_n(b'y', 100 * 1024)
        .chain(*b"\r")
        .collect();
    for b in input {
        d.push(b, &mut |k| {
            if let Some(s) = editor.key(k, &mut |e| echoed += e.len()) {
                statuses.push(s);
            }
        });
    }
    assert_eq!(statuses, [LineStatus::Truncated]);
    assert_eq!(editor.line().len(), MAX_LINE);
    assert_eq!(echoed, MAX_LINE + 2, "echo stops at the bound");
}

quickcheck! {
    /// The hand-built `readKeys` result reads back through the generated
    /// reader as the same keys, in order.
    fn keys_results_read_back(text: String, extra: Vec<u8>) -> bool {
        use capos_kcore::term::{keys_result, keys_result_len, MAX_KEYS};
        let mut keys: Vec<Key> = text.chars().filter(|c| !c.is_control()).map(Key::Char).collect();
        keys.extend(extra.iter().map(|b| match b % 4 {
            0 => Key::Up,
            1 => Key::Ctrl(b'a' + b % 26),
            2 => Key::Enter,
            _ => Key::Delete,
        }));
        keys.truncate(MAX_KEYS);
        let mut out = vec![0xaa_u8; keys_result_len(MAX_KEYS)];
        let len = keys_result(&keys, &mut out);
        let reader = capnp::serialize::read_message(
            &mut &out[..len],
            capnp::message::ReaderOptions::new(),
        )
        .unwrap();
        let list = reader
            .get_root::<terminal_session::read_keys_results::Reader>()
            .unwrap()
            .get_keys()
            .unwrap();
        list.len() as usize == keys.len()
            && list.iter().zip(&keys).all(|(r, k)| {
                let (tag, value) = capos_kcore::term::key_union(*k);
                match r.which().unwrap() {
                    terminal_session::key::Which::Char(c) => tag == 0 && c == value,
                    terminal_session::key::Which::Named(n) => tag == 1 && n.unwrap() as u32 == value,
                    terminal_session::key::Which::Ctrl(c) => tag == 2 && u32::from(c) == value,
                }
            })
    }
}
