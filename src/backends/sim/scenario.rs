//! Scenario files (TOML): the cluster the simulator starts from.
//!
//! A scenario names nodes, volumes, VMs (with a workload preset or explicit
//! dirty behaviour) and optional timed events. Every mistake is reported with
//! file, line and column.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::cluster::{
    Disk, GIB, MIB, Node, NodeState, Rule, RuleOrigin, Vm, VmState, Volume, VolumeKind,
};
use crate::input::{ReadError, line_col, read_text};

use super::{HOST_RESERVE, generate};

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

/// A scenario error: where (line 0: no place in a file) and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}{}: {message}", if *line > 0 { format!(":{line}:{column}") } else { String::new() })]
pub struct ScenarioError {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Largest scenario file read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

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
    /// Placement rules (`[[rule]]`).
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    seed: u64,
    link_mib_s: Option<Spanned<u64>>,
    setup_ms: Option<Spanned<f64>>,
    ha_restart_s: Option<Spanned<f64>>,
    switchover_ms: Option<Spanned<f64>>,
    #[serde(rename = "node")]
    nodes: Vec<NodeSpec>,
    #[serde(rename = "volume", default)]
    volumes: Vec<VolumeSpec>,
    #[serde(rename = "vm", default)]
    vms: Vec<VmSpec>,
    #[serde(rename = "event", default)]
    events: Vec<EventSpec>,
    #[serde(rename = "rule", default)]
    rules: Vec<crate::config::rules::RuleSpec>,
}

const DEFAULT_LINK_MIB_S: u64 = 1100;
const DEFAULT_SETUP_MS: f64 = 800.0;
const DEFAULT_SWITCHOVER_MS: f64 = 25.0;
const DEFAULT_HA_RESTART_S: f64 = 20.0;

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSpec {
    name: Spanned<String>,
    cpus: Spanned<u32>,
    memory_gib: Spanned<u64>,
    #[serde(default)]
    cpu_model: Option<Spanned<String>>,
    nic_mib_s: Option<Spanned<u64>>,
    #[serde(default)]
    state: Option<NodeState>,
    labels: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeSpec {
    name: Spanned<String>,
    kind: VolumeKind,
    capacity_gib: Spanned<u64>,
    nodes: Spanned<Vec<Spanned<String>>>,
    owner: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskSpec {
    volume: Spanned<String>,
    size_gib: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VmSpec {
    name: Spanned<String>,
    node: Spanned<String>,
    vcpus: Spanned<u32>,
    memory_gib: Spanned<f64>,
    #[serde(default)]
    disks: Vec<DiskSpec>,
    workload: Spanned<String>,
    dirty_mib_s: Option<Spanned<f64>>,
    wws_mib: Option<Spanned<u64>>,
    touched_mib: Option<Spanned<u64>>,
    cpu_load: Option<Spanned<f64>>,
    #[serde(default = "default_true")]
    ha: bool,
    #[serde(default)]
    cpu_model: Option<Spanned<String>>,
    #[serde(default)]
    state: Option<Spanned<VmState>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventSpec {
    at_s: Spanned<f64>,
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
    let whole = |message: String| ScenarioError {
        origin: format!("--scenario {spec}"),
        line: 0,
        column: 0,
        message,
    };
    if let Some(params) = spec.strip_prefix("gen:") {
        return generate::generate(params).map_err(whole);
    }
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == spec) {
        return parse(text, &format!("<built-in scenario {name}>"));
    }
    match read_text(Path::new(spec), MAX_FILE_BYTES) {
        Ok(text) => parse(&text, spec),
        Err(ReadError::NotFound) => {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            Err(whole(format!(
                "no such scenario file; give a path to a TOML file, a built-in name ({}), or gen:nodes=N,vms=M",
                names.join(", ")
            )))
        }
        Err(ReadError::Other(e)) => Err(whole(format!("cannot read the scenario file: {e}"))),
    }
}

/// Largest values a scenario may give: every byte count computed from them
/// fits in a u64 with room to add them up.
const MAX_NODE_MEMORY_GIB: u64 = 1 << 20;
const MAX_CAPACITY_GIB: u64 = 1 << 30;
const MAX_LINK_MIB_S: u64 = 1_000_000;
const MAX_CPUS: u32 = 4096;
const MAX_VCPUS: u32 = 1024;
const MAX_VM_MEMORY_GIB: f64 = 16384.0;
const MAX_DIRTY_MIB_S: f64 = 1_000_000.0;
const MAX_NAME_CHARS: usize = 128;

/// Parses and checks a scenario; `origin` names it in errors. Every number
/// is range-checked before it is multiplied; the cluster must be one that
/// could exist (names given once, running VMs on up nodes, within memory).
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
    // An integer within bounds, or an error at it.
    let int = |v: &Spanned<u64>, what: &str, lo: u64, hi: u64| -> Result<u64, ScenarioError> {
        let x = *v.get_ref();
        if (lo..=hi).contains(&x) {
            Ok(x)
        } else {
            Err(err(
                v.span(),
                format!("{what} must be between {lo} and {hi}, not {x}"),
            ))
        }
    };
    // A finite number within bounds (inf and nan are refused).
    let num = |v: &Spanned<f64>, what: &str, lo: f64, hi: f64| -> Result<f64, ScenarioError> {
        let x = *v.get_ref();
        if x.is_finite() && (lo..=hi).contains(&x) {
            Ok(x)
        } else {
            Err(err(
                v.span(),
                format!("{what} must be a number from {lo} to {hi}, not {x}"),
            ))
        }
    };
    let name = |v: &Spanned<String>, what: &str| -> Result<String, ScenarioError> {
        let n = v.get_ref();
        if n.trim().is_empty() {
            return Err(err(v.span(), format!("a {what} name must not be empty")));
        }
        if n.chars().any(char::is_control) {
            return Err(err(
                v.span(),
                format!(
                    "the {what} name {n:?} holds a control character; use printable characters"
                ),
            ));
        }
        if n.chars().count() > MAX_NAME_CHARS {
            return Err(err(
                v.span(),
                format!("a {what} name must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        Ok(n.clone())
    };
    let label = |v: &Option<Spanned<String>>, what: &str| -> Result<String, ScenarioError> {
        match v {
            Some(s) if s.get_ref().chars().any(char::is_control) => Err(err(
                s.span(),
                format!(
                    "{what} {:?} holds a control character; use printable characters",
                    s.get_ref()
                ),
            )),
            Some(s) => Ok(s.get_ref().clone()),
            None => Ok(String::new()),
        }
    };

    let link_mib_s = match &file.link_mib_s {
        Some(l) => int(l, "link_mib_s", 1, MAX_LINK_MIB_S)?,
        None => DEFAULT_LINK_MIB_S,
    };
    let mut nodes: Vec<Node> = Vec::new();
    for n in &file.nodes {
        let node_name = name(&n.name, "node")?;
        if nodes.iter().any(|o| o.name == node_name) {
            return Err(err(
                n.name.span(),
                format!("node {node_name:?} is defined twice"),
            ));
        }
        let nic = match &n.nic_mib_s {
            Some(x) => int(x, "nic_mib_s", 1, MAX_LINK_MIB_S)?,
            None => link_mib_s,
        };
        nodes.push(Node {
            name: node_name,
            state: n.state.unwrap_or(NodeState::Up),
            cpus: int(&n.cpus.clone().map_u64(), "cpus", 1, MAX_CPUS as u64)? as u32,
            cpu_used_pct: 0.0,
            mem_total: int(&n.memory_gib, "memory_gib", 1, MAX_NODE_MEMORY_GIB)? * GIB,
            mem_used: 0,
            cpu_model: label(&n.cpu_model, "cpu_model")?,
            nic_bps: nic * MIB,
            error: None,
            cordon: None,
            labels: crate::config::rules::labels(n.labels.clone(), &err)?,
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
        let vol_name = name(&v.name, "volume")?;
        if volumes.iter().any(|o| o.name == vol_name) {
            return Err(err(
                v.name.span(),
                format!("volume {vol_name:?} is defined twice"),
            ));
        }
        let mut reach = Vec::new();
        for n in v.nodes.get_ref() {
            let n = node_ref(n)?;
            if !reach.contains(&n) {
                reach.push(n);
            }
        }
        let owner = v.owner.as_ref().map(&node_ref).transpose()?;
        match v.kind {
            VolumeKind::Local if reach.len() != 1 => {
                return Err(err(
                    v.nodes.span(),
                    "a local volume is reachable from exactly one node".into(),
                ));
            }
            _ if reach.is_empty() => {
                return Err(err(
                    v.nodes.span(),
                    "a volume must be reachable from at least one node".into(),
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
            name: vol_name,
            kind: v.kind,
            owner,
            capacity: int(&v.capacity_gib, "capacity_gib", 0, MAX_CAPACITY_GIB)? * GIB,
            used: 0,
            reachable_from: reach,
        });
    }

    let mut vms: Vec<Vm> = Vec::new();
    // Memory of the VMs that run on each node so far.
    let mut mem_on: Vec<u64> = vec![0; nodes.len()];
    for s in &file.vms {
        let vm_name = name(&s.name, "VM")?;
        if vms.iter().any(|o| o.name == vm_name) {
            return Err(err(
                s.name.span(),
                format!("VM {vm_name:?} is defined twice"),
            ));
        }
        let node = node_ref(&s.node)?;
        let mem_gib = num(&s.memory_gib, "memory_gib", 0.0, MAX_VM_MEMORY_GIB)?;
        if mem_gib <= 0.0 {
            return Err(err(
                s.memory_gib.span(),
                format!("memory_gib must be above 0 and at most {MAX_VM_MEMORY_GIB}"),
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
        let dirty = match &s.dirty_mib_s {
            Some(d) => num(d, "dirty_mib_s", 0.0, MAX_DIRTY_MIB_S)?,
            None => pre.dirty_mib_s,
        };
        let cpu_load = match &s.cpu_load {
            Some(c) => num(c, "cpu_load", 0.0, 1.0)?,
            None => pre.cpu_load,
        };
        let wws = match &s.wws_mib {
            Some(w) => int(w, "wws_mib", 0, memory / MIB)? * MIB,
            None => {
                ((memory as f64 * pre.wws_share) as u64).min(pre.wws_cap_mib.saturating_mul(MIB))
            }
        }
        .min(memory);
        let touched = match &s.touched_mib {
            Some(t) => int(t, "touched_mib", 0, memory / MIB)? * MIB,
            None => (memory as f64 * pre.touched_share) as u64,
        }
        .clamp(wws, memory);
        let state = s
            .state
            .as_ref()
            .map_or(VmState::Running, |st| *st.get_ref());
        let state_span = s.state.as_ref().map_or(s.name.span(), |st| st.span());
        if matches!(state, VmState::Migrating | VmState::Restarting) {
            return Err(err(
                state_span,
                format!(
                    "a scenario VM starts running, paused or stopped, not {}",
                    state.label()
                ),
            ));
        }
        let ni = nodes.iter().position(|n| n.name == node).expect("checked");
        if state != VmState::Stopped {
            let n = &nodes[ni];
            if n.state != NodeState::Up && n.state != NodeState::Maintenance {
                return Err(err(
                    s.node.span(),
                    format!(
                        "VM {vm_name} is {} on node {node}, which is {}; give it state = \"stopped\" or bring the node up",
                        state.label(),
                        n.state.label()
                    ),
                ));
            }
            let need = mem_on[ni] + memory + HOST_RESERVE;
            if need > n.mem_total {
                return Err(err(
                    s.memory_gib.span(),
                    format!(
                        "node {node} has {} of memory, but its running VMs up to {vm_name} need {} (with {} for the host); give the node more memory_gib or move a VM",
                        crate::cluster::units::bytes(n.mem_total),
                        crate::cluster::units::bytes(need),
                        crate::cluster::units::bytes(HOST_RESERVE)
                    ),
                ));
            }
            mem_on[ni] += memory;
        }
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
                        "volume {} is not reachable from {node}, where {vm_name} runs",
                        vol.name,
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
            let size = int(&d.size_gib, "size_gib", 0, MAX_CAPACITY_GIB)? * GIB;
            match vol.used.checked_add(size).filter(|u| *u <= vol.capacity) {
                Some(u) => vol.used = u,
                None => {
                    return Err(err(
                        d.size_gib.span(),
                        format!(
                            "volume {} holds more disk than its capacity of {} with this disk; raise its capacity_gib or shrink the disks",
                            vol.name,
                            crate::cluster::units::bytes(vol.capacity)
                        ),
                    ));
                }
            }
            disks.push(Disk {
                volume: vol.name.clone(),
                size,
            });
        }
        vms.push(Vm {
            name: vm_name,
            node,
            state,
            vcpus: int(&s.vcpus.clone().map_u64(), "vcpus", 1, MAX_VCPUS as u64)? as u32,
            memory,
            disks,
            workload: super::simulated_workload(
                s.workload.get_ref(),
                (dirty * MIB as f64) as u64,
                wws,
                touched,
                cpu_load,
            ),
            ha: s.ha,
            cpu_model: label(&s.cpu_model, "cpu_model")?,
            cpu_used_pct: 0.0,
            lost: None,
        });
    }

    let mut events = Vec::new();
    for e in &file.events {
        let at_s = num(&e.at_s, "at_s", 0.0, 1e9)?;
        match (&e.node_down, &e.node_up) {
            (Some(n), None) => events.push(ScheduledEvent::NodeDown {
                at_s,
                node: node_ref(n)?,
            }),
            (None, Some(n)) => events.push(ScheduledEvent::NodeUp {
                at_s,
                node: node_ref(n)?,
            }),
            _ => {
                return Err(err(
                    e.at_s.span(),
                    "each [[event]] needs exactly one of node_down or node_up".into(),
                ));
            }
        }
    }
    events.sort_by(|a, b| a.at_s().total_cmp(&b.at_s()));

    let setup_ms = match &file.setup_ms {
        Some(v) => num(v, "setup_ms", 0.0, 600_000.0)?,
        None => DEFAULT_SETUP_MS,
    };
    let switchover_ms = match &file.switchover_ms {
        Some(v) => num(v, "switchover_ms", 0.0, 60_000.0)?,
        None => DEFAULT_SWITCHOVER_MS,
    };
    let ha_restart_s = match &file.ha_restart_s {
        Some(v) => num(v, "ha_restart_s", 0.0, 86_400.0)?,
        None => DEFAULT_HA_RESTART_S,
    };
    let rule_spans: Vec<Range<usize>> = file.rules.iter().map(|r| r.name_span()).collect();
    let rules = crate::config::rules::rules_from(file.rules, RuleOrigin::Scenario, &err)?;
    // Rules that cannot hold or name nothing: the first, at its name.
    if let Some((name, why)) = crate::plan::rules::problems(&rules, &nodes, &vms)
        .into_iter()
        .next()
    {
        let i = rules.iter().position(|r| r.name == name).unwrap_or(0);
        return Err(err(rule_spans.get(i).cloned().unwrap_or(0..0), why));
    }
    Ok(Scenario {
        name: file.name,
        seed: file.seed,
        setup_s: setup_ms / 1000.0,
        switchover_ms,
        ha_restart_s,
        nodes,
        volumes,
        vms,
        events,
        rules,
    })
}

/// Widens a spanned u32 so one range check serves every integer.
trait MapU64 {
    fn map_u64(self) -> Spanned<u64>;
}

impl MapU64 for Spanned<u32> {
    fn map_u64(self) -> Spanned<u64> {
        let span = self.span();
        Spanned::new(span, u64::from(self.into_inner()))
    }
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

    const BASE: &str = "name = \"x\"\n[[node]]\nname = \"a\"\ncpus = 4\nmemory_gib = 16\n[[node]]\nname = \"b\"\ncpus = 4\nmemory_gib = 16\n[[volume]]\nname = \"v\"\nkind = \"cluster-shared\"\ncapacity_gib = 100\nnodes = [\"a\", \"b\"]\n";

    /// The error for BASE with `vm` appended (a `[[vm]]` table) and `top`
    /// put before everything.
    fn bad(top: &str, vm: &str) -> ScenarioError {
        let text = format!("{top}{BASE}[[vm]]\n{vm}");
        match parse(&text, "f.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    const VM: &str = "name = \"v1\"\nnode = \"a\"\nvcpus = 1\nmemory_gib = 2\nworkload = \"web\"\n";

    #[test]
    fn the_base_scenario_is_fine() {
        let s = parse(&format!("{BASE}[[vm]]\n{VM}"), "f.toml").unwrap();
        assert_eq!(s.vms.len(), 1);
    }

    /// Numbers that used to wrap or run forever: each is an error at the value.
    #[test]
    fn numbers_out_of_range_are_errors_at_the_value() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "",
                "disks = [{ volume = \"v\", size_gib = 18446744073709551615 }]\n",
                "size_gib must be between",
            ),
            (
                "",
                "disks = [{ volume = \"v\", size_gib = 60 }, { volume = \"v\", size_gib = 60 }]\n",
                "more disk than its capacity",
            ),
            (
                "link_mib_s = 18446744073709551615\n",
                "",
                "link_mib_s must be between 1",
            ),
            ("link_mib_s = 0\n", "", "link_mib_s must be between 1"),
            ("setup_ms = inf\n", "", "setup_ms must be a number"),
            ("setup_ms = nan\n", "", "setup_ms must be a number"),
            ("ha_restart_s = -1.0\n", "", "ha_restart_s must be a number"),
            ("", "dirty_mib_s = inf\n", "dirty_mib_s must be a number"),
            ("", "cpu_load = nan\n", "cpu_load must be a number"),
            (
                "",
                "wws_mib = 18446744073709551615\n",
                "wws_mib must be between",
            ),
            ("", "vcpus = 0\n", "vcpus must be between 1"),
        ];
        for (top, extra, want) in cases {
            // `extra` overrides the VM's keys: put it in place of a default one.
            let mut vm = VM.to_string();
            if let Some(key) = extra
                .split(" =")
                .next()
                .filter(|k| !k.is_empty() && vm.contains(&format!("{k} =")))
            {
                vm = vm
                    .lines()
                    .filter(|l| !l.starts_with(&format!("{key} =")))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
            vm.push_str(extra);
            let e = bad(top, &vm);
            assert!(e.message.contains(want), "{top}{extra}: {e}");
            assert!(e.line > 0, "{e}");
            let text = format!("{top}{BASE}[[vm]]\n{vm}");
            let line = text.lines().nth(e.line - 1).unwrap();
            let key = want.split(' ').next().unwrap();
            assert!(
                line.contains(key) || want.contains("capacity"),
                "{e} points at {line:?}"
            );
        }
        let e = bad("", &VM.replace("node = \"a\"", "node = \"a\"\nnic = 1"));
        assert!(e.message.contains("nic"), "{e}");
        let e = parse(
            &BASE.replace("memory_gib = 16", "memory_gib = 18446744073709551615"),
            "f.toml",
        )
        .unwrap_err();
        assert!(e.message.contains("memory_gib must be between 1"), "{e}");
    }

    #[test]
    fn an_impossible_cluster_is_refused() {
        let down = BASE.replacen(
            "memory_gib = 16\n",
            "memory_gib = 16\nstate = \"down\"\n",
            1,
        );
        let e = parse(&format!("{down}[[vm]]\n{VM}"), "f.toml").unwrap_err();
        assert!(
            e.message.contains("which is down") && e.message.contains("stopped"),
            "{e}"
        );
        let ok = parse(
            &format!("{down}[[vm]]\n{VM}state = \"stopped\"\n"),
            "f.toml",
        );
        assert!(ok.is_ok(), "a stopped VM on a down node is fine");
        let e = bad(
            "",
            &format!(
                "{VM}[[vm]]\n{}",
                VM.replace("v1", "v2")
                    .replace("memory_gib = 2", "memory_gib = 13")
            ),
        );
        assert!(e.message.contains("node a has 16.0 GiB of memory"), "{e}");
        assert_eq!(
            (e.line, e.column),
            (25, 14),
            "at the memory of the VM that does not fit: {e}"
        );
        let e = bad("", &VM.replace("\"v1\"", "\"  \""));
        assert!(e.message.contains("must not be empty"), "{e}");
        let e = bad("", &VM.replace("\"v1\"", "\"v\\u001b]0;x\\u0007\""));
        assert!(e.message.contains("control character"), "{e}");
        let e = bad("", &format!("{VM}[[vm]]\n{VM}"));
        assert!(e.message.contains("defined twice"), "{e}");
        let e = bad("", &format!("{VM}state = \"migrating\"\n"));
        assert!(e.message.contains("not migrating"), "{e}");
    }

    #[test]
    fn errors_without_a_place_have_no_made_up_line() {
        let e = load("/nonexistent").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--scenario /nonexistent: no such scenario file"),
            "{e}"
        );
        let e = load("gen:nodes=0,vms=1").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--scenario gen:nodes=0,vms=1: nodes=0 is out of range"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
