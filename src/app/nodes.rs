//! The nodes view for triage (one row per node, sortable by any column)
//! and the problems filter (`!`): thresholds, what counts as a problem,
//! and the derived rows that `update` computes so render only draws.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::cluster::{ClusterSnapshot, Migration, NodeState, Outcome, VmState};

pub use crate::config::{Level, Limits, Thresholds};

/// Columns of the nodes view, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeCol {
    State,
    Name,
    Memory,
    Cpu,
    Free,
    Vms,
    Migrations,
    Answer,
}

impl NodeCol {
    pub const ALL: [NodeCol; 8] = [
        NodeCol::State,
        NodeCol::Name,
        NodeCol::Memory,
        NodeCol::Cpu,
        NodeCol::Free,
        NodeCol::Vms,
        NodeCol::Migrations,
        NodeCol::Answer,
    ];

    pub fn title(self) -> &'static str {
        match self {
            NodeCol::State => "STATE",
            NodeCol::Name => "NODE",
            NodeCol::Memory => "MEMORY",
            NodeCol::Cpu => "CPU",
            NodeCol::Free => "FREE",
            NodeCol::Vms => "VMS",
            NodeCol::Migrations => "MIGR",
            NodeCol::Answer => "ANSWER",
        }
    }

    /// Names sort A→Z first; figures and state highest (worst) first.
    fn descending_first(self) -> bool {
        !matches!(self, NodeCol::Name | NodeCol::Answer)
    }
}

/// The nodes view's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSort {
    pub col: NodeCol,
    pub descending: bool,
}

impl Default for NodeSort {
    fn default() -> Self {
        Self {
            col: NodeCol::Name,
            descending: false,
        }
    }
}

impl NodeSort {
    /// The next column, in its natural direction (`s`).
    pub fn next(self) -> Self {
        let i = NodeCol::ALL
            .iter()
            .position(|c| *c == self.col)
            .unwrap_or(0);
        Self::by(NodeCol::ALL[(i + 1) % NodeCol::ALL.len()])
    }

    pub fn by(col: NodeCol) -> Self {
        Self {
            col,
            descending: col.descending_first(),
        }
    }

    /// A click on a column: sort by it, or reverse if it is already the one.
    pub fn click(self, col: NodeCol) -> Self {
        if self.col == col {
            self.reversed()
        } else {
            Self::by(col)
        }
    }

    pub fn reversed(self) -> Self {
        Self {
            descending: !self.descending,
            ..self
        }
    }
}

/// What the nodes view and the problems filter know of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    pub mem_pct: f64,
    pub mem: Level,
    pub cpu: Level,
    pub vms: usize,
    /// Running migrations from or to it.
    pub migrations: usize,
    /// Why it is a problem, if it is one (first reason).
    pub problem: Option<String>,
}

/// Derived from the snapshot, the thresholds and the sort by `update`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    /// By node index of the snapshot.
    pub nodes: Vec<NodeInfo>,
    /// By VM index of the snapshot: is it a problem.
    pub vm_problem: Vec<bool>,
    /// Node indices in the nodes view's order (problems filter applied).
    pub rows: Vec<usize>,
    /// Placement rules broken now (after a failure, someone else's move).
    pub broken_rules: Vec<crate::plan::rules::BrokenNow>,
}

/// A migration that needs attention: stalled while running, or failed.
pub fn migration_problem(m: &Migration) -> bool {
    (m.stalled && !m.is_finished()) || matches!(m.outcome, Some(Outcome::Failed { .. }))
}

/// A VM that needs attention: not running (paused, stopped, restarting)
/// or in a stalled or failed migration.
fn vm_state_problem(s: VmState) -> bool {
    matches!(s, VmState::Paused | VmState::Stopped | VmState::Restarting)
}

/// How bad an event line reads: failures and losses critical, restarts and
/// aborts a warning.
pub fn event_level(text: &str) -> Level {
    if text.contains("failed") || text.contains("lost") || text.contains("could not") {
        Level::Crit
    } else if text.contains("restart") || text.contains("aborted") {
        Level::Warn
    } else {
        Level::Ok
    }
}

fn severity(s: NodeState) -> u8 {
    match s {
        NodeState::Up => 0,
        NodeState::Maintenance => 1,
        NodeState::Unreachable => 2,
        NodeState::Down => 3,
    }
}

/// Computes everything the nodes view and the problems filter show.
pub fn derive(
    snap: &ClusterSnapshot,
    t: &Thresholds,
    sort: NodeSort,
    problems_only: bool,
) -> Derived {
    let index: HashMap<&str, usize> = snap
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut nodes: Vec<NodeInfo> = snap
        .nodes
        .iter()
        .map(|n| {
            let mem_pct = 100.0 * n.mem_used as f64 / n.mem_total.max(1) as f64;
            let up = n.state == NodeState::Up;
            let (mem, cpu) = if up {
                (t.memory.level(mem_pct), t.cpu.level(n.cpu_used_pct))
            } else {
                (Level::Ok, Level::Ok)
            };
            let problem = match n.state {
                NodeState::Down | NodeState::Unreachable => Some(n.state.label().to_string()),
                _ if mem > Level::Ok => Some(format!("memory {mem_pct:.0}%")),
                _ if cpu > Level::Ok => Some(format!("CPU {:.0}%", n.cpu_used_pct)),
                _ => None,
            };
            NodeInfo {
                mem_pct,
                mem,
                cpu,
                problem,
                ..Default::default()
            }
        })
        .collect();
    let mut vm_problem: Vec<bool> = snap
        .vms
        .iter()
        .map(|v| v.lost.is_some() || vm_state_problem(v.state))
        .collect();
    let vm_index: HashMap<&str, usize> = snap
        .vms
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    for m in &snap.migrations {
        let bad = migration_problem(m);
        for end in [&m.from, &m.to] {
            if let Some(&i) = index.get(end.as_str()) {
                if !m.is_finished() {
                    nodes[i].migrations += 1;
                }
                if bad && nodes[i].problem.is_none() {
                    nodes[i].problem = Some(format!("migration of {} in trouble", m.vm));
                }
            }
        }
        if bad && let Some(&i) = vm_index.get(m.vm.as_str()) {
            vm_problem[i] = true;
        }
    }
    // A stale copy is a problem of the node that holds it and of its VM.
    for c in &snap.stale_copies {
        if let Some(&i) = index.get(c.node.as_str())
            && nodes[i].problem.is_none()
        {
            nodes[i].problem = Some(format!(
                "stale copy of {} (it runs on {}){}",
                c.vm,
                c.runs_on,
                if c.autostart {
                    ", set to autostart"
                } else {
                    ""
                }
            ));
        }
        if let Some(&i) = vm_index.get(c.vm.as_str()) {
            vm_problem[i] = true;
        }
    }
    // A rule broken now is a problem of every VM it concerns.
    let broken_rules = crate::plan::rules::broken_now(snap);
    for b in &broken_rules {
        for vm in &b.vms {
            if let Some(&i) = vm_index.get(vm.as_str()) {
                vm_problem[i] = true;
            }
        }
    }
    for (v, bad) in snap.vms.iter().zip(&vm_problem) {
        if let Some(&i) = index.get(v.node.as_str()) {
            nodes[i].vms += 1;
            if *bad && nodes[i].problem.is_none() {
                let stale = snap.stale_copies.iter().find(|c| c.vm == v.name);
                nodes[i].problem = Some(match (&v.lost, stale) {
                    (Some(l), _) => format!("{} is lost with {}", v.name, l.node),
                    (None, Some(c)) if !vm_state_problem(v.state) => {
                        format!("{} has a stale copy on {}", v.name, c.node)
                    }
                    _ if !vm_state_problem(v.state)
                        && let Some(b) = broken_rules.iter().find(|b| b.vms.contains(&v.name)) =>
                    {
                        format!("{} breaks rule {}", v.name, b.rule)
                    }
                    _ => format!("{} is {}", v.name, v.state.label()),
                });
            }
        }
    }
    let mut rows: Vec<usize> = (0..snap.nodes.len())
        .filter(|&i| !problems_only || nodes[i].problem.is_some())
        .collect();
    let key = |i: usize, j: usize| -> Ordering {
        let (a, b) = (&snap.nodes[i], &snap.nodes[j]);
        let (x, y) = (&nodes[i], &nodes[j]);
        let f = |p: f64, q: f64| p.partial_cmp(&q).unwrap_or(Ordering::Equal);
        match sort.col {
            NodeCol::State => severity(a.state).cmp(&severity(b.state)),
            NodeCol::Name => Ordering::Equal,
            NodeCol::Memory => f(x.mem_pct, y.mem_pct),
            NodeCol::Cpu => f(a.cpu_used_pct, b.cpu_used_pct),
            NodeCol::Free => a.mem_free().cmp(&b.mem_free()),
            NodeCol::Vms => x.vms.cmp(&y.vms),
            NodeCol::Migrations => x.migrations.cmp(&y.migrations),
            NodeCol::Answer => answer(a).cmp(&answer(b)),
        }
    };
    rows.sort_by(|&i, &j| {
        let o = key(i, j).then_with(|| snap.nodes[i].name.cmp(&snap.nodes[j].name));
        if sort.descending { o.reverse() } else { o }
    });
    Derived {
        nodes,
        vm_problem,
        rows,
        broken_rules,
    }
}

/// The node's last answer: its error, or "ok".
pub fn answer(n: &crate::cluster::Node) -> String {
    match (&n.error, n.state) {
        (Some(e), _) => e.clone(),
        (None, NodeState::Up) => "ok".into(),
        (None, s) => s.label().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_sort_directions() {
        let t = Thresholds::default();
        assert_eq!(t.memory.level(84.9), Level::Ok);
        assert_eq!(t.memory.level(85.0), Level::Warn);
        assert_eq!(t.memory.level(95.0), Level::Crit);
        let s = NodeSort::default();
        assert_eq!(s.next(), NodeSort::by(NodeCol::Memory));
        assert!(s.next().descending, "figures highest first");
        assert_eq!(s.click(NodeCol::Name), s.reversed());
        assert_eq!(
            NodeSort::by(NodeCol::Answer).next(),
            NodeSort::by(NodeCol::State)
        );
    }
}
