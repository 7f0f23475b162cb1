//! Output that cannot panic and cannot be hijacked.
//!
//! A closed or full stdout (`| head -1`, `> /dev/full`, a dropped SSH
//! session) ends the output quietly and never the work: the migration goes
//! on and is recorded. Strings from outside (names a hypervisor or a
//! scenario chose, paths, the operator, libvirt's messages) are escaped
//! (`cluster::text::escape`, the one definition the view uses too) so that
//! no control or invisible format character reaches the terminal.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cluster::text::{self, escape, escape_lines};

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

/// Writes human text (several lines) to stdout, with every character of
/// [`text::escape`] but the line breaks escaped.
pub fn print_text(s: &str) -> bool {
    println(&escape_lines(s.strip_suffix('\n').unwrap_or(s)))
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
    eprintln(&format!("vmshift: {}", escape(sentence)));
}

/// Whether stdout has gone away.
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// JSON text with the characters JSON leaves raw but a terminal obeys or
/// hides written as `\u` escapes: DEL, the C1 controls, and the format
/// characters and separators of [`text::is_escaped`] (bidi overrides,
/// zero-width characters). serde_json writes them raw; they can only occur
/// inside strings, so the escape stays valid JSON and reads back as the
/// same string.
pub fn json_safe(s: &str) -> Cow<'_, str> {
    let bad = |c: char| text::is_escaped(c) && (c as u32) >= 0x20;
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                o.push_str(&format!("\\u{u:04x}"));
            }
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
    fn json_keeps_the_real_string_and_escapes_what_a_terminal_obeys() {
        let name = "a\u{7f}\u{9b}web\u{200b}\u{202e}x\u{e0041}\u{2028}";
        let j = json_safe(&serde_json::json!({"n": name}).to_string()).into_owned();
        assert_eq!(
            j,
            r#"{"n":"a\u007f\u009bweb\u200b\u202ex\udb40\udc41\u2028"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["n"], name);
        // Pretty JSON keeps its line breaks; text without such characters
        // is borrowed as it is.
        let pretty = serde_json::to_string_pretty(&serde_json::json!({"n": "\n"})).unwrap();
        assert!(matches!(json_safe(&pretty), Cow::Borrowed(_)));
    }
}
