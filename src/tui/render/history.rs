//! The history tab: past migrations (who, when, from → to, outcome,
//! downtime), newest first; one opened shows the migration view as it ran.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use super::theme;
use super::widgets::{escape, fit, put, scroll_mark};
use crate::app::{Action, App, HitMap, Past, Target, View};
use crate::cluster::Outcome;

pub fn render(app: &App, area: Rect, buf: &mut Buffer, hit: &mut HitMap) {
    let keys = &app.settings.keys;
    if app.past_open
        && let Some(p) = app.selected_past()
    {
        // As it ran: the migration view of the record, read-only.
        put(
            buf,
            area,
            0,
            Line::from(vec![
                Span::styled(
                    format!(" #{} run by {} on {} ", p.migration.id, p.who, p.when()),
                    theme::title(),
                ),
                Span::styled(
                    format!(
                        "— read-only; {} back, {} full text",
                        keys.first_key(Action::Cancel),
                        keys.first_key(Action::Confirm)
                    ),
                    theme::dim(),
                ),
            ]),
        );
        let rest = Rect::new(
            area.x,
            area.y + 1,
            area.width,
            area.height.saturating_sub(1),
        );
        super::migration::detail(&p.migration, rest, buf);
        return;
    }
    let all = app.past_newest_first();
    let block = Block::bordered()
        .title(format!(
            " History: {} past migration{} (flight recorder), newest first; {} opens one ",
            all.len(),
            crate::app::plural(all.len()),
            keys.first_key(Action::Confirm)
        ))
        .border_style(theme::dim());
    let inner = block.inner(area);
    block.render(area, buf);
    hit.push(inner, Target::List(View::History));
    if inner.height < 2 {
        return;
    }
    let w = inner.width as usize;
    let rows = (inner.height - 1) as usize;
    let sel = app.sel_past.min(all.len().saturating_sub(1));
    let first = sel.saturating_sub(rows.saturating_sub(1));
    let shown = || all.iter().skip(first).take(rows);
    // The VM and route columns as wide as the rows on screen need, as long
    // as the outcome keeps some room (Enter shows it whole); narrow
    // screens slim the other columns.
    let (who_w, down_w) = if w < 100 { (8, 7) } else { (10, 8) };
    let need = |f: &dyn Fn(&Past) -> String, least: usize| {
        shown()
            .map(|p| escape(&f(p)).chars().count())
            .max()
            .unwrap_or(0)
            .max(least)
    };
    let route_need = need(
        &|p: &Past| format!("{} → {}", p.migration.from, p.migration.to),
        9,
    );
    let vm_need = need(&|p: &Past| p.migration.vm.clone(), 2);
    let outcome_need = need(&|p: &Past| p.outcome(), 7);
    // WHEN, WHO, DOWN and the spaces between the columns.
    let rest = w.saturating_sub(16 + 1 + who_w + 1 + 1 + 1 + down_w + 2);
    let outcome_min = outcome_need.min(10);
    let route_w = route_need.min(rest.saturating_sub(outcome_min + vm_need.min(10)));
    let vm_w = vm_need
        .min(rest.saturating_sub(outcome_min + route_w))
        .max(2);
    let header = format!(
        "{:<16} {:<who_w$} {:<vm_w$} {:<route_w$} {:>down_w$}  OUTCOME",
        "WHEN (UTC)",
        "WHO",
        "VM",
        "FROM → TO",
        if w < 100 { "DOWN" } else { "DOWNTIME" }
    );
    put(buf, inner, 0, Line::styled(fit(&header, w), theme::title()));
    if all.is_empty() {
        put(
            buf,
            inner,
            1,
            Line::styled(
                "  no migrations recorded yet for this cluster",
                theme::dim(),
            ),
        );
        return;
    }
    scroll_mark(buf, area, first, rows, all.len());
    for (r, p) in all.iter().enumerate().skip(first).take(rows) {
        let m = &p.migration;
        let text = format!(
            "{:<16} {} {} {} {:>down_w$}  {}",
            p.when(),
            fit(&p.who, who_w),
            fit(&m.vm, vm_w),
            fit(&format!("{} → {}", m.from, m.to), route_w),
            p.downtime(),
            p.outcome()
        );
        let style = if r == sel {
            theme::selected()
        } else {
            outcome_style(p)
        };
        let y = inner.y + 1 + (r - first) as u16;
        buf.set_string(inner.x, y, fit(&text, w), style);
    }
}

fn outcome_style(p: &Past) -> ratatui::style::Style {
    match (&p.detached_on, &p.migration.outcome) {
        (Some(_), _) => theme::warn(),
        (None, Some(Outcome::Completed)) => ratatui::style::Style::new(),
        _ => theme::bad(),
    }
}
