//! The disk copy of a shared-nothing migration on the migration view: a
//! phase of its own between "prepare target" and "pre-copy" on the
//! timeline, and a line with its bytes, rate and ETA.

use ratatui::text::{Line, Span};

use super::theme;
use crate::cluster::{Migration, Step};

/// The disk copy is running now (pre-copy has not begun its rounds).
pub fn copying(m: &Migration) -> bool {
    m.disk_copy
        .as_ref()
        .is_some_and(|d| d.done_ms.is_none() && !m.is_finished())
}

/// The timeline's disk-copy phase, shown after step `s` (prepare target).
pub fn phase(m: &Migration, s: Step, narrow: bool) -> Option<Vec<Span<'static>>> {
    let d = m.disk_copy.as_ref()?;
    if s != Step::PrepareTarget {
        return None;
    }
    let label = if narrow { "disk" } else { "disk copy" };
    let (mark, style) = if copying(m) {
        ("▶", theme::selected())
    } else if d.done_ms.is_some() {
        ("✓", theme::good())
    } else if d.started_ms.is_some() {
        ("✗", theme::dim())
    } else {
        (" ", theme::dim())
    };
    Some(vec![
        Span::styled(" › ", theme::dim()),
        Span::styled(format!("{mark}{label}"), style),
    ])
}

/// "disk copy 8.0 MiB of 16.0 MiB at 40.0 MiB/s, 0.2 s left".
pub fn line(m: &Migration) -> Option<Line<'static>> {
    let d = m.disk_copy.as_ref()?;
    let style = if copying(m) {
        theme::accent()
    } else {
        theme::dim()
    };
    Some(Line::styled(d.line(), style))
}
