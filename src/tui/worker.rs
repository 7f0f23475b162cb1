//! The backend worker: owns the backend on its own thread (backend calls may
//! block), polls snapshots at the configured interval with back-off on
//! errors, follows running migrations a few times a second, and runs the
//! commands the app sends. Results go back to the event loop as `Msg`.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::app::{Cmd, Msg};
use crate::cluster::{Backend, MigrationId, units};
use crate::record::{Record, Recorder};

/// How often running migrations are read.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait between polls while the backend fails.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct Worker {
    pub tx: mpsc::Sender<Cmd>,
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
        let _ = self.tx.send(cmd);
    }

    /// Asks the worker to stop and waits for it (at most `timeout`; a
    /// backend stuck in a call is left behind).
    pub fn stop(mut self, timeout: Duration) {
        let _ = self.tx.send(Cmd::Quit);
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
    rx: mpsc::Receiver<Cmd>,
    out: UnboundedSender<Msg>,
    poll: Duration,
) {
    let mut next_poll = Instant::now();
    let mut backoff = poll;
    let mut next_progress = Instant::now();
    let mut active: Vec<MigrationId> = Vec::new();
    // Migrations this vmshift started: recorded when they finish.
    let mut ours: Vec<MigrationId> = Vec::new();
    let mut cluster = String::new();
    let recorder = Recorder::open_default();
    loop {
        let now = Instant::now();
        let mut next = next_poll;
        if !active.is_empty() {
            next = next.min(next_progress);
        }
        match rx.recv_timeout(next.saturating_duration_since(now)) {
            Ok(Cmd::Quit) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Cmd::Refresh) => next_poll = Instant::now(),
            Ok(cmd) => {
                if let Some(id) = execute(backend.as_mut(), cmd, &out) {
                    active.push(id);
                    ours.push(id);
                    next_progress = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if now >= next_poll {
            match backend.snapshot() {
                Ok(s) => {
                    cluster.clone_from(&s.cluster);
                    active = s
                        .migrations
                        .iter()
                        .filter(|m| !m.is_finished())
                        .map(|m| m.id)
                        .collect();
                    backoff = poll;
                    next_poll = now + poll;
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
        if !active.is_empty() && Instant::now() >= next_progress {
            let mut progress = Vec::new();
            let mut finished = false;
            active.retain(|id| match backend.migration(*id) {
                Ok(m) => {
                    let done = m.is_finished();
                    finished |= done;
                    if done {
                        tracing::info!(id = m.id, vm = %m.vm, outcome = ?m.outcome, rounds = m.rounds.len(), downtime_ms = ?m.actual_downtime_ms, "migration finished");
                    }
                    if done && ours.contains(&m.id) {
                        ours.retain(|x| *x != m.id);
                        let written = recorder.as_ref().map_err(Clone::clone).and_then(|r| {
                            r.append(&Record::new(backend.kind(), &cluster, m.clone()))
                        });
                        if let Err(e) = written {
                            let _ = out.send(Msg::CommandFailed(e));
                        }
                    }
                    progress.push(m);
                    !done
                }
                Err(_) => false,
            });
            if finished {
                // The VM is on its new node: show the cluster as it is now.
                next_poll = Instant::now();
            }
            if !progress.is_empty() && out.send(Msg::Progress(progress)).is_err() {
                return;
            }
            next_progress = Instant::now() + PROGRESS_INTERVAL;
        }
    }
}

/// Runs one command; returns the id of a migration it started.
fn execute(backend: &mut dyn Backend, cmd: Cmd, out: &UnboundedSender<Msg>) -> Option<MigrationId> {
    let (result, what) = match cmd {
        Cmd::Start(req) => {
            tracing::info!(vm = %req.vm, to = %req.to, options = ?req.options, "starting a migration");
            return match backend.start_migration(&req) {
                Ok(id) => {
                    let _ = out.send(Msg::Started { vm: req.vm, id });
                    if let Ok(m) = backend.migration(id) {
                        let _ = out.send(Msg::Progress(vec![m]));
                    }
                    Some(id)
                }
                Err(e) => {
                    let _ = out.send(Msg::CommandFailed(format!(
                        "cannot migrate {} to {}: {e}",
                        req.vm, req.to
                    )));
                    None
                }
            };
        }
        Cmd::Abort(id) => (backend.abort(id), "abort requested".to_string()),
        Cmd::SetMaxDowntime(id, ms) => (
            backend.set_max_downtime(id, ms),
            format!("max downtime set to {ms} ms"),
        ),
        Cmd::SetBandwidth(id, bps) => (
            backend.set_bandwidth(id, bps),
            format!(
                "bandwidth limit set to {}",
                bps.map_or("the link's speed".into(), units::rate)
            ),
        ),
        Cmd::Postcopy(id) => (
            backend.start_postcopy(id),
            "switched to post-copy".to_string(),
        ),
        Cmd::Refresh | Cmd::SetMouse(_) | Cmd::SampleSelf | Cmd::Quit => return None,
    };
    if let Err(e) = &result {
        tracing::warn!(error = %e, "command failed");
    }
    let _ = out.send(match result {
        Ok(()) => Msg::CommandDone(what),
        Err(e) => Msg::CommandFailed(e.to_string()),
    });
    None
}
