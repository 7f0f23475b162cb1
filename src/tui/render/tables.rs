//! The VM table, the volume reachability matrix and the event log.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use super::theme;
use super::widgets::{escape, fit, put, scroll_mark, shown_line, vm_row, wrap};
use crate::app::nodes::Level;
use crate::app::{App, HitMap, Target, View};
use crate::cluster::{VolumeKind, units};

pub fn vms(app: &App, area: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    let snap = app.snap.as_ref().expect("snapshot");
    let vis = app.visible_vms();
    let title = if app.filter.is_empty() {
        format!(" VMs ({}) ", vis.len())
    } else {
        format!(
            " VMs matching {:?}: {} of {} ",
            app.filter,
            vis.len(),
            snap.vms.len()
        )
    };
    let block = Block::bordered()
        .title(shown_line(Line::from(title)))
        .border_style(theme::dim());
    let inner = block.inner(area);
    block.render(area, buf);
    hit.push(inner, Target::List(View::Vms));
    if inner.height < 2 {
        return;
    }
    let w = inner.width as usize;
    let wide = w >= 100;
    // A VM of a lost node shows when it was last seen as its state
    // (`lost 10:42:07`): the column widens for it.
    let clock = app.clock();
    // A VM with a stale, shut-off copy on another node says so (`+stale`).
    let stale = |v: &crate::cluster::Vm| snap.stale_copies.iter().any(|c| c.vm == v.name);
    let state = |v: &crate::cluster::Vm| match (&v.lost, stale(v)) {
        (Some(l), _) => crate::app::recover::lost_short(l, clock),
        (None, true) => format!("{} +stale", v.state.label()),
        (None, false) => v.state.label().to_string(),
    };
    let any_lost = vis.iter().any(|&i| snap.vms[i].lost.is_some());
    let any_stale = vis.iter().any(|&i| stale(&snap.vms[i]));
    let sw = match (wide, any_lost, any_stale) {
        (_, _, true) => 15,
        (_, true, _) => 13,
        (true, false, false) => 11,
        (false, false, false) => 10,
    };
    // With `!` the last column says why each VM is listed.
    let why = app.problems;
    let header = if wide {
        format!(
            "  {:<16} {:<11} {:<sw$} {:>4} {:>8} {:>5} {:<9} {:>10} {:<3} {}",
            "NAME",
            "NODE",
            "STATE",
            "VCPU",
            "MEMORY",
            "CPU%",
            "WORKLOAD",
            "DIRTY",
            "HA",
            if why { "WHY" } else { "DISKS" }
        )
    } else {
        format!(
            "  {:<14} {:<9} {:<sw$} {:>9} {}",
            "NAME",
            "NODE",
            "STATE",
            "MEMORY",
            if why { "WHY" } else { "WORKLOAD" }
        )
    };
    put(buf, inner, 0, Line::styled(fit(&header, w), theme::title()));
    let rows = (inner.height - 1) as usize;
    let sel = app
        .sel_vm
        .as_ref()
        .and_then(|s| vis.iter().position(|&i| snap.vms[i].name == *s))
        .unwrap_or(0);
    let first = sel.saturating_sub(rows.saturating_sub(1));
    scroll_mark(buf, area, first, rows, vis.len());
    for (r, &i) in vis.iter().skip(first).take(rows).enumerate() {
        let v = &snap.vms[i];
        let text = if wide {
            let disks: Vec<&str> = v.disks.iter().map(|d| d.volume.as_str()).collect();
            format!(
                "{} {:<16} {:<11} {:<sw$} {:>4} {:>8} {:>4.0}% {:<9} {:>10} {:<3} {}",
                theme::vm_mark(v),
                fit(&v.name, 16),
                fit(&v.node, 11),
                state(v),
                v.vcpus,
                units::bytes(v.memory),
                v.cpu_used_pct,
                escape(&v.workload.kind),
                units::rate(v.workload.dirty_bps),
                if snap.managed_vm(&v.name).is_some() {
                    "pcm"
                } else if v.ha {
                    "yes"
                } else {
                    "no"
                },
                if why {
                    app.vm_why(i).unwrap_or_default()
                } else {
                    disks.join(",")
                }
            )
        } else {
            format!(
                "{} {:<14} {:<9} {:<sw$} {:>9} {:<9}",
                theme::vm_mark(v),
                fit(&v.name, 14),
                fit(&v.node, 9),
                state(v),
                units::bytes(v.memory),
                if why {
                    app.vm_why(i).unwrap_or_default()
                } else {
                    escape(&v.workload.kind).into_owned()
                }
            )
        };
        let y = inner.y + 1 + r as u16;
        vm_row(
            buf,
            hit,
            inner,
            y,
            &text,
            v,
            app.sel_vm.as_deref() == Some(v.name.as_str()),
        );
    }
    if vis.is_empty() {
        put(
            buf,
            inner,
            1,
            Line::styled("  no VM matches the filter (Esc clears it)", theme::dim()),
        );
    }
}

/// Volumes × nodes: ● reachable, ◆ owner of a LUN (or the node of a local disk), · not reachable.
pub fn volumes(app: &App, area: Rect, buf: &mut Buffer) {
    let snap = app.snap.as_ref().expect("snapshot");
    let block = Block::bordered()
        .title(" Volumes: ● reachable  ◆ owner  · not reachable ")
        .border_style(theme::dim());
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 2 {
        return;
    }
    let w = inner.width as usize;
    let fixed = 14 + 15 + 22 + 3;
    let col_w = snap
        .nodes
        .iter()
        .map(|n| escape(&n.name).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(3, 8)
        + 1;
    // ←→ scroll the node columns; a label keeps the end of a long name,
    // which tells numbered nodes apart (…de-0042).
    let first_col = app.volume_col.min(snap.nodes.len().saturating_sub(1));
    let more = |shown: usize| snap.nodes.len() > first_col + shown || first_col > 0;
    let mut node_cols = (w.saturating_sub(fixed) / col_w).min(snap.nodes.len() - first_col);
    if more(node_cols) {
        // Room for the "a–b/n ←→" note.
        node_cols = (w.saturating_sub(fixed + 12) / col_w)
            .max(1)
            .min(snap.nodes.len() - first_col);
    }
    let mut header = format!("{:<14}{:<15}{:>22}   ", "VOLUME", "KIND", "USED / CAPACITY");
    for n in snap.nodes.iter().skip(first_col).take(node_cols) {
        header += &format!("{:<col_w$}", fit_end(&n.name, col_w - 1));
    }
    if more(node_cols) {
        header += &format!(
            "{}–{}/{} ←→",
            first_col + 1,
            first_col + node_cols,
            snap.nodes.len()
        );
    }
    put(buf, inner, 0, Line::styled(fit(&header, w), theme::title()));
    let rows = (inner.height - 1) as usize;
    // With `!`, only volumes filled past the warning threshold.
    let limits = app.settings.thresholds.volume;
    let fill =
        |v: &crate::cluster::Volume| limits.level(100.0 * v.used as f64 / v.capacity.max(1) as f64);
    let shown: Vec<_> = snap
        .volumes
        .iter()
        .filter(|v| !app.problems || fill(v) > Level::Ok)
        .collect();
    if shown.is_empty() {
        put(
            buf,
            inner,
            1,
            Line::styled(
                "  no volume is filled past the warning threshold",
                theme::dim(),
            ),
        );
    }
    let first = app.scroll_volumes.min(shown.len().saturating_sub(rows));
    for (r, v) in shown.into_iter().skip(first).take(rows).enumerate() {
        let level = fill(v);
        let mut spans = vec![
            Span::raw(format!("{:<14}{:<15}", fit(&v.name, 13), v.kind.label())),
            Span::styled(
                format!(
                    "{:>22}   ",
                    format!(
                        "{}{} / {}",
                        level.glyph().trim(),
                        units::bytes(v.used),
                        units::bytes(v.capacity)
                    )
                ),
                match level {
                    Level::Ok => ratatui::style::Style::new(),
                    Level::Warn => theme::warn(),
                    Level::Crit => theme::bad(),
                },
            ),
        ];
        for n in snap.nodes.iter().skip(first_col).take(node_cols) {
            let owner =
                v.owner.as_deref() == Some(n.name.as_str()) && v.kind != VolumeKind::ClusterShared;
            let (g, s) = if owner {
                ("◆", theme::accent())
            } else if v.reachable_from(&n.name) {
                ("●", theme::good())
            } else {
                ("·", theme::dim())
            };
            spans.push(Span::styled(format!("{g:<col_w$}"), s));
        }
        put(buf, inner, 1 + r as u16, Line::from(spans));
    }
}

/// The event log, newest first: every line wrapped under its time, the
/// selected one in reverse video (Enter opens it in full).
pub fn events(app: &App, area: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    let block = Block::bordered()
        .title(format!(
            " Events (newest first; {} opens one; {}) ",
            app.settings.keys.first_key(crate::app::Action::Confirm),
            match app.clock() {
                crate::app::Clock::Simulated => "simulated time",
                crate::app::Clock::Wall => "UTC",
            }
        ))
        .border_style(theme::dim());
    let inner = block.inner(area);
    block.render(area, buf);
    hit.push(inner, Target::List(View::Events));
    let shown = app.events_shown();
    if shown.is_empty() {
        put(buf, inner, 0, Line::styled("  no events", theme::dim()));
        return;
    }
    let rows = inner.height as usize;
    let time_w = 10;
    let text_w = (inner.width as usize).saturating_sub(time_w).max(1);
    let sel = app.sel_event.min(shown.len() - 1);
    let wrapped = |i: usize| wrap(&app.log[shown[i]].text, text_w);
    // The first entry drawn: as early as lets the selected one fit.
    let mut first = sel;
    let mut used = wrapped(sel).len();
    while first > 0 {
        let h = wrapped(first - 1).len();
        if used + h > rows {
            break;
        }
        used += h;
        first -= 1;
    }
    let clock = app.clock();
    let mut y = 0usize;
    let mut drawn = 0;
    for (k, &i) in shown.iter().enumerate().skip(first) {
        if y >= rows {
            break;
        }
        drawn += 1;
        let e = &app.log[i];
        let style = if k == sel {
            theme::selected()
        } else {
            match e.level {
                Level::Crit => theme::bad(),
                Level::Warn => theme::warn(),
                Level::Ok => ratatui::style::Style::new(),
            }
        };
        for (j, l) in wrap(&e.text, text_w).into_iter().enumerate() {
            if y >= rows {
                break;
            }
            let time = if j == 0 {
                format!("{:<time_w$}", clock.text(e.at_ms))
            } else {
                " ".repeat(time_w)
            };
            put(
                buf,
                inner,
                y as u16,
                Line::from(vec![
                    Span::styled(time, theme::dim()),
                    Span::styled(fit(&l, text_w), style),
                ]),
            );
            y += 1;
        }
    }
    scroll_mark(buf, area, first, drawn, shown.len());
}

/// `s` (escaped) in `w` columns, keeping its end: `…de-0042`.
fn fit_end(s: &str, w: usize) -> String {
    let s = escape(s);
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n + 1 - w.max(1)).collect();
    format!("…{tail}")
}
