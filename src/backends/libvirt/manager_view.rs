//! The cluster manager's view (Pacemaker), read beside every poll: its node
//! names turned into ours, and the last good view kept while it does not
//! answer.

use std::time::{Duration, Instant};

use super::LibvirtCluster;
use crate::cluster::{ManagerView, Node};

/// How long a good answer of the cluster manager serves the polls while
/// nothing moves; while anything moves, or it did not answer, or before an
/// action, it is asked every time.
pub(super) const MANAGER_QUIET_READ: Duration = Duration::from_secs(10);

/// Where a poll's view of the cluster manager comes from.
pub(super) enum ManagerAnswer {
    /// Asked beside the poll, on this thread.
    Asked(std::thread::JoinHandle<Result<ManagerView, String>>),
    /// Asked now, here.
    AskNow,
    /// Its last good answer, recent enough while nothing moves.
    Kept,
}

impl LibvirtCluster {
    /// Whether this poll asks the cluster manager: always while a
    /// migration, a move through it or a disk move runs, while its last
    /// answer was an error (or there was none) or shows a resource in
    /// transition, and at least every [`MANAGER_QUIET_READ`] otherwise.
    /// Spawning its tools at every poll was most of the view's idle cost.
    pub(super) fn manager_due(&self) -> bool {
        let Some(view) = &self.manager_view else {
            return true;
        };
        let settled = |r: &str| matches!(r, "Started" | "Stopped" | "Unpromoted" | "Promoted");
        self.manager_silent_since.is_some()
            || self
                .manager_read_at
                .is_none_or(|at| at.elapsed() >= MANAGER_QUIET_READ)
            || view
                .vms
                .iter()
                .any(|m| !settled(&m.role) || m.running_on.len() > 1)
            || self.managed_moves.iter().any(|h| !h.is_finished())
            || self
                .table()
                .entries
                .values()
                .any(|e| e.view.outcome.is_none())
            || self
                .storage_moves
                .lock()
                .is_ok_and(|t| t.values().any(|m| !m.view.is_finished()))
    }

    /// The cluster manager's view now, its node names turned into ours;
    /// the last good view (with the error) when it does not answer.
    pub(super) fn read_manager(
        &mut self,
        nodes: &[Node],
        read: ManagerAnswer,
    ) -> Option<ManagerView> {
        let mgr = self.manager.as_ref()?;
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let answer = match read {
            ManagerAnswer::Asked(h) => h
                .join()
                .unwrap_or_else(|_| Err("reading the cluster manager failed".into())),
            ManagerAnswer::AskNow => mgr.read(),
            ManagerAnswer::Kept => match &self.manager_view {
                Some(v) => return Some(v.clone()),
                None => mgr.read(),
            },
        };
        self.manager_read_at = Some(Instant::now());
        match answer {
            Ok(mut v) => {
                self.manager_silent_since = None;
                self.manager_names = rename_nodes(&mut v, &names);
                self.manager_view = Some(v.clone());
                Some(v)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the cluster manager did not answer");
                let since = self
                    .manager_silent_since
                    .get_or_insert_with(crate::record::now_ms);
                let mut v = self.manager_view.clone().unwrap_or_else(|| ManagerView {
                    kind: mgr.kind().into(),
                    ..Default::default()
                });
                v.error = Some(e);
                v.error_since_ms = Some(*since);
                Some(v)
            }
        }
    }

    /// The manager's name for our node `node`.
    pub(super) fn manager_node_name(&self, node: &str) -> String {
        self.manager_names
            .iter()
            .find(|(ours, _)| ours == node)
            .map_or_else(|| node.to_string(), |(_, theirs)| theirs.clone())
    }
}

/// The manager's node names turned into ours where they name the same host
/// (`hv1` and `hv1.example.com`), in its nodes, resources, move
/// constraints, operations and placement rules; returns (ours, theirs) for
/// each renamed.
fn rename_nodes(v: &mut ManagerView, ours: &[String]) -> Vec<(String, String)> {
    let mut map = Vec::new();
    let to_ours = |theirs: &str, map: &mut Vec<(String, String)>| -> String {
        match ours
            .iter()
            .find(|o| *o == theirs)
            .or_else(|| ours.iter().find(|o| crate::manager::same_host(o, theirs)))
        {
            Some(o) => {
                if !map.iter().any(|(a, _): &(String, String)| a == o) {
                    map.push((o.clone(), theirs.to_string()));
                }
                o.clone()
            }
            None => theirs.to_string(),
        }
    };
    for n in &mut v.nodes {
        n.name = to_ours(&n.name, &mut map);
    }
    for vm in &mut v.vms {
        for n in &mut vm.running_on {
            *n = to_ours(n, &mut map);
        }
        for c in &mut vm.constraints {
            c.node = to_ours(&c.node, &mut map);
        }
        for o in &mut vm.recent {
            o.node = to_ours(&o.node, &mut map);
        }
    }
    for r in &mut v.rules {
        if let crate::cluster::RuleKind::On { nodes } | crate::cluster::RuleKind::NotOn { nodes } =
            &mut r.kind
        {
            for n in &mut nodes.nodes {
                *n = to_ours(n, &mut map);
            }
        }
    }
    if let Some(dc) = &mut v.dc {
        *dc = to_ours(dc, &mut map);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ManagedNode, NodeSet, Rule, RuleKind, RuleOrigin, Strength};

    #[test]
    fn the_nodes_of_pacemakers_rules_get_our_names() {
        let rule = |kind| Rule {
            name: "r".into(),
            kind,
            vms: vec!["db".into()],
            strength: Strength::Must,
            origin: RuleOrigin::Pacemaker {
                kind: "location".into(),
                id: "r".into(),
            },
        };
        let set = |n: &str| NodeSet {
            nodes: vec![n.into()],
            labels: Vec::new(),
        };
        let mut v = ManagerView {
            nodes: vec![ManagedNode {
                name: "hv1.example.com".into(),
                ..Default::default()
            }],
            rules: vec![
                rule(RuleKind::NotOn {
                    nodes: set("hv1.example.com"),
                }),
                rule(RuleKind::On {
                    nodes: set("HV2.example.com"),
                }),
                rule(RuleKind::On {
                    nodes: set("elsewhere"),
                }),
                rule(RuleKind::Together),
            ],
            ..Default::default()
        };
        let map = rename_nodes(&mut v, &["hv1".into(), "hv2".into()]);
        assert_eq!(v.nodes[0].name, "hv1");
        let nodes: Vec<Option<&NodeSet>> = v
            .rules
            .iter()
            .map(|r| match &r.kind {
                RuleKind::On { nodes } | RuleKind::NotOn { nodes } => Some(nodes),
                _ => None,
            })
            .collect();
        assert_eq!(
            nodes,
            vec![
                Some(&set("hv1")),
                Some(&set("hv2")),
                Some(&set("elsewhere")),
                None
            ]
        );
        assert!(map.contains(&("hv2".to_string(), "HV2.example.com".to_string())));
    }
}
