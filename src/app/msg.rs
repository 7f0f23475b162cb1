//! What flows into `update` (Msg) and what comes out of it (Cmd).

use crossterm::event::{KeyEvent, MouseEvent};

use crate::cluster::{ClusterSnapshot, Migration, MigrationId, MigrationRequest};

/// vmshift's own resource use, for the about panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfUsage {
    pub cpu_pct: f32,
    pub rss_bytes: u64,
    pub threads: usize,
}

/// Everything that can happen: input, backend news, timers, signals.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    /// A fresh snapshot from the poller.
    Snapshot(Box<ClusterSnapshot>),
    /// The poller could not reach the backend.
    PollFailed(String),
    /// Past migrations of this cluster, from the flight recorder.
    History(Vec<Migration>),
    /// Live state of running migrations.
    Progress(Vec<Migration>),
    /// A migration the app asked for has started.
    Started {
        vm: String,
        id: MigrationId,
    },
    /// A command the app sent failed; one sentence.
    CommandFailed(String),
    /// A command succeeded; one sentence for the flash line.
    CommandDone(String),
    SelfUsage(SelfUsage),
    /// A timer the app asked for (flash expiry, stale age, sampling).
    Tick,
    /// SIGTERM / SIGHUP: leave now.
    Quit(&'static str),
}

/// What `update` asks the outside world to do.
// A start carries its model inputs; commands are few and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Start(MigrationRequest),
    Abort(MigrationId),
    SetMaxDowntime(MigrationId, u64),
    SetBandwidth(MigrationId, Option<u64>),
    Postcopy(MigrationId),
    Refresh,
    SetMouse(bool),
    SampleSelf,
    Quit,
}
