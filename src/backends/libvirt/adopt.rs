//! Migrations vmshift did not start here: found running in the cluster
//! (virsh, another vmshift, one left detached or orphaned), followed from
//! then on, and detached ones that ended while no vmshift watched, settled.

use super::migrate::Entry;
use super::node::NodeData;
use super::{LibvirtCluster, migrate, rounds};
use crate::cluster::{Migration, Node, NodeState, Outcome, Vm, VmState};
use crate::record::{Meta, Record};

impl LibvirtCluster {
    /// Outgoing migrations running in the cluster that vmshift does not
    /// follow yet (started by virsh or another vmshift).
    pub(super) fn discover(&mut self, data: &[(usize, String, &NodeData)]) {
        // The destination of a found migration shows up as a paused
        // incoming domain, maybe a poll later than the source's job.
        {
            let mut t = self.table();
            for e in t
                .entries
                .values_mut()
                .filter(|e| e.discovered && e.view.to == "?")
            {
                if let Some((_, n, _)) = data.iter().find(|(_, n, d)| {
                    *n != e.view.from && d.domains.iter().any(|x| x.name == e.view.vm && x.incoming)
                }) {
                    e.view.to = n.clone();
                }
            }
        }
        let mut found = Vec::new();
        for (i, node, d) in data {
            for dom in d.domains.iter().filter(|d| d.migrating_out) {
                let known = self
                    .table()
                    .entries
                    .values()
                    .any(|e| e.view.vm == dom.name && e.view.outcome.is_none());
                if known {
                    continue;
                }
                let to = data
                    .iter()
                    .find(|(_, n, other)| {
                        n != node
                            && other
                                .domains
                                .iter()
                                .any(|x| x.name == dom.name && x.incoming)
                    })
                    .map_or_else(|| "?".to_string(), |(_, n, _)| n.clone());
                found.push((*i, node.clone(), to, dom.name.clone(), dom.memory));
            }
        }
        for (i, from, to, vm, memory) in found {
            let uri = self.nodes[i].spec.uri.clone();
            // One a vmshift started (this one's predecessor, or another
            // that runs or was killed) and left running?
            let earlier = self
                .detached
                .iter()
                .position(|r| r.migration.vm == vm && r.migration.from == from)
                .map(|p| self.detached.remove(p))
                .or_else(|| self.table().claim(&vm, &from));
            let id = {
                let mut t = self.table();
                t.next_id += 1;
                let id = t.next_id;
                let mut e = Entry::new(id, &vm, &from, &to, Default::default(), memory);
                e.discovered = true;
                e.view.managed_by = t.managed.get(&vm).cloned();
                match &earlier {
                    Some(r) => {
                        e.adopt(r);
                        t.log(match &r.running_by {
                            Some(o) if e.owner_follows() => format!(
                                "found the migration of {vm} {from} → {to} that vmshift {} runs; following it (that vmshift records it)",
                                o.describe()
                            ),
                            Some(o) => format!(
                                "found the migration of {vm} {from} → {to} whose vmshift ({}) is gone; following it, with its stall policy, and recording it as orphaned",
                                o.describe()
                            ),
                            None => format!(
                                "found the migration of {vm} {from} → {to} that vmshift left running; following it"
                            ),
                        });
                    }
                    None => {
                        e.meta = Meta::new(true, None);
                        t.log(format!(
                            "found a running migration of {vm} {from} → {to}; following it"
                        ));
                    }
                }
                t.entries.insert(id, e);
                id
            };
            migrate::follow_in_background(self.shared.clone(), id, vm, uri);
        }
    }

    /// Detached migrations that are not running any more ended while no
    /// vmshift watched: where their VM runs now tells how.
    pub(super) fn settle_detached(&mut self, nodes: &[Node], vms: &[Vm]) {
        if self.detached.is_empty() {
            return;
        }
        let up = |name: &str| {
            nodes
                .iter()
                .any(|n| n.name == name && n.state == NodeState::Up)
        };
        let mut settled = Vec::new();
        self.detached.retain(|r| {
            let m = &r.migration;
            if !up(&m.from) || !up(&m.to) {
                return true; // cannot tell yet
            }
            let now = vms.iter().find(|v| v.name == m.vm);
            if now.is_some_and(|v| v.state == VmState::Migrating) {
                return true; // a new migration of it; not this one
            }
            let mut m = m.clone();
            m.outcome = Some(match now.map(|v| v.node.as_str()) {
                Some(n) if n == m.to => Outcome::Completed,
                Some(n) => Outcome::Failed {
                    reason: format!(
                        "the migration ended while no vmshift watched it, without moving {}; it runs on {n}",
                        m.vm
                    ),
                },
                None => Outcome::Failed {
                    reason: format!(
                        "the migration ended while no vmshift watched it, and {} is on neither {} nor {} now",
                        m.vm, m.from, m.to
                    ),
                },
            });
            settled.push((r.clone(), m));
            false
        });
        // libvirt's totals of the completed job, from the destination (or
        // the source for one that failed), read so that others can too.
        let settled: Vec<(Record, Migration, bool)> = settled
            .into_iter()
            .map(|(r, mut m)| {
                let node = match m.outcome {
                    Some(Outcome::Completed) => &m.to,
                    _ => &m.from,
                };
                // `nodes` follows the poll's order (and `self.last` is lent
                // out while a snapshot is built).
                let stats = nodes
                    .iter()
                    .position(|n| n.name == *node)
                    .and_then(|i| migrate::ask(&self.nodes[i].spec.uri, &m.vm))
                    .and_then(|s| s.completed);
                if let Some(st) = &stats {
                    rounds::apply_totals(&mut m, &rounds::Stats::from(st));
                }
                (r, m, stats.is_some())
            })
            .collect();
        let t = self.table();
        for (r, m, totals) in settled {
            let mut rec = Record::finished(&Meta::resumed(&r), "libvirt", &t.cluster, &m);
            rec.orphaned = r.running_by.is_some();
            let who = match &r.running_by {
                Some(o) => format!(
                    "orphaned: the vmshift that started it ({}) ended before it, and it ended while no vmshift watched",
                    o.describe()
                ),
                None => "ended while no vmshift was running".into(),
            };
            rec.note = Some(if totals {
                format!(
                    "{who}: the rounds after it was left were not seen; the round count, time, bytes and downtime are libvirt's totals"
                )
            } else {
                format!(
                    "{who}: the rounds after it was left and the actual downtime were not seen (libvirt no longer had the completed job)"
                )
            });
            t.journal.submit(rec);
        }
    }
}
