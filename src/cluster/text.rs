//! How strings from outside (names a hypervisor, a scenario or Pacemaker
//! chose, their messages, the operator's typing) are shown: one definition
//! for the CLI, the view and every sentence, so that a name reads the same
//! everywhere and two names that differ never look alike.
//!
//! - [`escape`]: every control character (C0, DEL, C1), every Unicode
//!   format character (general category Cf: bidi overrides and isolates,
//!   zero-width spaces and joiners, the soft hyphen, the byte-order mark,
//!   tag characters…) and the line and paragraph separators are written as
//!   `\xNN` (below 0x80) or `\u{N}` (the code point in hex). What comes out
//!   is printable and has one column per character for ASCII input, so
//!   layouts measured on it hold. Escaping twice changes nothing, so text
//!   that holds an escaped name may be escaped again as a whole.
//! - [`shell_word`] / [`shell_line`]: a command shown for the operator to
//!   copy, its words quoted for a POSIX shell where they need it.

use std::borrow::Cow;

/// Unicode general category Cf (format characters), Unicode 16.0: a sorted
/// table of inclusive ranges. The test below checks it against the Unicode
/// tables of `regex-syntax`.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is a Unicode format character (general category Cf).
pub fn is_format(c: char) -> bool {
    let c = c as u32;
    FORMAT
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Whether [`escape`] writes `c` as an escape: a control character, a
/// format character, or the line or paragraph separator (U+2028, U+2029).
pub fn is_escaped(c: char) -> bool {
    // Below the soft hyphen (the first format character): controls only.
    if c < '\u{ad}' {
        return c.is_control();
    }
    is_format(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// `s` on one line with every character of [`is_escaped`] (line breaks
/// included) written as `\xNN` or `\u{N}`.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_if(s, is_escaped)
}

/// Like [`escape`], but `\n` stays (for text of several lines).
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_if(s, |c| c != '\n' && is_escaped(c))
}

fn escape_if(s: &str, bad: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&bad) {
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

/// Whether what the operator typed names `name`: the name itself, or the
/// name as it is shown when it holds characters [`escape`] shows escaped
/// (which cannot be typed, or are invisible): `web\u{200b}` names the VM
/// "web" + a zero-width space.
pub fn typed_names(typed: &str, name: &str) -> bool {
    typed == name || matches!(escape(name), Cow::Owned(shown) if shown == typed)
}

/// `s` as one word for a POSIX shell: as it is when it needs no quoting,
/// else in single quotes (a `'` inside as `'\''`). A word that holds a
/// character [`escape`] would change is written `$'…'` with its bytes as
/// `\xHH` (POSIX.1-2024; bash, zsh, ksh): it stays printable and still
/// names exactly that word when pasted.
pub fn shell_word(s: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    if s.chars().any(is_escaped) {
        let mut o = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => o.push_str("\\\\"),
                '\'' => o.push_str("\\'"),
                c if is_escaped(c) => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        o.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => o.push(c),
            }
        }
        o.push('\'');
        return Cow::Owned(o);
    }
    Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
}

/// A command line for a POSIX shell: each word through [`shell_word`].
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_as_it_is() {
        for s in ["web-01", "hv 02 · ⇄ 3 GiB", "ünïcødé 数据库", ""] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(escape(s), s);
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        // C0 (ASCII) as \xNN, DEL too, C1 as \u{NN}.
        assert_eq!(escape("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(escape("x\ny\x7f\r\t\0"), "x\\x0ay\\x7f\\x0d\\x09\\x00");
        assert_eq!(escape("c\u{9b}2Jd"), "c\\u{9b}2Jd");
        assert_eq!(escape("\u{85}"), "\\u{85}");
        // Several lines: only the line breaks stay.
        assert_eq!(escape_lines("x\ny\tz\u{9b}"), "x\ny\\x09z\\u{9b}");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        // Overrides and embeddings U+202A–U+202E, isolates U+2066–U+2069,
        // the marks U+200E/U+200F and the Arabic letter mark U+061C.
        assert_eq!(escape("exe.\u{202e}gpj"), "exe.\\u{202e}gpj");
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            assert_eq!(escape(&c.to_string()), format!("\\u{{{:x}}}", c as u32));
        }
        assert_eq!(
            escape("\u{200e}\u{200f}\u{61c}"),
            "\\u{200e}\\u{200f}\\u{61c}"
        );
    }

    #[test]
    fn invisible_characters_are_escaped() {
        // Zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen.
        assert_eq!(escape("web\u{200b}"), "web\\u{200b}");
        assert_eq!(escape("a\u{200c}b\u{200d}c"), "a\\u{200c}b\\u{200d}c");
        assert_eq!(escape("\u{2060}\u{feff}"), "\\u{2060}\\u{feff}");
        assert_eq!(escape("db\u{ad}01"), "db\\u{ad}01");
        // Tag characters (astral) spell hidden ASCII.
        assert_eq!(escape("x\u{e0041}"), "x\\u{e0041}");
        // Line and paragraph separators break lines in some terminals.
        assert_eq!(escape("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
        assert_eq!(escape_lines("a\u{2028}b"), "a\\u{2028}b");
    }

    #[test]
    fn names_that_look_alike_are_told_apart() {
        let names = [
            "web",
            "web\u{200b}",
            "w\u{200d}eb",
            "\u{202e}bew",
            "web\u{ad}",
        ];
        let shown: Vec<_> = names.iter().map(|n| escape(n)).collect();
        for (i, a) in shown.iter().enumerate() {
            for b in &shown[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn escaping_twice_changes_nothing_and_leaves_nothing_to_escape() {
        let s = "a\x1b\u{9b}\u{200b}\u{202e}\u{e0041}\u{2028}\n";
        let once = escape(s).into_owned();
        assert_eq!(escape(&once), once);
        assert!(!once.chars().any(is_escaped), "{once}");
        assert!(once.is_ascii(), "one column per character: {once}");
    }

    /// Every character: escaped exactly when it is a control (Cc), a format
    /// character (Cf) or a line or paragraph separator (Zl, Zp), as the
    /// Unicode tables of `regex-syntax` have them.
    #[test]
    fn escaped_means_cc_cf_zl_zp() {
        let class = |p: &str| -> Vec<(u32, u32)> {
            use regex_syntax::hir::{Class, HirKind};
            let hir = regex_syntax::parse(p).unwrap();
            let HirKind::Class(Class::Unicode(cls)) = hir.kind() else {
                panic!("{hir:?}");
            };
            cls.ranges()
                .iter()
                .map(|r| (r.start() as u32, r.end() as u32))
                .collect()
        };
        let want = class(r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]");
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let x = c as u32;
            let expected = want.iter().any(|&(lo, hi)| (lo..=hi).contains(&x));
            assert_eq!(is_escaped(c), expected, "U+{x:04X}");
        }
    }

    /// The range table is general category Cf, no more and no less, as
    /// the Unicode tables of `regex-syntax` have it.
    #[test]
    fn the_format_table_is_unicode_cf() {
        use regex_syntax::hir::{Class, HirKind};
        let hir = regex_syntax::parse(r"\p{Cf}").unwrap();
        let HirKind::Class(Class::Unicode(cls)) = hir.kind() else {
            panic!("{hir:?}");
        };
        let want: Vec<(u32, u32)> = cls
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect();
        assert_eq!(FORMAT, &want[..]);
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let cf = want.iter().any(|&(lo, hi)| (lo..=hi).contains(&(c as u32)));
            assert_eq!(is_format(c), cf, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn a_name_is_typed_as_it_is_or_as_it_is_shown() {
        assert!(typed_names("web", "web"));
        assert!(typed_names("web\u{200b}", "web\u{200b}"));
        assert!(typed_names("web\\u{200b}", "web\u{200b}"));
        assert!(!typed_names("web", "web\u{200b}"));
        assert!(!typed_names("web\\u{200b}", "web"));
        // A name without such characters is typed only as it is.
        assert!(!typed_names("web\\x2d01", "web-01"));
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("web-01"), "web-01");
        assert_eq!(
            shell_word("root@hv1:2222/a,b=c%d+e_f"),
            "root@hv1:2222/a,b=c%d+e_f"
        );
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("my vm"), "'my vm'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("a;rm -rf ~"), "'a;rm -rf ~'");
        assert_eq!(shell_word("$(x)`y`"), "'$(x)`y`'");
        assert_eq!(shell_word("db-ü"), "'db-ü'");
        assert_eq!(
            shell_line(&["virsh", "-c", "qemu:///system", "console", "my vm"]),
            "virsh -c qemu:///system console 'my vm'"
        );
    }

    #[test]
    fn shell_words_with_invisible_characters_name_their_bytes() {
        assert_eq!(shell_word("web\u{200b}"), "$'web\\xe2\\x80\\x8b'");
        assert_eq!(shell_word("c\u{9b}2Jd"), "$'c\\xc2\\x9b2Jd'");
        assert_eq!(shell_word("a'b\\c\x1b"), "$'a\\'b\\\\c\\x1b'");
        // Shown as it is: nothing in it is escaped again.
        let w = shell_word("x\u{202e}y'\n").into_owned();
        assert_eq!(escape(&w), w);
    }

    /// A real shell reads each quoted word back as exactly the word.
    #[test]
    fn a_shell_reads_the_words_back() {
        let words = [
            "web-01",
            "my vm",
            "it's",
            "a;b|c&d",
            "$(x)`y`\\z",
            "web\u{200b}",
            "c\u{9b}2Jd",
            "q'\\\u{202e}",
            "",
        ];
        let line = shell_line(&words);
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("printf '%s\\0' {line}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}");
        let got: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_terminator('\0')
            .collect();
        assert_eq!(got, words, "{line}");
    }
}
