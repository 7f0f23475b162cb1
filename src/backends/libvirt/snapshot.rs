//! The snapshot of the cluster built from the nodes' answers: node cards,
//! VMs (one per name), volumes, alarms (a VM running twice, stale copies),
//! the cluster manager's view, and the migrations followed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::manager_view::ManagerAnswer;
use super::node::NodeData;
use super::volumes::disk_volume;
use super::{LibvirtCluster, measure, node, storage};
use crate::backends::Backend;
use crate::cluster::text::shell_word;
use crate::cluster::{
    BackendError, ClusterEvent, ClusterSnapshot, Cordon, Disk, LostWith, ManagedBy, ManagedMark,
    ManagerView, Migration, MigrationCosts, MigrationId, Node, NodeState, RecoveryStep, StaleCopy,
    StorageMove, Vm, VmState, Volume, VolumeKind, Workload,
};
use crate::plan;

impl LibvirtCluster {
    pub(super) fn build(&mut self) -> ClusterSnapshot {
        // The cluster manager is read while the nodes are polled: a slow
        // one costs its own deadline, not the sum of both.
        let manager_read = match self.manager.clone() {
            Some(m) if self.manager_due() => std::thread::Builder::new()
                .name("manager-read".into())
                .spawn(move || m.read())
                .map_or(ManagerAnswer::AskNow, ManagerAnswer::Asked),
            _ => ManagerAnswer::Kept,
        };
        let polled = self.poll();
        self.remember();
        self.remember_seen();
        // The nodes' data, borrowed while the snapshot is built (put back at the end).
        let last = std::mem::take(&mut self.last);
        let snap = self.build_from(&polled, &last, manager_read);
        self.last = last;
        snap
    }

    pub(super) fn build_from(
        &mut self,
        polled: &[(String, Result<(), String>)],
        last: &HashMap<usize, NodeData>,
        manager_read: ManagerAnswer,
    ) -> ClusterSnapshot {
        let (nodes, data) = self.node_cards(polled, last);
        self.log_node_changes(&nodes);
        let (volumes, pool_volume) = self.volumes(&data);
        // Nodes that answered this poll: their VMs are facts, the others'
        // are the last known (a lost node's).
        let fresh: Vec<&str> = polled
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n.as_str())
            .collect();
        // The same VM running on two nodes that answer (a lost node came
        // back while its VM had been recovered elsewhere): the loudest alarm.
        let running = running_on(&data, &fresh);
        let manager = self.read_manager(&nodes, manager_read);
        let marks = self.marks(&data, &fresh, manager.as_ref());
        let mut alarms = self.running_twice_alarms(&running, &manager, &marks);
        let mut vms = self.vms_from(&data, &nodes, &fresh, &pool_volume);
        let volumes = with_disk_volumes(volumes, &vms);
        let stale_copies = stale_copies(&data, &fresh, |i| self.nodes[i].spec.uri.clone());
        mark_ha(&mut vms, &manager, &marks);
        alarms.extend(self.stale_copy_alarms(&stale_copies));
        self.share_with_table(&data, &manager);
        self.discover(&data);
        self.settle_detached(&nodes, &vms);
        let (storage_moves, migrations, events) = self.moves_and_events();
        mark_migrating(&mut vms, &migrations);
        self.recoveries_reached(&vms, &fresh);
        let mut snap = ClusterSnapshot {
            cluster: self.cfg.cluster.clone(),
            backend: "libvirt".into(),
            at_ms: 0,
            nodes,
            volumes,
            vms,
            migrations,
            events,
            costs: MigrationCosts::default(),
            manager,
            recoveries: self.recoveries.clone(),
            alarms,
            storage_moves,
            marks,
            stale_copies,
            cordons_unreadable: None,
            rules: Vec::new(),
        };
        snap.rules = self.rules(snap.manager.as_ref());
        self.give_inputs(&mut snap);
        self.cordon_standby(&mut snap);
        self.cordons.mark(&mut snap);
        snap
    }

    /// Each node's card from its answer to this poll (or why it gave
    /// none), and the data of every node that has some.
    fn node_cards<'a>(
        &mut self,
        polled: &[(String, Result<(), String>)],
        last: &'a HashMap<usize, NodeData>,
    ) -> (Vec<Node>, Vec<(usize, String, &'a NodeData)>) {
        let mut nodes = Vec::new();
        // (node index, node name, data) for every node we have data for:
        // its answer now, or its last one while it does not answer.
        let mut data: Vec<(usize, String, &NodeData)> = Vec::new();
        for (i, (name, r)) in polled.iter().enumerate() {
            let (state, error) = match r {
                Ok(_) => {
                    self.unreachable_since.remove(&i);
                    // Answering again: a fence confirmed earlier no longer holds.
                    self.fenced.remove(name);
                    (NodeState::Up, None)
                }
                Err(e) => {
                    // Unreachable since its last answer, this run's or an
                    // earlier one's.
                    let now_ms = crate::record::now_ms();
                    let seen = self.seen.get(&i).copied().filter(|s| *s <= now_ms);
                    let (since, at) = *self.unreachable_since.entry(i).or_insert_with(|| {
                        let at = seen.unwrap_or(now_ms);
                        let ago = Duration::from_millis(now_ms - at);
                        (
                            Instant::now().checked_sub(ago).unwrap_or_else(Instant::now),
                            at,
                        )
                    });
                    lost_or_unreachable(since.elapsed(), self.cfg.lost_after, at, e)
                }
            };
            let d = last.get(&i);
            nodes.push(Node {
                name: name.clone(),
                state,
                cpus: d.as_ref().map_or(0, |d| d.cpus),
                cpu_used_pct: d
                    .as_ref()
                    .filter(|_| r.is_ok())
                    .map_or(0.0, |d| d.cpu_used_pct),
                mem_total: d.as_ref().map_or(0, |d| d.mem_total),
                mem_used: d
                    .as_ref()
                    .map_or(0, |d| d.mem_total.saturating_sub(d.mem_free)),
                cpu_model: d.as_ref().map_or(String::new(), |d| d.cpu_model.clone()),
                // libvirt does not say; the migration's own bandwidth limit applies.
                nic_bps: 1250 * crate::cluster::MIB,
                error,
                labels: self.nodes[i].spec.labels.clone(),
                cordon: None,
            });
            if let Some(d) = d {
                data.push((i, name.clone(), d));
            }
        }
        (nodes, data)
    }

    /// The alarm for each VM running on several nodes at once, logged
    /// once per VM and nodes.
    fn running_twice_alarms(
        &mut self,
        running: &[(&str, Vec<&str>)],
        manager: &Option<ManagerView>,
        marks: &[ManagedMark],
    ) -> Vec<String> {
        let mut alarms = Vec::new();
        for (vm, on) in running_twice(running) {
            let key = format!("{vm}@{}", on.join("+"));
            let owner = manager
                .as_ref()
                .and_then(|v| v.vms.iter().find(|m| m.domain == vm))
                .map(|m| m.resource.clone())
                .or_else(|| {
                    marks
                        .iter()
                        .find(|m| m.vm == vm)
                        .map(|m| m.resource.clone())
                });
            let text = match owner {
                // Pacemaker stops all copies but one once it sees them
                // (multiple-active); a refresh makes it look now.
                Some(r) => format!(
                    "ALARM: {vm} runs on {} at once — its disks are being corrupted; it is Pacemaker resource {r}: let Pacemaker stop the extra copy (`crm_resource --refresh --resource {}` makes it probe every node now), never destroy one behind its back",
                    on.join(" and "),
                    shell_word(&r)
                ),
                None => format!(
                    "ALARM: {vm} runs on {} at once — its disks are being corrupted; stop the copy that should not run now (`virsh destroy {}` on the node that should not run it: the one that was lost, or where it was started by mistake)",
                    on.join(" and "),
                    shell_word(vm)
                ),
            };
            if !self.alarmed.contains(&key) {
                self.table().log(text.clone());
                self.alarmed.push(key);
            }
            alarms.push(text);
        }
        alarms
    }

    /// One VM per name from the domains of every node with data (a lost
    /// node's VMs as last seen, marked with the loss).
    fn vms_from(
        &self,
        data: &[(usize, String, &NodeData)],
        nodes: &[Node],
        fresh: &[&str],
        pool_volume: &HashMap<(String, String), String>,
    ) -> Vec<Vm> {
        let mut vms: Vec<Vm> = Vec::new();
        for (i, node, d) in data {
            // `nodes` follows the poll's order: node i is `nodes[i]`.
            let lost = (nodes[*i].state == NodeState::Down)
                .then(|| self.unreachable_since.get(i))
                .flatten()
                .map(|(_, since_ms)| LostWith {
                    node: node.clone(),
                    since_ms: *since_ms,
                });
            for dom in &d.domains {
                if dom.incoming {
                    continue; // the other side of a running migration
                }
                let vm = Vm {
                    name: dom.name.clone(),
                    node: node.clone(),
                    state: if dom.migrating_out {
                        VmState::Migrating
                    } else {
                        dom.state
                    },
                    vcpus: dom.vcpus,
                    memory: dom.memory,
                    disks: dom
                        .disks
                        .iter()
                        .map(|(dk, size)| Disk {
                            volume: disk_volume(node, &dk.source, d, pool_volume),
                            size: *size,
                        })
                        .collect(),
                    workload: workload(dom),
                    ha: false,
                    cpu_model: dom.cpu_model.clone(),
                    cpu_used_pct: dom.cpu_pct,
                    lost: lost.clone(),
                };
                // One VM per name: a running copy wins over a stale definition.
                // A copy on a node that answers wins over the last known
                // one of a node that does not.
                let key = |v: &Vm| (fresh.contains(&v.node.as_str()), rank(v.state));
                match vms.iter_mut().find(|v| v.name == vm.name) {
                    Some(v) if key(v) < key(&vm) => *v = vm,
                    Some(_) => {}
                    None => vms.push(vm),
                }
            }
        }
        vms
    }

    /// Logs each stale copy once; the alarms for those that would
    /// autostart.
    fn stale_copy_alarms(&mut self, stale_copies: &[StaleCopy]) -> Vec<String> {
        let mut alarms = Vec::new();
        for sc in stale_copies {
            let key = format!("stale:{}@{}", sc.vm, sc.node);
            if !self.alarmed.contains(&key) {
                self.table().log(format!(
                    "stale copy of {} found on {}: defined and shut off while it runs on {}; starting it would run it twice — remove it: `{}`",
                    sc.vm, sc.node, sc.runs_on, sc.remove
                ));
                self.alarmed.push(key);
            }
        }
        for sc in stale_copies.iter().filter(|sc| sc.autostart) {
            let text = format!(
                "ALARM: the stale, shut-off copy of {} on {} is marked to autostart: libvirt would start it when {} boots, running {} twice (it runs on {}); remove it now: `{}`",
                sc.vm, sc.node, sc.node, sc.vm, sc.runs_on, sc.remove
            );
            let key = format!("autostart:{}@{}", sc.vm, sc.node);
            if !self.alarmed.contains(&key) {
                self.table().log(text.clone());
                self.alarmed.push(key);
            }
            alarms.push(text);
        }
        alarms
    }

    /// The migration table learns each node's URI and the VMs the cluster
    /// manager owns, for the migrations it follows.
    fn share_with_table(&self, data: &[(usize, String, &NodeData)], manager: &Option<ManagerView>) {
        let mut t = self.table();
        t.uris = data
            .iter()
            .map(|(i, n, _)| (n.clone(), self.nodes[*i].spec.uri.clone()))
            .collect();
        t.managed = manager
            .iter()
            .flat_map(|v| &v.vms)
            .map(|m| {
                (
                    m.domain.clone(),
                    ManagedBy {
                        manager: "pacemaker".into(),
                        resource: m.resource.clone(),
                    },
                )
            })
            .collect();
    }

    /// The storage moves and migrations as they stand, and the event log
    /// (the end of a storage move goes to it once).
    fn moves_and_events(&self) -> (Vec<StorageMove>, Vec<Migration>, Vec<ClusterEvent>) {
        let (storage_moves, ended) = storage::take_views(&self.storage_moves);
        for text in ended {
            self.table().log(text);
        }
        let (migrations, events) = {
            let t = self.table();
            let mut m: Vec<Migration> = t.entries.values().map(|e| e.view.clone()).collect();
            m.sort_by_key(|m| m.id);
            (m, t.log.iter().cloned().collect())
        };
        (storage_moves, migrations, events)
    }

    /// A restarted VM is running once a node that answers says so.
    fn recoveries_reached(&mut self, vms: &[Vm], fresh: &[&str]) {
        let now = crate::record::now_ms();
        for r in self.recoveries.iter_mut().filter(|r| !r.is_finished()) {
            if vms.iter().any(|v| {
                v.name == r.vm
                    && v.node == r.to
                    && v.state == VmState::Running
                    && fresh.contains(&v.node.as_str())
            }) {
                r.reach(RecoveryStep::Running, now);
            }
        }
    }

    /// A node in standby in Pacemaker is cordoned by Pacemaker.
    fn cordon_standby(&mut self, snap: &mut ClusterSnapshot) {
        if let Some(view) = &snap.manager {
            for n in snap.nodes.iter_mut() {
                let standby = view
                    .nodes
                    .iter()
                    .any(|m| m.name == n.name && (m.standby || m.maintenance));
                if standby {
                    let since = *self
                        .standby_since
                        .entry(n.name.clone())
                        .or_insert_with(crate::record::now_ms);
                    n.cordon = Some(Cordon {
                        since_unix_ms: since,
                        by: "Pacemaker (standby)".into(),
                    });
                } else {
                    self.standby_since.remove(&n.name);
                }
            }
        }
    }

    /// The placement rules now: the config's, then the cluster manager's
    /// constraints from its last good read (kept while it is silent).
    fn rules(&self, manager: Option<&ManagerView>) -> Vec<crate::cluster::Rule> {
        let mut rules = self.cfg.rules.clone();
        if let Some(m) = manager {
            rules.extend(m.rules.iter().cloned());
        }
        rules
    }

    /// Migrations found running (virsh, another vmshift) get model inputs
    /// from what is measured of their guest, for the live re-prediction.
    pub(super) fn give_inputs(&self, snap: &mut ClusterSnapshot) {
        let missing: Vec<MigrationId> = snap
            .migrations
            .iter()
            .filter(|m| m.inputs.is_none() && m.outcome.is_none())
            .map(|m| m.id)
            .collect();
        if missing.is_empty() {
            return;
        }
        let mut t = self.table();
        for id in missing {
            let Some(e) = t.entries.get_mut(&id) else {
                continue;
            };
            let (Some(vm), Some(node)) = (snap.vm(&e.view.vm), snap.node(&e.view.to)) else {
                continue;
            };
            e.view.inputs = Some(plan::inputs_for(snap, vm, node, &e.view.options, 0, &[]));
            if let Some(m) = snap.migrations.iter_mut().find(|m| m.id == id) {
                m.inputs.clone_from(&e.view.inputs);
            }
        }
    }

    /// Logs a node that stops answering, is lost, or answers again: the
    /// event log keeps when it happened after the card has changed.
    pub(super) fn log_node_changes(&mut self, nodes: &[Node]) {
        let mut lines = Vec::new();
        for n in nodes {
            let before = self.node_states.insert(n.name.clone(), n.state);
            if before == Some(n.state) || (before.is_none() && n.state == NodeState::Up) {
                continue;
            }
            let why = n.error.as_deref().unwrap_or("no answer");
            lines.push(match n.state {
                NodeState::Up => format!("{} answers again", n.name),
                NodeState::Down => format!("{} is {why}", n.name),
                _ => format!("{} does not answer: {why}", n.name),
            });
        }
        if !lines.is_empty() {
            let mut t = self.table();
            for l in lines {
                t.log(l);
            }
        }
    }

    /// The last snapshot with the cluster manager asked afresh (whatever
    /// the poll interval): an action on a VM it may own is decided on its
    /// answer now, never on one from a poll ago.
    pub(super) fn snapshot_for_action(&mut self) -> Result<ClusterSnapshot, BackendError> {
        let mut snap = match &self.snapshot {
            Some(s) => s.clone(),
            None => return self.snapshot(),
        };
        if self.manager.is_some() {
            let nodes = snap.nodes.clone();
            snap.manager = self.read_manager(&nodes, ManagerAnswer::AskNow);
            if let Some(s) = self.snapshot.as_mut() {
                s.manager = snap.manager.clone();
            }
        }
        Ok(snap)
    }
}

/// Each answering node's running domains, by name (not counting the two
/// sides of a migration).
fn running_on<'a>(
    data: &'a [(usize, String, &'a NodeData)],
    fresh: &[&str],
) -> Vec<(&'a str, Vec<&'a str>)> {
    data.iter()
        .filter(|(_, n, _)| fresh.contains(&n.as_str()))
        .map(|(_, n, d)| {
            let names = d
                .domains
                .iter()
                .filter(|x| {
                    matches!(x.state, VmState::Running | VmState::Paused)
                        && !x.incoming
                        && !x.migrating_out
                })
                .map(|x| x.name.as_str())
                .collect();
            (n.as_str(), names)
        })
        .collect()
}

/// The pools' volumes with those of disks in no pool added, and each shared
/// LUN owned by the node whose VMs use it.
fn with_disk_volumes(volumes: Vec<Volume>, vms: &[Vm]) -> Vec<Volume> {
    // Volumes whose disks are not in any pool.
    let mut volumes = volumes;
    for vm in vms {
        for d in &vm.disks {
            if volumes.iter().all(|v| v.name != d.volume) {
                volumes.push(Volume {
                    name: d.volume.clone(),
                    kind: VolumeKind::Local,
                    owner: Some(vm.node.clone()),
                    capacity: 0,
                    used: 0,
                    reachable_from: vec![vm.node.clone()],
                });
            }
        }
    }
    // Shared LUN owner: the node whose VMs use it.
    for v in volumes
        .iter_mut()
        .filter(|v| v.kind == VolumeKind::SharedLun)
    {
        if let Some(vm) = vms
            .iter()
            .find(|m| m.disks.iter().any(|d| d.volume == v.name))
        {
            v.owner = Some(vm.node.clone());
        }
    }
    volumes
}

/// A VM the cluster manager owns, or that carries its mark, is HA.
fn mark_ha(vms: &mut [Vm], manager: &Option<ManagerView>, marks: &[ManagedMark]) {
    for vm in vms.iter_mut() {
        vm.ha |= manager
            .as_ref()
            .is_some_and(|view| view.vms.iter().any(|m| m.domain == vm.name))
            || marks.iter().any(|m| m.vm == vm.name);
    }
}

/// A running VM with a migration under way is migrating.
fn mark_migrating(vms: &mut [Vm], migrations: &[Migration]) {
    for vm in vms.iter_mut() {
        if migrations
            .iter()
            .any(|m| m.vm == vm.name && m.outcome.is_none())
            && vm.state == VmState::Running
        {
            vm.state = VmState::Migrating;
        }
    }
}

/// A domain's workload from what its node measured.
pub(super) fn workload(dom: &node::DomainData) -> Workload {
    let measured = measure::estimate(dom.memory, &dom.samples, dom.mem_stats, dom.tcg);
    Workload {
        kind: if measured.is_some() {
            "measured".into()
        } else {
            "not measured yet".into()
        },
        dirty_bps: measured.as_ref().map_or(0, |m| m.dirty_bps.value as u64),
        wws_bytes: measured
            .as_ref()
            .map_or(dom.memory, |m| m.wws_bytes.value as u64),
        cpu_load: dom.cpu_pct / 100.0,
        touched_bytes: measured.as_ref().map(|m| m.touched_bytes.value as u64),
        measured,
    }
}

/// VMs that run on more than one node, with those nodes, from each node's
/// running domains (not counting the two sides of a migration).
pub(super) fn running_twice<'a>(
    running: &[(&'a str, Vec<&'a str>)],
) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (node, vms) in running {
        for vm in vms {
            match out.iter_mut().find(|(v, _)| v == vm) {
                Some((_, on)) => on.push(node),
                None => out.push((vm, vec![node])),
            }
        }
    }
    out.retain(|(_, on)| on.len() > 1);
    out
}

/// Defined, shut-off copies on nodes that answer of VMs that run on
/// another node that answers: starting one runs the VM twice.
pub(super) fn stale_copies(
    data: &[(usize, String, &NodeData)],
    fresh: &[&str],
    uri_of: impl Fn(usize) -> String,
) -> Vec<StaleCopy> {
    let answers = |n: &str| fresh.contains(&n);
    let mut out = Vec::new();
    for (i, node, d) in data.iter().filter(|(_, n, _)| answers(n)) {
        for dom in d.domains.iter().filter(|x| x.state == VmState::Stopped) {
            let runs_on = data.iter().find(|(_, other, od)| {
                other != node
                    && answers(other)
                    && od.domains.iter().any(|x| {
                        x.name == dom.name
                            && !x.incoming
                            && matches!(x.state, VmState::Running | VmState::Paused)
                    })
            });
            if let Some((_, other, _)) = runs_on {
                out.push(StaleCopy {
                    vm: dom.name.clone(),
                    node: node.clone(),
                    runs_on: other.clone(),
                    autostart: dom.autostart,
                    remove: crate::cluster::text::shell_line(&[
                        "virsh",
                        "-c",
                        &uri_of(*i),
                        "undefine",
                        &dom.name,
                    ]),
                });
            }
        }
    }
    out
}

/// A node that has not answered for `lost_after` is lost: shown down, with
/// what to do about its VMs.
pub(super) fn lost_or_unreachable(
    unreachable_for: Duration,
    lost_after: Duration,
    since_unix_ms: u64,
    error: &str,
) -> (NodeState, Option<String>) {
    if unreachable_for < lost_after {
        return (NodeState::Unreachable, Some(error.to_string()));
    }
    let s = since_unix_ms / 1000;
    (
        NodeState::Down,
        Some(format!(
            "lost: not answering since {:02}:{:02}:{:02} UTC ({error}); its VMs are shown as last seen — once it is powered off or fenced, `vmshift recover` restarts them elsewhere",
            (s / 3600) % 24,
            (s / 60) % 60,
            s % 60
        )),
    )
}

pub(super) fn rank(s: VmState) -> u8 {
    match s {
        VmState::Running | VmState::Migrating => 3,
        VmState::Paused => 2,
        VmState::Restarting => 1,
        VmState::Stopped => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_running_on_two_nodes_is_found() {
        let r = [
            ("a", vec!["web", "db"]),
            ("b", vec!["db", "mail"]),
            ("c", vec!["db"]),
        ];
        assert_eq!(running_twice(&r), [("db", vec!["a", "b", "c"])]);
        assert!(running_twice(&r[..1]).is_empty());
    }

    #[test]
    fn a_node_unreachable_for_the_configured_time_is_lost() {
        let after = Duration::from_secs(60);
        let since =
            1_764_000_000_000 + (3 * 3600 + 4 * 60 + 5) * 1000 - 1_764_000_000_000 % 86_400_000;
        let (s, e) = lost_or_unreachable(
            Duration::from_secs(59),
            after,
            since,
            "did not answer within 5 s",
        );
        assert_eq!(s, NodeState::Unreachable);
        assert_eq!(e.as_deref(), Some("did not answer within 5 s"));
        let (s, e) = lost_or_unreachable(
            Duration::from_secs(60),
            after,
            since,
            "did not answer within 5 s",
        );
        assert_eq!(s, NodeState::Down);
        let e = e.unwrap();
        assert!(
            e.starts_with("lost: not answering since 03:04:05 UTC"),
            "{e}"
        );
        assert!(e.contains("vmshift recover"), "{e}");
    }

    fn vm(name: &str, node: &str, state: VmState, volumes: &[&str]) -> Vm {
        Vm {
            name: name.into(),
            node: node.into(),
            state,
            vcpus: 1,
            memory: 1 << 30,
            disks: volumes
                .iter()
                .map(|v| Disk {
                    volume: v.to_string(),
                    size: 1 << 30,
                })
                .collect(),
            workload: Workload {
                kind: "not measured yet".into(),
                dirty_bps: 0,
                wws_bytes: 1 << 30,
                cpu_load: 0.0,
                touched_bytes: None,
                measured: None,
            },
            ha: false,
            cpu_model: String::new(),
            cpu_used_pct: 0.0,
            lost: None,
        }
    }

    #[test]
    fn a_disk_in_no_pool_gets_a_local_volume_and_a_lun_the_node_of_its_vm() {
        let lun = Volume {
            name: "lun-1".into(),
            kind: VolumeKind::SharedLun,
            owner: None,
            capacity: 10 << 30,
            used: 0,
            reachable_from: vec!["a".into(), "b".into()],
        };
        let vms = [
            vm("web", "b", VmState::Running, &["lun-1"]),
            vm("db", "a", VmState::Running, &["unpooled@a"]),
        ];
        let volumes = with_disk_volumes(vec![lun], &vms);
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[0].owner.as_deref(), Some("b"));
        assert_eq!(volumes[1].name, "unpooled@a");
        assert_eq!(volumes[1].kind, VolumeKind::Local);
        assert_eq!(volumes[1].reachable_from, ["a"]);
    }

    #[test]
    fn a_running_vm_with_a_migration_under_way_is_migrating() {
        let mut vms = [
            vm("web", "a", VmState::Running, &[]),
            vm("db", "a", VmState::Running, &[]),
            vm("old", "a", VmState::Stopped, &[]),
        ];
        let moving =
            |name: &str| Migration::starting(1, name, "a", "b", Default::default(), 1 << 30, 0, 0);
        let mut done = moving("db");
        done.outcome = Some(crate::cluster::Outcome::Completed);
        mark_migrating(&mut vms, &[moving("web"), done, moving("old")]);
        assert_eq!(vms[0].state, VmState::Migrating);
        assert_eq!(vms[1].state, VmState::Running);
        assert_eq!(vms[2].state, VmState::Stopped);
    }
}
