//! A keyboard move: the target nodes ranked by the prediction (best
//! first), refused ones below with their reason, narrowed by what is typed.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use super::theme;
use super::widgets::{escape, fit, put, shown_line};
use crate::app::drag::{Choice, Drag};
use crate::app::{HitMap, LineEdit, Target, View};
use crate::cluster::units;

pub fn render(app: &crate::app::App, d: &Drag, area: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    let allowed = d.ranked.iter().filter(|c| c.prediction.is_some()).count();
    let refused = d.ranked.len() - allowed;
    let block = Block::bordered()
        .border_style(theme::accent())
        .title(shown_line(Line::from(vec![
            Span::styled(format!(" move {} ", d.vm), theme::title()),
            Span::raw(format!(
                "from {}: {allowed} allowed, {refused} refused ",
                d.from
            )),
        ])));
    let inner = block.inner(area);
    block.render(area, buf);
    hit.push(inner, Target::List(View::Cluster));
    if inner.height < 3 || inner.width < 20 {
        return;
    }
    put(
        buf,
        inner,
        0,
        narrow_line(&d.query, d.shown.len(), d.ranked.len()),
    );
    let w = inner.width as usize;
    let name_w = d
        .ranked
        .iter()
        .map(|c| escape(d.name_of(c)).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(6, 20);
    let header = format!(
        "  {:<name_w$} {:<11} {:>9} {:>8} {:>10} {:>10}",
        "NODE", "PREDICTION", "ROUNDS", "TIME", "DOWNTIME", "FREE AFTER"
    );
    put(buf, inner, 1, Line::styled(fit(&header, w), theme::title()));
    let mut rows = (inner.height - 2) as usize;
    // When the refused rows are off screen, one line says how many and why.
    let first_refused = d
        .shown
        .iter()
        .position(|&i| d.ranked[i].prediction.is_none());
    if let Some(f) = first_refused
        && f + 1 > rows
        && rows >= 3
    {
        rows -= 1;
        let n: usize = d.shown.len() - f;
        let why: Vec<String> = d.refused.iter().map(|(s, k)| format!("{k} {s}")).collect();
        put(
            buf,
            inner,
            inner.height - 1,
            Line::styled(
                fit(
                    &format!("✗ {n} refused further down: {}", why.join(", ")),
                    w,
                ),
                theme::dim(),
            ),
        );
    }
    if d.shown.is_empty() {
        put(
            buf,
            inner,
            2,
            Line::styled(
                format!("  no node matches {:?}", d.query.text),
                theme::dim(),
            ),
        );
        return;
    }
    let sel = d.selected_row().unwrap_or(0);
    let first = sel.saturating_sub(rows.saturating_sub(1));
    for (r, &i) in d.shown.iter().skip(first).take(rows).enumerate() {
        let c = &d.ranked[i];
        let name = d.name_of(c);
        let max = app.settings.defaults.max_downtime_ms;
        let above = c.prediction.as_ref().is_some_and(|p| p.above_limit(max));
        let text = row_text(d, c, name_w, above);
        let style = if d.over.as_deref() == Some(name) {
            theme::selected()
        } else if above && c.tier() == 0 {
            theme::warn()
        } else {
            tier_style(c)
        };
        let y = inner.y + 2 + r as u16;
        buf.set_string(inner.x, y, fit(&text, w), style);
        hit.push(
            Rect::new(inner.x, y, inner.width, 1),
            Target::Node(name.to_string()),
        );
    }
    if d.shown.len() > rows {
        let text = format!(
            " {}–{} of {} ",
            first + 1,
            (first + rows).min(d.shown.len()),
            d.shown.len()
        );
        let tw = text.chars().count() as u16;
        if area.width > tw + 2 {
            buf.set_string(area.right() - tw - 1, area.bottom() - 1, text, theme::dim());
        }
    }
}

/// One ranked target; `above`: its expected downtime is above the limit
/// (marked ⚠ before it).
fn row_text(d: &Drag, c: &Choice, name_w: usize, above: bool) -> String {
    let name = fit(d.name_of(c), name_w);
    match (&c.prediction, &d.verdicts[c.node].1) {
        (Some(p), verdict) => {
            let figures = if p.converges {
                format!(
                    "{:>9} {:>8} {:>10}",
                    format!("{} round{}", p.rounds, if p.rounds == 1 { "" } else { "s" }),
                    units::millis(p.total_ms),
                    format!(
                        "{}≈{}",
                        if above { "⚠" } else { "" },
                        units::millis(p.downtime_ms)
                    ),
                )
            } else {
                format!("{:>9} {:>8} {:>10}", "—", "—", "—")
            };
            let free = if c.free_after >= 0 {
                units::bytes(c.free_after as u64)
            } else {
                format!("-{}", units::bytes(c.free_after.unsigned_abs()))
            };
            // ✓ converges; ⚠ allowed, but the prediction (or a should
            // rule the move breaks) has a catch.
            let mark = if c.tier() == 0 && !above && c.breaks == 0 {
                "✓"
            } else {
                "⚠"
            };
            let rules: Vec<&str> = verdict
                .as_ref()
                .map(|pl| pl.breaks.iter().map(|b| b.rule.as_str()).collect())
                .unwrap_or_default();
            let breaks = if rules.is_empty() {
                String::new()
            } else {
                format!("  breaks {}", rules.join(", "))
            };
            format!(
                "{mark} {name} {:<11} {figures} {free:>10}{breaks}",
                c.verdict_word()
            )
        }
        (None, Err(r)) => format!("✗ {name} {r}"),
        (None, Ok(_)) => format!("? {name}"),
    }
}

fn tier_style(c: &Choice) -> Style {
    if c.breaks > 0 && c.prediction.is_some() {
        return theme::warn();
    }
    match c.tier() {
        0 => theme::good(),
        1 | 2 => theme::warn(),
        3 => theme::bad(),
        _ => theme::dim(),
    }
}

/// The narrowing line of a pick list: what was typed, with its cursor, and
/// how many of the `total` rows match (`shown`).
pub(super) fn narrow_line(query: &LineEdit, shown: usize, total: usize) -> Line<'static> {
    let (before, after) = query.split();
    let count = if query.text.is_empty() {
        "type part of a name to narrow".to_string()
    } else {
        format!("{shown} of {total} match")
    };
    Line::from(vec![
        Span::styled("narrow: ", theme::dim()),
        Span::raw(format!("{before}▏{after}")),
        Span::styled(format!("  {count}"), theme::dim()),
    ])
}
