//! Moving the selection: cards, lists and tables; filters and sorting
//! that move it along.

use super::{Action, App, NodeSort, View, cards_per_row};
use crate::cluster::MigrationId;

pub(super) fn scroll(cur: usize, a: Action, n: usize) -> usize {
    let last = n.saturating_sub(1);
    match a {
        Action::Up => cur.saturating_sub(1),
        Action::Down => (cur + 1).min(last),
        Action::PageUp => cur.saturating_sub(10),
        Action::PageDown => (cur + 10).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => cur,
    }
}

/// Where a list's selection goes with `a`, from `cur` in `0..=last`.
pub(super) fn list_step(a: Action, cur: usize, last: usize) -> usize {
    match a {
        Action::Up => cur.saturating_sub(1),
        Action::Down => (cur + 1).min(last),
        Action::PageUp => cur.saturating_sub(20),
        Action::PageDown => (cur + 20).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => cur,
    }
}

impl App {
    pub(super) fn navigate(&mut self, a: Action) {
        let Some(snap) = &self.snap else { return };
        match self.view {
            View::Cluster => {
                // Cards in order; positions in this list, not node indices.
                let cards = self.card_nodes();
                let n = cards.len();
                if n == 0 {
                    return;
                }
                let pos = cards.iter().position(|&i| i == self.sel_node).unwrap_or(0);
                let node_delta: isize = match a {
                    Action::Left => -1,
                    Action::Right => 1,
                    Action::PageUp => -4,
                    Action::PageDown => 4,
                    Action::Top => -(n as isize),
                    Action::Bottom => n as isize,
                    _ => 0,
                };
                if node_delta != 0 {
                    self.sel_node =
                        cards[(pos as isize + node_delta).clamp(0, n as isize - 1) as usize];
                    self.sel_vm = self.first_vm_of_selected_node();
                    return;
                }
                let vms = self.card_vms(&snap.nodes[self.sel_node].name);
                let cur = self
                    .sel_vm
                    .as_ref()
                    .and_then(|s| vms.iter().position(|&i| snap.vms[i].name == *s));
                let next = match (a, cur) {
                    (Action::Down, Some(c)) if c + 1 < vms.len() => Some(c + 1),
                    (Action::Down, Some(_)) if pos + 1 < n => {
                        // Past the last VM of this card: the next card.
                        self.sel_node = cards[pos + 1];
                        self.sel_vm = self.first_vm_of_selected_node();
                        return;
                    }
                    (Action::Up, Some(0)) if pos > 0 => {
                        self.sel_node = cards[pos - 1];
                        let s = self.snap.as_ref().expect("checked");
                        let prev = self.card_vms(&s.nodes[self.sel_node].name);
                        self.sel_vm = prev.last().map(|&i| s.vms[i].name.clone());
                        return;
                    }
                    (Action::Up, Some(c)) => Some(c.saturating_sub(1)),
                    (_, None) => Some(0),
                    (_, Some(c)) => Some(c),
                };
                self.sel_vm = next
                    .and_then(|i| vms.get(i))
                    .map(|&i| snap.vms[i].name.clone());
            }
            View::Nodes => {
                let rows = &self.derived.rows;
                if rows.is_empty() {
                    return;
                }
                let cur = rows.iter().position(|&i| i == self.sel_node).unwrap_or(0);
                let last = rows.len() - 1;
                let next = list_step(a, cur, last);
                self.sel_node = rows[next];
                self.sel_vm = self.first_vm_of_selected_node();
            }
            View::Vms => {
                let vis = self.visible_vms();
                if vis.is_empty() {
                    return;
                }
                let cur = self
                    .sel_vm
                    .as_ref()
                    .and_then(|s| vis.iter().position(|&i| snap.vms[i].name == *s))
                    .unwrap_or(0);
                let last = vis.len() - 1;
                let next = list_step(a, cur, last);
                let v = &snap.vms[vis[next]];
                self.sel_vm = Some(v.name.clone());
                self.sel_node = snap
                    .nodes
                    .iter()
                    .position(|n| n.name == v.node)
                    .unwrap_or(self.sel_node);
            }
            View::Migrations => {
                let all: Vec<MigrationId> = self
                    .migrations_newest_first()
                    .iter()
                    .map(|m| m.id)
                    .collect();
                if all.is_empty() {
                    return;
                }
                let cur = self
                    .selected_migration()
                    .and_then(|m| all.iter().position(|&i| i == m.id))
                    .unwrap_or(0);
                let next = match a {
                    Action::Up => cur.saturating_sub(1),
                    Action::Down => (cur + 1).min(all.len() - 1),
                    Action::Top => 0,
                    Action::Bottom => all.len() - 1,
                    _ => cur,
                };
                self.sel_migration = Some(all[next]);
            }
            View::Volumes => {
                let last_col = snap.nodes.len().saturating_sub(1);
                match a {
                    Action::Left => self.volume_col = self.volume_col.saturating_sub(1),
                    Action::Right => self.volume_col = (self.volume_col + 1).min(last_col),
                    _ => {
                        let n = snap.volumes.len();
                        self.scroll_volumes = scroll(self.scroll_volumes, a, n);
                    }
                }
            }
            View::History => {
                let n = self.past.len();
                if !self.past_open {
                    self.sel_past = list_step(
                        a,
                        self.sel_past.min(n.saturating_sub(1)),
                        n.saturating_sub(1),
                    );
                }
            }
            View::Events => {
                let n = self.events_shown().len();
                self.sel_event = list_step(
                    a,
                    self.sel_event.min(n.saturating_sub(1)),
                    n.saturating_sub(1),
                );
            }
        }
    }

    pub(super) fn select_vm(&mut self, vm: &str) {
        let Some(s) = &self.snap else { return };
        if let Some(v) = s.vm(vm) {
            self.sel_node = s
                .nodes
                .iter()
                .position(|n| n.name == v.node)
                .unwrap_or(self.sel_node);
            self.sel_vm = Some(vm.to_string());
        }
    }

    pub(super) fn first_vm_of_selected_node(&self) -> Option<String> {
        let s = self.snap.as_ref()?;
        let node = s.nodes.get(self.sel_node)?;
        self.card_vms(&node.name)
            .first()
            .map(|&i| s.vms[i].name.clone())
    }

    pub(super) fn after_filter_change(&mut self) {
        let cards = self.card_nodes();
        if !cards.is_empty() && !cards.contains(&self.sel_node) {
            self.sel_node = cards[0];
        }
        let vis = self.visible_vms();
        if let Some(s) = &self.snap {
            let keep = self
                .sel_vm
                .as_ref()
                .is_some_and(|n| vis.iter().any(|&i| s.vms[i].name == *n));
            if !keep {
                self.sel_vm = vis.first().map(|&i| s.vms[i].name.clone());
                if let Some(v) = self.sel_vm.as_ref().and_then(|n| s.vm(n)) {
                    self.sel_node = s.nodes.iter().position(|n| n.name == v.node).unwrap_or(0);
                }
            }
        }
    }

    /// Clears the VM filter and the problems filter.
    pub(super) fn clear_filters(&mut self) {
        if self.filtering() {
            self.filter.clear();
            self.problems = false;
            self.refresh_derived();
            self.after_filter_change();
        }
    }

    /// Orders the nodes view by `sort`; the selected node stays selected.
    /// Sorts the nodes view; the selection goes to the top of the new
    /// order, so the top of the sort is what shows.
    pub(super) fn sort_nodes(&mut self, sort: NodeSort) {
        self.node_sort = sort;
        self.refresh_derived();
        if let Some(&top) = self.derived.rows.first() {
            self.sel_node = top;
            self.sel_vm = self.first_vm_of_selected_node();
        }
    }

    /// How many node cards stand in a row on the current screen.
    pub fn card_columns(&self) -> usize {
        cards_per_row(self.size.0)
    }
}
