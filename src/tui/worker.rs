//! The backend worker: owns the backend on its own thread (backend calls may
//! block), polls snapshots at the configured interval with back-off on
//! errors, follows running migrations and storage moves a few times a
//! second, and runs the
//! commands the app sends. Results go back to the event loop as `Msg`,
//! each reply with the request id of its command. Recording finished
//! migrations is the backend's own business (see `record`).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::app::{Cmd, Msg};
use crate::backends::Backend;
use crate::cluster::{MigrationId, StorageMoveId, units};

/// How often running migrations and storage moves are read.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait between polls while the backend fails.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the event loop asks of the worker.
// A command carries a start's model inputs; jobs are few and short-lived.
#[allow(clippy::large_enum_variant)]
enum Job {
    Cmd(Cmd),
    /// vmshift stops (`why`): end or detach what runs, then return.
    Stop(String),
}

pub struct Worker {
    tx: mpsc::Sender<Job>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(backend: Box<dyn Backend>, out: UnboundedSender<Msg>, poll: Duration) -> Worker {
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("vmshift-backend".into())
            .spawn(move || run(backend, rx, out, poll))
            .expect("spawn the backend worker");
        Worker {
            tx,
            handle: Some(handle),
        }
    }

    pub fn send(&self, cmd: Cmd) {
        let _ = self.tx.send(Job::Cmd(cmd));
    }

    /// Asks the worker to stop — the backend ends what lives in this process
    /// and records what goes on as detached — and waits for it (at most
    /// `timeout`; a backend stuck in a call is left behind).
    pub fn stop(mut self, why: &str, timeout: Duration) {
        let _ = self.tx.send(Job::Stop(why.to_string()));
        let deadline = Instant::now() + timeout;
        if let Some(h) = self.handle.take() {
            while !h.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

fn run(
    mut backend: Box<dyn Backend>,
    rx: mpsc::Receiver<Job>,
    out: UnboundedSender<Msg>,
    poll: Duration,
) {
    let mut next_poll = Instant::now();
    let mut backoff = poll;
    let mut next_progress = Instant::now();
    let mut active: Vec<MigrationId> = Vec::new();
    // Storage moves running (whoever started them, as the snapshot shows).
    let mut moving: Vec<StorageMoveId> = Vec::new();
    // The cluster's past migrations go to the app once its name is known.
    let mut history_sent = false;
    loop {
        let now = Instant::now();
        let mut next = next_poll;
        if !active.is_empty() || !moving.is_empty() {
            next = next.min(next_progress);
        }
        match rx.recv_timeout(next.saturating_duration_since(now)) {
            Ok(Job::Stop(why)) => {
                backend.settle(Duration::from_secs(30));
                let going_on = backend.shutdown(&why);
                tracing::info!(%why, detached = going_on.len(), "backend worker stops");
                return;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Ok(Job::Cmd(Cmd::Refresh)) => next_poll = Instant::now(),
            Ok(Job::Cmd(cmd)) => {
                // What a VM action, a cordon or a disk move changed shows at once.
                if matches!(
                    cmd,
                    Cmd::VmAction(..)
                        | Cmd::SetCordon(..)
                        | Cmd::SetMaintenance(..)
                        | Cmd::MoveDisk(..)
                        | Cmd::AbortDiskMove(..)
                        | Cmd::Recover(..)
                ) {
                    next_poll = Instant::now();
                }
                match execute(backend.as_mut(), cmd, &out) {
                    Some(Started::Migration(id)) => active.push(id),
                    Some(Started::StorageMove(id)) => moving.push(id),
                    None => {}
                }
                next_progress = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if now >= next_poll {
            match backend.snapshot() {
                Ok(s) => {
                    active = s
                        .migrations
                        .iter()
                        .filter(|m| !m.is_finished())
                        .map(|m| m.id)
                        .collect();
                    moving = s
                        .storage_moves
                        .iter()
                        .filter(|m| !m.is_finished())
                        .map(|m| m.id)
                        .collect();
                    backoff = poll;
                    next_poll = now + poll;
                    if !history_sent {
                        history_sent = true;
                        let past = crate::record::past_records(&s.cluster);
                        if !past.is_empty() && out.send(Msg::History(past)).is_err() {
                            return;
                        }
                    }
                    if out.send(Msg::Snapshot(Box::new(s))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "poll failed");
                    backoff = (backoff * 2).min(MAX_BACKOFF).max(poll);
                    next_poll = now + backoff;
                    let _ = out.send(Msg::PollFailed(format!(
                        "{e}; retrying in {}",
                        units::millis(backoff.as_millis() as f64)
                    )));
                }
            }
        }
        if (!active.is_empty() || !moving.is_empty()) && Instant::now() >= next_progress {
            match read_progress(backend.as_mut(), &mut active, &mut moving, &out) {
                // Something ended: show the cluster as it is now.
                Ok(true) => next_poll = Instant::now(),
                Ok(false) => {}
                Err(()) => return,
            }
            next_progress = Instant::now() + PROGRESS_INTERVAL;
        }
    }
}

/// Reads the running migrations and storage moves and sends what they are
/// now; those that ended are dropped from the lists. `Ok(true)` when one
/// ended; `Err` when the app is gone.
fn read_progress(
    backend: &mut dyn Backend,
    active: &mut Vec<MigrationId>,
    moving: &mut Vec<StorageMoveId>,
    out: &UnboundedSender<Msg>,
) -> Result<bool, ()> {
    let mut ended = false;
    let mut progress = Vec::new();
    active.retain(|id| match backend.migration(*id) {
        Ok(m) => {
            let done = m.is_finished();
            ended |= done;
            if done {
                tracing::info!(id = m.id, vm = %m.vm, outcome = ?m.outcome, rounds = m.rounds.len(), downtime_ms = ?m.actual_downtime_ms, "migration finished");
            }
            progress.push(m);
            !done
        }
        Err(_) => false,
    });
    if !progress.is_empty() && out.send(Msg::Progress(progress)).is_err() {
        return Err(());
    }
    let mut moves = Vec::new();
    moving.retain(|id| match backend.storage_move(*id) {
        Ok(m) => {
            let done = m.is_finished();
            ended |= done;
            if done {
                tracing::info!(id = m.id, vm = %m.vm, outcome = ?m.outcome, "storage move finished");
            }
            moves.push(m);
            !done
        }
        Err(_) => false,
    });
    if !moves.is_empty() && out.send(Msg::StorageProgress(moves)).is_err() {
        return Err(());
    }
    Ok(ended)
}

/// What a command started, for the worker to follow.
enum Started {
    Migration(MigrationId),
    StorageMove(StorageMoveId),
}

/// Runs one command and replies with its request id; returns what it
/// started (a migration, a storage move).
fn execute(backend: &mut dyn Backend, cmd: Cmd, out: &UnboundedSender<Msg>) -> Option<Started> {
    let (req, result, what) = match cmd {
        Cmd::Start(req, m) => {
            tracing::info!(req, vm = %m.vm, to = %m.to, options = ?m.options, "starting a migration");
            return match backend.start_migration(&m) {
                Ok(id) => {
                    let _ = out.send(Msg::Started { req, vm: m.vm, id });
                    if let Ok(m) = backend.migration(id) {
                        let _ = out.send(Msg::Progress(vec![m]));
                    }
                    Some(Started::Migration(id))
                }
                Err(e) => {
                    let _ = out.send(Msg::Failed {
                        req,
                        error: e.to_string(),
                    });
                    None
                }
            };
        }
        Cmd::Abort(req, id) => (req, backend.abort(id), "abort requested".to_string()),
        Cmd::MoveDisk(req, vm, disk, to) => {
            tracing::info!(req, %vm, %disk, %to, "starting a storage move");
            return match backend.move_disk(&vm, &disk, &to) {
                Ok(id) => {
                    let _ = out.send(Msg::Done {
                        req,
                        text: format!("the disk move of {vm} started: {disk} → {to}"),
                    });
                    if let Ok(m) = backend.storage_move(id) {
                        let _ = out.send(Msg::StorageProgress(vec![m]));
                    }
                    Some(Started::StorageMove(id))
                }
                Err(e) => {
                    let _ = out.send(Msg::Failed {
                        req,
                        error: e.to_string(),
                    });
                    None
                }
            };
        }
        Cmd::AbortDiskMove(req, id) => (
            req,
            backend.abort_storage_move(id),
            "disk move abort requested".to_string(),
        ),
        Cmd::SetMaxDowntime(req, id, ms) => (
            req,
            backend.set_max_downtime(id, ms),
            format!("max downtime set to {ms} ms"),
        ),
        Cmd::SetBandwidth(req, id, bps) => (
            req,
            backend.set_bandwidth(id, bps),
            format!(
                "bandwidth limit set to {}",
                bps.map_or("the link's speed".into(), units::rate)
            ),
        ),
        Cmd::Postcopy(req, id) => (
            req,
            backend.start_postcopy(id),
            "switched to post-copy".to_string(),
        ),
        Cmd::VmAction(req, vm, action) => {
            tracing::info!(req, %vm, ?action, "VM action");
            let r = backend.vm_action(&vm, action);
            let text = r.as_ref().map_or_else(|_| String::new(), |t| t.clone());
            (req, r.map(|_| ()), text)
        }
        Cmd::SetMaintenance(req, on) => {
            tracing::info!(req, on, "cluster manager maintenance mode");
            (
                req,
                backend.set_manager_maintenance(on),
                format!(
                    "Pacemaker maintenance mode {}",
                    if on {
                        "on: it moves, restarts and monitors nothing until `:maintenance off`"
                    } else {
                        "off"
                    }
                ),
            )
        }
        Cmd::SetCordon(req, node, on) => {
            tracing::info!(req, %node, on, "cordon");
            let r = backend.set_cordon(&node, on);
            let text = r.as_ref().map_or_else(|_| String::new(), |t| t.clone());
            (req, r.map(|_| ()), text)
        }
        Cmd::Recover(req, plan) => {
            recover(backend, req, &plan, out);
            return None;
        }
        Cmd::Console(req, vm) => {
            let _ = out.send(match backend.console_command(&vm) {
                Ok(argv) => Msg::ConsoleReady { req, vm, argv },
                Err(e) => Msg::Failed {
                    req,
                    error: e.to_string(),
                },
            });
            return None;
        }
        Cmd::Refresh
        | Cmd::SetMouse(_)
        | Cmd::SampleSelf
        | Cmd::Quit
        | Cmd::RunConsole { .. }
        | Cmd::Copy(_)
        | Cmd::Redraw => return None,
    };
    if let Err(e) = &result {
        tracing::warn!(req, error = %e, "command failed");
    }
    let _ = out.send(match result {
        Ok(()) => Msg::Done { req, text: what },
        Err(e) => Msg::Failed {
            req,
            error: e.to_string(),
        },
    });
    None
}

/// `:recover`, after the operator typed the lost node's name: the fence
/// confirmed, then each VM of the plan restarted where it says. A restart
/// that fails is reported with the backend's sentence and the next goes;
/// the steps themselves reach the view through the snapshots' recoveries.
fn recover(
    backend: &mut dyn Backend,
    req: crate::app::RequestId,
    plan: &crate::plan::RecoverPlan,
    out: &UnboundedSender<Msg>,
) {
    tracing::info!(req, node = %plan.node, restarts = plan.restarts.len(), "recovering a lost node's VMs");
    if let Err(e) = backend.confirm_fenced(&plan.node) {
        tracing::warn!(req, error = %e, "fence confirmation refused");
        let _ = out.send(Msg::Failed {
            req,
            error: e.to_string(),
        });
        return;
    }
    let mut restarted = Vec::new();
    let mut failed = Vec::new();
    for r in &plan.restarts {
        match backend.restart_vm(&r.vm, &r.to) {
            Ok(_) => restarted.push(format!("{} on {}", r.vm, r.to)),
            Err(e) => {
                tracing::warn!(req, vm = %r.vm, to = %r.to, error = %e, "restart failed");
                let _ = out.send(Msg::StepFailed {
                    req,
                    what: format!("restart {} on {}", r.vm, r.to),
                    error: e.to_string(),
                });
                failed.push(r.vm.clone());
            }
        }
    }
    let _ = out.send(if failed.is_empty() {
        Msg::Done {
            req,
            text: format!(
                "the VMs of {} are restarted elsewhere ({}); each shows running once its node reports it",
                plan.node,
                restarted.join(", ")
            ),
        }
    } else {
        Msg::Failed {
            req,
            error: format!(
                "{} of {} did not restart ({}){}",
                failed.len(),
                plan.restarts.len(),
                failed.join(", "),
                if restarted.is_empty() {
                    String::new()
                } else {
                    format!("; restarted: {}", restarted.join(", "))
                }
            ),
        }
    });
}
