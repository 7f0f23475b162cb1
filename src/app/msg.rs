//! What flows into `update` (Msg) and what comes out of it (Cmd).

use crossterm::event::{KeyEvent, MouseEvent};

use crate::cluster::{
    ClusterSnapshot, Migration, MigrationId, MigrationRequest, StorageMove, StorageMoveId, VmAction,
};

/// vmshift's own resource use, for the about panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfUsage {
    pub cpu_pct: f32,
    pub rss_bytes: u64,
    pub threads: usize,
}

/// Ties a reply to the command it answers.
pub type RequestId = u64;

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
    /// Past migrations of this cluster, from the flight recorder (the
    /// latest record of each, oldest first).
    History(Vec<crate::record::Record>),
    /// Live state of running migrations.
    Progress(Vec<Migration>),
    /// Live state of running storage moves (and of those that just ended).
    StorageProgress(Vec<StorageMove>),
    /// The migration the app asked for with request `req` has started.
    Started {
        req: RequestId,
        vm: String,
        id: MigrationId,
    },
    /// Command `req` failed; one sentence.
    Failed {
        req: RequestId,
        error: String,
    },
    /// Command `req` succeeded; one sentence for the flash line.
    Done {
        req: RequestId,
        text: String,
    },
    /// One step of command `req` failed and the command goes on: what it
    /// tried (`restart db on hv-02`) and the backend's sentence.
    StepFailed {
        req: RequestId,
        what: String,
        error: String,
    },
    /// The console command for request `req` (`virsh -c URI console VM`):
    /// the view hands the terminal over to it.
    ConsoleReady {
        req: RequestId,
        vm: String,
        argv: Vec<String>,
    },
    /// The console of `vm` ended and the view is back; `Err` says why it
    /// could not run or how it failed.
    ConsoleEnded {
        vm: String,
        result: Result<(), String>,
    },
    /// The flight recorder could not write a record; one sentence. It
    /// answers no command.
    RecordFailed(String),
    SelfUsage(SelfUsage),
    /// A timer the app asked for (flash expiry, stale age, sampling).
    Tick,
    /// A signal that ends the interactive view (SIGTERM, SIGHUP, SIGINT,
    /// SIGQUIT): leave now; the process exits with 128 + its number.
    Signal(i32),
}

/// What `update` asks the outside world to do. Commands to the backend
/// carry a request id; their reply (`Started`, `Failed`, `Done`) carries it back.
// A start carries its model inputs; commands are few and short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Start(RequestId, MigrationRequest),
    Abort(RequestId, MigrationId),
    SetMaxDowntime(RequestId, MigrationId, u64),
    SetBandwidth(RequestId, MigrationId, Option<u64>),
    Postcopy(RequestId, MigrationId),
    /// Move the disk of running VM `.1` that is on volume `.2` to volume
    /// `.3` while it runs (block copy, then pivot).
    MoveDisk(RequestId, String, String, String),
    /// Stop a storage move before its pivot.
    AbortDiskMove(RequestId, StorageMoveId),
    /// Start, shut down, reboot or force off a VM.
    VmAction(RequestId, String, VmAction),
    /// Cordon (`true`) or uncordon a node.
    SetCordon(RequestId, String, bool),
    /// The cluster manager's (Pacemaker's) maintenance mode on or off.
    SetMaintenance(RequestId, bool),
    /// The operator typed the lost node's name: confirm it fenced, then
    /// restart each VM of the plan where it says (`Done` or `Failed` at the
    /// end, `StepFailed` for each restart that fails).
    Recover(RequestId, crate::plan::RecoverPlan),
    /// Find the console command of a VM (the backend answers `ConsoleReady`).
    Console(RequestId, String),
    /// Suspend the view, run `argv` on the terminal, restore the view.
    RunConsole {
        vm: String,
        argv: Vec<String>,
    },
    /// Clear the terminal and draw everything again (ctrl-l).
    Redraw,
    Refresh,
    SetMouse(bool),
    /// Put this text on the clipboard (OSC 52 through the terminal).
    Copy(String),
    SampleSelf,
    Quit,
}
