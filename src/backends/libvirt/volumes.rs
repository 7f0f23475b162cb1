//! Volumes from the nodes' storage pools: pools that name one storage on
//! several nodes are one shared volume; a disk's volume from its source.

use std::collections::HashMap;

use super::LibvirtCluster;
use super::node::{NodeData, PoolData};
use super::xml::DiskSource;
use crate::cluster::{Volume, VolumeKind};

/// Pools that are local to a host by convention, even with the same path elsewhere.
pub(super) const LOCAL_PATHS: &[&str] = &["/var/lib/libvirt"];

impl LibvirtCluster {
    /// Volumes from the pools of all nodes, and (node, pool) → volume name.
    /// The volume of each (node, pool) from every node's last answer: what
    /// a disk copy or a storage move needs to name its pools' volumes.
    pub(super) fn pool_volumes(&self) -> HashMap<(String, String), String> {
        let data: Vec<(usize, String, &NodeData)> = self
            .last
            .iter()
            .map(|(i, d)| (*i, super::node_name(&self.nodes[*i].spec, Some(d)), d))
            .collect();
        self.volumes(&data).1
    }

    pub(super) fn volumes(
        &self,
        data: &[(usize, String, &NodeData)],
    ) -> (Vec<Volume>, HashMap<(String, String), String>) {
        // Group pools by what backs them.
        // (key, kind, [(node, pool)])
        type Group = (String, VolumeKind, Vec<(String, PoolData)>);
        let mut groups: Vec<Group> = Vec::new();
        for (_, node, d) in data {
            for p in d.pools.iter().filter(|p| p.active) {
                let (key, kind) = self.pool_key(node, p);
                match groups.iter_mut().find(|g| g.0 == key) {
                    Some(g) => g.2.push((node.clone(), p.clone())),
                    None => groups.push((key, kind, vec![(node.clone(), p.clone())])),
                }
            }
        }
        let mut volumes = Vec::new();
        let mut map = HashMap::new();
        let name_count = |name: &str| {
            groups
                .iter()
                .filter(|g| g.2.iter().any(|(_, p)| p.name == name))
                .count()
        };
        for (key, kind, members) in &groups {
            let shared = members.len() > 1 || key.starts_with("decl:");
            let first = &members[0].1;
            let name = if let Some(decl) = key.strip_prefix("decl:") {
                decl.to_string()
            } else if shared || name_count(&first.name) == 1 {
                first.name.clone()
            } else {
                format!("{}@{}", first.name, members[0].0)
            };
            let kind = if shared { *kind } else { VolumeKind::Local };
            for (node, p) in members {
                map.insert((node.clone(), p.name.clone()), name.clone());
            }
            volumes.push(Volume {
                name,
                kind,
                owner: (!shared).then(|| members[0].0.clone()),
                capacity: members.iter().map(|m| m.1.capacity).max().unwrap_or(0),
                used: members.iter().map(|m| m.1.allocation).max().unwrap_or(0),
                reachable_from: members.iter().map(|m| m.0.clone()).collect(),
            });
        }
        (volumes, map)
    }

    /// Whether the operator declared `volume` as one coherent storage
    /// (`trusted = true`), which libvirt cannot see for itself.
    pub(super) fn trusted_volume(&self, volume: &str) -> bool {
        self.cfg
            .shared
            .iter()
            .any(|d| d.trusted && d.name == volume && d.kind == VolumeKind::ClusterShared)
    }

    /// What identifies a pool's storage across nodes, and the kind of
    /// volume it makes when several nodes have it.
    pub(super) fn pool_key(&self, node: &str, p: &PoolData) -> (String, VolumeKind) {
        if let Some(d) = self.cfg.shared.iter().find(|d| d.pools.contains(&p.name)) {
            return (format!("decl:{}", d.name), d.kind);
        }
        let lun = matches!(
            p.kind.as_str(),
            "iscsi" | "iscsi-direct" | "scsi" | "mpath" | "logical" | "disk"
        );
        let kind = if lun {
            VolumeKind::SharedLun
        } else {
            VolumeKind::ClusterShared
        };
        let networked = matches!(
            p.kind.as_str(),
            "netfs"
                | "gluster"
                | "rbd"
                | "sheepdog"
                | "iscsi"
                | "iscsi-direct"
                | "vstorage"
                | "zfs"
        );
        if networked && !p.source.is_empty() {
            return (format!("src:{}:{}", p.kind, p.source), kind);
        }
        let local_by_convention = LOCAL_PATHS.iter().any(|l| p.target.starts_with(l));
        if matches!(p.kind.as_str(), "dir" | "fs") && !p.target.is_empty() && !local_by_convention {
            // The same directory on several nodes: a shared dir (cluster FS).
            return (format!("path:{}", p.target), kind);
        }
        (format!("local:{node}:{}", p.name), VolumeKind::Local)
    }
}

/// The volume a disk lives on: its pool (by name, or the pool whose target
/// holds the path), or a per-node "unpooled" volume.
pub(super) fn disk_volume(
    node: &str,
    src: &DiskSource,
    d: &NodeData,
    map: &HashMap<(String, String), String>,
) -> String {
    let pool = match src {
        DiskSource::PoolVolume { pool, .. } => Some(pool.clone()),
        DiskSource::Path(path) => d
            .pools
            .iter()
            .filter(|p| {
                !p.target.is_empty()
                    && path.starts_with(&format!("{}/", p.target.trim_end_matches('/')))
            })
            .max_by_key(|p| p.target.len())
            .map(|p| p.name.clone()),
        DiskSource::Network { name, .. } => {
            let first = name.split('/').next().unwrap_or("");
            d.pools
                .iter()
                .find(|p| p.source.contains(&format!("name={first}")))
                .map(|p| p.name.clone())
        }
        DiskSource::None => None,
    };
    pool.and_then(|p| map.get(&(node.to_string(), p)).cloned())
        .unwrap_or_else(|| format!("unpooled@{node}"))
}
