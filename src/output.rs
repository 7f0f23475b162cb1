//! Output that cannot panic and cannot be hijacked.
//!
//! A closed or full stdout (`| head -1`, `> /dev/full`, a dropped SSH
//! session) ends the output quietly and never the work: the migration goes
//! on and is recorded. Strings from outside (names a hypervisor or a
//! scenario chose, paths, the operator, libvirt's messages) are escaped so
//! that no control character reaches the terminal.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` and a newline to stdout. Returns false (and writes nothing
/// from then on) once stdout cannot be written.
pub fn println(text: &str) -> bool {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return false;
    }
    let mut o = io::stdout().lock();
    let ok = o
        .write_all(text.as_bytes())
        .and_then(|_| o.write_all(b"\n"))
        .and_then(|_| o.flush())
        .is_ok();
    if !ok {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        tracing::info!("stdout is closed; output ends here");
    }
    ok
}

/// Writes human text (several lines) to stdout, with every control
/// character but the line breaks escaped.
pub fn print_text(text: &str) -> bool {
    println(&clean_text(text.strip_suffix('\n').unwrap_or(text)))
}

/// One line of JSON: characters JSON leaves raw but a terminal obeys (DEL
/// and the C1 controls) are written as `\u` escapes.
pub fn print_json(value: &serde_json::Value) -> bool {
    let mut v = value.clone();
    tidy_floats(&mut v);
    println(&json_safe(&v.to_string()))
}

/// Figures for people and scripts: at most 3 decimals (`800`, not
/// `799.9999999999998`); whole numbers stay as they are.
pub fn tidy_floats(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                let r = (f * 1000.0).round() / 1000.0;
                if let Some(x) = serde_json::Number::from_f64(r) {
                    *n = x;
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(tidy_floats),
        Value::Object(o) => o.values_mut().for_each(tidy_floats),
        _ => {}
    }
}

/// Writes one line to stderr; a closed stderr is ignored.
pub fn eprintln(text: &str) {
    let mut e = io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    let _ = e.write_all(b"\n");
    let _ = e.flush();
}

/// `vmshift: <sentence>` on stderr, escaped.
pub fn error(sentence: &str) {
    eprintln(&format!("vmshift: {}", clean(sentence)));
}

/// Whether stdout has gone away.
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// `s` with every control character (C0, DEL, C1, and line breaks) escaped
/// as `\xNN` or `\u{NN}`: safe to put on one line of a terminal.
pub fn clean(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Like [`clean`], but line breaks stay (for text of several lines).
pub fn clean_text(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && !(keep_newlines && c == '\n');
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            o.push(c);
        } else if (c as u32) < 0x80 {
            o.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            o.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(o)
}

/// JSON text with DEL and the C1 controls escaped (serde_json writes them
/// raw; they can only occur inside strings, so the escape stays valid JSON).
pub fn json_safe(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c);
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            o.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            o.push(c);
        }
    }
    Cow::Owned(o)
}

#[cfg(test)]
mod tests {

    #[test]
    fn json_figures_get_three_decimals_at_most() {
        let mut v = serde_json::json!({"a": 799.9999999999998, "b": [1.23456, 2], "c": {"d": 0.1}});
        tidy_floats(&mut v);
        assert_eq!(v.to_string(), r#"{"a":800.0,"b":[1.235,2],"c":{"d":0.1}}"#);
    }

    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("web-01"), "web-01");
        assert_eq!(clean("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(clean("x\ny\x7f"), "x\\x0ay\\x7f");
        assert_eq!(clean_text("x\ny\tz"), "x\ny\\x09z");
        assert_eq!(clean("\u{9b}31m"), "\\u{9b}31m");
        let j = json_safe(&serde_json::json!({"n": "a\u{7f}\u{9b}"}).to_string()).into_owned();
        assert_eq!(j, r#"{"n":"a\u007f\u009b"}"#);
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["n"], "a\u{7f}\u{9b}");
    }
}
