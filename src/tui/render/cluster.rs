//! The cluster view: node cards with their VMs (drag source and drop
//! targets), and on wide screens the selected VM's details, the volumes and
//! running migrations beside them.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Widget};

use super::theme;
use super::widgets::{bar, escape, fit, put, shown_line, vm_row};
use crate::app::nodes::Level;
use crate::app::{App, HitMap, Mode, Target, View, cards_per_row, is_wide};
use crate::cluster::{Node, NodeState, units};

/// Rows of VMs a card shows at most (more scroll inside the card).
const MAX_CARD_VMS: u16 = 8;

pub fn render(app: &App, area: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    hit.push(area, Target::List(View::Cluster));
    // A keyboard move lists the targets ranked where the cards are; a
    // mouse drag keeps the cards to drop on.
    let listed = match &app.mode {
        Mode::Drag(d) if d.listed() && d.pointer.is_none() => Some(d),
        _ => None,
    };
    if is_wide(area.width) && area.height >= 20 {
        let [cards, side] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                .areas(area);
        if let Some(d) = listed {
            super::targets::render(app, d, cards, buf, hit);
            render_side(app, side, buf, true);
            return;
        }
        // Wide screens: details beside the cards; running migrations and
        // events under them when there is room (the cards already list
        // every VM; the VM table is view 2), else beside them.
        let used = render_cards(app, cards, buf, hit);
        let rest = below(cards, used);
        let recent_below = rest.height >= 3;
        if recent_below {
            render_recent(app, rest, buf);
        }
        render_side(app, side, buf, !recent_below);
    } else if let Some(d) = listed {
        super::targets::render(app, d, area, buf, hit);
    } else {
        let used = render_cards(app, area, buf, hit);
        render_recent(app, below(area, used), buf);
    }
}

/// The part of `area` under its first `used` rows.
fn below(area: Rect, used: u16) -> Rect {
    let used = used.min(area.height);
    Rect::new(area.x, area.y + used, area.width, area.height - used)
}

/// Space left under the cards: running migrations, then the latest events.
fn render_recent(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height < 3 {
        return;
    }
    let block = Block::bordered()
        .title(" recent ")
        .border_style(theme::dim());
    let inner = block.inner(area);
    block.render(area, buf);
    let mut lines = running_lines(app);
    let clock = app.clock();
    for e in app.log.iter().rev() {
        if lines.len() >= inner.height as usize {
            break;
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", clock.text(e.at_ms)), theme::dim()),
            Span::raw(e.text.clone()),
        ]));
    }
    for (i, l) in lines.into_iter().take(inner.height as usize).enumerate() {
        put(buf, inner, i as u16, l);
    }
}

/// Draws the node cards; returns the rows they take.
fn render_cards(app: &App, area: Rect, buf: &mut Buffer, hit: &mut HitMap) -> u16 {
    let snap = app.snap.as_ref().expect("rendered with a snapshot");
    // The nodes that get a card (a filter hides nodes with nothing to show).
    let shown = app.card_nodes();
    let nodes: Vec<&Node> = shown.iter().map(|&i| &snap.nodes[i]).collect();
    if nodes.is_empty() {
        let text = if app.filtering() {
            " nothing matches the filter (Esc shows all)"
        } else {
            " the cluster has no nodes"
        };
        put(buf, area, 0, Line::styled(text, theme::dim()));
        return 1;
    }
    let cols =
        cards_per_row(app.size.0).min((area.width / crate::app::CARD_MIN_WIDTH).max(1) as usize);
    // A lost node's card has a line more: how to recover its VMs.
    let most_vms = nodes
        .iter()
        .map(|n| {
            app.card_vms(&n.name).len()
                + usize::from(recover_hint(app, n))
                + stale_here(snap, &n.name).count()
        })
        .max()
        .unwrap_or(0) as u16;
    let full_h = (3 + most_vms.clamp(1, MAX_CARD_VMS)).min(area.height);
    let total_rows = nodes.len().div_ceil(cols);
    // Many nodes: compact cards (the stats and one line of VM names), so
    // that several rows of nodes fit on the screen.
    let compact = total_rows > (area.height / full_h).max(1) as usize
        && area.height >= 2 * COMPACT_CARD_H
        && full_h > COMPACT_CARD_H;
    let card_h = if compact { COMPACT_CARD_H } else { full_h };
    let rows_fit = (area.height / card_h).max(1) as usize;
    // Keep the selected (or hovered) node's row on screen.
    let sel_pos = shown.iter().position(|&i| i == app.sel_node).unwrap_or(0);
    let focus = match &app.mode {
        Mode::Drag(d) => d
            .over
            .as_ref()
            .and_then(|o| nodes.iter().position(|n| n.name == *o))
            .unwrap_or(sel_pos),
        _ => sel_pos,
    };
    let focus_row = focus / cols;
    let first_row = focus_row
        .saturating_sub(rows_fit - 1)
        .min(total_rows.saturating_sub(rows_fit));
    let card_w = area.width / cols as u16;
    for r in 0..rows_fit {
        let row = first_row + r;
        for c in 0..cols {
            let i = row * cols + c;
            let Some(&node) = nodes.get(i) else { break };
            let rect = Rect {
                x: area.x + c as u16 * card_w,
                y: area.y + r as u16 * card_h,
                width: if c == cols - 1 {
                    area.width - c as u16 * card_w
                } else {
                    card_w
                },
                height: card_h,
            };
            if rect.bottom() > area.bottom() {
                continue;
            }
            render_card(app, node, shown[i] == app.sel_node, compact, rect, buf, hit);
        }
    }
    if total_rows > rows_fit {
        let text = format!(
            " nodes {}–{} of {} ",
            first_row * cols + 1,
            ((first_row + rows_fit) * cols).min(nodes.len()),
            nodes.len()
        );
        let w = text.chars().count() as u16;
        if area.width > w {
            buf.set_string(area.right() - w, area.bottom() - 1, text, theme::dim());
        }
        return area.height;
    }
    (rows_fit.min(total_rows) as u16 * card_h).min(area.height)
}

/// Height of a compact node card: borders, the stats, one line of VMs.
const COMPACT_CARD_H: u16 = 4;

/// The stale, shut-off copies on `node` (of VMs that run elsewhere).
fn stale_here<'a>(
    snap: &'a crate::cluster::ClusterSnapshot,
    node: &'a str,
) -> impl Iterator<Item = &'a crate::cluster::StaleCopy> {
    snap.stale_copies.iter().filter(move |c| c.node == node)
}

/// Whether `node`'s card says `:recover NODE`: it is lost (down) with VMs
/// shown as last seen there, and this vmshift may change the cluster.
fn recover_hint(app: &App, node: &Node) -> bool {
    node.state == NodeState::Down
        && !app.settings.read_only
        && app
            .snap
            .as_ref()
            .is_some_and(|s| crate::app::recover::has_lost_vms(s, &node.name))
}

#[allow(clippy::too_many_arguments)]
fn render_card(
    app: &App,
    node: &Node,
    selected: bool,
    compact: bool,
    rect: Rect,
    buf: &mut Buffer,
    hit: &mut HitMap,
) {
    let snap = app.snap.as_ref().expect("snapshot");
    hit.push(rect, Target::Node(node.name.clone()));
    let drag = match &app.mode {
        Mode::Drag(d) => Some(d),
        _ => None,
    };
    let block = card_block(snap, node, drag, selected);
    let inner = block.inner(rect);
    block.render(rect, buf);
    if inner.height == 0 || inner.width < 10 {
        return;
    }
    let top = card_status_lines(app, snap, node, compact, inner, buf);
    // VMs.
    let vms = app.card_vms(&node.name);
    if vms.is_empty() && top > 1 {
        return;
    }
    if vms.is_empty() {
        put(buf, inner, top, Line::styled(" no VMs", theme::dim()));
        return;
    }
    let sel_pos = app
        .sel_vm
        .as_ref()
        .and_then(|s| vms.iter().position(|&i| snap.vms[i].name == *s));
    if compact {
        card_vms_on_one_line(app, snap, drag, vms, sel_pos, inner, buf, hit);
    } else {
        card_vm_rows(app, snap, drag, &vms, sel_pos, top, inner, buf, hit);
    }
}

/// The card's frame: the title says what the node is and, during a drag,
/// whether it takes the VM; the border says hovered, selected or not up.
fn card_block<'a>(
    snap: &crate::cluster::ClusterSnapshot,
    node: &'a Node,
    drag: Option<&crate::app::drag::Drag>,
    selected: bool,
) -> Block<'a> {
    let hovered = drag.is_some_and(|d| d.over.as_deref() == Some(node.name.as_str()));
    let verdict = drag.and_then(|d| d.verdict(&node.name).map(|v| (d, v)));
    // The title says what the node is; during a drag, whether it takes the VM.
    let mut title = vec![
        Span::styled(
            format!("{} ", node.state.glyph()),
            theme::node_state(node.state),
        ),
        Span::styled(node.name.clone(), theme::title()),
        Span::raw(format!(" {} ", node.state.label())),
    ];
    if node.cordon.is_some() {
        title.push(Span::styled("⊘ cordoned ", theme::warn()));
    }
    if let Some(badge) = snap.managed_node(&node.name).and_then(|m| m.badge()) {
        title.push(Span::styled(format!("{badge} "), theme::warn()));
    }
    match verdict {
        Some((d, _)) if d.from == node.name => title.push(Span::styled("◆ source ", theme::dim())),
        Some((_, Ok(_))) => title.push(Span::styled("✓ allowed ", theme::good())),
        Some((_, Err(r))) => title.push(Span::styled(format!("✗ {} ", r.short()), theme::bad())),
        None => {}
    }
    let border_style = if hovered {
        match verdict {
            Some((_, Ok(_))) => theme::good().add_modifier(Modifier::BOLD),
            _ => theme::bad(),
        }
    } else if node.state != NodeState::Up {
        theme::node_state(node.state)
    } else if selected && drag.is_none() {
        theme::accent()
    } else {
        theme::dim()
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(if hovered {
            BorderType::Double
        } else if selected {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border_style)
        .title(shown_line(Line::from(title)))
        .title_bottom(
            shown_line(Line::styled(format!(" {} ", node.cpu_model), theme::dim())).right_aligned(),
        )
}

/// The card's lines above its VMs: CPU and memory (or why the node is not
/// up), how to recover a lost node, and stale copies; returns the first
/// row left for the VMs.
fn card_status_lines(
    app: &App,
    snap: &crate::cluster::ClusterSnapshot,
    node: &Node,
    compact: bool,
    inner: Rect,
    buf: &mut Buffer,
) -> u16 {
    // CPU and memory.
    let bw = ((inner.width as usize).saturating_sub(28) / 2).clamp(3, 12);
    let mem_ratio = node.mem_used as f64 / node.mem_total.max(1) as f64;
    // Past a threshold: a glyph after the figure, and its colour.
    let (cpu_level, mem_level) = app
        .node_index(&node.name)
        .and_then(|i| app.derived.nodes.get(i))
        .map_or((Level::Ok, Level::Ok), |i| (i.cpu, i.mem));
    let mark = |l: Level| l.glyph().trim_end().to_string();
    let stats_style = match cpu_level.max(mem_level) {
        Level::Ok => Style::new(),
        Level::Warn => theme::warn(),
        Level::Crit => theme::bad(),
    };
    let hint = recover_hint(app, node);
    let stats = if node.state == NodeState::Up {
        format!(
            "cpu{}{:>3.0}%{:<1} mem{}{}{}",
            bar(node.cpu_used_pct / 100.0, bw),
            node.cpu_used_pct,
            mark(cpu_level),
            bar(mem_ratio, bw),
            short_gib(node.mem_used, node.mem_total),
            mark(mem_level)
        )
    } else {
        let error = node
            .error
            .clone()
            .unwrap_or_else(|| node.state.label().into());
        if hint && compact {
            format!(":recover {} · {error}", node.name)
        } else {
            error
        }
    };
    put(
        buf,
        inner,
        0,
        Line::styled(fit(&stats, inner.width as usize), stats_style),
    );
    // A lost node: how to restart its VMs elsewhere.
    let top = if hint && !compact && inner.height > 1 {
        put(
            buf,
            inner,
            1,
            Line::from(vec![
                Span::styled("▶ ", theme::warn()),
                Span::styled(format!(":recover {}", node.name), theme::key()),
                Span::styled(" (once it is off)", theme::dim()),
            ]),
        );
        2
    } else {
        1
    };
    // Stale copies: shut-off definitions of VMs that run elsewhere.
    let mut top = top;
    for c in stale_here(snap, &node.name) {
        if top >= inner.height {
            break;
        }
        let text = format!(
            "⚠ stale copy {}{} (runs on {})",
            c.vm,
            if c.autostart { " AUTOSTART" } else { "" },
            c.runs_on
        );
        put(
            buf,
            inner,
            top,
            Line::styled(fit(&text, inner.width as usize), theme::bad()),
        );
        top += 1;
    }
    top
}

/// A compact card's VMs on one line: the selected VM first, then the
/// others, "+N" for the rest.
#[allow(clippy::too_many_arguments)]
fn card_vms_on_one_line(
    app: &App,
    snap: &crate::cluster::ClusterSnapshot,
    drag: Option<&crate::app::drag::Drag>,
    vms: Vec<usize>,
    sel_pos: Option<usize>,
    inner: Rect,
    buf: &mut Buffer,
    hit: &mut HitMap,
) {
    let mut order = vms;
    if let Some(p) = sel_pos {
        let s = order.remove(p);
        order.insert(0, s);
    }
    let y = inner.y + 1;
    let mut x = inner.x;
    for (k, &i) in order.iter().enumerate() {
        let v = &snap.vms[i];
        let label = format!("{} {}", theme::vm_mark(v), escape(&v.name));
        let w = label.chars().count() as u16;
        let left = order.len() - k;
        let more = format!("+{left}");
        let reserve = if left > 1 { more.len() as u16 + 1 } else { 0 };
        if x + w + reserve > inner.right() {
            if x + more.len() as u16 <= inner.right() {
                buf.set_string(x, y, more, theme::dim());
            }
            break;
        }
        let is_sel = app.sel_vm.as_deref() == Some(v.name.as_str()) && app.view == View::Cluster;
        let dragged = drag.is_some_and(|d| d.vm == v.name);
        let style = if is_sel || dragged {
            theme::selected()
        } else {
            theme::vm_style(v)
        };
        buf.set_string(x, y, &label, style);
        hit.push(Rect::new(x, y, w, 1), Target::Vm(v.name.clone()));
        x += w + 1;
    }
}

/// A card's VMs as rows (scrolled to keep the selected one in view), and
/// "+N more" when they do not all fit.
#[allow(clippy::too_many_arguments)]
fn card_vm_rows(
    app: &App,
    snap: &crate::cluster::ClusterSnapshot,
    drag: Option<&crate::app::drag::Drag>,
    vms: &[usize],
    sel_pos: Option<usize>,
    top: u16,
    inner: Rect,
    buf: &mut Buffer,
    hit: &mut HitMap,
) {
    let rows = inner.height.saturating_sub(top) as usize;
    let show = if vms.len() > rows {
        rows.saturating_sub(1)
    } else {
        rows
    };
    let first = sel_pos.map_or(0, |p| p.saturating_sub(show.saturating_sub(1)));
    for (row, &i) in vms.iter().skip(first).take(show).enumerate() {
        let v = &snap.vms[i];
        let is_sel = app.sel_vm.as_deref() == Some(v.name.as_str()) && app.view == View::Cluster;
        let dragged = drag.is_some_and(|d| d.vm == v.name);
        let w = inner.width as usize;
        let name_w = w.saturating_sub(22).clamp(6, 24);
        // A VM Pacemaker owns shows its resource where the workload goes.
        let kind = match snap.managed_vm(&v.name) {
            Some(m) => format!("⚑{}", m.resource),
            None => v.workload.kind.to_string(),
        };
        // A VM of a lost node: when it was last seen, in place of the rest.
        let text = match &v.lost {
            Some(l) => format!(
                "{} {} {}",
                theme::vm_mark(v),
                fit(&v.name, name_w),
                crate::app::recover::lost_short(l, app.clock())
            ),
            None => format!(
                "{} {} {:>7} {:<9}",
                theme::vm_mark(v),
                fit(&v.name, name_w),
                short_mem(v.memory),
                fit(&kind, 9)
            ),
        };
        let y = inner.y + top + row as u16;
        vm_row(buf, hit, inner, y, &text, v, is_sel || dragged);
    }
    if vms.len() > show {
        let more = vms.len() - show;
        put(
            buf,
            inner,
            top + show as u16,
            Line::styled(format!(" +{more} more (↑↓ scrolls)"), theme::dim()),
        );
    }
}

fn short_mem(b: u64) -> String {
    let g = b as f64 / (1u64 << 30) as f64;
    if g >= 1.0 {
        format!("{g:.0}G")
    } else {
        format!("{:.0}M", b as f64 / (1u64 << 20) as f64)
    }
}

fn short_gib(used: u64, total: u64) -> String {
    format!(
        "{}/{}",
        short_mem(used).trim_end_matches('G'),
        short_mem(total)
    )
}

/// Wide screens: the selected VM, running migrations, volumes.
fn render_side(app: &App, area: Rect, buf: &mut Buffer, with_recent: bool) {
    let snap = app.snap.as_ref().expect("snapshot");
    let volumes_h = if with_recent {
        (snap.volumes.len() as u16 + 2).min(12)
    } else {
        area.height.saturating_sub(15)
    };
    let [vm_area, mig_area, vol_area, recent_area] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(volumes_h),
        Constraint::Min(0),
    ])
    .areas(area);
    render_recent(app, recent_area, buf);
    // Selected VM.
    let block = Block::bordered()
        .title(" selected VM ")
        .border_style(theme::dim());
    let inner = block.inner(vm_area);
    block.render(vm_area, buf);
    if let Some(v) = app.sel_vm.as_ref().and_then(|n| snap.vm(n)) {
        let disks: Vec<String> = v
            .disks
            .iter()
            .map(|d| {
                let kind = snap.volume(&d.volume).map_or("", |x| x.kind.label());
                format!("{} {} ({kind})", d.volume, units::bytes(d.size))
            })
            .collect();
        let lines = [
            Line::from(vec![
                Span::styled(format!("{} ", theme::vm_mark(v)), theme::vm_style(v)),
                Span::styled(v.name.clone(), theme::title()),
                Span::raw(format!(" on {} — {}", v.node, v.state.label())),
            ]),
            Line::from(format!(
                "{} vCPU, {} memory, CPU {:.0}%",
                v.vcpus,
                units::bytes(v.memory),
                v.cpu_used_pct
            )),
            Line::from(format!(
                "workload {}: dirties {} over a {} hot set",
                v.workload.kind,
                units::rate(v.workload.dirty_bps),
                units::bytes(v.workload.wws_bytes)
            )),
            Line::from(format!("disks: {}", disks.join(", "))),
            Line::from(format!(
                "HA {}  CPU model {}",
                match snap.managed_vm(&v.name) {
                    Some(m) => format!(
                        "Pacemaker ⚑{} {}{}",
                        m.resource,
                        m.role,
                        if m.allow_migrate {
                            ""
                        } else {
                            " (no live move)"
                        }
                    ),
                    None => (if v.ha { "on" } else { "off" }).to_string(),
                },
                if v.cpu_model.is_empty() {
                    "any"
                } else {
                    &v.cpu_model
                }
            )),
            Line::styled(
                if app.settings.read_only {
                    "read-only".to_string()
                } else {
                    format!(
                        "{} moves it (or drag it onto a node)",
                        app.settings.keys.first_key(crate::app::Action::Move)
                    )
                },
                theme::dim(),
            ),
        ];
        let mut lines = Vec::from(lines);
        // A VM of a lost node: when it was last seen, and how to restart it.
        if let Some(l) = &v.lost {
            lines.insert(
                1,
                Line::styled(
                    format!("✖ {}", crate::app::recover::lost_text(l, app.clock())),
                    theme::bad(),
                ),
            );
            if let Some(last) = lines.last_mut()
                && !app.settings.read_only
            {
                *last = Line::styled(
                    format!(":recover {} restarts it elsewhere", l.node),
                    theme::dim(),
                );
            }
        }
        for (i, l) in lines.into_iter().enumerate() {
            put(buf, inner, i as u16, l);
        }
    }
    // Running migrations.
    let block = Block::bordered()
        .title(" migrations ")
        .border_style(theme::dim());
    let inner = block.inner(mig_area);
    block.render(mig_area, buf);
    let running = running_lines(app);
    if running.is_empty() {
        put(buf, inner, 0, Line::styled("none running", theme::dim()));
    }
    for (i, l) in running.into_iter().enumerate().take(inner.height as usize) {
        put(buf, inner, i as u16, l);
    }
    // Volumes.
    let block = Block::bordered()
        .title(" volumes ")
        .border_style(theme::dim());
    let inner = block.inner(vol_area);
    block.render(vol_area, buf);
    for (i, v) in snap.volumes.iter().enumerate().take(inner.height as usize) {
        let reach = if v.reachable_from.len() == snap.nodes.len() {
            "all nodes".to_string()
        } else {
            v.reachable_from.join(" ")
        };
        let owner = v
            .owner
            .as_ref()
            .filter(|_| v.kind == crate::cluster::VolumeKind::SharedLun)
            .map(|o| format!(" owner {o}"))
            .unwrap_or_default();
        let text = format!(
            "{:<12} {:<14}{owner} → {reach}",
            escape(&v.name),
            v.kind.label()
        );
        put(
            buf,
            inner,
            i as u16,
            Line::styled(fit(&text, inner.width as usize), Style::new()),
        );
    }
}

/// A line per running migration (stalled ones in the warning colour),
/// then one per running disk move.
fn running_lines(app: &App) -> Vec<Line<'static>> {
    app.running_migrations()
        .iter()
        .map(|m| {
            let style = if m.stalled {
                theme::warn()
            } else {
                theme::accent()
            };
            Line::styled(m.progress_line(), style)
        })
        .chain(super::storage::running_lines(app))
        .collect()
}
