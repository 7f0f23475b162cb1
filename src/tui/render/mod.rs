//! Render: a pure function of the app state that draws one frame and
//! returns the hit map. Nothing here changes state.

mod cluster;
mod dialogs;
mod diskcopy;
mod migration;
mod nodes;
mod tables;
pub mod theme;
pub mod widgets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use crate::app::{Action, App, HitMap, Mode, Target, View};
use widgets::{key_hints, put};

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) -> HitMap {
    let mut hit = HitMap::default();
    let area = frame.area();
    if area.width < 20 || area.height < 6 {
        let buf = frame.buffer_mut();
        put(buf, area, 0, Line::from("vmshift: window too small"));
        return hit;
    }
    let [header, tabs, body, flash, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let buf = frame.buffer_mut();
    render_header(app, header, buf);
    render_tabs(app, tabs, buf, &mut hit);
    match &app.snap {
        None => put(
            buf,
            body,
            1,
            Line::from(match &app.stale {
                Some((_, e)) => format!(" cannot reach the cluster: {e}"),
                None => " connecting to the cluster…".into(),
            }),
        ),
        Some(_) => match app.view {
            View::Cluster => cluster::render(app, body, buf, &mut hit),
            View::Vms => tables::vms(app, body, buf, &mut hit),
            View::Nodes => nodes::render(app, body, buf, &mut hit),
            View::Volumes => tables::volumes(app, body, buf),
            View::Migrations => migration::render(app, body, buf, &mut hit),
            View::Events => tables::events(app, body, buf),
        },
    }
    render_flash(app, flash, buf);
    render_footer(app, footer, buf);
    dialogs::render(app, area, buf);
    if let Mode::Drag(d) = &app.mode
        && let Some((x, y)) = d.pointer
    {
        // The VM follows the pointer.
        let label = format!(" ⇢ {} ", d.vm);
        let w = label.chars().count() as u16;
        let x = (x + 1).min(area.right().saturating_sub(w));
        buf.set_string(x, y.min(area.bottom() - 1), label, theme::selected());
    }
    hit
}

fn render_header(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let mut spans = vec![Span::styled(" vmshift ", theme::selected())];
    if let Some(s) = &app.snap {
        let up = s.nodes_up();
        let running = app.running_migrations().len();
        spans.push(Span::styled(format!(" {} ", s.cluster), theme::title()));
        spans.push(Span::styled(format!("({})", s.backend), theme::dim()));
        let nodes_style = if up == s.nodes.len() {
            theme::good()
        } else {
            theme::bad()
        };
        spans.push(Span::styled(
            format!("  nodes {up}/{} up", s.nodes.len()),
            nodes_style,
        ));
        spans.push(Span::raw(format!("  VMs {}", s.vms.len())));
        if let Some(m) = &s.manager {
            let (text, style) = match (&m.error, m.maintenance) {
                (Some(_), _) => (format!("  {} NOT ANSWERING", m.title()), theme::bad()),
                (None, true) => (format!("  {} MAINTENANCE", m.title()), theme::warn()),
                (None, false) if !m.quorate => (format!("  {} NO QUORUM", m.title()), theme::bad()),
                (None, false) => (format!("  {} ok", m.title()), theme::dim()),
            };
            spans.push(Span::styled(text, style));
        }
        if running > 0 {
            spans.push(Span::styled(
                format!("  ⇄ {running} migrating"),
                theme::accent(),
            ));
        }
    }
    if let Some(t) = app.last_poll_ms {
        spans.push(Span::styled(
            format!("  polled {}", clock(app.started_unix_ms + t)),
            theme::dim(),
        ));
    }
    if let Some((since, _)) = &app.stale {
        let age = app.now_ms.saturating_sub(*since) / 1000;
        spans.push(Span::styled(format!("  STALE {age}s"), theme::bad()));
    }
    if app.settings.read_only {
        spans.push(Span::styled("  READ-ONLY", theme::warn()));
    }
    if !app.settings.mouse {
        spans.push(Span::styled("  mouse off", theme::dim()));
    }
    put(buf, area, 0, Line::from(spans));
}

/// HH:MM:SS UTC of a Unix time in ms.
fn clock(unix_ms: u64) -> String {
    let s = unix_ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

fn render_tabs(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer, hit: &mut HitMap) {
    // Narrow screens: tabs without gaps and short filter marks, so the
    // marks still fit beside six tabs at 80 columns.
    let narrow = area.width < 100;
    let gap = if narrow { 0 } else { 1 };
    let mut x = area.x + 1;
    for (i, v) in View::ALL.iter().enumerate() {
        let mut label = format!(" {} {} ", i + 1, v.title());
        if *v == View::Migrations {
            let n = app.running_migrations().len();
            if n > 0 {
                label = format!(" {} {} ({n}) ", i + 1, v.title());
            }
        }
        let w = label.chars().count() as u16;
        if x + w > area.right() {
            break;
        }
        let style = if *v == app.view {
            theme::selected()
        } else {
            theme::dim()
        };
        buf.set_string(x, area.y, &label, style);
        hit.push(Rect::new(x, area.y, w, 1), Target::Tab(*v));
        x += w + gap;
    }
    let mut marks = Vec::new();
    if app.problems {
        marks.push(
            if narrow {
                "! problems"
            } else {
                "! problems only"
            }
            .to_string(),
        );
    }
    if !app.filter.is_empty() {
        marks.push(if narrow {
            format!("/{}", app.filter)
        } else {
            format!("filter: {}", app.filter)
        });
    }
    if !marks.is_empty() && x + 4 < area.right() {
        put(
            buf,
            Rect::new(x + 1, area.y, area.right() - x - 1, 1),
            0,
            Line::styled(marks.join("  "), theme::warn()),
        );
    }
}

fn render_flash(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let line = match &app.mode {
        Mode::Filter(e) => {
            let (before, after) = e.split();
            Line::from(vec![
                Span::styled("/", theme::key()),
                Span::raw(format!("{before}▏{after}  (Enter keeps, Esc clears)")),
            ])
        }
        Mode::Command(c) => {
            let (before, after) = c.edit.split();
            Line::from(vec![
                Span::styled(":", theme::key()),
                Span::raw(format!("{before}▏{after}")),
            ])
        }
        Mode::Drag(d) => match d.over.as_deref().map(|o| (o, d.verdict(o))) {
            Some((o, Some(Ok(p)))) => {
                let mut t = format!("✓ {} → {o}: allowed", d.vm);
                if !p.lun_moves.is_empty() {
                    t += &format!("; LUN {} moves with it", p.lun_moves.join(", "));
                }
                if p.storage_bytes() > 0 {
                    t += &format!(
                        "; copies {} of disk",
                        crate::cluster::units::bytes(p.storage_bytes())
                    );
                }
                Line::styled(t + " — release/Enter to drop", theme::good())
            }
            Some((o, Some(Err(r)))) => Line::styled(format!("✗ {} → {o}: {r}", d.vm), theme::bad()),
            _ => Line::styled(
                format!("moving {} from {}: pick a node", d.vm, d.from),
                theme::accent(),
            ),
        },
        _ => match &app.flash {
            Some(f) if f.error => Line::styled(format!("✖ {}", f.text), theme::bad()),
            Some(f) => Line::styled(format!("• {}", f.text), theme::accent()),
            None => match &app.stale {
                Some((_, e)) => Line::styled(format!("✖ polling fails: {e}"), theme::bad()),
                None => Line::default(),
            },
        },
    };
    put(buf, area, 0, line);
}

/// The actions whose keys the footer shows now.
pub fn footer_actions(app: &App) -> Vec<Action> {
    use Action::*;
    let list: Vec<Action> = match &app.mode {
        Mode::Drag(_) => vec![Left, Right, Confirm, Cancel],
        Mode::Filter(_) | Mode::Command(_) => vec![Confirm, Cancel],
        Mode::Confirm(_) => vec![Up, Left, Confirm, Cancel],
        Mode::ConfirmAbort(_) | Mode::ConfirmDrain(_) | Mode::ConfirmQuit => {
            vec![Confirm, Cancel]
        }
        Mode::Help(_) | Mode::About => vec![Cancel],
        // Post-copy cannot be undone: only y answers (no Enter).
        Mode::ConfirmPostcopy(_) => vec![Cancel],
        // A migration in post-copy can no longer be aborted.
        Mode::Normal
            if app.view == View::Migrations
                && app.selected_migration().is_some_and(|m| m.postcopy_active) =>
        {
            vec![
                DowntimeUp,
                DowntimeDown,
                BandwidthUp,
                BandwidthDown,
                NextView,
                Help,
                Quit,
            ]
        }
        Mode::Normal => match app.view {
            View::Migrations => vec![
                Abort,
                Postcopy,
                DowntimeUp,
                DowntimeDown,
                BandwidthUp,
                BandwidthDown,
                NextView,
                Help,
                Quit,
            ],
            View::Cluster | View::Vms => {
                vec![
                    Move,
                    Filter,
                    Problems,
                    Command,
                    NextView,
                    ToggleMouse,
                    Help,
                    Quit,
                ]
            }
            View::Nodes => vec![
                SortNext,
                SortReverse,
                Problems,
                Command,
                NextView,
                Help,
                Quit,
            ],
            _ => vec![Problems, NextView, Command, Help, Quit],
        },
    };
    list.into_iter()
        .filter(|a| !(app.settings.read_only && a.mutates()))
        .collect()
}

fn render_footer(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let mut pairs: Vec<(String, &str)> = footer_actions(app)
        .into_iter()
        .map(|a| {
            let key = app.settings.keys.first_key(a);
            match (&app.mode, a) {
                (
                    Mode::Confirm(_)
                    | Mode::ConfirmAbort(_)
                    | Mode::ConfirmPostcopy(_)
                    | Mode::ConfirmDrain(_)
                    | Mode::ConfirmQuit,
                    Action::Confirm,
                ) => (format!("y/{key}"), "yes"),
                (
                    Mode::Confirm(_)
                    | Mode::ConfirmAbort(_)
                    | Mode::ConfirmPostcopy(_)
                    | Mode::ConfirmDrain(_)
                    | Mode::ConfirmQuit,
                    Action::Cancel,
                ) => (format!("n/{key}"), "no"),
                (Mode::Drag(_), Action::Confirm) => (key, "drop"),
                (Mode::Drag(_), Action::Left) => (format!("{key}→↑↓"), "pick node"),
                (Mode::Drag(_), Action::Right) => (key, ""),
                (Mode::Confirm(_), Action::Up) => (format!("{key}↓"), "option"),
                (Mode::Confirm(_), Action::Left) => (format!("{key}→"), "change"),
                (_, a) => (key, a.hint()),
            }
        })
        .filter(|(_, h)| !h.is_empty())
        .collect();
    if matches!(app.mode, Mode::ConfirmPostcopy(_)) {
        pairs.insert(0, ("y".into(), "switch (cannot be undone)"));
    }
    put(buf, area, 0, key_hints(&pairs));
}
