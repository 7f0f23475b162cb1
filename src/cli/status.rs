//! `vmshift status [--json]`

use std::collections::HashMap;
use std::process::ExitCode;

use super::{CliError, exit};
use crate::app::log::Clock;
use crate::backends::Backend;
use crate::cluster::text::escape as c;
use crate::cluster::{ClusterSnapshot, units};
use crate::output as out;

pub fn run(backend: &mut dyn Backend, json: bool) -> Result<ExitCode, CliError> {
    let snap = backend
        .snapshot()
        .map_err(|e| CliError::new(exit::BACKEND, e.to_string()))?;
    if json {
        let mut value = serde_json::to_value(&snap).map_err(|e| {
            CliError::new(
                exit::BACKEND,
                format!("cannot write the snapshot as JSON: {e}"),
            )
        })?;
        out::tidy_floats(&mut value);
        // The rules broken now, with the move that repairs each.
        value["broken_rules"] =
            serde_json::to_value(crate::plan::rules::broken_now(&snap)).unwrap_or_default();
        let text = serde_json::to_string_pretty(&value).map_err(|e| {
            CliError::new(
                exit::BACKEND,
                format!("cannot write the snapshot as JSON: {e}"),
            )
        })?;
        out::println(&out::json_safe(&text));
    } else {
        out::print_text(&text(&snap));
    }
    Ok(ExitCode::SUCCESS)
}

/// The snapshot as plain tables; every name from the cluster is escaped.
pub fn text(snap: &ClusterSnapshot) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    // VMs per node in one pass: the node table must not search all VMs per node.
    let mut by_node: HashMap<&str, Vec<&str>> = HashMap::with_capacity(snap.nodes.len());
    for v in &snap.vms {
        by_node
            .entry(v.node.as_str())
            .or_default()
            .push(v.name.as_str());
    }
    let running = snap.migrations.iter().filter(|m| !m.is_finished()).count();
    let _ = writeln!(
        o,
        "cluster {} ({}): {}/{} nodes up, {} VMs, {} migration{} running\n",
        c(&snap.cluster),
        c(&snap.backend),
        snap.nodes_up(),
        snap.nodes.len(),
        snap.vms.len(),
        running,
        if running == 1 { "" } else { "s" }
    );
    for a in &snap.alarms {
        let _ = writeln!(o, "!!! {}\n", c(a));
    }
    nodes_table(&mut o, snap, &by_node);
    volumes_table(&mut o, snap);
    vms_table(&mut o, snap);
    stale_copies(&mut o, snap);
    rules(&mut o, snap);
    lost_and_recovered(&mut o, snap);
    if let Some(m) = &snap.manager {
        manager(&mut o, m);
    }
    if running > 0 {
        let _ = writeln!(o, "\nMIGRATIONS");
        for m in snap.migrations.iter().filter(|m| !m.is_finished()) {
            let _ = writeln!(o, "  #{} {}", m.id, c(&m.progress_line()));
        }
    }
    o
}

/// The placement rules: how many, and each one broken now with the move
/// that repairs it.
fn rules(o: &mut String, snap: &ClusterSnapshot) {
    use std::fmt::Write;
    if snap.rules.is_empty() {
        return;
    }
    let broken = crate::plan::rules::broken_now(snap);
    let _ = writeln!(
        o,
        "\nRULES {} placement rule{}, {} broken now (`vmshift rules` lists them)",
        snap.rules.len(),
        if snap.rules.len() == 1 { "" } else { "s" },
        broken.len()
    );
    for b in &broken {
        let _ = writeln!(
            o,
            "  BROKEN {}{}",
            c(&b.sentence),
            b.repair
                .as_deref()
                .map(|m| format!("; repair: {}", c(m)))
                .unwrap_or_default()
        );
    }
}

/// One row per node, with its VMs, its error and its cordon.
fn nodes_table(o: &mut String, snap: &ClusterSnapshot, by_node: &HashMap<&str, Vec<&str>>) {
    use std::fmt::Write;
    let _ = writeln!(o, "NODES");
    let _ = writeln!(
        o,
        "  {:<2} {:<12} {:<12} {:<20} {:>5} {:>5}  {:>21}  VMS",
        "", "NAME", "STATE", "CPU MODEL", "CPUS", "CPU%", "MEMORY USED/TOTAL"
    );
    for n in &snap.nodes {
        let vms = by_node.get(n.name.as_str()).map_or(&[][..], Vec::as_slice);
        let vms: Vec<String> = vms.iter().map(|v| c(v).into_owned()).collect();
        let _ = writeln!(
            o,
            "  {:<2} {:<12} {:<12} {:<20} {:>5} {:>4.0}%  {:>21}  {}",
            n.state.glyph(),
            c(&n.name),
            n.state.label(),
            c(&n.cpu_model),
            n.cpus,
            n.cpu_used_pct,
            format!(
                "{} / {}",
                units::bytes(n.mem_used),
                units::bytes(n.mem_total)
            ),
            vms.join(" ")
        );
        if let Some(e) = &n.error {
            let _ = writeln!(o, "     {}", c(e));
        }
        if let Some(cd) = &n.cordon {
            let _ = writeln!(o, "     ⊘ {}", c(&cd.describe()));
        }
    }
}

fn volumes_table(o: &mut String, snap: &ClusterSnapshot) {
    use std::fmt::Write;
    let _ = writeln!(o, "\nVOLUMES");
    let _ = writeln!(
        o,
        "  {:<14} {:<15} {:<8} {:>21}  REACHABLE FROM",
        "NAME", "KIND", "OWNER", "USED/CAPACITY"
    );
    for v in &snap.volumes {
        let _ = writeln!(
            o,
            "  {:<14} {:<15} {:<8} {:>21}  {}",
            c(&v.name),
            v.kind.label(),
            c(v.owner.as_deref().unwrap_or("-")),
            format!("{} / {}", units::bytes(v.used), units::bytes(v.capacity)),
            c(&v.reachable_from.join(" "))
        );
    }
}

fn vms_table(o: &mut String, snap: &ClusterSnapshot) {
    use std::fmt::Write;
    let _ = writeln!(o, "\nVMS");
    let _ = writeln!(
        o,
        "  {:<14} {:<10} {:<11} {:>4} {:>9} {:<9} {:>9} {:<3} DISKS",
        "NAME", "NODE", "STATE", "VCPU", "MEMORY", "WORKLOAD", "DIRTY", "HA"
    );
    for v in &snap.vms {
        let disks: Vec<String> = v
            .disks
            .iter()
            .map(|d| format!("{}:{}", c(&d.volume), units::bytes(d.size)))
            .collect();
        let _ = writeln!(
            o,
            "  {:<14} {:<10} {:<11} {:>4} {:>9} {:<9} {:>9} {:<3} {}",
            c(&v.name),
            c(&v.node),
            v.state.label(),
            v.vcpus,
            units::bytes(v.memory),
            c(&v.workload.kind),
            units::rate(v.workload.dirty_bps),
            if v.ha { "yes" } else { "no" },
            disks.join(" ")
        );
    }
}

/// Shut-off definitions of VMs that run elsewhere.
fn stale_copies(o: &mut String, snap: &ClusterSnapshot) {
    use std::fmt::Write;
    if !snap.stale_copies.is_empty() {
        let _ = writeln!(
            o,
            "\nSTALE COPIES (shut off; starting one runs its VM twice)"
        );
        for sc in &snap.stale_copies {
            let _ = writeln!(
                o,
                "  {:<14} on {:<10} runs on {}{}; remove: {}",
                c(&sc.vm),
                c(&sc.node),
                c(&sc.runs_on),
                if sc.autostart { ", AUTOSTART" } else { "" },
                c(&sc.remove)
            );
        }
    }
}

/// VMs lost with their node, and those restarted elsewhere.
fn lost_and_recovered(o: &mut String, snap: &ClusterSnapshot) {
    use std::fmt::Write;
    let clock = Clock::of(snap);
    let lost: Vec<_> = snap.vms.iter().filter(|v| v.lost.is_some()).collect();
    if !lost.is_empty() {
        let _ = writeln!(o, "\nLOST");
        for v in lost {
            let l = v.lost.as_ref().expect("filtered");
            let _ = writeln!(
                o,
                "  {:<14} lost with {}, last seen {} ({})",
                c(&v.name),
                c(&l.node),
                clock.text(l.since_ms),
                v.state.label()
            );
        }
    }
    if !snap.recoveries.is_empty() {
        let _ = writeln!(o, "\nRECOVERIES");
        for r in &snap.recoveries {
            let _ = writeln!(
                o,
                "  {:<14} {} → {} by {}: {}",
                c(&r.vm),
                c(&r.from),
                if r.to.is_empty() {
                    "?".into()
                } else {
                    c(&r.to)
                },
                c(&r.by),
                c(&r.timeline(|ms| clock.text(ms)))
            );
        }
    }
}

/// The cluster manager's view: whether it answers, its nodes and resources.
fn manager(o: &mut String, m: &crate::cluster::ManagerView) {
    use std::fmt::Write;
    let _ = writeln!(o, "\n{}", m.title().to_uppercase());
    if let Some(e) = &m.error {
        let _ = writeln!(
            o,
            "  NOT ANSWERING{}: {}{}",
            m.error_since_ms.map_or(String::new(), |ms| format!(
                " since {}",
                units::utc_minute(ms)
            )),
            c(e),
            if m.known {
                "; vmshift moves, starts and recovers none of its resources until it answers (below: its last answer)"
            } else {
                "; it has never answered, so vmshift cannot tell which VMs it owns and moves, starts and recovers none"
            }
        );
    }
    if m.known {
        let _ = writeln!(
            o,
            "  DC {}, {}{}{}",
            c(m.dc.as_deref().unwrap_or("none")),
            if m.quorate { "quorate" } else { "NO QUORUM" },
            if m.maintenance {
                ", MAINTENANCE MODE"
            } else {
                ""
            },
            if m.fencing {
                ", fencing on"
            } else {
                ", fencing off"
            }
        );
        for n in &m.nodes {
            let _ = writeln!(
                o,
                "  node {:<14} {}",
                c(&n.name),
                n.out_of_service().unwrap_or("online")
            );
        }
        for r in &m.vms {
            let pinned: Vec<String> = r
                .constraints
                .iter()
                .map(|k| format!("{} {} ({})", k.kind, c(&k.node), c(&k.id)))
                .collect();
            let _ = writeln!(
                o,
                "  resource {:<12} VM {:<12} {:<10} on {}{}{}{}",
                c(&r.resource),
                c(&r.domain),
                c(&r.role),
                c(&r.running_on.join(" ")),
                if r.allow_migrate {
                    ""
                } else {
                    ", allow-migrate off"
                },
                if r.managed { "" } else { ", unmanaged" },
                if pinned.is_empty() {
                    String::new()
                } else {
                    format!(", {}", pinned.join(", "))
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::{SimCluster, clock::Speed};

    /// Names come from the hypervisor: none of their control characters
    /// reaches the terminal.
    #[test]
    fn names_with_control_characters_are_escaped() {
        let mut snap = SimCluster::from_spec("small", Speed::Max)
            .unwrap()
            .snapshot()
            .unwrap();
        let evil = "x\u{1b}]0;owned\u{7}\u{1b}[2J\r\t\u{7f}\u{9b}";
        snap.cluster = evil.into();
        snap.nodes[0].name = format!("n{evil}");
        snap.nodes[0].cpu_model = evil.into();
        snap.nodes[0].error = Some(evil.into());
        snap.volumes[0].name = format!("v{evil}");
        snap.vms[0].name = format!("vm{evil}\nfake line");
        snap.vms[0].node = snap.nodes[0].name.clone();
        snap.vms[0].workload.kind = evil.into();
        let t = text(&snap);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("vmx\\x1b]0;owned\\x07"), "{t}");
        assert!(!t.contains("\nfake line"), "a name cannot start a line");
    }
}
