//! Moving a VM: the drag state (mouse or keyboard) and the confirm dialog.
//!
//! ```text
//! Idle ─press on VM─▶ Pressed ─move ≥1 cell─▶ Drag{over} ─release on node─▶ Confirm ─y/Enter─▶ Cmd::Start
//! Idle ─m/space on selected VM─▶ Drag{ranked targets} ─type narrows, ↑↓ pick, Enter─▶ Confirm
//! Esc anywhere ▶ Idle; release off any node ▶ Idle; release on a refused node ▶ Idle + reason
//! ```
//!
//! A keyboard move lists the target nodes ranked by the prediction
//! (allowed ones first, best first; refused ones below with their reason).
//! The predictions are computed once when the VM is picked up.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use super::command::{LineEdit, match_rank};
use crate::cluster::{
    ClusterSnapshot, MIB, Migration, MigrationInputs, MigrationOptions, MigrationRequest, MovePath,
    OnStall, PostcopyMode, RuleOverrides, units,
};
use crate::plan::{self, Placement, Prediction, Refusal};

/// A mouse button held on a VM row, not yet moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Press {
    pub vm: String,
    pub x: u16,
    pub y: u16,
}

/// A VM being moved: picked with `m` or dragged with the mouse.
#[derive(Debug, Clone, PartialEq)]
pub struct Drag {
    pub vm: String,
    pub from: String,
    /// The node under the pointer (mouse) or chosen with the arrows.
    pub over: Option<String>,
    /// Mouse position while dragging with the mouse.
    pub pointer: Option<(u16, u16)>,
    /// Per node: allowed (with what moves along) or refused (why), in node order.
    pub verdicts: Vec<(String, Result<Placement, Refusal>)>,
    /// A keyboard move: every node ranked (see [`Drag::rank`]); empty for
    /// a mouse drag.
    pub ranked: Vec<Choice>,
    /// What was typed to narrow the ranked list.
    pub query: LineEdit,
    /// The rows of `ranked` that match `query`, in the order shown.
    pub shown: Vec<usize>,
    /// Refused nodes among the shown rows, by short reason, most first.
    pub refused: Vec<(&'static str, usize)>,
    /// Predictions by node name, made once per pick-up.
    predictions: HashMap<String, Arc<Prediction>>,
}

/// One target node of a keyboard move.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Index of the node in the snapshot (and in [`Drag::verdicts`]).
    pub node: usize,
    /// The prediction, for an allowed node.
    pub prediction: Option<Arc<Prediction>>,
    /// The node's free memory once the VM is there (negative: short).
    pub free_after: i64,
    /// Placement rules the move there breaks (should rules, overridden
    /// must rules): ranked below the targets that keep every rule.
    pub breaks: usize,
}

impl Choice {
    /// How good the prediction is: 0 converges, 1 may not converge,
    /// 2 finishes by post-copy, 3 will not converge, 4 refused.
    pub fn tier(&self) -> u8 {
        match &self.prediction {
            None => 4,
            Some(p) if !p.converges => 3,
            Some(p) if p.postcopy => 2,
            Some(p) if p.may_not_converge => 1,
            Some(_) => 0,
        }
    }

    /// A word for the tier.
    pub fn verdict_word(&self) -> &'static str {
        match self.tier() {
            0 => "converges",
            1 => "may stall",
            2 => "post-copy",
            3 => "no converge",
            _ => "refused",
        }
    }
}

impl Drag {
    pub fn new(snap: &ClusterSnapshot, vm: &str, copy_storage: bool) -> Option<Drag> {
        Self::with_leave(snap, vm, copy_storage, &RuleOverrides::none())
    }

    /// [`Drag::new`] with the operator's leave to break named rules.
    pub fn with_leave(
        snap: &ClusterSnapshot,
        vm: &str,
        copy_storage: bool,
        overrides: &RuleOverrides,
    ) -> Option<Drag> {
        let v = snap.vm(vm)?;
        Some(Drag {
            vm: vm.to_string(),
            from: v.node.clone(),
            over: None,
            pointer: None,
            verdicts: verdicts_with(snap, vm, copy_storage, overrides),
            ranked: Vec::new(),
            query: LineEdit::default(),
            shown: Vec::new(),
            refused: Vec::new(),
            predictions: HashMap::new(),
        })
    }

    pub fn verdict(&self, node: &str) -> Option<&Result<Placement, Refusal>> {
        self.verdicts
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, v)| v)
    }

    /// Whether this move shows the ranked list (a keyboard move).
    pub fn listed(&self) -> bool {
        !self.ranked.is_empty()
    }

    /// The node name of a ranked row.
    pub fn name_of(&self, c: &Choice) -> &str {
        &self.verdicts[c.node].0
    }

    /// Ranks every node: allowed ones by their prediction (converges
    /// first, then total time, downtime, and most memory free after),
    /// refused ones below in node order. A prediction is made once per
    /// node and pick-up (identical inputs share one); a new snapshot only
    /// re-checks placement and free memory. `verdicts` must be current.
    pub fn rank(
        &mut self,
        snap: &ClusterSnapshot,
        options: &MigrationOptions,
        history: &[Migration],
    ) {
        let Some(v) = snap.vm(&self.vm) else {
            self.ranked.clear();
            self.shown.clear();
            return;
        };
        let mut made: Vec<(MigrationInputs, Arc<Prediction>)> = Vec::new();
        let mut ranked = Vec::with_capacity(self.verdicts.len());
        for (i, (name, verdict)) in self.verdicts.iter().enumerate() {
            let Some(n) = snap.nodes.get(i).filter(|n| n.name == *name) else {
                continue;
            };
            let free_after = n.mem_free() as i64 - v.memory as i64;
            let prediction = match verdict {
                Ok(p) => Some(match self.predictions.get(name) {
                    Some(p) => p.clone(),
                    None => {
                        let inputs =
                            plan::inputs_for(snap, v, n, options, p.storage_bytes(), history);
                        let pred = match made.iter().find(|(i, _)| *i == inputs) {
                            Some((_, p)) => p.clone(),
                            None => {
                                let p = Arc::new(plan::predict(&inputs, options));
                                made.push((inputs, p.clone()));
                                p
                            }
                        };
                        self.predictions.insert(name.clone(), pred.clone());
                        pred
                    }
                }),
                Err(_) => None,
            };
            ranked.push(Choice {
                node: i,
                prediction,
                free_after,
                breaks: verdict.as_ref().map_or(0, |p| p.breaks.len()),
            });
        }
        // Refused ones in node order, the VM's own node last.
        let own = |c: &Choice| matches!(self.verdicts[c.node].1, Err(Refusal::SameNode { .. }));
        ranked.sort_by(|a, b| {
            rank_order(a, b)
                .then(own(a).cmp(&own(b)))
                .then(a.node.cmp(&b.node))
        });
        self.ranked = ranked;
        self.narrow(false);
    }

    /// Applies `query` to the ranked list. An exact name goes first; the
    /// rest keep their rank. With `reselect` (the text changed) the
    /// selection goes to the first row; otherwise it stays where it is
    /// while it is shown.
    pub fn narrow(&mut self, reselect: bool) {
        let q = self.query.text.trim();
        let mut exact = Vec::new();
        let mut rest = Vec::new();
        for (r, c) in self.ranked.iter().enumerate() {
            match (q.is_empty(), match_rank(q, self.name_of(c))) {
                (true, _) => rest.push(r),
                (false, Some(0)) => exact.push(r),
                (false, Some(_)) => rest.push(r),
                (false, None) => {}
            }
        }
        exact.extend(rest);
        self.shown = exact;
        let mut refused: Vec<(&'static str, usize)> = Vec::new();
        for &r in &self.shown {
            if let Err(why) = &self.verdicts[self.ranked[r].node].1 {
                match refused.iter_mut().find(|(s, _)| *s == why.short()) {
                    Some((_, n)) => *n += 1,
                    None => refused.push((why.short(), 1)),
                }
            }
        }
        refused.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        self.refused = refused;
        let still_shown = self.over.as_deref().is_some_and(|o| {
            self.shown
                .iter()
                .any(|&r| self.name_of(&self.ranked[r]) == o)
        });
        if reselect || !still_shown {
            self.over = self
                .shown
                .first()
                .map(|&r| self.name_of(&self.ranked[r]).to_string());
        }
    }

    /// Position of the selected node among the shown rows.
    pub fn selected_row(&self) -> Option<usize> {
        let o = self.over.as_deref()?;
        self.shown
            .iter()
            .position(|&r| self.name_of(&self.ranked[r]) == o)
    }

    /// Selects the shown row at `pos` (clamped).
    pub fn select_row(&mut self, pos: usize) {
        if let Some(&r) = self.shown.get(pos.min(self.shown.len().saturating_sub(1))) {
            self.over = Some(self.name_of(&self.ranked[r]).to_string());
        }
    }

    /// The ranked row of a node.
    pub fn choice(&self, node: &str) -> Option<&Choice> {
        self.ranked.iter().find(|c| self.name_of(c) == node)
    }
}

/// Allowed before refused; those that keep every placement rule before
/// those that break a should rule; then by prediction tier, total time,
/// downtime, and the most memory left.
fn rank_order(a: &Choice, b: &Choice) -> Ordering {
    let figures = |c: &Choice| {
        c.prediction
            .as_ref()
            .map_or((f64::MAX, f64::MAX), |p| (p.total_ms, p.downtime_ms))
    };
    let (ta, da) = figures(a);
    let (tb, db) = figures(b);
    let refused = |c: &Choice| c.prediction.is_none();
    let breaks = |c: &Choice| c.breaks.min(1);
    refused(a)
        .cmp(&refused(b))
        .then(breaks(a).cmp(&breaks(b)))
        .then(a.tier().cmp(&b.tier()))
        .then_with(|| {
            if a.prediction.is_none() {
                return Ordering::Equal;
            }
            ta.total_cmp(&tb)
                .then(da.total_cmp(&db))
                .then(b.free_after.cmp(&a.free_after))
        })
}

pub fn verdicts(
    snap: &ClusterSnapshot,
    vm: &str,
    copy_storage: bool,
) -> Vec<(String, Result<Placement, Refusal>)> {
    verdicts_with(snap, vm, copy_storage, &RuleOverrides::none())
}

/// [`verdicts`] with the operator's leave to break named rules (`:override`).
pub fn verdicts_with(
    snap: &ClusterSnapshot,
    vm: &str,
    copy_storage: bool,
    overrides: &RuleOverrides,
) -> Vec<(String, Result<Placement, Refusal>)> {
    let Some(v) = snap.vm(vm) else {
        return Vec::new();
    };
    // The VM's placement rules, prepared once for every node.
    let rules = plan::rules::VmRules::new(snap, v);
    snap.nodes
        .iter()
        .map(|n| {
            // A node that cannot reach a disk is offered with the disk
            // copied (shared-nothing), shown with its bytes, rather than
            // refused: the confirm dialog then has copy storage on.
            let verdict = match plan::check_with(snap, v, n, copy_storage, &rules, overrides) {
                Err(Refusal::VolumeNotReachable { .. }) if !copy_storage => {
                    plan::check_with(snap, v, n, true, &rules, overrides)
                }
                other => other,
            };
            // A move the cluster manager must make, or that it holds while
            // it cannot be asked, is refused here already, not only at the
            // confirm dialog.
            let verdict = verdict.and_then(|p| {
                plan::move_path(snap, &v.name, &v.node, &n.name, MovePath::Auto).map(|_| p)
            });
            (n.name.clone(), verdict)
        })
        .collect()
}

/// The fields of the confirm dialog that can be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    MaxDowntime,
    Bandwidth,
    AutoConverge,
    Postcopy,
    OnStall,
    CopyStorage,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::MaxDowntime,
        Field::Bandwidth,
        Field::AutoConverge,
        Field::Postcopy,
        Field::OnStall,
        Field::CopyStorage,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Field::MaxDowntime => "max downtime",
            Field::Bandwidth => "bandwidth",
            Field::AutoConverge => "auto-converge",
            Field::Postcopy => "post-copy",
            Field::OnStall => "on stall",
            Field::CopyStorage => "copy storage",
        }
    }
}

/// Steps for max downtime, ms.
pub const DOWNTIME_STEPS: &[u64] = &[
    50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000, 20_000, 30_000, 60_000,
];
/// Steps for the bandwidth limit, MiB/s (above the last: the link's speed).
pub const BANDWIDTH_STEPS: &[u64] = &[
    10, 25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000,
];

pub fn downtime_step(current: u64, up: bool) -> u64 {
    if up {
        DOWNTIME_STEPS
            .iter()
            .copied()
            .find(|&s| s > current)
            .unwrap_or(current)
    } else {
        DOWNTIME_STEPS
            .iter()
            .rev()
            .copied()
            .find(|&s| s < current)
            .unwrap_or(current)
    }
}

/// Next bandwidth limit; `None` is the link's speed (no limit).
pub fn bandwidth_step(current: Option<u64>, link_bps: u64, up: bool) -> Option<u64> {
    let link_mib = link_bps / MIB;
    match (current.map(|b| b / MIB), up) {
        (None, true) => None,
        (None, false) => BANDWIDTH_STEPS
            .iter()
            .rev()
            .copied()
            .find(|&s| s < link_mib)
            .map(|s| s * MIB),
        (Some(c), true) => BANDWIDTH_STEPS
            .iter()
            .copied()
            .find(|&s| s > c && s < link_mib)
            .map(|s| s * MIB),
        (Some(c), false) => Some(
            BANDWIDTH_STEPS
                .iter()
                .rev()
                .copied()
                .find(|&s| s < c)
                .unwrap_or(c)
                * MIB,
        ),
    }
}

/// The confirm dialog: what will happen, and the options, editable.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub vm: String,
    pub from: String,
    pub to: String,
    pub options: MigrationOptions,
    pub field: Field,
    pub link_bps: u64,
    /// `Ok` while the move is allowed with the current options.
    pub placement: Result<Placement, Refusal>,
    /// What the prediction rests on, and the prediction.
    pub inputs: Option<MigrationInputs>,
    pub prediction: Option<Prediction>,
    /// The operator's leave to break named must rules (`:override`).
    pub overrides: RuleOverrides,
}

impl Confirm {
    pub fn new(
        snap: &ClusterSnapshot,
        vm: &str,
        to: &str,
        defaults: &MigrationOptions,
        history: &[Migration],
    ) -> Option<Confirm> {
        let v = snap.vm(vm)?;
        let n = snap.node(to)?;
        let link_bps = snap.link_bps(&v.node, &n.name);
        let mut c = Confirm {
            vm: vm.into(),
            from: v.node.clone(),
            to: to.into(),
            options: defaults.clone(),
            field: Field::MaxDowntime,
            link_bps,
            placement: Err(Refusal::SameNode {
                vm: vm.into(),
                node: to.into(),
            }),
            inputs: None,
            prediction: None,
            overrides: RuleOverrides::none(),
        };
        // A move that needs a disk copy was chosen knowingly on a node marked so.
        if plan::check(snap, v, n, false).is_err() && plan::check(snap, v, n, true).is_ok() {
            c.options.copy_storage = true;
        }
        c.recompute(snap, history);
        Some(c)
    }

    /// Re-checks and re-predicts after an option or the cluster changed.
    pub fn recompute(&mut self, snap: &ClusterSnapshot, history: &[Migration]) {
        let (Some(v), Some(n)) = (snap.vm(&self.vm), snap.node(&self.to)) else {
            return;
        };
        let rules = plan::rules::VmRules::new(snap, v);
        self.placement = plan::check_with(
            snap,
            v,
            n,
            self.options.copy_storage,
            &rules,
            &self.overrides,
        )
        .and_then(|p| {
            plan::move_path(snap, &v.name, &v.node, &n.name, self.options.via).map(|_| p)
        });
        self.inputs = self
            .placement
            .as_ref()
            .ok()
            .map(|p| plan::inputs_for(snap, v, n, &self.options, p.storage_bytes(), history));
        self.prediction = self
            .inputs
            .as_ref()
            .map(|i| plan::predict(i, &self.options));
    }

    /// The event-log line for starting this move: the prediction and,
    /// when it may not converge, the advice in full.
    pub fn start_note(&self) -> (String, super::nodes::Level) {
        use super::nodes::Level;
        let head = format!(
            "migration of {} {} → {} requested",
            self.vm, self.from, self.to
        );
        let Some(p) = &self.prediction else {
            return (head, Level::Ok);
        };
        let mut text = format!("{head}: {}", p.summary(self.options.max_downtime_ms));
        if !p.advice.is_empty() {
            let a: Vec<String> = p.advice.iter().map(ToString::to_string).collect();
            text += &format!("; to converge: {}", a.join("; or "));
        }
        let level = if !p.converges
            || p.may_not_converge
            || p.postcopy
            || p.above_limit(self.options.max_downtime_ms)
        {
            Level::Warn
        } else {
            Level::Ok
        };
        (text, level)
    }

    /// The request that starts this move, with what it was predicted from.
    pub fn request(&self) -> MigrationRequest {
        MigrationRequest {
            vm: self.vm.clone(),
            to: self.to.clone(),
            options: MigrationOptions {
                broken_rules: self
                    .placement
                    .as_ref()
                    .map(|p| p.breaks.clone())
                    .unwrap_or_default(),
                ..self.options.clone()
            },
            inputs: self.inputs.clone(),
            forecast: self.prediction.as_ref().map(Prediction::forecast),
        }
    }

    pub fn move_field(&mut self, down: bool) {
        let i = Field::ALL
            .iter()
            .position(|f| *f == self.field)
            .unwrap_or(0);
        let n = Field::ALL.len();
        self.field = Field::ALL[if down { (i + 1) % n } else { (i + n - 1) % n }];
    }

    /// Changes the selected option one step.
    pub fn change(&mut self, up: bool) {
        let o = &mut self.options;
        match self.field {
            Field::MaxDowntime => o.max_downtime_ms = downtime_step(o.max_downtime_ms, up),
            Field::Bandwidth => {
                o.bandwidth_bps = bandwidth_step(o.bandwidth_bps, self.link_bps, up)
            }
            Field::AutoConverge => o.auto_converge = !o.auto_converge,
            Field::CopyStorage => o.copy_storage = !o.copy_storage,
            Field::Postcopy => {
                let all = [PostcopyMode::Off, PostcopyMode::Auto, PostcopyMode::Now];
                o.postcopy = cycle(&all, o.postcopy, up);
            }
            Field::OnStall => {
                let all = [OnStall::Abort, OnStall::Postcopy, OnStall::Wait];
                o.on_stall = cycle(&all, o.on_stall, up);
            }
        }
    }

    pub fn value(&self, f: Field) -> String {
        let o = &self.options;
        match f {
            Field::MaxDowntime => format!("{} ms", o.max_downtime_ms),
            Field::Bandwidth => match o.bandwidth_bps {
                Some(b) => units::rate(b),
                None => format!("link ({})", units::rate(self.link_bps)),
            },
            Field::AutoConverge => on_off(o.auto_converge).into(),
            Field::Postcopy => o.postcopy.label().into(),
            Field::OnStall => o.on_stall.label().into(),
            Field::CopyStorage => on_off(o.copy_storage).into(),
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn cycle<T: Copy + PartialEq>(all: &[T], current: T, up: bool) -> T {
    let i = all.iter().position(|x| *x == current).unwrap_or(0);
    let n = all.len();
    all[if up { (i + 1) % n } else { (i + n - 1) % n }]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VM that carries vmshift's cluster-manager mark, with no manager
    /// that answers: every target is refused in the list itself.
    #[test]
    fn a_held_vm_has_no_target() {
        use crate::backends::Backend;
        use crate::backends::sim::{SimCluster, clock::Speed};
        use crate::cluster::ManagedMark;
        let mut snap = SimCluster::from_spec("default", Speed::Max)
            .unwrap()
            .snapshot()
            .unwrap();
        let free = Drag::new(&snap, "web-01", false).unwrap();
        assert!(free.verdicts.iter().any(|(_, v)| v.is_ok()));
        snap.marks.push(ManagedMark {
            vm: "web-01".into(),
            manager: "pacemaker".into(),
            resource: "vm-web".into(),
            since_ms: 0,
        });
        let held = Drag::new(&snap, "web-01", false).unwrap();
        let from = snap.vm("web-01").unwrap().node.clone();
        for (node, v) in &held.verdicts {
            match v {
                Err(Refusal::Manager(why)) => {
                    assert!(why.contains("carries vmshift's mark"), "{why}")
                }
                Err(Refusal::SameNode { .. }) if *node == from => {}
                other => panic!("{node}: {other:?}"),
            }
        }
    }

    #[test]
    fn downtime_steps_walk_the_table_and_stop_at_the_ends() {
        assert_eq!(downtime_step(300, true), 500);
        assert_eq!(downtime_step(300, false), 200);
        assert_eq!(downtime_step(310, false), 300);
        assert_eq!(downtime_step(50, false), 50);
        assert_eq!(downtime_step(60_000, true), 60_000);
    }

    #[test]
    fn bandwidth_steps_end_at_the_link() {
        let link = 1100 * MIB;
        assert_eq!(bandwidth_step(None, link, false), Some(1000 * MIB));
        assert_eq!(bandwidth_step(Some(1000 * MIB), link, true), None);
        assert_eq!(bandwidth_step(Some(200 * MIB), link, true), Some(300 * MIB));
        assert_eq!(bandwidth_step(Some(10 * MIB), link, false), Some(10 * MIB));
    }
}
