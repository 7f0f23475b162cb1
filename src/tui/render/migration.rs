//! The migration view: the list of migrations and, for the selected one,
//! the six-step timeline, live figures, the downtime gauge, a chart of every
//! round and the round table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::widgets::{bar, escape, fit, put, shown_line};
use super::{diskcopy, theme};
use crate::app::{App, HitMap, Target};
use crate::cluster::{Migration, Outcome, Step, units};
use crate::plan;

pub fn render(app: &App, area: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    let all = app.migrations_newest_first();
    if all.is_empty() {
        let msg = if app.settings.read_only {
            " no migrations yet (read-only: vmshift starts none)".to_string()
        } else {
            format!(
                " no migrations yet: select a VM in the cluster view and press {} (or drag it onto a node)",
                app.settings.keys.first_key(crate::app::Action::Move)
            )
        };
        put(buf, area, 1, Line::from(msg));
        return;
    }
    let sel = app.selected_migration().map(|m| m.id);
    let (list_area, detail_area) = if area.width >= 110 {
        let [l, d] = Layout::horizontal([Constraint::Length(34), Constraint::Min(40)]).areas(area);
        (l, d)
    } else {
        let h = (all.len() as u16).clamp(1, 3);
        let [l, d] = Layout::vertical([Constraint::Length(h), Constraint::Min(5)]).areas(area);
        (l, d)
    };
    // The list, the selected one kept in view.
    let rows = list_area.height as usize;
    let pos = all.iter().position(|m| Some(m.id) == sel).unwrap_or(0);
    let first = pos.saturating_sub(rows.saturating_sub(1));
    for (r, m) in all.iter().skip(first).take(rows).enumerate() {
        let (glyph, word) = status(m);
        let text = format!("{glyph} #{} {} {}→{} {word}", m.id, m.vm, m.from, m.to);
        let style = if Some(m.id) == sel {
            theme::selected()
        } else {
            status_style(m)
        };
        let y = list_area.y + r as u16;
        buf.set_string(list_area.x, y, fit(&text, list_area.width as usize), style);
        hit.push(
            Rect::new(list_area.x, y, list_area.width, 1),
            Target::Migration(m.id),
        );
    }
    if let Some(m) = app.selected_migration() {
        detail(m, detail_area, buf);
    }
}

fn status(m: &Migration) -> (&'static str, String) {
    match &m.outcome {
        Some(Outcome::Completed) => (
            "✓",
            format!(
                "done {}",
                units::millis(m.actual_downtime_ms.unwrap_or(0.0))
            ),
        ),
        Some(Outcome::Aborted { .. }) => ("✗", "aborted".into()),
        Some(Outcome::Failed { .. }) => ("✖", "failed".into()),
        None if m.unanswered.is_some() => ("?", "UNKNOWN".into()),
        None if m.stalled => ("⚠", format!("stalled r{}", m.rounds.len())),
        None if diskcopy::copying(m) => ("▶", "disk copy".into()),
        None => ("▶", format!("{} r{}", m.step.label(), m.rounds.len())),
    }
}

fn status_style(m: &Migration) -> Style {
    match &m.outcome {
        Some(Outcome::Completed) => theme::good(),
        Some(_) => theme::bad(),
        None if m.stalled || m.unanswered.is_some() => theme::warn(),
        None => theme::accent(),
    }
}

/// Time left, from the model's live re-prediction; `None` when it does not
/// expect the migration to finish.
pub fn eta_ms(m: &Migration) -> Option<f64> {
    if m.is_finished() {
        return Some(0.0);
    }
    let f = m.live.as_ref()?;
    f.converges
        .then(|| (f.total_ms.value - m.elapsed_ms).max(0.0))
}

pub(super) fn detail(m: &Migration, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered()
        .border_style(theme::dim())
        .title(shown_line(Line::from(vec![
            Span::styled(format!(" {} ", m.vm), theme::title()),
            Span::raw(format!("{} → {} ", m.from, m.to)),
        ])));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 4 {
        return;
    }
    let narrow = inner.width < 100;
    let mut y = 0u16;
    put(buf, inner, y, status_line(m));
    y += 1;
    put(buf, inner, y, steps_line(m, narrow));
    y += 1;
    if let Some(l) = diskcopy::line(m) {
        put(buf, inner, y, l);
        y += 1;
    }
    put(buf, inner, y, figures_line(m));
    y += 1;
    put(buf, inner, y, downtime_gauge(m, inner.width));
    y += 1;
    if let Some(now) = m.live.as_ref().and_then(|f| f.downtime_now_ms) {
        put(
            buf,
            inner,
            y,
            Line::styled(
                format!("downtime if paused now {}", units::millis(now)),
                theme::dim(),
            ),
        );
        y += 1;
    }
    if let Some((text, style)) = note(m) {
        // All of it, as far as the view has room above the chart.
        let need = super::widgets::wrap(&text, inner.width as usize).len() as u16;
        let h = need.min(inner.height.saturating_sub(y + 4));
        Paragraph::new(Line::styled(escape(&text).into_owned(), style))
            .wrap(Wrap { trim: true })
            .render(Rect::new(inner.x, inner.y + y, inner.width, h), buf);
        y += h;
    }
    let rest = Rect::new(
        inner.x,
        inner.y + y,
        inner.width,
        inner.height.saturating_sub(y),
    );
    if rest.height < 3 {
        return;
    }
    let chart_h = (rest.height / 2).clamp(3, 10);
    let [chart_area, table_area] =
        Layout::vertical([Constraint::Length(chart_h), Constraint::Min(1)]).areas(rest);
    chart(m, chart_area, buf);
    table(m, table_area, buf);
}

/// Status, elapsed, ETA and bytes sent.
fn status_line(m: &Migration) -> Line<'static> {
    let (glyph, word) = status(m);
    let eta = match eta_ms(m) {
        _ if m.is_finished() => String::new(),
        Some(ms) => format!("   ETA {}", units::millis(ms)),
        None => "   ETA — (not converging)".into(),
    };
    Line::from(vec![
        Span::styled(format!("{glyph} {word}"), status_style(m)),
        Span::raw(format!(
            "   elapsed {}{eta}   sent {}",
            units::millis(m.elapsed_ms),
            units::bytes(m.transferred_bytes)
        )),
    ])
}

/// The six steps, the current one marked.
fn steps_line(m: &Migration, narrow: bool) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, s) in Step::ALL.iter().enumerate() {
        // While the disks copy, pre-copy waits for them.
        let waiting = *s == Step::PreCopy && diskcopy::copying(m);
        let started = m.step_started_ms[i].is_some() && !waiting;
        let current = *s == m.step && !m.is_finished() && !waiting;
        let done = started && !current && (m.outcome == Some(Outcome::Completed) || *s < m.step);
        let mark = if current {
            "▶"
        } else if done {
            "✓"
        } else if started {
            "✗"
        } else {
            " "
        };
        let label = if narrow { short_step(*s) } else { s.label() };
        let style = if current {
            theme::selected()
        } else if done {
            theme::good()
        } else {
            theme::dim()
        };
        spans.push(Span::styled(format!("{}{mark}{label}", i + 1), style));
        spans.extend(diskcopy::phase(m, *s, narrow).unwrap_or_default());
        if i < 5 {
            spans.push(Span::styled(" › ", theme::dim()));
        }
    }
    Line::from(spans)
}

/// Live figures: dirty rate, bandwidth and its limit, throttle, bytes left.
fn figures_line(m: &Migration) -> Line<'static> {
    let limit_bw = m
        .options
        .bandwidth_bps
        .map_or("link".to_string(), units::rate);
    Line::from(format!(
        "dirty {}  bw {} (limit {limit_bw})  throttle {}%  left {}{}",
        dirty_text(m),
        units::rate(m.bandwidth_bps),
        m.throttle_pct,
        units::bytes(m.remaining_bytes),
        if m.postcopy_active { "  POST-COPY" } else { "" }
    ))
}

/// Downtime gauge: the actual downtime once known; before that what the
/// model expects at the switchover (what a pause now would cost goes on a
/// line of its own). No prediction after an abort or a failure.
fn downtime_gauge(m: &Migration, width: u16) -> Line<'static> {
    let limit = m.options.max_downtime_ms as f64;
    let (label, value, text) = match (m.actual_downtime_ms, &m.live) {
        (Some(a), _) => ("downtime actual", Some(a), units::millis(a)),
        (None, Some(f)) if f.converges => {
            let d = f.downtime_ms;
            (
                "downtime at switchover",
                Some(d.value),
                format!(
                    "≈ {}{}",
                    units::millis(d.value),
                    plan::range_text(d.lo, d.hi, units::millis)
                ),
            )
        }
        (None, Some(_)) => ("downtime at switchover", None, "— not converging".into()),
        (None, None) if m.is_finished() => ("downtime", None, "— no switchover".into()),
        (None, None) => ("downtime", None, "—".into()),
    };
    // OVER once the first pass is done and the model still expects it
    // (or the actual one was); before that, an expectation above the
    // limit is a warning.
    let above = value.is_some_and(|v| v > limit);
    let over = match m.actual_downtime_ms {
        Some(a) => a > limit,
        None => !m.rounds.is_empty() && above,
    };
    let (mark, style) = if over {
        (" OVER", theme::bad())
    } else if above {
        (" ⚠ above", theme::warn())
    } else {
        ("", theme::good())
    };
    let head = format!("{label} {text} ");
    let tail = format!(" limit {} ms{mark}", m.options.max_downtime_ms);
    let gw = (width as usize)
        .saturating_sub(head.chars().count() + tail.chars().count() + 2)
        .clamp(4, 30);
    Line::from(vec![
        Span::raw(head),
        Span::styled(bar(value.unwrap_or(0.0) / limit.max(1.0), gw), style),
        Span::styled(tail, if above { style } else { Style::new() }),
    ])
}

/// Stall flag with advice, or the outcome's reason.
fn note(m: &Migration) -> Option<(String, Style)> {
    match &m.outcome {
        Some(Outcome::Completed) => None,
        Some(o) => Some((o.reason().unwrap_or("").to_string(), theme::bad())),
        None if m.unanswered.is_some() => m
            .unanswered_sentence()
            .map(|u| (format!("? {u}"), theme::warn())),
        None if m.stalled => Some((
            format!(
                "⚠ STALLED: rounds no longer shrink. {}",
                crate::app::log::stall_advice(m)
            ),
            theme::warn(),
        )),
        None => None,
    }
}

fn short_step(s: Step) -> &'static str {
    match s {
        Step::PrepareTarget => "prepare",
        Step::PreCopy => "pre-copy",
        Step::Pause => "pause",
        Step::FinalCopy => "final",
        Step::ResumeOnTarget => "resume",
        Step::CleanUpSource => "clean up",
    }
}

/// The dirty rate: libvirt (and the simulator) report none before the
/// first pass ends, and a 0 then is not a measurement.
fn dirty_text(m: &Migration) -> String {
    if m.rounds.is_empty() && m.dirty_bps == 0 {
        if m.is_finished() {
            "never reported".into()
        } else {
            "not reported yet".into()
        }
    } else {
        units::rate(m.dirty_bps)
    }
}

/// Every round: █ bytes sent, ▒ bytes still dirty after it.
fn chart(m: &Migration, area: Rect, buf: &mut Buffer) {
    let title = " rounds: █ sent  ▒ still dirty ";
    put(
        buf,
        area,
        0,
        Line::styled(fit(title, area.width as usize), theme::dim()),
    );
    let plot = Rect::new(area.x, area.y + 1, area.width, area.height - 1);
    if m.rounds.is_empty() || plot.height < 2 {
        let text = if !m.rounds.is_empty() {
            String::new()
        } else if m.is_finished() {
            "  no round completed".into()
        } else if diskcopy::copying(m) {
            "  the rounds begin once the disks are copied".into()
        } else if m.step == Step::PreCopy && m.current_round_sent > 0 {
            format!(
                "  first pass: {} of {} sent (the chart starts when it ends)",
                units::bytes(m.current_round_sent),
                units::bytes(m.memory)
            )
        } else {
            "  waiting for the first pass…".into()
        };
        put(buf, plot, 0, Line::styled(text, theme::dim()));
        return;
    }
    let axis_w = 10u16;
    let bars_h = plot.height - 1;
    let width = plot.width.saturating_sub(axis_w) as usize;
    let n = m.rounds.len();
    // Columns per round: 3 (sent, dirty, gap), 2, or 1 (dirty over sent).
    let per = if n * 3 <= width {
        3
    } else if n * 2 <= width {
        2
    } else {
        1
    };
    let fit_n = (width / per).max(1);
    let skipped = n.saturating_sub(fit_n);
    let shown = &m.rounds[skipped..];
    let max = shown
        .iter()
        .map(|r| r.bytes_sent.max(r.bytes_dirty))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    put(
        buf,
        plot,
        0,
        Line::styled(
            fit(&units::bytes(max as u64), axis_w as usize),
            theme::dim(),
        ),
    );
    if skipped > 0 {
        put(
            buf,
            plot,
            1,
            Line::styled(
                fit(&format!("«{skipped} earlier"), axis_w as usize),
                theme::dim(),
            ),
        );
    }
    let h = |b: u64| ((b as f64 / max) * bars_h as f64).ceil() as u16;
    for (i, r) in shown.iter().enumerate() {
        let x = plot.x + axis_w + (i * per) as u16;
        let (hs, hd) = (h(r.bytes_sent), h(r.bytes_dirty));
        for dy in 0..bars_h {
            let level = bars_h - dy;
            let y = plot.y + dy;
            if per >= 2 {
                if hs >= level {
                    buf.set_string(x, y, "█", theme::accent());
                }
                if hd >= level {
                    buf.set_string(x + 1, y, "▒", theme::warn());
                }
            } else if hd >= level {
                buf.set_string(x, y, "▒", theme::warn());
            } else if hs >= level {
                buf.set_string(x, y, "█", theme::accent());
            }
        }
        let label = (r.index % 10).to_string();
        buf.set_string(x, plot.y + bars_h, label, theme::dim());
    }
}

/// The round table, newest round last, scrolled to the end.
fn table(m: &Migration, area: Rect, buf: &mut Buffer) {
    let header = format!(
        "{:>5} {:>10} {:>12} {:>12} {:>12} {:>9} {:>8}",
        "round", "sent", "still dirty", "dirty rate", "bandwidth", "time", "throttle"
    );
    put(
        buf,
        area,
        0,
        Line::styled(fit(&header, area.width as usize), theme::title()),
    );
    let rows = area.height.saturating_sub(1) as usize;
    let first = m.rounds.len().saturating_sub(rows);
    for (i, r) in m.rounds.iter().skip(first).enumerate() {
        let text = format!(
            "{:>5} {:>10} {:>12} {:>12} {:>12} {:>9} {:>7}%",
            r.index,
            units::bytes(r.bytes_sent),
            units::bytes(r.bytes_dirty),
            units::rate(r.dirty_bps),
            units::rate(r.bandwidth_bps),
            units::millis(r.duration_ms),
            r.throttle_pct
        );
        put(
            buf,
            area,
            1 + i as u16,
            Line::from(fit(&text, area.width as usize)),
        );
    }
}
