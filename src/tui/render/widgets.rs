//! Small drawing helpers shared by the views.
//!
//! Names and sentences from outside are shown escaped, the way the CLI
//! shows them (`cluster::text::escape`): ratatui would drop a control
//! character silently and pass a format character (a bidi override, a
//! zero-width space) to the terminal, so that `c\u{9b}2Jd` read "c2Jd"
//! and "web\u{200b}" read "web". [`put`], [`fit`], [`wrap`] and
//! [`shown_line`] escape what they draw; a view that measures text to lay
//! it out (a column, a card label) or draws it some other way (a block
//! title, a paragraph, `Buffer::set_string`) escapes it first. Escaping
//! twice changes nothing, so text may pass through more than one.

use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// A name or sentence as every output shows it (one definition, in `cluster`).
pub use crate::cluster::text::escape;
use crate::cluster::text::{escape_lines, is_escaped};
/// `▕████░░░░▏` (one definition, in `units`: the detail text is made in `app`).
pub use crate::cluster::units::bar;

/// Writes a line clipped to `area`'s first row at `y` offset, escaped.
pub fn put(buf: &mut Buffer, area: Rect, dy: u16, line: Line) {
    if dy < area.height && area.width > 0 {
        buf.set_line(area.x, area.y + dy, &shown_line(line), area.width);
    }
}

/// `line` with the text of every span escaped (see [`escape`]).
pub fn shown_line(line: Line<'_>) -> Line<'_> {
    if !line.spans.iter().any(|s| s.content.chars().any(is_escaped)) {
        return line;
    }
    let spans = line
        .spans
        .into_iter()
        .map(|s| {
            let content = match escape(&s.content) {
                Cow::Borrowed(_) => s.content,
                Cow::Owned(o) => Cow::Owned(o),
            };
            Span { content, ..s }
        })
        .collect();
    Line { spans, ..line }
}

/// Every line escaped: for a paragraph, before it is measured.
pub fn shown_lines<'a>(lines: impl IntoIterator<Item = Line<'a>>) -> Vec<Line<'a>> {
    lines.into_iter().map(shown_line).collect()
}

/// Pads or cuts `s` (escaped) to exactly `w` columns (by chars).
pub fn fit(s: &str, w: usize) -> String {
    let s = escape(s);
    let n = s.chars().count();
    if n > w {
        if w == 0 {
            return String::new();
        }
        let mut t: String = s.chars().take(w - 1).collect();
        t.push('…');
        t
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

/// Word-wraps `text` (escaped) to lines of at most `width` characters (by
/// chars); words longer than a line are cut across lines. `\n` starts a
/// new line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let text = escape_lines(text);
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut len = 0;
        for word in para.split(' ') {
            let mut word: Vec<char> = word.chars().collect();
            if len > 0 && len + 1 + word.len() > width {
                out.push(std::mem::take(&mut line));
                len = 0;
            }
            if len > 0 {
                line.push(' ');
                len += 1;
            }
            while len + word.len() > width {
                let take = width - len;
                line.extend(word.drain(..take));
                out.push(std::mem::take(&mut line));
                len = 0;
            }
            len += word.len();
            line.extend(word);
        }
        out.push(line);
    }
    out
}

/// One VM's row: the text in the VM's state style (reverse video when
/// selected), and its place in the hit map for the mouse.
pub fn vm_row(
    buf: &mut Buffer,
    hit: &mut crate::app::HitMap,
    area: Rect,
    y: u16,
    text: &str,
    vm: &crate::cluster::Vm,
    selected: bool,
) {
    let style = if selected {
        super::theme::selected()
    } else {
        super::theme::vm_style(vm)
    };
    buf.set_string(area.x, y, fit(text, area.width as usize), style);
    hit.push(
        Rect::new(area.x, y, area.width, 1),
        crate::app::Target::Vm(vm.name.clone()),
    );
}

/// "key desc" pairs for the footer.
pub fn key_hints(pairs: &[(String, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, d) in pairs {
        spans.push(Span::styled(k.clone(), super::theme::key()));
        spans.push(Span::raw(format!(" {d}  ")));
    }
    Line::from(spans)
}

/// A rectangle of `w`×`h` centred in `area` (clamped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Fills `area` with spaces in `style` (to clear what is under a dialog).
pub fn clear(buf: &mut Buffer, area: Rect, style: Style) {
    ratatui::widgets::Widget::render(ratatui::widgets::Clear, area, buf);
    buf.set_style(area, style);
}

/// A list's scroll position on the bottom border of its `block` area:
/// ` 21–40 of 200 ` when rows `first..first + shown` of `total` show
/// (nothing when all of them do).
pub fn scroll_mark(buf: &mut Buffer, block: Rect, first: usize, shown: usize, total: usize) {
    if total <= shown || block.height < 2 {
        return;
    }
    let text = format!(" {}–{} of {total} ", first + 1, (first + shown).min(total));
    let tw = text.chars().count() as u16;
    if block.width > tw + 2 {
        buf.set_string(
            block.right() - tw - 1,
            block.bottom() - 1,
            text,
            super::theme::dim(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_fit() {
        assert_eq!(bar(0.5, 4), "▕██░░▏");
        assert_eq!(bar(2.0, 2), "▕██▏");
        assert_eq!(bar(f64::NAN, 2), "▕░░▏");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit("ab", 0), "");
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("ab cd ef", 5), ["ab cd", "ef"]);
        assert_eq!(wrap("abcdefg h", 3), ["abc", "def", "g h"]);
        assert_eq!(wrap("a\nb", 10), ["a", "b"]);
        assert_eq!(wrap("", 4), [""]);
        let long = "node hv-04 has 18.0 GiB free but batch-etl needs 32.0 GiB";
        let lines = wrap(long, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), long, "nothing lost");
    }
}
