//! Scenario files (TOML): the cluster the simulator starts from.
//!
//! A scenario names nodes, volumes, VMs (with a workload preset or explicit
//! dirty behaviour) and optional timed events. Every mistake is reported with
//! file, line and column.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::cluster::{Disk, GIB, MIB, Node, NodeState, Vm, VmState, Volume, VolumeKind};

use super::generate;

/// Built-in scenarios, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "default",
        include_str!("../../../assets/scenarios/default.toml"),
    ),
    (
        "small",
        include_str!("../../../assets/scenarios/small.toml"),
    ),
];

/// A scenario error: where and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct ScenarioError {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A timed event in a scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduledEvent {
    NodeDown { at_s: f64, node: String },
    NodeUp { at_s: f64, node: String },
}

impl ScheduledEvent {
    pub fn at_s(&self) -> f64 {
        match self {
            ScheduledEvent::NodeDown { at_s, .. } | ScheduledEvent::NodeUp { at_s, .. } => *at_s,
        }
    }
}

/// A parsed, checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub setup_s: f64,
    /// Fixed part of a migration's downtime (pause, device state, resume).
    pub switchover_ms: f64,
    pub ha_restart_s: f64,
    pub nodes: Vec<Node>,
    pub volumes: Vec<Volume>,
    pub vms: Vec<Vm>,
    pub events: Vec<ScheduledEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    seed: u64,
    #[serde(default = "default_link")]
    link_mib_s: u64,
    #[serde(default = "default_setup")]
    setup_ms: f64,
    #[serde(default = "default_switchover")]
    switchover_ms: f64,
    #[serde(default = "default_ha_restart")]
    ha_restart_s: f64,
    #[serde(rename = "node")]
    nodes: Vec<NodeSpec>,
    #[serde(rename = "volume", default)]
    volumes: Vec<VolumeSpec>,
    #[serde(rename = "vm", default)]
    vms: Vec<VmSpec>,
    #[serde(rename = "event", default)]
    events: Vec<EventSpec>,
}

fn default_link() -> u64 {
    1100
}
fn default_setup() -> f64 {
    800.0
}
fn default_switchover() -> f64 {
    25.0
}
fn default_ha_restart() -> f64 {
    20.0
}
fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSpec {
    name: Spanned<String>,
    cpus: u32,
    memory_gib: u64,
    #[serde(default)]
    cpu_model: String,
    nic_mib_s: Option<u64>,
    #[serde(default)]
    state: Option<NodeState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeSpec {
    name: Spanned<String>,
    kind: VolumeKind,
    capacity_gib: u64,
    nodes: Spanned<Vec<Spanned<String>>>,
    owner: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskSpec {
    volume: Spanned<String>,
    size_gib: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VmSpec {
    name: Spanned<String>,
    node: Spanned<String>,
    vcpus: u32,
    memory_gib: Spanned<f64>,
    #[serde(default)]
    disks: Vec<DiskSpec>,
    workload: Spanned<String>,
    dirty_mib_s: Option<f64>,
    wws_mib: Option<u64>,
    touched_mib: Option<u64>,
    cpu_load: Option<f64>,
    #[serde(default = "default_true")]
    ha: bool,
    #[serde(default)]
    cpu_model: String,
    #[serde(default)]
    state: Option<VmState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventSpec {
    at_s: f64,
    node_down: Option<Spanned<String>>,
    node_up: Option<Spanned<String>>,
}

/// A workload preset: how a kind of guest uses its memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub dirty_mib_s: f64,
    /// Hot set as a share of memory, and its cap in MiB.
    pub wws_share: f64,
    pub wws_cap_mib: u64,
    pub cpu_load: f64,
    /// Share of memory that holds data (the rest is zero pages).
    pub touched_share: f64,
}

pub fn preset(kind: &str) -> Option<Preset> {
    let p = |dirty_mib_s, wws_share, wws_cap_mib, cpu_load, touched_share| Preset {
        dirty_mib_s,
        wws_share,
        wws_cap_mib,
        cpu_load,
        touched_share,
    };
    Some(match kind {
        "idle" => p(2.0, 0.02, 64, 0.02, 0.3),
        "web" => p(150.0, 0.125, 1024, 0.3, 0.6),
        "database" => p(400.0, 0.125, 4096, 0.5, 0.9),
        "cache" => p(250.0, 0.1, 2048, 0.35, 0.85),
        "build" => p(300.0, 0.25, 4096, 0.7, 0.7),
        "batch" => p(3000.0, 0.75, u64::MAX, 0.9, 0.95),
        _ => return None,
    })
}

pub const PRESETS: &str = "idle, web, database, cache, build, batch";

/// Loads a scenario by built-in name, `gen:...` spec, or file path.
pub fn load(spec: &str) -> Result<Scenario, ScenarioError> {
    if let Some(params) = spec.strip_prefix("gen:") {
        return generate::generate(params).map_err(|message| ScenarioError {
            origin: "--scenario".into(),
            line: 1,
            column: 1,
            message,
        });
    }
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == spec) {
        return parse(text, &format!("<built-in scenario {name}>"));
    }
    let path = Path::new(spec);
    if !path.exists() {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return Err(ScenarioError {
            origin: spec.into(),
            line: 0,
            column: 0,
            message: format!(
                "no such scenario file; give a path to a TOML file, a built-in name ({}), or gen:nodes=N,vms=M",
                names.join(", ")
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        origin: spec.into(),
        line: 0,
        column: 0,
        message: format!("cannot read the scenario file: {e}"),
    })?;
    parse(&text, spec)
}

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses and checks a scenario; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    let err = |span: Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        ScenarioError {
            origin: origin.into(),
            line,
            column,
            message,
        }
    };
    let file: File = toml::from_str(text)
        .map_err(|e| err(e.span().unwrap_or(0..0), e.message().trim_end().to_string()))?;

    let mut nodes: Vec<Node> = Vec::new();
    for n in &file.nodes {
        if nodes.iter().any(|o| o.name == *n.name.get_ref()) {
            return Err(err(
                n.name.span(),
                format!("node {:?} is defined twice", n.name.get_ref()),
            ));
        }
        nodes.push(Node {
            name: n.name.get_ref().clone(),
            state: n.state.unwrap_or(NodeState::Up),
            cpus: n.cpus.max(1),
            cpu_used_pct: 0.0,
            mem_total: n.memory_gib * GIB,
            mem_used: 0,
            cpu_model: n.cpu_model.clone(),
            nic_bps: n.nic_mib_s.unwrap_or(file.link_mib_s).max(1) * MIB,
            error: None,
        });
    }
    if nodes.is_empty() {
        return Err(err(0..0, "a scenario needs at least one [[node]]".into()));
    }
    let node_ref = |s: &Spanned<String>| -> Result<String, ScenarioError> {
        if nodes.iter().any(|n| n.name == *s.get_ref()) {
            Ok(s.get_ref().clone())
        } else {
            let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            Err(err(
                s.span(),
                format!(
                    "unknown node {:?}; nodes are: {}",
                    s.get_ref(),
                    known.join(", ")
                ),
            ))
        }
    };

    let mut volumes: Vec<Volume> = Vec::new();
    for v in &file.volumes {
        if volumes.iter().any(|o| o.name == *v.name.get_ref()) {
            return Err(err(
                v.name.span(),
                format!("volume {:?} is defined twice", v.name.get_ref()),
            ));
        }
        let reach = v
            .nodes
            .get_ref()
            .iter()
            .map(&node_ref)
            .collect::<Result<Vec<_>, _>>()?;
        let owner = v.owner.as_ref().map(&node_ref).transpose()?;
        match v.kind {
            VolumeKind::Local if reach.len() != 1 => {
                return Err(err(
                    v.nodes.span(),
                    "a local volume is reachable from exactly one node".into(),
                ));
            }
            VolumeKind::SharedLun if owner.is_none() => {
                return Err(err(
                    v.name.span(),
                    "a shared-lun volume needs an owner node".into(),
                ));
            }
            _ => {}
        }
        if let (Some(o), Some(spec)) = (&owner, &v.owner)
            && !reach.contains(o)
        {
            return Err(err(
                spec.span(),
                format!("owner {o:?} must be one of the volume's nodes"),
            ));
        }
        let owner = owner.or_else(|| (v.kind == VolumeKind::Local).then(|| reach[0].clone()));
        volumes.push(Volume {
            name: v.name.get_ref().clone(),
            kind: v.kind,
            owner,
            capacity: v.capacity_gib * GIB,
            used: 0,
            reachable_from: reach,
        });
    }

    let mut vms: Vec<Vm> = Vec::new();
    for s in &file.vms {
        if vms.iter().any(|o| o.name == *s.name.get_ref()) {
            return Err(err(
                s.name.span(),
                format!("VM {:?} is defined twice", s.name.get_ref()),
            ));
        }
        let node = node_ref(&s.node)?;
        let mem_gib = *s.memory_gib.get_ref();
        if !(mem_gib > 0.0 && mem_gib <= 16384.0) {
            return Err(err(
                s.memory_gib.span(),
                "memory_gib must be above 0 and at most 16384".into(),
            ));
        }
        let memory = (mem_gib * GIB as f64) as u64;
        let Some(pre) = preset(s.workload.get_ref()) else {
            return Err(err(
                s.workload.span(),
                format!(
                    "unknown workload {:?}; use one of {PRESETS}",
                    s.workload.get_ref()
                ),
            ));
        };
        let wws = s
            .wws_mib
            .map(|m| m * MIB)
            .unwrap_or_else(|| {
                ((memory as f64 * pre.wws_share) as u64).min(pre.wws_cap_mib.saturating_mul(MIB))
            })
            .min(memory);
        let touched = s
            .touched_mib
            .map(|m| m.saturating_mul(MIB))
            .unwrap_or((memory as f64 * pre.touched_share) as u64)
            .clamp(wws, memory);
        let mut disks = Vec::new();
        for d in &s.disks {
            let Some(vol) = volumes.iter_mut().find(|v| v.name == *d.volume.get_ref()) else {
                let known: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
                return Err(err(
                    d.volume.span(),
                    format!(
                        "unknown volume {:?}; volumes are: {}",
                        d.volume.get_ref(),
                        known.join(", ")
                    ),
                ));
            };
            if !vol.reachable_from(&node) {
                return Err(err(
                    d.volume.span(),
                    format!(
                        "volume {} is not reachable from {node}, where {} runs",
                        vol.name,
                        s.name.get_ref()
                    ),
                ));
            }
            if vol.kind == VolumeKind::SharedLun && vol.owner.as_deref() != Some(node.as_str()) {
                return Err(err(
                    d.volume.span(),
                    format!(
                        "shared LUN {} is owned by {}, so its VMs must run there",
                        vol.name,
                        vol.owner.clone().unwrap_or_default()
                    ),
                ));
            }
            vol.used += d.size_gib * GIB;
            disks.push(Disk {
                volume: vol.name.clone(),
                size: d.size_gib * GIB,
            });
        }
        vms.push(Vm {
            name: s.name.get_ref().clone(),
            node,
            state: s.state.unwrap_or(VmState::Running),
            vcpus: s.vcpus.max(1),
            memory,
            disks,
            workload: super::simulated_workload(
                s.workload.get_ref(),
                (s.dirty_mib_s.unwrap_or(pre.dirty_mib_s).max(0.0) * MIB as f64) as u64,
                wws,
                touched,
                s.cpu_load.unwrap_or(pre.cpu_load).clamp(0.0, 1.0),
            ),
            ha: s.ha,
            cpu_model: s.cpu_model.clone(),
            cpu_used_pct: 0.0,
        });
    }
    for v in &volumes {
        if v.used > v.capacity {
            let span = file
                .volumes
                .iter()
                .find(|s| *s.name.get_ref() == v.name)
                .map(|s| s.name.span())
                .unwrap_or(0..0);
            return Err(err(
                span,
                format!("volume {} holds more disk than its capacity", v.name),
            ));
        }
    }

    let mut events = Vec::new();
    for e in &file.events {
        match (&e.node_down, &e.node_up) {
            (Some(n), None) => events.push(ScheduledEvent::NodeDown {
                at_s: e.at_s,
                node: node_ref(n)?,
            }),
            (None, Some(n)) => events.push(ScheduledEvent::NodeUp {
                at_s: e.at_s,
                node: node_ref(n)?,
            }),
            _ => {
                return Err(err(
                    0..0,
                    "each [[event]] needs exactly one of node_down or node_up".into(),
                ));
            }
        }
    }
    events.sort_by(|a, b| a.at_s().total_cmp(&b.at_s()));

    Ok(Scenario {
        name: file.name,
        seed: file.seed,
        setup_s: file.setup_ms.max(0.0) / 1000.0,
        switchover_ms: file.switchover_ms.max(0.0),
        ha_restart_s: file.ha_restart_s.max(0.0),
        nodes,
        volumes,
        vms,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_scenarios_parse() {
        for (name, _) in BUILTIN {
            let s = load(name).unwrap();
            assert!(!s.vms.is_empty(), "{name}");
        }
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let e = parse("name = \"x\"\n[[node]]\nname = \n", "f.toml").unwrap_err();
        assert_eq!((e.line, e.origin.as_str()), (3, "f.toml"), "{e}");
    }

    #[test]
    fn an_unknown_node_reference_points_at_it() {
        let text = "name = \"x\"\n[[node]]\nname = \"a\"\ncpus = 4\nmemory_gib = 8\n\n[[vm]]\nname = \"v\"\nnode = \"b\"\nvcpus = 1\nmemory_gib = 1\nworkload = \"idle\"\n";
        let e = parse(text, "f.toml").unwrap_err();
        assert_eq!((e.line, e.column), (9, 8), "{e}");
        assert!(
            e.message.contains("unknown node \"b\"") && e.message.contains("a"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_workload_lists_the_presets() {
        let text = "name = \"x\"\n[[node]]\nname = \"a\"\ncpus = 4\nmemory_gib = 8\n[[vm]]\nname = \"v\"\nnode = \"a\"\nvcpus = 1\nmemory_gib = 1\nworkload = \"gaming\"\n";
        let e = parse(text, "f.toml").unwrap_err();
        assert_eq!(e.line, 11);
        assert!(e.message.contains("database"), "{e}");
    }
}
