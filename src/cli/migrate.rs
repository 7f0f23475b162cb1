//! `vmshift migrate VM NODE [...]`: the plan and prediction, then one line
//! (or JSON object) per step and round, then the outcome.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::signals::{self, INTERRUPT, Signals};
use super::{CliError, MigrateArgs, MigrationFlags, exit};
use crate::backends::Backend;
use crate::backends::sim::clock::Speed;
use crate::cluster::{
    BackendError, ClusterSnapshot, MIB, Migration, MigrationId, MigrationOptions, MigrationRequest,
    Outcome, Step, units,
};
use crate::config::Config;
use crate::output as out;
use crate::plan::{self, Placement, Prediction};

/// How often progress is read while a migration runs.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

pub fn options(cfg: &Config, args: &MigrationFlags) -> MigrationOptions {
    let mut o = cfg.migration.clone();
    if let Some(ms) = args.max_downtime {
        o.max_downtime_ms = ms;
    }
    if let Some(mib) = args.bandwidth {
        o.bandwidth_bps = Some(mib * MIB);
    }
    o.auto_converge |= args.auto_converge;
    if let Some(p) = args.postcopy {
        o.postcopy = p;
    }
    if let Some(s) = args.on_stall {
        o.on_stall = s;
    }
    o.copy_storage |= args.copy_storage;
    if let Some(v) = args.via {
        o.via = v;
    }
    o.keep_placement |= args.keep_placement;
    if let Some(l) = &args.placement_lifetime {
        o.placement_lifetime = Some(l.clone());
    }
    o
}

/// Prints to stdout as text or JSON (quietly nothing once stdout is gone),
/// and the final error sentence to stderr.
pub(super) struct Out {
    pub json: bool,
}

impl Out {
    /// One line: `text` for people (escaped), or `value` as JSON.
    pub fn line(&self, text: String, value: serde_json::Value) {
        if self.json {
            out::print_json(&value);
        } else {
            out::println(&crate::cluster::text::escape(&text));
        }
    }

    /// One line for people only (nothing with --json).
    pub fn text(&self, text: String) {
        if !self.json {
            out::println(&crate::cluster::text::escape(&text));
        }
    }

    pub fn fail(&self, code: u8, kind: &str, message: String) -> CliError {
        if self.json {
            out::print_json(&json!({"event": "error", "kind": kind, "message": message}));
        }
        CliError::new(code, message)
    }
}

/// How a followed migration ended for this run of vmshift.
pub(super) enum Ended {
    /// It ended; `signal` if a signal made vmshift end it.
    Finished {
        m: Box<Migration>,
        signal: Option<i32>,
    },
    /// vmshift stops on `signal` and the migration goes on without it.
    Detached { m: Box<Migration>, signal: i32 },
}

/// What signals have asked of this run so far.
pub(super) struct Control {
    pub signals: Signals,
    /// In a drain, the first Ctrl-C stops it after the current move.
    pub in_drain: bool,
    /// No further migration may start.
    pub stop: bool,
}

impl Control {
    pub fn new(in_drain: bool) -> Control {
        Control {
            signals: Signals::watch(),
            in_drain,
            stop: false,
        }
    }

    /// A signal that came before anything started: stop at once.
    pub fn before_start(&mut self, out: &Out) -> Result<(), CliError> {
        match self.signals.take() {
            None => Ok(()),
            Some(sig) => Err(out.fail(
                exit::signal(sig),
                "signal",
                format!(
                    "stopped by {} before any migration started; nothing changed",
                    signals::name(sig)
                ),
            )),
        }
    }
}

pub(super) fn backend_error(out: &Out, e: BackendError) -> CliError {
    match e {
        BackendError::Refused(r) => out.fail(exit::REFUSED, "refused", r.to_string()),
        e @ (BackendError::UnknownVm { .. } | BackendError::UnknownNode { .. }) => {
            out.fail(exit::INPUT, "unknown_name", e.to_string())
        }
        e => out.fail(exit::BACKEND, "backend", e.to_string()),
    }
}

pub fn run(
    backend: &mut dyn Backend,
    cfg: &Config,
    args: &MigrateArgs,
) -> Result<ExitCode, CliError> {
    let out = Out { json: args.json };
    may_change(&out, cfg, args.dry_run, "migrate")?;
    let snap = backend.snapshot().map_err(|e| backend_error(&out, e))?;
    let overrides = super::rules::leave(&out, &snap, &args.flags)?;
    let opts = options(cfg, &args.flags);
    let (code, followers) = move_one(
        backend,
        &out,
        snap,
        &args.vm,
        &args.node,
        &opts,
        &overrides,
        args.dry_run,
    )?;
    // The VMs of a together rule follow it, one after the other.
    for f in followers {
        if args.dry_run {
            out.line(
                format!("follow   {f} → {} after it (together rule)", args.node),
                json!({"event": "follow", "vm": f, "to": args.node}),
            );
            continue;
        }
        out.line(
            format!("follow   {f} → {}, to keep its together rule", args.node),
            json!({"event": "follow", "vm": f, "to": args.node}),
        );
        let snap = backend.snapshot().map_err(|e| backend_error(&out, e))?;
        move_one(
            backend, &out, snap, &f, &args.node, &opts, &overrides, false,
        )?;
    }
    Ok(code)
}

/// Checks, predicts and (unless `dry_run`) runs one move to its end; the
/// VMs that must follow it to keep a together rule.
#[allow(clippy::too_many_arguments)]
fn move_one(
    backend: &mut dyn Backend,
    out: &Out,
    mut snap: ClusterSnapshot,
    vm_name: &str,
    node_name: &str,
    opts: &MigrationOptions,
    overrides: &crate::cluster::RuleOverrides,
    dry_run: bool,
) -> Result<(ExitCode, Vec<String>), CliError> {
    let mut opts = opts.clone();
    let vm = snap
        .require_vm(vm_name)
        .map_err(|e| backend_error(out, e))?;
    let node = snap
        .require_node(node_name)
        .map_err(|e| backend_error(out, e))?;
    plan::move_path(&snap, &vm.name, &vm.node, &node.name, opts.via)
        .map_err(|r| backend_error(out, BackendError::Refused(r)))?;
    let rules = plan::rules::VmRules::new(&snap, vm);
    let placement = plan::check_with(&snap, vm, node, opts.copy_storage, &rules, overrides)
        .map_err(|r| backend_error(out, BackendError::Refused(r)))?;
    let breaks: Vec<&crate::cluster::BrokenRule> = placement.breaks.iter().collect();
    super::rules::print_breaks(out, vm_name, node_name, &breaks);
    let unconfirmed = super::rules::unconfirmed(&breaks, overrides);
    if let (Some(why), false) = (&unconfirmed, dry_run) {
        return Err(out.fail(
            exit::REFUSED,
            "rule_broken",
            format!("moving {vm_name} to {node_name}: {why}"),
        ));
    }
    opts.broken_rules = placement.breaks.clone();
    let followers = placement.followers.clone();
    measure_workload(backend, out, &mut snap, vm_name, MEASURE_ONE);
    let (history, note) = crate::record::past_migrations_noted(&snap.cluster);
    if let Some(note) = note {
        crate::output::error(&note);
    }
    let (vm, node) = (
        snap.vm(vm_name).expect("checked"),
        snap.node(node_name).expect("checked"),
    );
    let inputs = plan::inputs_for(&snap, vm, node, &opts, placement.storage_bytes(), &history);
    let prediction = plan::predict(&inputs, &opts);
    let mut control = (!dry_run).then(|| Control::new(false));
    print_plan(
        out,
        &snap,
        vm_name,
        node_name,
        &opts,
        &placement,
        &prediction,
    );

    if dry_run {
        if let Some(why) = unconfirmed {
            out.text(format!("confirm  {why}"));
        }
        // A no-go only when no plausible input converges.
        if prediction.converges {
            return Ok((ExitCode::SUCCESS, followers));
        }
        return Err(out.fail(
            exit::NOT_COMPLETED,
            "will_not_converge",
            format!(
                "{vm_name} would not converge with these settings; {}",
                advice_text(&prediction)
            ),
        ));
    }

    let control = control.as_mut().expect("not a dry run");
    control.before_start(out)?;
    let id = backend
        .start_migration(&MigrationRequest {
            vm: vm_name.to_string(),
            to: node_name.to_string(),
            options: opts,
            forecast: Some(prediction.forecast()),
            inputs: Some(inputs),
        })
        .map_err(|e| backend_error(out, e))?;
    let ended = follow(backend, out, id, control)?;
    finish(out, &ended).map(|code| (code, followers))
}

/// Refuses a command that would change the cluster when vmshift runs
/// read-only, or when the simulated clock is frozen (nothing would finish).
pub(super) fn may_change(
    out: &Out,
    cfg: &Config,
    dry_run: bool,
    what: &str,
) -> Result<(), CliError> {
    if cfg.read_only && !dry_run {
        return Err(out.fail(
            exit::INPUT,
            "read_only",
            format!("vmshift runs read-only (--read-only or read_only in the config); drop it to {what}, or add --dry-run"),
        ));
    }
    if cfg.speed == Speed::Times(0.0) && !dry_run {
        return Err(out.fail(
            exit::INPUT,
            "frozen_clock",
            "the simulated clock is frozen (speed 0), so a migration would never finish; use --speed 1 or --speed max".into(),
        ));
    }
    Ok(())
}

/// A real guest's memory use must be measured before it can be predicted;
/// the measurement goes into `snap`. It takes a few seconds, so people are
/// told (on stderr, so that the output stays one line per event).
/// How long one VM's memory use may be measured before `migrate`, and
/// before each move of a `drain` (many VMs, so less).
const MEASURE_ONE: Duration = Duration::from_secs(12);
pub(super) const MEASURE_EACH: Duration = Duration::from_secs(6);

pub(super) fn measure_workload(
    backend: &mut dyn Backend,
    out: &Out,
    snap: &mut ClusterSnapshot,
    vm: &str,
    budget: Duration,
) {
    if snap.backend == "sim" {
        return;
    }
    if !out.json {
        out::eprintln(&crate::cluster::text::escape(&format!(
            "measuring how {vm} uses its memory (page sampling, up to {} s; it cannot harm the guest)…",
            budget.as_secs()
        )));
    }
    match backend.measure_workload(vm, budget) {
        Ok(Some(m)) => {
            if let Some(v) = snap.vms.iter_mut().find(|v| v.name == vm) {
                v.workload.dirty_bps = m.dirty_bps.value as u64;
                v.workload.wws_bytes = m.wws_bytes.value as u64;
                v.workload.touched_bytes = Some(m.touched_bytes.value as u64);
                v.workload.measured = Some(m);
            }
        }
        Ok(None) => {}
        Err(e) => {
            if !out.json {
                out::eprintln(&crate::cluster::text::escape(&format!(
                    "vmshift: {e}; predicting from what is known"
                )));
            }
        }
    }
}

/// Follows a started migration to its end (the backend records it),
/// printing each step and round, and acting on signals: SIGINT aborts it
/// while it can be aborted (the first one in a drain only stops the
/// drain); SIGTERM and SIGHUP end vmshift, which ends a simulated
/// migration and leaves a libvirt one running, recorded as detached.
pub(super) fn follow(
    backend: &mut dyn Backend,
    out: &Out,
    id: MigrationId,
    control: &mut Control,
) -> Result<Ended, CliError> {
    let mut shown = Shown::default();
    let mut ended_by = None;
    loop {
        backend.wait(PROGRESS_INTERVAL);
        let m = backend.migration(id).map_err(|e| backend_error(out, e))?;
        shown.print_new(out, &m);
        shown.progress(out, &m);
        if m.is_finished() {
            return Ok(Ended::Finished {
                m: Box::new(m),
                signal: ended_by,
            });
        }
        let Some(sig) = control.signals.take() else {
            continue;
        };
        let name = signals::name(sig);
        if sig == INTERRUPT {
            if control.in_drain && !control.stop {
                control.stop = true;
                out.line(
                    format!(
                        "interrupt the drain stops after this move of {}; Ctrl-C again aborts it",
                        m.vm
                    ),
                    json!({"event": "interrupt", "signal": name, "action": "drain_stops"}),
                );
                continue;
            }
            control.stop = true;
            match backend.abort(id) {
                Ok(()) => {
                    ended_by = Some(sig);
                    out.line(
                        format!(
                            "interrupt aborting the migration of {} (Ctrl-C); it keeps running on {}",
                            m.vm, m.from
                        ),
                        json!({"event": "interrupt", "signal": name, "action": "abort"}),
                    );
                }
                Err(e) => out.line(
                    format!(
                        "interrupt cannot abort the migration of {}: {e}; it goes on to its end",
                        m.vm
                    ),
                    json!({"event": "interrupt", "signal": name, "action": "none", "reason": e.to_string()}),
                ),
            }
            continue;
        }
        // SIGTERM or SIGHUP: vmshift stops now.
        control.stop = true;
        let going_on = backend.shutdown(name);
        if let Some(d) = going_on.into_iter().find(|d| d.id == id) {
            out.line(
                format!(
                    "detached vmshift stops ({name}); the migration of {} goes on on {}'s libvirtd and is recorded as detached; the next vmshift completes its record",
                    d.vm, d.from
                ),
                json!({"event": "detached", "signal": name, "vm": d.vm, "running_on": d.from}),
            );
            return Ok(Ended::Detached {
                m: Box::new(d),
                signal: sig,
            });
        }
        ended_by = Some(sig);
    }
}

fn advice_text(p: &Prediction) -> String {
    let a: Vec<String> = p.advice.iter().map(|a| a.to_string()).collect();
    format!("to make it converge: {}", a.join("; or "))
}

fn print_plan(
    out: &Out,
    snap: &crate::cluster::ClusterSnapshot,
    vm_name: &str,
    to: &str,
    o: &MigrationOptions,
    placement: &Placement,
    p: &Prediction,
) {
    let vm = snap.vm(vm_name).expect("checked");
    let node = snap.node(to).expect("checked");
    let link = snap.link_bps(&vm.node, &node.name);
    let bw = o.bandwidth_bps.map_or(link, |b| b.min(link));
    let resource = plan::move_path(snap, &vm.name, &vm.node, &node.name, o.via)
        .ok()
        .flatten();
    if out.json {
        out::print_json(&json!({
                "event": "plan",
                "vm": vm.name, "from": vm.node, "to": node.name,
                "via": if resource.is_some() { "pacemaker" } else { "libvirt" },
                "resource": resource,
                "memory": vm.memory, "dirty_bps": vm.workload.dirty_bps, "wws_bytes": vm.workload.wws_bytes,
                "bandwidth_bps": bw,
                "options": o,
                "lun_moves": placement.lun_moves,
                "storage_copies": placement.copies.iter().map(|(f, t, b)| json!({"from": f, "to": t, "bytes": b})).collect::<Vec<_>>(),
                "prediction": p,
        }));
        return;
    }
    out.text(format!(
        "plan     {}: {} → {}, {} memory, dirtying ~{} over a {} hot set",
        vm.name,
        vm.node,
        node.name,
        units::bytes(vm.memory),
        units::rate(vm.workload.dirty_bps),
        units::bytes(vm.workload.wws_bytes)
    ));
    let volumes: Vec<String> = vm
        .disks
        .iter()
        .filter_map(|d| snap.volume(&d.volume))
        .map(|v| format!("{} ({})", v.name, v.kind.label()))
        .collect();
    out.text(format!(
        "checks   {} is up; CPU {} ok; {} of {} free; disks on {}",
        node.name,
        node.cpu_model,
        units::bytes(vm.memory),
        units::bytes(node.mem_free()),
        volumes.join(", ")
    ));
    for lun in &placement.lun_moves {
        out.text(format!(
            "         LUN {lun} holds only {} and its ownership moves to {}",
            vm.name, node.name
        ));
    }
    for (from, to_vol, bytes) in &placement.copies {
        out.text(format!(
            "         copies {} of disk from {from} to {to_vol} (shared-nothing), ≈ {} more at {}",
            units::bytes(*bytes),
            units::millis(*bytes as f64 / bw.max(1) as f64 * 1000.0),
            units::rate(bw)
        ));
    }
    out.text(format!(
        "options  max downtime {} ms, bandwidth {}{}, auto-converge {}, post-copy {}, on stall {}",
        o.max_downtime_ms,
        units::rate(bw),
        if o.bandwidth_bps.is_some() {
            ""
        } else {
            " (link)"
        },
        if o.auto_converge { "on" } else { "off" },
        o.postcopy.label(),
        o.on_stall.label()
    ));
    if let Some(r) = &resource {
        for (i, line) in plan::manager_note(r, &node.name, &vm.name, o)
            .into_iter()
            .enumerate()
        {
            out.text(format!(
                "{}{line}",
                if i == 0 { "through  " } else { "         " }
            ));
        }
    }
    out.text(format!("predict  {}", p.summary(o.max_downtime_ms)));
    for basis in &p.basis {
        out.text(format!("based on {basis}"));
    }
    if !p.converges || !p.advice.is_empty() {
        out.text(format!("advice   {}", advice_text(p)));
    }
}

/// What has been printed so far of a running migration.
#[derive(Default)]
struct Shown {
    steps: [bool; 6],
    rounds: usize,
    postcopy: bool,
    stalled: bool,
    /// Elapsed time of the last progress object (JSON only).
    progress_at: Option<f64>,
    /// The disk copy's end was printed.
    disk_done: bool,
}

/// JSON progress objects come at most this often (migration time).
const PROGRESS_EVERY_MS: f64 = 200.0;

impl Shown {
    /// With --json: the live re-prediction a few times a second.
    fn progress(&mut self, out: &Out, m: &Migration) {
        if !out.json || m.is_finished() {
            return;
        }
        if self
            .progress_at
            .is_some_and(|t| m.elapsed_ms - t < PROGRESS_EVERY_MS)
        {
            return;
        }
        self.progress_at = Some(m.elapsed_ms);
        out.line(
            String::new(),
            json!({
                "event": "progress", "elapsed_ms": m.elapsed_ms, "step": m.step,
                "rounds": m.rounds.len(), "transferred_bytes": m.transferred_bytes,
                "remaining_bytes": m.remaining_bytes, "scanned_bytes": m.scanned_bytes,
                "data_bytes": m.data_bytes, "dirty_bps": m.dirty_bps, "bandwidth_bps": m.bandwidth_bps,
                "live": m.live, "disk_copy": m.disk_copy,
            }),
        );
    }

    fn step(&mut self, out: &Out, m: &Migration, s: Step) {
        if let (false, Some(at)) = (self.steps[s.index()], m.step_started_ms[s.index()]) {
            self.steps[s.index()] = true;
            out.line(
                format!("step     {:<17} +{}", s.label(), units::millis(at)),
                json!({"event": "step", "step": s, "at_ms": at}),
            );
        }
    }

    fn print_new(&mut self, out: &Out, m: &Migration) {
        // Steps before pre-copy, then the rounds, then the rest: the order they happened.
        self.step(out, m, Step::PrepareTarget);
        // A shared-nothing migration copies the disks before the memory.
        if let Some(d) = m.disk_copy.as_ref().filter(|d| d.done_ms.is_some())
            && !self.disk_done
        {
            self.disk_done = true;
            out.line(
                format!("disk     {}", d.line().replacen("disk copy ", "copied ", 1)),
                json!({"event": "disk_copy", "disk_copy": d}),
            );
        }
        self.step(out, m, Step::PreCopy);
        for r in &m.rounds[self.rounds..] {
            out.line(
                format!(
                    "round {:<2} sent {:>9} in {:>7}, still dirty {:>9}, dirty rate {:>11}, bandwidth {:>11}{}",
                    r.index,
                    units::bytes(r.bytes_sent),
                    units::millis(r.duration_ms),
                    units::bytes(r.bytes_dirty),
                    units::rate(r.dirty_bps),
                    units::rate(r.bandwidth_bps),
                    if r.throttle_pct > 0 { format!(", throttle {} %", r.throttle_pct) } else { String::new() }
                ),
                json!({"event": "round", "round": r}),
            );
        }
        self.rounds = m.rounds.len();
        if m.stalled && !self.stalled {
            self.stalled = true;
            out.line(
                format!(
                    "stalled  rounds stopped shrinking after {} rounds",
                    m.rounds.len()
                ),
                json!({"event": "stalled", "rounds": m.rounds.len()}),
            );
        }
        if m.postcopy_active && !self.postcopy {
            self.postcopy = true;
            out.line(
                "postcopy switched to post-copy: the VM runs on the target and pulls its remaining memory".into(),
                json!({"event": "postcopy"}),
            );
        }
        for s in &Step::ALL[2..] {
            self.step(out, m, *s);
        }
    }
}

/// The last line, and the exit code: 0 done, 4 not completed, 128+N when
/// signal N ended it, [`exit::DETACHED`] when it goes on without vmshift.
pub(super) fn finish(out: &Out, ended: &Ended) -> Result<ExitCode, CliError> {
    let (m, signal) = match ended {
        Ended::Detached { m, signal } => {
            return Err(CliError::new(
                exit::DETACHED,
                format!(
                    "vmshift stopped on {}; the migration of {} to {} goes on on {}'s libvirtd (peer-to-peer) and is recorded as detached",
                    signals::name(*signal),
                    m.vm,
                    m.to,
                    m.from
                ),
            ));
        }
        Ended::Finished { m, signal } => (m, *signal),
    };
    let downtime = m.actual_downtime_ms.unwrap_or(0.0);
    let Some(outcome) = m.outcome.as_ref() else {
        return Err(CliError::new(
            exit::BACKEND,
            format!("the migration of {} ended without an outcome", m.vm),
        ));
    };
    match outcome {
        Outcome::Completed => {
            out.line(
                format!(
                    "done     {} now runs on {}: {} rounds, {}, {} sent, actual downtime {} (limit {} ms){}",
                    m.vm,
                    m.to,
                    m.rounds.len(),
                    units::millis(m.elapsed_ms),
                    units::bytes(m.transferred_bytes),
                    units::millis(downtime),
                    m.options.max_downtime_ms,
                    if m.postcopy_active { ", via post-copy" } else { "" }
                ),
                json!({
                    "event": "done", "outcome": m.outcome, "vm": m.vm, "node": m.to,
                    "rounds": m.rounds.len(), "elapsed_ms": m.elapsed_ms, "bytes_sent": m.transferred_bytes,
                    "actual_downtime_ms": downtime, "max_downtime_ms": m.options.max_downtime_ms,
                    "postcopy": m.postcopy_active,
                }),
            );
            Ok(ExitCode::SUCCESS)
        }
        o => {
            let word = if matches!(o, Outcome::Aborted { .. }) {
                "aborted"
            } else {
                "failed"
            };
            out.line(
                format!("{word:<8} {}: {}", m.vm, o.reason().unwrap_or("")),
                json!({"event": "done", "outcome": o, "vm": m.vm, "rounds": m.rounds.len(), "elapsed_ms": m.elapsed_ms}),
            );
            let by = signal.map_or(String::new(), |s| {
                format!(" (vmshift was stopped by {})", signals::name(s))
            });
            Err(CliError::new(
                signal.map_or(exit::NOT_COMPLETED, exit::signal),
                format!(
                    "migration of {} to {} {word}: {}{by}",
                    m.vm,
                    m.to,
                    o.reason().unwrap_or("")
                ),
            ))
        }
    }
}
