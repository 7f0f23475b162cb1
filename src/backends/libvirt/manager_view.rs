//! The cluster manager's view (Pacemaker), read beside every poll: its node
//! names turned into ours, and the last good view kept while it does not
//! answer.

use super::LibvirtCluster;
use crate::cluster::{ManagerView, Node};

impl LibvirtCluster {
    /// The cluster manager's view now, its node names turned into ours;
    /// the last good view (with the error) when it does not answer.
    pub(super) fn read_manager(
        &mut self,
        nodes: &[Node],
        read: Option<std::thread::JoinHandle<Result<ManagerView, String>>>,
    ) -> Option<ManagerView> {
        let mgr = self.manager.as_ref()?;
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let answer = match read {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err("reading the cluster manager failed".into())),
            None => mgr.read(),
        };
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
/// (`hv1` and `hv1.example.com`); returns (ours, theirs) for each renamed.
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
    if let Some(dc) = &mut v.dc {
        *dc = to_ours(dc, &mut map);
    }
    map
}
