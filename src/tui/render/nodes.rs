//! The nodes view: one row per node for triage, in the order `update`
//! computed; thresholds shown by colour and by a glyph (`!` warning,
//! `!!` critical) so NO_COLOR keeps them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use super::theme;
use super::widgets::{bar, escape, fit, put, scroll_mark};
use crate::app::nodes::{Level, NodeCol, answer};
use crate::app::{App, HitMap, Target, View};
use crate::cluster::NodeState;

fn level_style(l: Level) -> Style {
    match l {
        Level::Ok => Style::new(),
        Level::Warn => theme::warn(),
        Level::Crit => theme::bad(),
    }
}

/// `238/256G`
fn used_total(used: u64, total: u64) -> String {
    let g = |b: u64| b as f64 / (1u64 << 30) as f64;
    format!("{:.0}/{:.0}G", g(used), g(total))
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    let snap = app.snap.as_ref().expect("snapshot");
    let rows = &app.derived.rows;
    let sort = app.node_sort;
    let arrow = if sort.descending { "▼" } else { "▲" };
    let title = format!(
        " Nodes{}: {} of {} · by {} {arrow} ",
        if app.problems { " with problems" } else { "" },
        rows.len(),
        snap.nodes.len(),
        sort.col.title().to_lowercase(),
    );
    let block = Block::bordered().title(title).border_style(theme::dim());
    let inner = block.inner(area);
    block.render(area, buf);
    hit.push(inner, Target::List(View::Nodes));
    if inner.height < 2 || inner.width < 20 {
        return;
    }
    let cols = Columns::fit(snap, inner);
    if !cols.long_cordon && rows.iter().any(|&i| snap.nodes[i].cordon.is_some()) {
        let legend = " ⊘ cordoned ";
        let lw = legend.chars().count() as u16;
        if area.width > lw + 2 {
            buf.set_string(area.right() - lw - 1, area.y, legend, theme::warn());
        }
    }
    header(app, &cols, arrow, inner, buf, hit);
    let height = (inner.height - 1) as usize;
    if rows.is_empty() {
        put(
            buf,
            inner,
            1,
            Line::styled(
                if app.problems {
                    "  no node has a problem (! shows all)"
                } else {
                    "  the cluster has no nodes"
                },
                theme::dim(),
            ),
        );
        return;
    }
    let sel = rows.iter().position(|&i| i == app.sel_node).unwrap_or(0);
    let first = sel.saturating_sub(height.saturating_sub(1));
    scroll_mark(buf, area, first, height, rows.len());
    for (r, &i) in rows.iter().skip(first).take(height).enumerate() {
        let n = &snap.nodes[i];
        let y = 1 + r as u16;
        put(buf, inner, y, node_row(app, i, &cols));
        hit.push(
            Rect::new(inner.x, inner.y + y, inner.width, 1),
            Target::Node(n.name.clone()),
        );
    }
}

/// The columns' widths at this size: the ANSWER column takes what the
/// others leave.
struct Columns {
    /// The memory bar's width.
    bw: usize,
    name_w: usize,
    state_w: usize,
    answer_w: usize,
    /// A cordon is marked `⊘ cordoned` (else `⊘`, the title saying what
    /// it means).
    long_cordon: bool,
}

impl Columns {
    fn fit(snap: &crate::cluster::ClusterSnapshot, inner: Rect) -> Columns {
        let bw = if inner.width >= 100 { 10 } else { 4 };
        let name_w = snap
            .nodes
            .iter()
            .map(|n| escape(&n.name).chars().count())
            .max()
            .unwrap_or(4)
            .clamp(4, 20)
            + 1;
        // A cordon is marked `⊘ cordoned` where the ANSWER column keeps room
        // beside it, else `⊘` (the title says what it means): the columns
        // keep their place whatever is cordoned.
        let state_w_of = |long: bool| {
            snap.nodes
                .iter()
                .map(|n| state_text(n, long).chars().count())
                .max()
                .unwrap_or(4)
                .max(5)
                + 1
        };
        let others = name_w + (2 + bw + 2 + 5 + 11) + 8 + 7 + 6 + 6;
        let long_cordon = others + state_w_of(true) + ANSWER_MIN <= inner.width as usize;
        let state_w = state_w_of(long_cordon);
        let mut cols = Columns {
            bw,
            name_w,
            state_w,
            answer_w: 0,
            long_cordon,
        };
        let fixed: usize = NodeCol::ALL.iter().map(|c| cols.w(*c)).sum();
        cols.answer_w = (inner.width as usize).saturating_sub(fixed).max(6);
        cols
    }

    fn w(&self, c: NodeCol) -> usize {
        match c {
            NodeCol::State => self.state_w,
            NodeCol::Name => self.name_w,
            NodeCol::Memory => 2 + self.bw + 2 + 5 + 11,
            NodeCol::Cpu => 8,
            NodeCol::Free => 7,
            NodeCol::Vms => 6,
            NodeCol::Migrations => 6,
            NodeCol::Answer => self.answer_w,
        }
    }
}

/// The header row: a click on a column sorts by it.
fn header(app: &App, cols: &Columns, arrow: &str, inner: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    let sort = app.node_sort;
    let mut x = inner.x;
    let mut spans = Vec::new();
    for c in NodeCol::ALL {
        // With `!` the last column says why each node is listed.
        let mut t = if c == NodeCol::Answer && app.problems {
            "WHY".to_string()
        } else {
            c.title().to_string()
        };
        if c == sort.col {
            t += arrow;
        }
        let cw = cols.w(c);
        let numeric = matches!(
            c,
            NodeCol::Cpu | NodeCol::Free | NodeCol::Vms | NodeCol::Migrations
        );
        let text = if numeric {
            format!("{t:>width$} ", width = cw - 1)
        } else {
            fit(&t, cw)
        };
        let style = if c == sort.col {
            theme::title().add_modifier(ratatui::style::Modifier::UNDERLINED)
        } else {
            theme::title()
        };
        spans.push(Span::styled(text, style));
        let cw = (cw as u16).min(inner.right().saturating_sub(x));
        hit.push(Rect::new(x, inner.y, cw, 1), Target::Column(c));
        x += cw;
    }
    put(buf, inner, 0, Line::from(spans));
}

/// Node `i`'s row.
fn node_row(app: &App, i: usize, cols: &Columns) -> Line<'static> {
    let snap = app.snap.as_ref().expect("snapshot");
    let w = |c: NodeCol| cols.w(c);
    let bw = cols.bw;
    let n = &snap.nodes[i];
    let info = &app.derived.nodes[i];
    let up = n.state == NodeState::Up;
    let selected = i == app.sel_node;
    let cell = |s: Style| if selected { theme::selected() } else { s };
    let dash = |c: NodeCol| fit("–", w(c));
    let mut spans = vec![
        Span::styled(
            fit(&state_text(n, cols.long_cordon), w(NodeCol::State)),
            cell(theme::node_state(n.state)),
        ),
        Span::styled(fit(&n.name, w(NodeCol::Name)), cell(Style::new())),
    ];
    if up {
        spans.push(Span::styled(
            fit(
                &format!(
                    "{}{} {:>3.0}% {}",
                    info.mem.glyph(),
                    bar(info.mem_pct / 100.0, bw),
                    info.mem_pct,
                    used_total(n.mem_used, n.mem_total)
                ),
                w(NodeCol::Memory),
            ),
            cell(level_style(info.mem)),
        ));
        spans.push(Span::styled(
            format!("{}{:>4.0}% ", info.cpu.glyph(), n.cpu_used_pct),
            cell(level_style(info.cpu)),
        ));
        spans.push(Span::styled(
            format!(
                "{:>6} ",
                format!("{:.0}G", n.mem_free() as f64 / (1u64 << 30) as f64)
            ),
            cell(Style::new()),
        ));
    } else {
        for c in [NodeCol::Memory, NodeCol::Cpu, NodeCol::Free] {
            spans.push(Span::styled(dash(c), cell(theme::dim())));
        }
    }
    spans.push(Span::styled(
        format!("{:>5} ", info.vms),
        cell(Style::new()),
    ));
    spans.push(Span::styled(
        format!("{:>5} ", info.migrations),
        cell(if info.migrations > 0 {
            theme::accent()
        } else {
            Style::new()
        }),
    ));
    let ans = match &info.problem {
        Some(why) if app.problems => why_text(n, why),
        _ => answer(n),
    };
    spans.push(Span::styled(
        fit(&ans, cols.answer_w),
        cell(if up { theme::dim() } else { theme::bad() }),
    ));
    Line::from(spans)
}

/// Why a node is listed under `!`, and its answer when that adds to it:
/// a node down or unreachable is there for what it answered (its STATE
/// says the rest).
fn why_text(n: &crate::cluster::Node, why: &str) -> String {
    let ans = answer(n);
    if why == n.state.label() {
        ans
    } else if ans == "ok" {
        why.to_string()
    } else {
        format!("{why} · {ans}")
    }
}

/// The least room the ANSWER column is given before a cordon is shortened.
const ANSWER_MIN: usize = 12;

/// `● up`, and `⊘ cordoned` after it for a cordoned node (`⊘` when not `long`).
fn state_text(n: &crate::cluster::Node, long: bool) -> String {
    let mut t = format!("{} {}", n.state.glyph(), n.state.label());
    match (n.cordon.is_some(), long) {
        (true, true) => t += " ⊘ cordoned",
        (true, false) => t += " ⊘",
        _ => {}
    }
    t
}
