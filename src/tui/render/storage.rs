//! Storage moves: the picker (the disk, then the volume: allowed ones
//! first, refused ones below with why), the message line under it, and the
//! lines of running moves for the panels that show running work.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;

use super::widgets::{escape, fit, put};
use super::{Message, theme};
use crate::app::{App, DiskPick};
use crate::cluster::StorageMove;

/// The picker, over the middle of the screen (header, message line and
/// footer stay visible).
pub fn picker(p: &DiskPick, area: Rect, buf: &mut Buffer) {
    let (ok, refused) = p.counts();
    let title = format!(" move a disk of {} (on {}) ", p.vm, p.node);
    let prompt = match &p.disk {
        None => format!("which disk? {} disks", p.rows.len()),
        Some(d) => {
            let size = p
                .rows
                .iter()
                .find_map(|r| r.verdict.as_ref().ok().copied())
                .map_or(String::new(), |b| {
                    format!(" ({})", crate::cluster::units::bytes(b))
                });
            format!("the disk on {d}{size} goes to: {ok} allowed, {refused} refused")
        }
    };
    let w = area.width.saturating_sub(2).min(84);
    let rows = p.shown.len().max(1) as u16;
    let h = (rows + 4).min(area.height.saturating_sub(6).max(5));
    let inner = super::dialogs::dialog(area, buf, w, h, &title, theme::accent());
    if inner.height < 3 {
        return;
    }
    put(buf, inner, 0, Line::styled(prompt, theme::dim()));
    put(
        buf,
        inner,
        1,
        super::targets::narrow_line(&p.query, p.shown.len(), p.rows.len()),
    );
    if p.shown.is_empty() {
        put(
            buf,
            inner,
            2,
            Line::styled(
                format!("  nothing matches {:?}", p.query.text),
                theme::dim(),
            ),
        );
        return;
    }
    let width = inner.width as usize;
    let name_w = p
        .rows
        .iter()
        .map(|r| escape(&r.name).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(6, 24);
    let space = (inner.height - 2) as usize;
    let first = p.sel.saturating_sub(space.saturating_sub(1));
    for (r, &i) in p.shown.iter().skip(first).take(space).enumerate() {
        let row = &p.rows[i];
        let (mark, rest, style) = match (&p.disk, &row.verdict) {
            (None, _) => (" ", row.note.clone(), theme::title()),
            (Some(_), Ok(_)) => ("✓", row.note.clone(), theme::good()),
            (Some(_), Err(why)) => ("✗", why.clone(), theme::dim()),
        };
        let text = format!("{mark} {}  {rest}", fit(&row.name, name_w));
        let style = if first + r == p.sel {
            theme::selected()
        } else {
            style
        };
        buf.set_string(inner.x, inner.y + 2 + r as u16, fit(&text, width), style);
    }
    if p.shown.len() > space {
        let text = format!(
            " {}–{} of {} ",
            first + 1,
            (first + space).min(p.shown.len()),
            p.shown.len()
        );
        let tw = text.chars().count() as u16;
        let r = super::widgets::centered(area, w, h);
        if r.width > tw + 2 {
            buf.set_string(r.right() - tw - 1, r.bottom() - 1, text, theme::dim());
        }
    }
}

/// The message line while the picker is open: the selected row in full.
pub(super) fn message(app: &App, p: &DiskPick) -> Message {
    let keys = &app.settings.keys;
    let enter = keys.first_key(crate::app::Action::Confirm);
    match (p.selected(), &p.disk) {
        (None, _) => Message::Wrapped(
            format!(
                "nothing matches {:?}; Backspace widens the list",
                p.query.text
            ),
            theme::dim(),
        ),
        (Some(r), None) => Message::Wrapped(
            format!(
                "the disk of {} on {} ({}) — {enter} picks it, then its volume",
                p.vm, r.name, r.note
            ),
            theme::accent(),
        ),
        (Some(r), Some(disk)) => match &r.verdict {
            Ok(bytes) => Message::Wrapped(
                format!(
                    "✓ {}'s disk on {disk} ({}) → {} — {enter} to confirm",
                    p.vm,
                    crate::cluster::units::bytes(*bytes),
                    r.name
                ),
                theme::good(),
            ),
            Err(why) => Message::Wrapped(
                format!("✗ {}'s disk on {disk} → {}: {why}", p.vm, r.name),
                theme::bad(),
            ),
        },
    }
}

/// Lines for the running storage moves, for the panels that list running
/// migrations.
pub fn running_lines(app: &App) -> Vec<Line<'static>> {
    app.running_storage_moves()
        .into_iter()
        .map(|m: &StorageMove| Line::styled(format!("⇅ {}", m.line()), theme::accent()))
        .collect()
}
