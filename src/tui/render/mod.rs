//! Render: a pure function of the app state that draws one frame and
//! returns the hit map. Nothing here changes state.

mod cluster;
mod dialogs;
mod diskcopy;
mod history;
mod migration;
mod nodes;
mod storage;
mod tables;
mod targets;
pub mod theme;
pub mod widgets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::app::{Action, App, HitMap, Mode, Target, View};
use widgets::{escape, fit, key_hints, put, wrap};

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) -> HitMap {
    let mut hit = HitMap::default();
    let area = frame.area();
    if crate::app::too_small(area.width, area.height) {
        let buf = frame.buffer_mut();
        put(buf, area, 0, Line::from("vmshift: window too small"));
        return hit;
    }
    // The message area grows to show its whole text (up to a quarter of
    // the screen): a reason is never cut off.
    let message = message(app);
    let most = (area.height / 4).max(1) as usize;
    let message_lines = match &message {
        Message::Wrapped(text, _) => wrap(text, area.width as usize)
            .into_iter()
            .take(most)
            .collect(),
        Message::Line(_) => Vec::new(),
    };
    let message_h = message_lines.len().max(1) as u16;
    // An alarm (a VM running on two nodes at once) comes before anything
    // else, whole, for as long as it lasts.
    let alarm_lines = alarm(
        app,
        area.width as usize,
        (area.height / 6).clamp(1, 3) as usize,
    );
    let [alarm_area, header, tabs, body, flash, footer] = Layout::vertical([
        Constraint::Length(alarm_lines.len() as u16),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(message_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let buf = frame.buffer_mut();
    let alarm_style = theme::bad().add_modifier(ratatui::style::Modifier::REVERSED);
    for (i, l) in alarm_lines.into_iter().enumerate() {
        put(buf, alarm_area, i as u16, Line::styled(l, alarm_style));
    }
    render_header(app, header, buf);
    render_tabs(app, tabs, buf, &mut hit);
    match &app.snap {
        // Wrapped: a node's error carries the command that fixes it.
        None => ratatui::widgets::Widget::render(
            ratatui::widgets::Paragraph::new(match &app.stale {
                Some((_, e)) => escape(&format!(" cannot reach the cluster: {e}")).into_owned(),
                None => " connecting to the cluster…".into(),
            })
            .wrap(ratatui::widgets::Wrap { trim: false }),
            Rect {
                y: body.y + 1,
                height: body.height.saturating_sub(1),
                ..body
            },
            buf,
        ),
        Some(_) => match app.view {
            View::Cluster => cluster::render(app, body, buf, &mut hit),
            View::Vms => tables::vms(app, body, buf, &mut hit),
            View::Nodes => nodes::render(app, body, buf, &mut hit),
            View::Volumes => tables::volumes(app, body, buf),
            View::Migrations => migration::render(app, body, buf, &mut hit),
            View::Events => tables::events(app, body, buf, &mut hit),
            View::History => history::render(app, body, buf, &mut hit),
        },
    }
    match message {
        Message::Line(l) => put(buf, flash, 0, l),
        Message::Wrapped(_, style) => {
            for (i, l) in message_lines.into_iter().enumerate() {
                put(buf, flash, i as u16, Line::styled(l, style));
            }
        }
    }
    render_footer(app, footer, buf);
    dialogs::render(app, area, buf);
    if let Mode::Drag(d) = &app.mode
        && let Some((x, y)) = d.pointer
    {
        // The VM follows the pointer.
        let label = format!(" ⇢ {} ", escape(&d.vm));
        let w = label.chars().count() as u16;
        let x = (x + 1).min(area.right().saturating_sub(w));
        buf.set_string(x, y.min(area.bottom() - 1), label, theme::selected());
    }
    hit
}

/// The snapshot's first alarm, `(+N more)` when there are others, wrapped
/// to `width` in at most `most` lines, each padded to the full width (it
/// is drawn in reverse video); none without an alarm.
fn alarm(app: &App, width: usize, most: usize) -> Vec<String> {
    let Some(alarms) = app.snap.as_ref().map(|s| &s.alarms) else {
        return Vec::new();
    };
    let Some(first) = alarms.first() else {
        return Vec::new();
    };
    let mut text = if first.starts_with("ALARM") {
        format!("‼ {first}")
    } else {
        format!("‼ ALARM: {first}")
    };
    if alarms.len() > 1 {
        text += &format!(" (+{} more)", alarms.len() - 1);
    }
    let mut lines = wrap(&text, width.saturating_sub(2));
    if lines.len() > most {
        lines.truncate(most);
        if let Some(last) = lines.last_mut() {
            *last = last
                .chars()
                .take(width.saturating_sub(4))
                .collect::<String>()
                + "…";
        }
    }
    lines
        .into_iter()
        .map(|l| widgets::fit(&format!(" {l}"), width))
        .collect()
}

/// The header: its parts in a fixed order, and when they do not all fit,
/// the least important go first, whole (never a cut number). Kept
/// longest: the cluster, its problems, READ-ONLY, the poll time.
fn render_header(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    // (text, style, priority: lower is kept longer)
    let mut parts: Vec<(String, Style, u8)> = vec![(" vmshift ".into(), theme::selected(), 9)];
    if let Some(s) = &app.snap {
        let up = s.nodes_up();
        let running = app.running_migrations().len();
        parts.push((format!(" {} ", s.cluster), theme::title(), 0));
        parts.push((format!("({})", s.backend), theme::dim(), 8));
        let all_up = up == s.nodes.len();
        parts.push((
            format!("  nodes {up}/{} up", s.nodes.len()),
            if all_up { theme::good() } else { theme::bad() },
            if all_up { 5 } else { 1 },
        ));
        parts.push((format!("  VMs {}", s.vms.len()), Style::new(), 6));
        if let Some(m) = &s.manager {
            let (text, style, prio) = match (&m.error, m.maintenance) {
                (Some(_), _) => (format!("  {} NOT ANSWERING", m.title()), theme::bad(), 1),
                (None, true) => (format!("  {} MAINTENANCE", m.title()), theme::warn(), 1),
                (None, false) if !m.quorate => {
                    (format!("  {} NO QUORUM", m.title()), theme::bad(), 1)
                }
                (None, false) => (format!("  {} ok", m.title()), theme::dim(), 7),
            };
            parts.push((text, style, prio));
        }
        if running > 0 {
            parts.push((format!("  ⇄ {running} migrating"), theme::accent(), 4));
        }
        let disks = app.running_storage_moves().len();
        if disks > 0 {
            parts.push((
                format!("  ⇅ {disks} disk move{}", crate::app::plural(disks)),
                theme::accent(),
                4,
            ));
        }
    }
    if let Some(t) = app.polled_at_ms() {
        parts.push((format!("  polled {}", app.clock().text(t)), theme::dim(), 3));
    }
    if let Some((since, _)) = &app.stale {
        let age = app.now_ms.saturating_sub(*since) / 1000;
        parts.push((format!("  STALE {age}s"), theme::bad(), 1));
    }
    if app.settings.read_only {
        parts.push(("  READ-ONLY".into(), theme::warn(), 2));
    }
    if !app.settings.mouse {
        parts.push(("  mouse off".into(), theme::dim(), 8));
    }
    let width = |p: &[(String, Style, u8)]| -> usize {
        p.iter().map(|(t, _, _)| escape(t).chars().count()).sum()
    };
    let room = area.width as usize;
    // The last of the least important goes, down to the poll time; then a
    // long cluster name is cut (a name, not a number); then the rest.
    let drop_worst = |parts: &mut Vec<(String, Style, u8)>, floor: u8| {
        let worst = parts.iter().map(|p| p.2).max().unwrap_or(0);
        if worst < floor || parts.len() < 2 {
            return false;
        }
        let at = parts.iter().rposition(|p| p.2 == worst).unwrap_or(0);
        parts.remove(at);
        true
    };
    while width(&parts) > room && drop_worst(&mut parts, 4) {}
    if width(&parts) > room
        && let Some(c) = parts.iter().position(|p| p.2 == 0)
    {
        let other = width(&parts) - escape(&parts[c].0).chars().count();
        let keep = room.saturating_sub(other).max(12);
        parts[c].0 = format!(" {} ", cut_at_word(parts[c].0.trim(), keep - 2));
    }
    while width(&parts) > room && drop_worst(&mut parts, 0) {}
    let spans: Vec<Span> = parts
        .into_iter()
        .map(|(t, style, _)| Span::styled(t, style))
        .collect();
    put(buf, area, 0, Line::from(spans));
}

/// `s` (escaped) in at most `w` columns, cut after a whole word with `…`
/// (so a number in it is never cut); one long word is cut as it must be.
fn cut_at_word(s: &str, w: usize) -> String {
    let s = escape(s);
    if s.chars().count() <= w {
        return s.into_owned();
    }
    let mut out = String::new();
    for word in s.split(' ') {
        let next = if out.is_empty() {
            word.to_string()
        } else {
            format!("{out} {word}")
        };
        if next.chars().count() + 1 > w {
            break;
        }
        out = next;
    }
    if out.is_empty() {
        return fit(&s, w);
    }
    out + "…"
}

fn render_tabs(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer, hit: &mut HitMap) {
    // Narrow screens: tabs without gaps and short filter marks, so the
    // marks still fit beside six tabs at 80 columns.
    let narrow = area.width < 100;
    let gap = if narrow { 0 } else { 1 };
    let mut x = area.x + 1;
    for (i, v) in View::ALL.iter().enumerate() {
        let title = if narrow { v.short_title() } else { v.title() };
        let mut label = format!(" {} {title} ", i + 1);
        if *v == View::Migrations {
            let n = app.running_migrations().len();
            if n > 0 {
                label = format!(" {} {title} ({n}) ", i + 1);
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

/// The message area's content: typed input on one line, or a message
/// that wraps.
enum Message {
    Line(Line<'static>),
    Wrapped(String, Style),
}

fn message(app: &App) -> Message {
    match &app.mode {
        Mode::Filter(e) => {
            let (before, after) = e.split();
            Message::Line(Line::from(vec![
                Span::styled("/", theme::key()),
                Span::raw(format!("{before}▏{after}  (Enter keeps, Esc clears)")),
            ]))
        }
        Mode::Command(c) if !c.candidates.is_empty() => {
            // An ambiguous Tab: the line, then what it could complete to.
            const LISTED: usize = 40;
            let (before, after) = c.edit.split();
            let mut list = c
                .candidates
                .iter()
                .take(LISTED)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("  ");
            if c.candidates.len() > LISTED {
                list += &format!("  … (+{} more)", c.candidates.len() - LISTED);
            }
            Message::Wrapped(
                format!(
                    ":{before}▏{after}   Tab: {} match: {list}",
                    c.candidates.len()
                ),
                theme::accent(),
            )
        }
        Mode::Command(c) => {
            let (before, after) = c.edit.split();
            Message::Line(Line::from(vec![
                Span::styled(":", theme::key()),
                Span::raw(format!("{before}▏{after}")),
            ]))
        }
        Mode::Drag(d) => match d.over.as_deref().map(|o| (o, d.verdict(o))) {
            Some((o, Some(Ok(p)))) => {
                let max = app.settings.defaults.max_downtime_ms;
                let pr = d.choice(o).and_then(|c| c.prediction.as_ref());
                let above = pr.is_some_and(|pr| pr.above_limit(max));
                let mut t = match pr {
                    Some(pr) => format!(
                        "{} {} → {o}: {}",
                        if above { "⚠" } else { "✓" },
                        d.vm,
                        pr.summary(max)
                    ),
                    None => format!("✓ {} → {o}: allowed", d.vm),
                };
                if !p.lun_moves.is_empty() {
                    t += &format!("; LUN {} moves with it", p.lun_moves.join(", "));
                }
                if p.storage_bytes() > 0 {
                    t += &format!(
                        "; copies {} of disk",
                        crate::cluster::units::bytes(p.storage_bytes())
                    );
                }
                let how = if d.pointer.is_some() {
                    "release/Enter to drop"
                } else {
                    "Enter to drop"
                };
                Message::Wrapped(
                    format!("{t} — {how}"),
                    if above { theme::warn() } else { theme::good() },
                )
            }
            Some((o, Some(Err(r)))) => {
                Message::Wrapped(format!("✗ {} → {o}: {r}", d.vm), theme::bad())
            }
            _ => Message::Wrapped(
                format!("moving {} from {}: pick a node", d.vm, d.from),
                theme::accent(),
            ),
        },
        Mode::PickDisk(p) => storage::message(app, p),
        _ => match &app.flash {
            Some(f) if f.error => Message::Wrapped(format!("✖ {}", f.text), theme::bad()),
            Some(f) => Message::Wrapped(format!("• {}", f.text), theme::accent()),
            None => match &app.stale {
                Some((_, e)) => Message::Wrapped(format!("✖ polling fails: {e}"), theme::bad()),
                None => Message::Line(Line::default()),
            },
        },
    }
}

/// The actions whose keys the footer shows now.
pub fn footer_actions(app: &App) -> Vec<Action> {
    use Action::*;
    let vm_selected = app
        .sel_vm
        .as_ref()
        .is_some_and(|n| app.snap.as_ref().is_some_and(|s| s.vm(n).is_some()));
    let list: Vec<Action> = match &app.mode {
        Mode::Drag(d) if d.listed() && d.pointer.is_none() => vec![Up, Confirm, Cancel],
        Mode::Drag(_) => vec![Left, Right, Confirm, Cancel],
        Mode::Filter(_) | Mode::Command(_) => vec![Confirm, Cancel],
        Mode::Confirm(_) => vec![Up, Left, Confirm, Cancel],
        Mode::ConfirmAbort(_) | Mode::ConfirmDrain(_) | Mode::ConfirmQuit => {
            vec![Confirm, Cancel]
        }
        Mode::Help(_) | Mode::About => vec![Cancel],
        Mode::ConfirmVm(_) | Mode::ConfirmRecover(_) => vec![Confirm, Cancel],
        Mode::Detail(d) => match &d.vm {
            // A VM's: its disk can move; a running move can be aborted.
            Some(vm)
                if app
                    .snap
                    .as_ref()
                    .is_some_and(|s| s.active_storage_move_of(vm).is_some()) =>
            {
                vec![Abort, Copy, Down, Cancel]
            }
            Some(_) => vec![MoveDisk, Copy, Down, Cancel],
            None => vec![Copy, Down, Cancel],
        },
        Mode::PickDisk(_) => vec![Up, Confirm, Cancel],
        Mode::ConfirmDiskMove(_) | Mode::ConfirmAbortDiskMove(_) => vec![Confirm, Cancel],
        // Post-copy cannot be undone: only y answers (no Enter).
        Mode::ConfirmPostcopy(_) => vec![Cancel],
        // Abort, post-copy and the limits act on a running migration only.
        Mode::Normal
            if app.view == View::Migrations
                && app.selected_migration().is_none_or(|m| m.is_finished()) =>
        {
            vec![NextView, Help, Quit]
        }
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
            // Move and open act on the selected VM: offered with one.
            View::Vms => {
                let mut v = if vm_selected {
                    vec![Move, Confirm]
                } else {
                    Vec::new()
                };
                v.extend(crate::app::actions::footer_vm_actions(app));
                v.extend([Filter, Problems, Command, NextView, Help, Quit]);
                v
            }
            View::Events => vec![Confirm, Problems, NextView, Command, Help, Quit],
            View::History => vec![Confirm, Cancel, NextView, Command, Help, Quit],
            View::Cluster => {
                let mut v = if vm_selected { vec![Move] } else { Vec::new() };
                v.extend(crate::app::actions::footer_vm_actions(app));
                v.extend([Filter, Problems, Command, NextView, ToggleMouse, Help, Quit]);
                v
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
            View::Volumes => vec![Up, Left, Problems, NextView, Command, Help, Quit],
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
                    | Mode::ConfirmDiskMove(_)
                    | Mode::ConfirmAbortDiskMove(_)
                    | Mode::ConfirmQuit,
                    Action::Confirm,
                ) => (
                    format!("{}/{key}", app.settings.keys.first_key(Action::Yes)),
                    "yes",
                ),
                (
                    Mode::Confirm(_)
                    | Mode::ConfirmAbort(_)
                    | Mode::ConfirmPostcopy(_)
                    | Mode::ConfirmDrain(_)
                    | Mode::ConfirmDiskMove(_)
                    | Mode::ConfirmAbortDiskMove(_)
                    | Mode::ConfirmQuit,
                    Action::Cancel,
                ) => (
                    format!("{}/{key}", app.settings.keys.first_key(Action::No)),
                    "no",
                ),
                (Mode::ConfirmVm(c), Action::Confirm) if c.needs_name() => (key, "force off"),
                (Mode::ConfirmVm(_), Action::Confirm) => (format!("y/{key}"), "yes"),
                (Mode::ConfirmVm(_), Action::Cancel) => (key, "cancel"),
                (Mode::ConfirmRecover(c), Action::Confirm) if c.plan.restarts.is_empty() => {
                    (key, "close")
                }
                (Mode::ConfirmRecover(_), Action::Confirm) => (key, "recover"),
                (Mode::ConfirmRecover(_), Action::Cancel) => (key, "cancel"),
                (Mode::Drag(_), Action::Confirm) => (key, "drop"),
                (Mode::Drag(_), Action::Up) => (format!("{key}↓"), "pick"),
                (Mode::Drag(_), Action::Left) => (format!("{key}→↑↓"), "pick node"),
                (Mode::Drag(_), Action::Right) => (key, ""),
                (Mode::Confirm(_), Action::Up) => (format!("{key}↓"), "option"),
                (Mode::Detail(_), Action::Down) => (format!("↑{key}"), "scroll"),
                (Mode::Detail(_), Action::Cancel) => (key, "close"),
                (Mode::Detail(_), Action::Abort) => (key, "abort disk move"),
                (Mode::PickDisk(_), Action::Up) => (format!("{key}↓"), "pick"),
                (Mode::PickDisk(p), Action::Confirm) if p.disk.is_none() => (key, "this disk"),
                (Mode::PickDisk(_), Action::Confirm) => (key, "move here"),
                (Mode::Confirm(_), Action::Left) => (format!("{key}→"), "change"),
                (Mode::Normal, Action::Confirm) => (key, "open"),
                (Mode::Normal, Action::Up) if app.view == View::Volumes => {
                    (format!("{key}↓"), "volumes")
                }
                (Mode::Normal, Action::Left) if app.view == View::Volumes => {
                    (format!("{key}→"), "nodes")
                }
                (Mode::Normal, Action::Cancel) if app.view == View::History => (key, "back"),
                (_, a) => (key, a.hint()),
            }
        })
        .filter(|(_, h)| !h.is_empty())
        .collect();
    let typed_list = match &app.mode {
        Mode::Drag(d) => d.listed() && d.pointer.is_none(),
        Mode::PickDisk(_) => true,
        _ => false,
    };
    if typed_list {
        // Typed text narrows the list (not a key of the key map).
        pairs.insert(1, ("a-z".into(), "narrow"));
    }
    if matches!(app.mode, Mode::ConfirmPostcopy(_)) {
        pairs.insert(
            0,
            (
                app.settings.keys.first_key(Action::Yes),
                "switch (cannot be undone)",
            ),
        );
    }
    // Too wide: the last hints go first, but help and quit always stay.
    let width = |p: &[(String, &str)]| -> usize {
        p.iter()
            .map(|(k, d)| k.chars().count() + d.chars().count() + 3)
            .sum()
    };
    let keep = [
        app.settings.keys.first_key(Action::Help),
        app.settings.keys.first_key(Action::Quit),
    ];
    while width(&pairs) > area.width as usize + 2 {
        let Some(i) = pairs.iter().rposition(|(k, _)| !keep.contains(k)) else {
            break;
        };
        pairs.remove(i);
    }
    put(buf, area, 0, key_hints(&pairs));
}
