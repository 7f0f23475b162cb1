//! `vmshift status [--json]`

use std::process::ExitCode;

use super::{CliError, exit};
use crate::cluster::{Backend, ClusterSnapshot, units};

pub fn run(backend: &mut dyn Backend, json: bool) -> Result<ExitCode, CliError> {
    let snap = backend
        .snapshot()
        .map_err(|e| CliError::new(exit::BACKEND, e.to_string()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snap).expect("snapshot serializes")
        );
    } else {
        print!("{}", text(&snap));
    }
    Ok(ExitCode::SUCCESS)
}

/// The snapshot as plain tables.
pub fn text(snap: &ClusterSnapshot) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let running = snap.migrations.iter().filter(|m| !m.is_finished()).count();
    let _ = writeln!(
        o,
        "cluster {} ({}): {}/{} nodes up, {} VMs, {} migration{} running\n",
        snap.cluster,
        snap.backend,
        snap.nodes_up(),
        snap.nodes.len(),
        snap.vms.len(),
        running,
        if running == 1 { "" } else { "s" }
    );
    let _ = writeln!(o, "NODES");
    let _ = writeln!(
        o,
        "  {:<2} {:<12} {:<12} {:<20} {:>5} {:>5}  {:>21}  VMS",
        "", "NAME", "STATE", "CPU MODEL", "CPUS", "CPU%", "MEMORY USED/TOTAL"
    );
    for n in &snap.nodes {
        let vms: Vec<&str> = snap.vms_on(&n.name).map(|v| v.name.as_str()).collect();
        let _ = writeln!(
            o,
            "  {:<2} {:<12} {:<12} {:<20} {:>5} {:>4.0}%  {:>21}  {}",
            n.state.glyph(),
            n.name,
            n.state.label(),
            n.cpu_model,
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
            let _ = writeln!(o, "     {e}");
        }
    }
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
            v.name,
            v.kind.label(),
            v.owner.as_deref().unwrap_or("-"),
            format!("{} / {}", units::bytes(v.used), units::bytes(v.capacity)),
            v.reachable_from.join(" ")
        );
    }
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
            .map(|d| format!("{}:{}", d.volume, units::bytes(d.size)))
            .collect();
        let _ = writeln!(
            o,
            "  {:<14} {:<10} {:<11} {:>4} {:>9} {:<9} {:>9} {:<3} {}",
            v.name,
            v.node,
            v.state.label(),
            v.vcpus,
            units::bytes(v.memory),
            v.workload.kind,
            units::rate(v.workload.dirty_bps),
            if v.ha { "yes" } else { "no" },
            disks.join(" ")
        );
    }
    if running > 0 {
        let _ = writeln!(o, "\nMIGRATIONS");
        for m in snap.migrations.iter().filter(|m| !m.is_finished()) {
            let _ = writeln!(o, "  #{} {}", m.id, m.progress_line());
        }
    }
    o
}
