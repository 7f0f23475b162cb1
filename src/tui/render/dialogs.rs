//! Overlays: the move confirm dialog, abort/post-copy/quit questions, help
//! (generated from the key map) and the about panel.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget, Wrap};

use super::theme;
use super::widgets::{centered, clear, put, shown_line, shown_lines, wrap};
use crate::app::drag::{Confirm, Field};
use crate::app::{Action, App, Detail, Mode};
use crate::cluster::units;
use crate::plan;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    match &app.mode {
        Mode::Confirm(c) => confirm(app, c, area, buf),
        Mode::ConfirmAbort(id) => {
            let vm = vm_of(app, *id);
            question(
                app,
                area,
                buf,
                " abort migration? ",
                vec![
                    Line::from(format!("Abort the migration of {vm}?")),
                    Line::from("The VM keeps running on its source node."),
                ],
                theme::warn(),
            )
        }
        Mode::ConfirmPostcopy(id) => {
            let vm = vm_of(app, *id);
            question(
                app,
                area,
                buf,
                " switch to post-copy? ",
                vec![
                    Line::from(format!("Switch the migration of {vm} to post-copy?")),
                    Line::styled(
                        "It finishes for sure, but can no longer be aborted,",
                        theme::bad(),
                    ),
                    Line::styled(
                        "and if the network fails before all memory arrived, the VM is lost.",
                        theme::bad(),
                    ),
                ],
                theme::bad(),
            )
        }
        Mode::ConfirmDrain(plan) => question(
            app,
            area,
            buf,
            " drain node? ",
            drain_lines(app, plan),
            theme::warn(),
        ),
        Mode::ConfirmQuit => question(app, area, buf, " quit? ", quit_lines(app), theme::warn()),
        Mode::ConfirmVm(c) => vm_confirm(app, c, area, buf),
        Mode::PickDisk(p) => super::storage::picker(p, area, buf),
        Mode::ConfirmDiskMove(c) => question(
            app,
            area,
            buf,
            " move disk? ",
            vec![
                Line::from(format!("Move {}'s disk?", c.vm)),
                Line::styled(c.sentence.clone(), theme::accent()),
                Line::from(
                    "The VM keeps running; its detail shows the copy. Until the pivot it can be aborted, and the disk stays where it is.",
                ),
            ],
            theme::accent(),
        ),
        Mode::ConfirmAbortDiskMove(a) => question(
            app,
            area,
            buf,
            " abort disk move? ",
            vec![
                Line::from(format!(
                    "Abort moving {}'s disk {} → {}?",
                    a.vm, a.from, a.to
                )),
                Line::from(format!(
                    "The copy stops before its pivot; {} keeps running from {}.",
                    a.vm, a.from
                )),
            ],
            theme::warn(),
        ),
        Mode::ConfirmRecover(c) => recover_confirm(c, area, buf),
        Mode::Help(scroll) => help(app, *scroll, area, buf),
        Mode::Detail(d) => detail(app, d, area, buf),
        Mode::About => about(app, area, buf),
        _ => {}
    }
}

/// What a drain would do: each move with its prediction, the VMs that
/// cannot move and why, and those not running.
fn drain_lines(app: &App, plan: &crate::plan::DrainPlan) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(format!(
        "Move every running VM off {}, one after the other:",
        plan.node
    ))];
    for m in &plan.moves {
        let max = app.settings.defaults.max_downtime_ms;
        let style = if m.prediction.converges && !m.prediction.above_limit(max) {
            Style::new()
        } else {
            theme::warn()
        };
        lines.push(Line::styled(
            format!(
                "  {} → {}: {}",
                m.vm,
                m.to,
                m.prediction.summary(app.settings.defaults.max_downtime_ms)
            ),
            style,
        ));
    }
    for s in &plan.stuck {
        lines.push(Line::styled(
            format!("  ✗ {} stays: {}", s.vm, s.short),
            theme::bad(),
        ));
    }
    for v in &plan.left {
        lines.push(Line::styled(
            format!("  {v} is not running and stays"),
            theme::dim(),
        ));
    }
    if plan.moves.is_empty() {
        lines.push(Line::styled(
            "Nothing can move; y or n closes.",
            theme::warn(),
        ));
    }
    lines
}

/// What quitting leaves behind: migrations and disk moves running, and
/// whether they go on without vmshift.
fn quit_lines(app: &App) -> Vec<Line<'static>> {
    let n = app.running_migrations().len();
    let disks = app.running_storage_moves().len();
    let sim = app.snap.as_ref().is_some_and(|s| s.backend == "sim");
    let mut lines = Vec::new();
    if n > 0 {
        lines.push(Line::from(format!(
            "{n} migration{} running.",
            if n == 1 { " is" } else { "s are" }
        )));
    }
    if disks > 0 {
        lines.push(Line::from(format!(
            "{disks} disk move{} running.",
            if disks == 1 { " is" } else { "s are" }
        )));
    }
    if sim {
        lines.push(Line::from(
            "They run inside vmshift's simulator and stop with it.",
        ));
    } else {
        if n > 0 {
            lines.push(Line::from(
                "Peer-to-peer migrations continue without vmshift; reopen it to watch them.",
            ));
        }
        if disks > 0 {
            lines.push(Line::from(
                "A disk move needs vmshift for its pivot: its disk stays where it is, and its block copy is left running (virsh blockjob --abort ends it).",
            ));
        }
    }
    lines.push(Line::from("Quit vmshift?"));
    lines
}

fn vm_confirm(app: &App, c: &crate::app::VmConfirm, area: Rect, buf: &mut Buffer) {
    use crate::cluster::VmAction;
    let (title, what, style) = match c.action {
        VmAction::Shutdown => (
            " shut down? ",
            "The guest is asked to shut down (ACPI power button); a guest that ignores it keeps running.",
            theme::warn(),
        ),
        VmAction::Reboot => (
            " reboot? ",
            "The guest is asked to reboot; its services are down meanwhile.",
            theme::warn(),
        ),
        _ => (
            " force off? ",
            "The VM stops at once, like pulling its power cord: what the guest has not written is lost.",
            theme::bad(),
        ),
    };
    let mut lines = vec![
        Line::from(format!(
            "{} {} on {}?",
            capitalized(c.action.verb()),
            c.vm,
            c.node
        )),
        Line::styled(what, style),
    ];
    if !c.needs_name() {
        question(app, area, buf, title, lines, style);
        return;
    }
    let (before, after) = c.typed.split();
    lines.push(Line::default());
    lines.push(Line::from(format!(
        "Type {} and Enter to force it off:",
        c.vm
    )));
    lines.push(Line::from(vec![
        Span::styled("> ", theme::key()),
        Span::raw(format!("{before}▏{after}")),
    ]));
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("enter", theme::key()),
        Span::raw(" force off   "),
        Span::styled("esc", theme::key()),
        Span::raw(" cancel"),
    ]));
    let lines = shown_lines(lines);
    let widest = lines.iter().map(|l| l.width()).max().unwrap_or(20) as u16 + 4;
    let w = widest.max(30).min(area.width.saturating_sub(2).max(10));
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().div_ceil(inner_w).max(1))
        .sum();
    let inner = dialog(area, buf, w, rows as u16 + 2, title, style);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

/// `:recover NODE`: what restarts where and what cannot, then the node's
/// name to type (none to type when nothing can restart). A long plan is
/// cut, never the question under it.
fn recover_confirm(c: &crate::app::RecoverConfirm, area: Rect, buf: &mut Buffer) {
    let p = &c.plan;
    let head = Line::from(vec![
        Span::raw("Restart the VMs of lost node "),
        Span::styled(p.node.clone(), theme::title()),
        Span::raw(" elsewhere:"),
    ]);
    let mut items: Vec<Line> = p
        .restarts
        .iter()
        .map(|r| {
            Line::from(format!(
                "  {} → {} ({})",
                r.vm,
                r.to,
                units::bytes(r.memory)
            ))
        })
        .collect();
    for n in &p.cannot {
        items.push(Line::styled(
            format!("  ✗ {}: {}", n.vm, n.reason),
            theme::warn(),
        ));
    }
    let mut tail = vec![Line::default()];
    if p.restarts.is_empty() {
        if p.cannot.is_empty() {
            items.push(Line::styled("  it has no VMs", theme::dim()));
        }
        tail.push(Line::from("Nothing can be restarted."));
        tail.push(Line::from(vec![
            Span::styled("enter", theme::key()),
            Span::raw("/"),
            Span::styled("esc", theme::key()),
            Span::raw(" close"),
        ]));
    } else {
        let (before, after) = c.typed.split();
        tail.push(Line::styled(
            format!(
                "Only once {} is powered off or fenced: {}.",
                p.node,
                crate::app::recover::TWICE
            ),
            theme::bad(),
        ));
        tail.push(Line::from(format!(
            "Type {} and Enter to confirm it is off and restart them:",
            p.node
        )));
        tail.push(Line::from(vec![
            Span::styled("> ", theme::key()),
            Span::raw(format!("{before}▏{after}")),
        ]));
        tail.push(Line::default());
        tail.push(Line::from(vec![
            Span::styled("enter", theme::key()),
            Span::raw(" recover   "),
            Span::styled("esc", theme::key()),
            Span::raw(" cancel"),
        ]));
    }
    let (head, mut items, tail) = (shown_line(head), shown_lines(items), shown_lines(tail));
    let w = area.width.saturating_sub(2).min(90);
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let rows = |ls: &[Line]| -> usize {
        ls.iter()
            .map(|l| wrap(&l.to_string(), inner_w).len().max(1))
            .sum()
    };
    let room = (area.height as usize)
        .saturating_sub(2 + rows(std::slice::from_ref(&head)) + rows(&tail))
        .max(1);
    if rows(&items) > room {
        let mut kept = Vec::new();
        for l in items.iter() {
            if rows(&kept) + rows(std::slice::from_ref(l)) > room - 1 {
                break;
            }
            kept.push(l.clone());
        }
        let more = items.len() - kept.len();
        kept.push(shown_line(Line::styled(
            format!(
                "  … and {more} more (all of it: {})",
                crate::cluster::text::shell_line(&["vmshift", "recover", &p.node, "--dry-run"])
            ),
            theme::dim(),
        )));
        items = kept;
    }
    let mut lines = vec![head];
    lines.extend(items);
    lines.extend(tail);
    let h = (rows(&lines) as u16 + 2).min(area.height);
    let inner = dialog(area, buf, w, h, " recover lost node? ", theme::bad());
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn vm_of(app: &App, id: u64) -> String {
    app.snap
        .as_ref()
        .and_then(|s| s.migrations.iter().find(|m| m.id == id))
        .map_or_else(|| format!("#{id}"), |m| m.vm.clone())
}

pub(super) fn dialog(
    area: Rect,
    buf: &mut Buffer,
    w: u16,
    h: u16,
    title: &str,
    style: Style,
) -> Rect {
    let r = centered(area, w, h);
    clear(buf, r, Style::new());
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(style)
        .title(shown_line(Line::styled(title.to_string(), theme::title())));
    let inner = block.inner(r);
    block.render(r, buf);
    inner
}

fn question(
    app: &App,
    area: Rect,
    buf: &mut Buffer,
    title: &str,
    mut lines: Vec<Line<'static>>,
    style: Style,
) {
    lines.push(Line::default());
    let keys = &app.settings.keys;
    lines.push(Line::from(vec![
        Span::styled(keys.first_key(Action::Yes), theme::key()),
        Span::raw(" yes   "),
        Span::styled(
            format!(
                "{}/{}",
                keys.first_key(Action::No),
                keys.first_key(Action::Cancel)
            ),
            theme::key(),
        ),
        Span::raw(" no"),
    ]));
    let lines = shown_lines(lines);
    let widest = lines.iter().map(|l| l.width()).max().unwrap_or(20) as u16 + 4;
    let w = widest.max(30).min(area.width.saturating_sub(2).max(10));
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().div_ceil(inner_w).max(1))
        .sum();
    let inner = dialog(area, buf, w, rows as u16 + 2, title, style);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

fn confirm(app: &App, c: &Confirm, area: Rect, buf: &mut Buffer) {
    let snap = app.snap.as_ref().expect("snapshot");
    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::from(vec![
        Span::raw("Move "),
        Span::styled(c.vm.clone(), theme::title()),
        Span::raw(format!(" from {} to ", c.from)),
        Span::styled(c.to.clone(), theme::title()),
        Span::raw("?"),
    ]));
    placement_lines(snap, c, &mut lines);
    if let Some(p) = &c.prediction {
        prediction_lines(p, c, &mut lines);
    }
    option_lines(snap, c, &mut lines);
    let ok = c.placement.is_ok() && !app.settings.read_only;
    lines.push(Line::from(vec![
        Span::styled(
            format!(
                "{}/{}",
                app.settings.keys.first_key(Action::Yes),
                app.settings.keys.first_key(Action::Confirm)
            ),
            theme::key(),
        ),
        Span::raw(if ok {
            " start migration   "
        } else {
            " (cannot start)   "
        }),
        Span::styled("esc", theme::key()),
        Span::raw(" cancel"),
    ]));
    let lines = shown_lines(lines);
    let w = area.width.saturating_sub(2).min(96);
    // Height after wrapping at the dialog's inner width.
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().div_ceil(inner_w).max(1))
        .sum();
    let h = (rows as u16 + 2).min(area.height);
    let inner = dialog(area, buf, w, h, " move VM ", theme::accent());
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

/// Whether the target takes the VM (or why not), what moves with it: a
/// LUN's ownership, the cluster manager's part, disks copied.
fn placement_lines(snap: &crate::cluster::ClusterSnapshot, c: &Confirm, lines: &mut Vec<Line>) {
    match &c.placement {
        Ok(p) => {
            let mem = snap.vm(&c.vm).map_or(0, |v| v.memory);
            let free = snap.node(&c.to).map_or(0, |n| n.mem_free());
            let cpu = snap.node(&c.to).map_or("", |n| n.cpu_model.as_str());
            lines.push(Line::styled(
                format!(
                    "✓ {} up  ✓ CPU {cpu}  ✓ memory {} of {} free  ✓ disks reachable",
                    c.to,
                    units::bytes(mem),
                    units::bytes(free)
                ),
                theme::good(),
            ));
            for lun in &p.lun_moves {
                lines.push(Line::from(format!(
                    "  LUN {lun} holds only {} and its ownership moves to {}",
                    c.vm, c.to
                )));
            }
            if let Ok(Some(resource)) = plan::move_path(snap, &c.vm, &c.from, &c.to, c.options.via)
            {
                for (i, l) in plan::manager_note(&resource, &c.to, &c.vm, &c.options)
                    .into_iter()
                    .enumerate()
                {
                    lines.push(Line::styled(
                        format!("{}{l}", if i == 0 { "▶ " } else { "  " }),
                        if i == 0 {
                            theme::accent()
                        } else {
                            theme::dim()
                        },
                    ));
                }
            }
            for (f, t, b) in &p.copies {
                lines.push(Line::styled(
                    format!(
                        "  copies {} of disk {f} → {t} (shared-nothing){}",
                        units::bytes(*b),
                        c.inputs.as_ref().map_or(String::new(), |i| format!(
                            ", ≈ {} more",
                            units::millis(*b as f64 / i.bandwidth_bps.max(1) as f64 * 1000.0)
                        ))
                    ),
                    theme::warn(),
                ));
            }
            for f in &p.followers {
                lines.push(Line::styled(
                    format!("  then {f} follows it to {} (together rule)", c.to),
                    theme::accent(),
                ));
            }
            // Rules the move breaks: confirming is knowingly breaking them.
            for b in &p.breaks {
                let why = b
                    .reason
                    .as_deref()
                    .map_or(String::new(), |r| format!("; overridden: {r}"));
                lines.push(Line::styled(
                    format!("⚠ breaks {}{why}", b.sentence),
                    if b.reason.is_some() {
                        theme::bad()
                    } else {
                        theme::warn()
                    },
                ));
            }
        }
        Err(r) => lines.push(Line::styled(format!("✗ {r}"), theme::bad())),
    }
}

/// The prediction, what it is based on, and what would help it converge.
fn prediction_lines(p: &plan::Prediction, c: &Confirm, lines: &mut Vec<Line>) {
    let style = if !p.converges {
        theme::bad()
    } else if p.postcopy || p.may_not_converge || p.above_limit(c.options.max_downtime_ms) {
        theme::warn()
    } else {
        theme::good()
    };
    lines.push(Line::styled(
        format!("prediction: {}", p.summary(c.options.max_downtime_ms)),
        style,
    ));
    if !p.basis.is_empty() {
        lines.push(Line::styled(
            format!("based on: {}", p.basis.join("; ")),
            theme::dim(),
        ));
    }
    if !p.advice.is_empty() {
        let a: Vec<String> = p.advice.iter().map(|a| a.short()).collect();
        lines.push(Line::styled(
            format!("to converge: {}", a.join(" · ")),
            theme::warn(),
        ));
    }
}

/// The options in two columns: max downtime, bandwidth, auto-converge |
/// post-copy, on stall, copy storage. Through Pacemaker, all but the live
/// limits are the resource's own.
fn option_lines(snap: &crate::cluster::ClusterSnapshot, c: &Confirm, lines: &mut Vec<Line>) {
    lines.push(Line::styled(
        "options (↑↓ choose, ←→ change):",
        theme::dim(),
    ));
    // Two columns: max downtime, bandwidth, auto-converge | post-copy, on stall, copy storage.
    // Through Pacemaker, all but the live limits are the resource's own.
    let managed = matches!(
        plan::move_path(snap, &c.vm, &c.from, &c.to, c.options.via),
        Ok(Some(_))
    );
    let cell = |f: Field| {
        let sel = f == c.field;
        let pacemakers = managed && !matches!(f, Field::MaxDowntime | Field::Bandwidth);
        let text = format!(
            "{} {:<13} {:<20}",
            if sel { "▶" } else { " " },
            f.label(),
            if pacemakers {
                "Pacemaker's".to_string()
            } else {
                c.value(f)
            }
        );
        Span::styled(text, if sel { theme::selected() } else { Style::new() })
    };
    for i in 0..3 {
        lines.push(Line::from(vec![
            cell(Field::ALL[i]),
            Span::raw("  "),
            cell(Field::ALL[i + 3]),
        ]));
    }
}

fn help(app: &App, scroll: u16, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![Line::styled(
        "Keys (from the key map; rebind in config.toml [keys])",
        theme::title(),
    )];
    for (keys, desc, action) in app.settings.keys.help_rows() {
        let style = if app.settings.read_only && action.mutates() {
            theme::dim()
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{keys:>18}  "), theme::key()),
            Span::styled(desc, style),
        ]));
    }
    for l in [
        "",
        "Moving a VM: select it and press m (or space): the target nodes are",
        "listed best first (by the prediction), refused ones below with why;",
        "type part of a name to narrow the list, ↑↓ pick, Enter drops. Or press",
        "the mouse on a VM, drag it onto a node card and release; every card",
        "shows ✓ allowed or ✗ why not while you drag.",
        "In the confirm dialog: y starts, ↑↓ pick an option, ←→ change it.",
        "",
        "Moving a disk while its VM runs: Enter on a VM opens it; there V picks",
        "the disk and the volume (refused ones below with why), y starts the",
        "block copy, which pivots when done; a aborts it before the pivot.",
        "",
        "Nothing is cut off: the message line wraps; refusals, failures, stalls",
        "with their advice and drain summaries go to the event log (6). Enter",
        "opens an event, a VM or a migration in full; there c copies the text",
        "to the clipboard (OSC 52: works over SSH; in tmux needs",
        "`set -g set-clipboard on`). Times are the cluster's clock: simulated",
        "time on the simulator, UTC on a real cluster.",
        "",
        "Mouse: in tmux, mouse events arrive only with `set -g mouse on`.",
        "Mouse capture blocks text selection in some terminals: hold shift to",
        "select, or turn capture off with M (or --no-mouse).",
        "",
    ] {
        lines.push(Line::from(l));
    }
    lines.push(Line::styled(
        "Commands (type : then one of these; Tab completes, ↑↓ history,",
        theme::title(),
    ));
    lines.push(Line::styled(
        "ctrl-u/ctrl-w delete, ←→ home end move, Esc closes)",
        theme::title(),
    ));
    let usages: Vec<(String, &str)> = crate::app::command::COMMANDS
        .iter()
        .map(|spec| {
            let mut usage = spec.usage();
            for alias in &spec.names[1..] {
                usage += &format!(" (:{alias})");
            }
            (usage, spec.help)
        })
        .collect();
    // One column for the usages, a space wider than the longest.
    let uw = usages
        .iter()
        .map(|(u, _)| u.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .max(24);
    for (usage, help) in usages {
        lines.push(Line::from(vec![
            Span::styled(format!("{usage:<uw$}"), theme::key()),
            Span::raw(help),
        ]));
    }
    let h = area.height.saturating_sub(2);
    let inner = dialog(
        area,
        buf,
        area.width.saturating_sub(4).min(84),
        h,
        " help — esc closes, ↑↓ scroll ",
        theme::accent(),
    );
    // Scrolling stops at the last line.
    let scroll = scroll.min((lines.len() as u16).saturating_sub(inner.height));
    Paragraph::new(shown_lines(lines))
        .scroll((scroll, 0))
        .render(inner, buf);
}

/// An event, VM or migration in full: every line wrapped, scrollable.
fn detail(app: &App, d: &Detail, area: Rect, buf: &mut Buffer) {
    let w = area.width.saturating_sub(2).min(100);
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let lines: Vec<String> = d.lines.iter().flat_map(|l| wrap(l, inner_w)).collect();
    let h = (lines.len() as u16 + 2).clamp(3, area.height.saturating_sub(2).max(3));
    let keys = &app.settings.keys;
    let title = format!(
        " {} — {} copies, {} closes ",
        d.title,
        keys.first_key(Action::Copy),
        keys.first_key(Action::Cancel)
    );
    let inner = dialog(area, buf, w, h, &title, theme::accent());
    let scroll = (d.scroll as usize).min(lines.len().saturating_sub(inner.height as usize));
    for (i, l) in lines
        .into_iter()
        .skip(scroll)
        .take(inner.height as usize)
        .enumerate()
    {
        put(buf, inner, i as u16, Line::from(l));
    }
}

fn about(app: &App, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![Line::styled(
        format!("vmshift {}", env!("CARGO_PKG_VERSION")),
        theme::title(),
    )];
    match &app.self_usage {
        Some(u) => {
            lines.push(Line::from(format!(
                "own CPU        {:.1} % of one core",
                u.cpu_pct
            )));
            lines.push(Line::from(format!(
                "own memory     {} resident",
                units::bytes(u.rss_bytes)
            )));
            lines.push(Line::from(format!("threads        {}", u.threads)));
        }
        None => lines.push(Line::from("measuring own CPU and memory…")),
    }
    if let Some(s) = &app.snap {
        lines.push(Line::from(format!(
            "backend        {} ({})",
            s.backend, s.cluster
        )));
    }
    lines.push(Line::from(format!(
        "poll interval  {} ms",
        app.settings.poll_interval_ms
    )));
    lines.push(Line::from(format!(
        "mouse          {}",
        if app.settings.mouse { "on" } else { "off" }
    )));
    lines.push(Line::from(format!(
        "read-only      {}",
        if app.settings.read_only { "yes" } else { "no" }
    )));
    lines.push(Line::styled("any key closes", theme::dim()));
    let inner = dialog(
        area,
        buf,
        52,
        lines.len() as u16 + 2,
        " about ",
        theme::accent(),
    );
    Paragraph::new(shown_lines(lines)).render(inner, buf);
}
