//! Generated clusters for benchmarks and scale tests:
//! `gen:nodes=1000,vms=20000[,seed=S][,rules=R]`.

use crate::cluster::{
    Disk, GIB, MIB, Node, NodeState, Rule, RuleKind, RuleOrigin, Strength, Vm, VmState, Volume,
    VolumeKind,
};

use super::noise;
use super::scenario::{Scenario, preset};

/// Nodes that share one cluster-shared volume.
const NODES_PER_VOLUME: usize = 50;

pub fn generate(params: &str) -> Result<Scenario, String> {
    let (mut nodes, mut vms, mut seed, mut rules) = (None, None, 1u64, 0usize);
    for part in params.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not key=value; write gen:nodes=N,vms=M"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{key} must be a whole number, not {value:?}"))?;
        match key {
            "nodes" if (1..=100_000).contains(&n) => nodes = Some(n as usize),
            "vms" if n <= 1_000_000 => vms = Some(n as usize),
            "seed" => seed = n,
            "rules" if n <= 1_000_000 => rules = n as usize,
            "nodes" | "vms" | "rules" => {
                return Err(format!(
                    "{key}={n} is out of range (nodes 1–100000, vms 0–1000000, rules 0–1000000)"
                ));
            }
            _ => {
                return Err(format!(
                    "unknown generator key {key:?}; use nodes, vms, seed and rules"
                ));
            }
        }
    }
    let nodes_n = nodes.ok_or("the generator needs nodes=N, e.g. gen:nodes=500,vms=10000")?;
    let vms_n = vms.ok_or("the generator needs vms=M, e.g. gen:nodes=500,vms=10000")?;

    let kinds = [
        "idle", "web", "web", "database", "cache", "build", "idle", "web",
    ];
    let sizes_gib = [2u64, 4, 4, 8, 8, 16, 32];
    let per_node = vms_n.div_ceil(nodes_n).max(1) as u64;
    let node_mem = (per_node * 16 + 64).next_power_of_two() * GIB;

    let nodes: Vec<Node> = (0..nodes_n)
        .map(|i| Node {
            name: format!("node-{:04}", i + 1),
            state: NodeState::Up,
            cpus: 64,
            cpu_used_pct: 0.0,
            mem_total: node_mem,
            mem_used: 0,
            cpu_model: if i % 2 == 0 {
                "Cascadelake-Server"
            } else {
                "Icelake-Server"
            }
            .into(),
            nic_bps: 1100 * MIB,
            error: None,
            cordon: None,
            labels: Vec::new(),
        })
        .collect();
    let groups = nodes_n.div_ceil(NODES_PER_VOLUME);
    let mut volumes: Vec<Volume> = (0..groups)
        .map(|g| Volume {
            name: format!("csv-{:03}", g + 1),
            kind: VolumeKind::ClusterShared,
            owner: None,
            capacity: 1 << 50,
            used: 0,
            reachable_from: nodes[g * NODES_PER_VOLUME..((g + 1) * NODES_PER_VOLUME).min(nodes_n)]
                .iter()
                .map(|n| n.name.clone())
                .collect(),
        })
        .collect();
    let vms: Vec<Vm> = (0..vms_n)
        .map(|i| {
            let node = i % nodes_n;
            let r = noise::hash(seed, i as u64, 0);
            let kind = kinds[(r % kinds.len() as u64) as usize];
            let memory = sizes_gib[((r >> 8) % sizes_gib.len() as u64) as usize] * GIB;
            let pre = preset(kind).expect("generator uses known presets");
            let volume = &mut volumes[node / NODES_PER_VOLUME];
            volume.used += 40 * GIB;
            Vm {
                name: format!("vm-{:05}", i + 1),
                node: nodes[node].name.clone(),
                state: VmState::Running,
                vcpus: 2 + (r >> 16) as u32 % 7,
                memory,
                disks: vec![Disk {
                    volume: volume.name.clone(),
                    size: 40 * GIB,
                }],
                workload: super::simulated_workload(
                    kind,
                    (pre.dirty_mib_s * MIB as f64) as u64,
                    ((memory as f64 * pre.wws_share) as u64)
                        .min(pre.wws_cap_mib.saturating_mul(MIB)),
                    (memory as f64 * pre.touched_share) as u64,
                    pre.cpu_load,
                ),
                ha: true,
                cpu_model: String::new(),
                cpu_used_pct: 0.0,
                lost: None,
            }
        })
        .collect();
    Ok(Scenario {
        name: format!("generated {nodes_n} nodes / {vms_n} VMs"),
        seed,
        setup_s: 0.8,
        switchover_ms: 25.0,
        ha_restart_s: 20.0,
        nodes,
        volumes,
        rules: generated_rules(rules, vms_n, nodes_n),
        vms,
        events: Vec::new(),
    })
}

/// `count` rules that hold where the generator puts the VMs (VM i on node
/// i mod nodes): pairs of neighbours apart (every fourth a should rule),
/// every seventh a pair on one node together, every tenth a budget of one
/// over three VMs.
fn generated_rules(count: usize, vms_n: usize, nodes_n: usize) -> Vec<Rule> {
    if vms_n < 3 || nodes_n < 2 {
        return Vec::new();
    }
    let name = |i: usize| format!("vm-{:05}", i % vms_n + 1);
    (0..count)
        .map(|i| {
            let j = (i * 2) % vms_n;
            let (kind, vms) = if i % 10 == 9 {
                (
                    RuleKind::MaxUnavailable { max: 1 },
                    vec![name(j), name(j + 1), name(j + 2)],
                )
            } else if i % 7 == 6 && j + nodes_n < vms_n {
                (RuleKind::Together, vec![name(j), name(j + nodes_n)])
            } else {
                (
                    RuleKind::Apart { max_per_node: 1 },
                    vec![name(j), name(j + 1)],
                )
            };
            Rule {
                name: format!("gen-{:05}", i + 1),
                kind,
                vms,
                strength: if i % 4 == 3 {
                    Strength::Should
                } else {
                    Strength::Must
                },
                origin: RuleOrigin::Scenario,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::generate;

    #[test]
    fn generates_the_asked_size_deterministically() {
        let a = generate("nodes=120,vms=3000,seed=3").unwrap();
        assert_eq!(
            (a.nodes.len(), a.vms.len(), a.volumes.len()),
            (120, 3000, 3)
        );
        let b = generate("nodes=120,vms=3000,seed=3").unwrap();
        assert_eq!(a.vms, b.vms);
        for vm in &a.vms {
            let vol = a
                .volumes
                .iter()
                .find(|v| v.name == vm.disks[0].volume)
                .unwrap();
            assert!(
                vol.reachable_from(&vm.node),
                "{} placed where its disk is",
                vm.name
            );
        }
    }

    #[test]
    fn bad_parameters_say_what_to_write() {
        assert!(generate("nodes=10").unwrap_err().contains("vms=M"));
        assert!(
            generate("nodes=x,vms=1")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            generate("racks=2")
                .unwrap_err()
                .contains("unknown generator key")
        );
    }
}
