//! App state and the one `update` function: `Msg` in, state changed,
//! `Cmd`s out. Nothing here does I/O; the event loop (`tui`) runs the
//! commands and feeds their results back as messages.

pub mod actions;
pub mod command;
pub mod detail;
pub mod drag;
pub mod history;
pub mod hitmap;
mod input;
pub mod keymap;
pub mod log;
mod mouse;
mod moving;
pub mod msg;
mod navigation;
pub mod nodes;
pub mod recover;
mod rules;
mod runs;
pub mod storage;

use std::collections::HashMap;

use crossterm::event::KeyEventKind;

use crate::cluster::{ClusterSnapshot, Migration, MigrationId, MigrationOptions, MigrationRequest};
use crate::plan::DrainPlan;
pub use actions::VmConfirm;
pub use command::{CommandLine, LineEdit};
pub use detail::Detail;
pub use drag::{Confirm, Drag, Press};
pub use history::Past;
pub use hitmap::{HitMap, Target};
pub use keymap::{Action, KeyMap};
use log::migration_news;
pub use log::{Clock, LogEntry};
pub use msg::{Cmd, Msg, RequestId, SelfUsage};
pub use nodes::{NodeCol, NodeSort, Thresholds};
pub use recover::RecoverConfirm;
pub use runs::{DrainRun, DrainStep};
pub use storage::{AbortDiskMove, DiskMovePlan, DiskPick};

/// How long a flash message stays.
pub const FLASH_MS: u64 = 6000;
/// How often the about panel samples vmshift's own use.
pub const SAMPLE_MS: u64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Cluster,
    Vms,
    Nodes,
    Volumes,
    Migrations,
    Events,
    History,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Cluster,
        View::Vms,
        View::Nodes,
        View::Volumes,
        View::Migrations,
        View::Events,
        View::History,
    ];
    pub fn title(self) -> &'static str {
        match self {
            View::Cluster => "Cluster",
            View::Vms => "VMs",
            View::Nodes => "Nodes",
            View::Volumes => "Volumes",
            View::Migrations => "Migrations",
            View::Events => "Events",
            View::History => "History",
        }
    }
    /// The title on narrow screens (the tab row keeps room for the filter marks).
    pub fn short_title(self) -> &'static str {
        match self {
            View::Volumes => "Vols",
            View::Migrations => "Migr",
            View::History => "Hist",
            v => v.title(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a VM filter.
    Filter(LineEdit),
    /// Typing a `:` command.
    Command(CommandLine),
    /// Moving a VM: choosing its node.
    Drag(Drag),
    Confirm(Box<Confirm>),
    ConfirmAbort(MigrationId),
    ConfirmPostcopy(MigrationId),
    /// Empty a node: the plan, waiting for y.
    ConfirmDrain(Box<DrainPlan>),
    ConfirmQuit,
    /// Shut down, reboot or force off a VM: waiting for y (force off: for
    /// its name, typed).
    ConfirmVm(Box<VmConfirm>),
    /// Restart a lost node's VMs elsewhere: the plan, waiting for the
    /// node's name, typed.
    ConfirmRecover(Box<RecoverConfirm>),
    Help(u16),
    About,
    /// An event, a VM or a migration in full, wrapped; can be copied.
    Detail(Box<Detail>),
    /// Moving a VM's disk: choosing the disk, then the volume.
    PickDisk(Box<DiskPick>),
    /// A disk move: the plan, waiting for y.
    ConfirmDiskMove(Box<DiskMovePlan>),
    /// Abort a disk move before its pivot: waiting for y.
    ConfirmAbortDiskMove(Box<AbortDiskMove>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub until_ms: u64,
    /// A read-only refusal: it goes with the next command or key.
    pub refusal: bool,
}

/// Settings the app starts with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub read_only: bool,
    pub mouse: bool,
    pub defaults: MigrationOptions,
    pub keys: KeyMap,
    pub poll_interval_ms: u64,
    pub thresholds: Thresholds,
    /// Who runs this vmshift (for this session's lines in the history).
    pub operator: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            read_only: false,
            mouse: true,
            defaults: MigrationOptions::default(),
            keys: KeyMap::default(),
            poll_interval_ms: 2000,
            thresholds: Thresholds::default(),
            operator: String::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub snap: Option<ClusterSnapshot>,
    /// VM indices per node, rebuilt with each snapshot.
    pub vms_by_node: HashMap<String, Vec<usize>>,
    /// Wall clock (ms since start) of the last good poll.
    pub last_poll_ms: Option<u64>,
    /// Set while polls fail: since when, and why.
    pub stale: Option<(u64, String)>,
    pub now_ms: u64,
    pub view: View,
    pub mode: Mode,
    pub sel_node: usize,
    pub sel_vm: Option<String>,
    pub sel_migration: Option<MigrationId>,
    pub filter: String,
    /// Show only problems (`!`), in every view.
    pub problems: bool,
    /// The operator's typed leave to break one must rule with the next
    /// move they confirm (`:override RULE REASON`).
    pub rule_leave: crate::cluster::RuleOverrides,
    /// VMs following one the operator moved (a together rule).
    pub follow: Option<rules::Follow>,
    /// The nodes view's order.
    pub node_sort: NodeSort,
    /// Node rows, problems and levels, recomputed by `update` whenever the
    /// snapshot, the sort or the problems filter changes.
    pub derived: nodes::Derived,
    /// `:` lines run, oldest first.
    pub command_history: Vec<String>,
    /// The event log, oldest first: the backend's events and the app's
    /// own (refusals, failures, stalls, drain summaries).
    pub log: Vec<LogEntry>,
    /// The last backend event taken into the log.
    last_backend_event: Option<crate::cluster::ClusterEvent>,
    /// Selected row of the events view (newest first).
    pub sel_event: usize,
    /// Past migrations (flight recorder, then this session's), for the
    /// history tab.
    pub past: Vec<Past>,
    /// Selected row of the history tab (newest first).
    pub sel_past: usize,
    /// The history tab shows the selected migration as it ran.
    pub past_open: bool,
    pub scroll_volumes: usize,
    /// The first node column of the volume matrix (←→ scroll it).
    pub volume_col: usize,
    pub flash: Option<Flash>,
    pub press: Option<Press>,
    pub settings: Settings,
    pub self_usage: Option<SelfUsage>,
    pub last_sample_ms: u64,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// Wall clock (Unix ms) when the app started, to show poll times.
    pub started_unix_ms: u64,
    /// A drain in progress: its moves run one after the other.
    pub drain: Option<DrainRun>,
    /// Past migrations of this cluster (flight recorder, then this
    /// session's), which the predictions learn from.
    pub history: Vec<Migration>,
    /// Commands sent to the backend and not answered yet, by request id.
    pub pending: HashMap<RequestId, Pending>,
    next_request: RequestId,
    pub quit: bool,
    /// The signal that ended the view, if one did.
    pub signal: Option<i32>,
}

/// What a command awaiting its reply was about, to word the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Start {
        vm: String,
        to: String,
    },
    /// Abort, post-copy or a limit change of the migration of `vm`.
    Change {
        what: &'static str,
        vm: String,
    },
    /// Start, shutdown, reboot or force off of `vm`.
    VmAction {
        vm: String,
        action: crate::cluster::VmAction,
    },
    /// Cordon (`on`) or uncordon of `node`.
    Cordon {
        node: String,
        on: bool,
    },
    /// The console of `vm`.
    Console {
        vm: String,
    },
    /// The cluster manager's maintenance mode.
    Maintenance {
        on: bool,
    },
    /// A disk move of `vm`: `disk` → `to`.
    MoveDisk {
        vm: String,
        disk: String,
        to: String,
    },
    /// The abort of `vm`'s disk move.
    AbortDiskMove {
        vm: String,
    },
    /// Restarting the VMs of lost node `node` elsewhere.
    Recover {
        node: String,
    },
}

/// Narrowest node card.
pub const CARD_MIN_WIDTH: u16 = 34;

/// Node cards per row for a terminal `width` columns wide (shared by the
/// renderer and keyboard navigation).
pub fn cards_per_row(width: u16) -> usize {
    let cards_area = if is_wide(width) {
        width * 62 / 100
    } else {
        width
    };
    (cards_area / CARD_MIN_WIDTH).max(1) as usize
}

/// Whether a terminal `width` × `height` is too small to show anything
/// but "window too small" (no key acts then: nothing starts blind).
pub fn too_small(width: u16, height: u16) -> bool {
    width < 20 || height < 6
}

/// Whether the cluster view shows side panels (VM table, volumes).
pub fn is_wide(width: u16) -> bool {
    width >= 120
}

/// What an update produced.
#[derive(Debug, Default, PartialEq)]
pub struct Update {
    pub cmds: Vec<Cmd>,
    /// Something visible changed: redraw.
    pub redraw: bool,
}

impl App {
    pub fn new(settings: Settings) -> Self {
        Self {
            snap: None,
            vms_by_node: HashMap::new(),
            last_poll_ms: None,
            stale: None,
            now_ms: 0,
            view: View::Cluster,
            mode: Mode::Normal,
            sel_node: 0,
            sel_vm: None,
            sel_migration: None,
            filter: String::new(),
            problems: false,
            rule_leave: Default::default(),
            follow: None,
            node_sort: NodeSort::default(),
            derived: nodes::Derived::default(),
            command_history: Vec::new(),
            log: Vec::new(),
            last_backend_event: None,
            sel_event: 0,
            past: Vec::new(),
            sel_past: 0,
            past_open: false,
            scroll_volumes: 0,
            volume_col: 0,
            flash: None,
            press: None,
            settings,
            self_usage: None,
            last_sample_ms: 0,
            size: (80, 24),
            started_unix_ms: 0,
            drain: None,
            history: Vec::new(),
            pending: HashMap::new(),
            next_request: 1,
            quit: false,
            signal: None,
        }
    }

    /// A new request id for a command to the backend, remembered until its reply.
    pub(crate) fn request(&mut self, what: Pending) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.pending.insert(id, what);
        id
    }

    /// A change command for the migration with id `id`.
    pub(super) fn change_for(
        &mut self,
        id: MigrationId,
        what: &'static str,
        make: impl FnOnce(RequestId) -> Cmd,
    ) -> Cmd {
        let vm = self
            .snap
            .as_ref()
            .and_then(|s| s.migrations.iter().find(|m| m.id == id))
            .map_or_else(|| format!("#{id}"), |m| m.vm.clone());
        let req = self.request(Pending::Change { what, vm });
        make(req)
    }

    /// `Cmd::Start` for `req`, with its request id.
    pub(super) fn start_cmd(&mut self, req: MigrationRequest) -> (RequestId, Cmd) {
        let id = self.request(Pending::Start {
            vm: req.vm.clone(),
            to: req.to.clone(),
        });
        (id, Cmd::Start(id, req))
    }

    /// A command that changes the running migration `m` (abort, limits, post-copy).
    pub(super) fn change_cmd(
        &mut self,
        what: &'static str,
        m: &Migration,
        make: impl FnOnce(RequestId) -> Cmd,
    ) -> Cmd {
        let id = self.request(Pending::Change {
            what,
            vm: m.vm.clone(),
        });
        make(id)
    }

    // ----- derived views of the state -----

    /// Whether a filter (text or problems) is narrowing what is shown.
    pub fn filtering(&self) -> bool {
        self.problems || !self.filter.is_empty()
    }

    /// Whether the VM with snapshot index `i` passes the filters: its name,
    /// node or workload contains the text; with `!`, it or its node is a
    /// problem.
    pub fn vm_shown(&self, i: usize) -> bool {
        let Some(s) = &self.snap else { return false };
        let v = &s.vms[i];
        let f = self.filter.to_lowercase();
        // A name matches as it is and as it is shown (`/200b` finds the
        // names with a zero-width space).
        let has = |name: &str| {
            name.to_lowercase().contains(&f)
                || matches!(crate::cluster::text::escape(name), std::borrow::Cow::Owned(s) if s.to_lowercase().contains(&f))
        };
        let text = f.is_empty() || has(&v.name) || has(&v.node) || v.workload.kind.contains(&f);
        text && (!self.problems
            || self.derived.vm_problem.get(i).copied().unwrap_or(false)
            || self.node_problem(&v.node))
    }

    /// Why the VM with snapshot index `i` is listed under `!`: its own
    /// trouble first, else its node's.
    pub fn vm_why(&self, i: usize) -> Option<String> {
        let s = self.snap.as_ref()?;
        let v = s.vms.get(i)?;
        if self.derived.vm_problem.get(i).copied().unwrap_or(false) {
            if let Some(l) = &v.lost {
                return Some(format!("lost with {}", l.node));
            }
            if let Some(m) = s
                .migrations
                .iter()
                .rev()
                .find(|m| m.vm == v.name && nodes::migration_problem(m))
            {
                let what = if m.is_finished() { "failed" } else { "stalled" };
                return Some(format!("migration {what}"));
            }
            if let Some(c) = s.stale_copies.iter().find(|c| c.vm == v.name) {
                return Some(format!("stale copy on {}", c.node));
            }
            if let Some(b) = self
                .derived
                .broken_rules
                .iter()
                .find(|b| b.vms.contains(&v.name))
            {
                return Some(format!("rule {} broken", b.rule));
            }
            return Some(v.state.label().to_string());
        }
        let i = self.node_index(&v.node)?;
        let why = self.derived.nodes.get(i)?.problem.as_ref()?;
        Some(format!("node: {why}"))
    }

    /// Whether the node named `name` is a problem (down, unreachable, over
    /// a threshold, in a troubled migration, or hosting a VM in trouble).
    pub fn node_problem(&self, name: &str) -> bool {
        self.node_index(name)
            .and_then(|i| self.derived.nodes.get(i))
            .is_some_and(|n| n.problem.is_some())
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.snap
            .as_ref()?
            .nodes
            .iter()
            .position(|n| n.name == name)
    }

    /// Indices of VMs shown in the VM table (filters applied).
    pub fn visible_vms(&self) -> Vec<usize> {
        let n = self.snap.as_ref().map_or(0, |s| s.vms.len());
        (0..n).filter(|&i| self.vm_shown(i)).collect()
    }

    /// VMs of a node card (filters applied), in snapshot order.
    pub fn card_vms(&self, node: &str) -> Vec<usize> {
        self.vms_by_node
            .get(node)
            .map(|v| v.iter().copied().filter(|&i| self.vm_shown(i)).collect())
            .unwrap_or_default()
    }

    /// Node indices that get a card in the cluster view: all of them, but
    /// while a filter is active only those with something to show (a
    /// matching VM, or a problem with `!`). A drag shows every node.
    pub fn card_nodes(&self) -> Vec<usize> {
        let Some(s) = &self.snap else {
            return Vec::new();
        };
        let all = (0..s.nodes.len()).collect();
        if !self.filtering() || matches!(self.mode, Mode::Drag(_)) {
            return all;
        }
        (0..s.nodes.len())
            .filter(|&i| {
                let n = &s.nodes[i].name;
                (self.problems && self.node_problem(n)) || !self.card_vms(n).is_empty()
            })
            .collect()
    }

    pub fn running_migrations(&self) -> Vec<&Migration> {
        self.snap
            .as_ref()
            .map(|s| s.migrations.iter().filter(|m| !m.is_finished()).collect())
            .unwrap_or_default()
    }

    /// Migrations, newest first.
    pub fn migrations_newest_first(&self) -> Vec<&Migration> {
        let mut v: Vec<&Migration> = self
            .snap
            .as_ref()
            .map(|s| s.migrations.iter().collect())
            .unwrap_or_default();
        if self.problems {
            v.retain(|m| nodes::migration_problem(m));
        }
        v.sort_by_key(|m| std::cmp::Reverse(m.id));
        v
    }

    pub fn selected_migration(&self) -> Option<&Migration> {
        let all = self.migrations_newest_first();
        self.sel_migration
            .and_then(|id| all.iter().find(|m| m.id == id).copied())
            .or_else(|| all.first().copied())
    }

    /// Whether an animation timer is needed (nothing animates by itself:
    /// progress arrives as messages).
    pub fn next_timer_ms(&self) -> Option<u64> {
        let mut t: Option<u64> = None;
        let mut at = |ms: u64| t = Some(t.map_or(ms, |x: u64| x.min(ms)));
        if let Some(f) = &self.flash {
            at(f.until_ms);
        }
        if let Some((since, _)) = &self.stale {
            // The STALE age is shown in whole seconds.
            let age = self.now_ms.saturating_sub(*since);
            at(self.now_ms + 1000 - age % 1000);
        }
        if self.mode == Mode::About {
            at(self.last_sample_ms + SAMPLE_MS);
        }
        t
    }

    pub fn node_names(&self) -> Vec<&str> {
        self.snap
            .as_ref()
            .map(|s| s.nodes.iter().map(|n| n.name.as_str()).collect())
            .unwrap_or_default()
    }

    // ----- update -----

    pub(crate) fn flash(&mut self, text: impl Into<String>, error: bool) {
        self.flash = Some(Flash {
            text: text.into(),
            error,
            until_ms: self.now_ms + FLASH_MS,
            refusal: false,
        });
    }

    /// The one update: applies `msg` at wall time `now_ms`; `hit` is the hit
    /// map of the frame on screen.
    pub fn update(&mut self, msg: Msg, hit: &HitMap, now_ms: u64) -> Update {
        self.now_ms = now_ms;
        let mut out = Update::default();
        match msg {
            Msg::Key(k) => {
                if k.kind != KeyEventKind::Release {
                    if too_small(self.size.0, self.size.1) {
                        self.on_key_too_small(k, &mut out);
                    } else {
                        self.on_key(k, &mut out);
                    }
                    out.redraw = true;
                }
            }
            // Nothing on screen to point at while the window is too small.
            Msg::Mouse(_) if too_small(self.size.0, self.size.1) => {}
            Msg::Mouse(m) => self.on_mouse(m, hit, &mut out),
            Msg::Paste(text) => self.on_paste(&text, &mut out),
            Msg::Resize(w, h) => {
                self.size = (w, h);
                out.redraw = true;
            }
            Msg::Snapshot(s) => self.on_snapshot(s, now_ms, &mut out),
            Msg::PollFailed(e) => self.on_poll_failed(e, now_ms, &mut out),
            Msg::History(records) => self.on_history(records, &mut out),
            Msg::Progress(ms) => self.on_progress(ms, &mut out),
            Msg::StorageProgress(moves) => self.take_storage_progress(moves, &mut out),
            Msg::Started { req, vm, id } => self.on_started(req, &vm, id, &mut out),
            Msg::Failed { req, error } => self.on_failed(req, error, &mut out),
            Msg::Done { req, text } => self.on_done(req, text, &mut out),
            Msg::StepFailed { req, what, error } => {
                self.on_step_failed(req, &what, &error, &mut out)
            }
            Msg::ConsoleReady { req, vm, argv } => {
                self.pending.remove(&req);
                out.cmds.push(Cmd::RunConsole { vm, argv });
            }
            Msg::ConsoleEnded { vm, result } => {
                // Kept in the event log too: the flash goes after a few seconds.
                match result {
                    Ok(()) => self.report(format!("back from the console of {vm}"), false),
                    Err(e) => self.report(e, true),
                }
                out.redraw = true;
            }
            Msg::RecordFailed(e) => {
                self.log_event(e.clone(), nodes::Level::Crit);
                self.flash(e, true);
                out.redraw = true;
            }
            Msg::SelfUsage(u) => {
                self.self_usage = Some(u);
                out.redraw = self.mode == Mode::About;
            }
            Msg::Tick => self.on_tick(now_ms, &mut out),
            Msg::Signal(sig) => {
                self.quit = true;
                self.signal = Some(sig);
                out.cmds.push(Cmd::Quit);
            }
        }
        self.advance_drain(&mut out);
        self.advance_follow(&mut out);
        out
    }

    /// Pasted text: its first line goes into the filter or the command line.
    fn on_paste(&mut self, text: &str, out: &mut Update) {
        let line = text.lines().next().unwrap_or("");
        match &mut self.mode {
            Mode::Filter(e) => {
                e.insert(line);
                self.filter = e.text.clone();
                self.after_filter_change();
            }
            Mode::Command(c) => c.edit.insert(line),
            _ => {}
        }
        out.redraw = true;
    }

    /// A poll's snapshot: taken (and drawn) only when it differs from the
    /// last one; polling that works again after failures is logged.
    fn on_snapshot(&mut self, s: Box<ClusterSnapshot>, now_ms: u64, out: &mut Update) {
        self.last_poll_ms = Some(now_ms);
        let was_stale = self.stale.take();
        if let Some((since, _)) = &was_stale {
            let secs = now_ms.saturating_sub(*since) / 1000;
            self.log_event(
                format!("polling works again after {secs} s of failures"),
                nodes::Level::Ok,
            );
        }
        let was_stale = was_stale.is_some();
        let changed = self.snap.as_ref() != Some(&*s);
        if changed {
            self.set_snapshot(*s);
        }
        out.redraw = changed || was_stale;
    }

    /// The poll failed: the view says since when its data is stale.
    fn on_poll_failed(&mut self, e: String, now_ms: u64, out: &mut Update) {
        if self.stale.is_none() {
            self.log_event(format!("polling fails: {e}"), nodes::Level::Crit);
        }
        let since = self.stale.as_ref().map_or(now_ms, |s| s.0);
        self.stale = Some((since, e));
        out.redraw = true;
    }

    /// The cluster's past migrations from the flight recorder.
    fn on_history(&mut self, records: Vec<crate::record::Record>, out: &mut Update) {
        let mut past: Vec<Migration> = records.iter().map(|r| r.migration.clone()).collect();
        past.append(&mut self.history);
        self.history = past;
        self.take_records(records);
        out.redraw = self.view == View::History;
    }

    /// Running migrations as they are now: into the snapshot, the history
    /// once completed, and what changed into the event log.
    fn on_progress(&mut self, ms: Vec<Migration>, out: &mut Update) {
        for m in ms
            .iter()
            .filter(|m| m.outcome == Some(crate::cluster::Outcome::Completed))
        {
            let seen = self
                .history
                .iter()
                .any(|h| h.id == m.id && h.started_at_ms == m.started_at_ms && h.vm == m.vm);
            if !seen {
                self.history.push(m.clone());
            }
        }
        for m in &ms {
            self.note_finished(m);
        }
        let before = out.redraw;
        let mut notes = Vec::new();
        if let Some(s) = &mut self.snap {
            for m in ms {
                match s.migrations.iter_mut().find(|x| x.id == m.id) {
                    Some(x) if *x != m => {
                        notes.extend(migration_news(Some(x), &m));
                        *x = m;
                        out.redraw = true;
                    }
                    Some(_) => {}
                    None => {
                        s.migrations.push(m);
                        out.redraw = true;
                    }
                }
            }
        }
        for (text, level) in notes {
            self.log_event(text, level);
        }
        if out.redraw && !before {
            self.refresh_derived();
        }
    }

    /// A migration the app asked for started: the migrations view shows it.
    fn on_started(&mut self, req: RequestId, vm: &str, id: MigrationId, out: &mut Update) {
        self.pending.remove(&req);
        if let Some(d) = &mut self.drain
            && let Some(cur) = d.current.as_mut().filter(|c| c.req == req)
        {
            cur.migration = Some(id);
        }
        self.sel_migration = Some(id);
        self.view = View::Migrations;
        self.flash(format!("migration of {vm} started"), false);
        out.redraw = true;
    }

    /// A command failed: its sentence says what was asked and why not.
    fn on_failed(&mut self, req: RequestId, error: String, out: &mut Update) {
        // A drain move that could not start: note it, go on.
        if let Some(d) = &mut self.drain
            && let Some(cur) = d.current.take_if(|c| c.req == req)
        {
            d.failed.push(cur.vm);
        }
        let text = match self.pending.remove(&req) {
            Some(Pending::Start { vm, to }) => {
                format!("cannot migrate {vm} to {to}: {error}")
            }
            Some(Pending::Change { what, vm }) => {
                format!("cannot {what} the migration of {vm}: {error}")
            }
            Some(p) => actions::failure_text(&p, &error),
            None => error,
        };
        self.log_event(text.clone(), nodes::Level::Crit);
        self.flash(text, true);
        out.redraw = true;
    }

    /// A command succeeded.
    fn on_done(&mut self, req: RequestId, text: String, out: &mut Update) {
        match self.pending.remove(&req) {
            Some(Pending::Change { vm, .. } | Pending::AbortDiskMove { vm }) => {
                self.flash(format!("{vm}: {text}"), false)
            }
            // Kept in the event log: it ends what the log began.
            Some(Pending::Recover { .. } | Pending::Cordon { .. }) => self.report(text, false),
            _ => self.flash(text, false),
        }
        out.redraw = true;
    }

    /// One step of a command failed and the command goes on.
    fn on_step_failed(&mut self, req: RequestId, what: &str, error: &str, out: &mut Update) {
        let text = match self.pending.get(&req) {
            Some(Pending::Recover { node }) => {
                format!("cannot {what} (recovering {node}): {error}")
            }
            _ => format!("cannot {what}: {error}"),
        };
        self.log_event(text.clone(), nodes::Level::Crit);
        self.flash(text, true);
        out.redraw = true;
    }

    /// A timer: the flash line expires, the stale age moves, the About
    /// panel samples vmshift's own usage.
    fn on_tick(&mut self, now_ms: u64, out: &mut Update) {
        if self.flash.as_ref().is_some_and(|f| f.until_ms <= now_ms) {
            self.flash = None;
            out.redraw = true;
        }
        if self.stale.is_some() {
            out.redraw = true;
        }
        if self.mode == Mode::About && now_ms >= self.last_sample_ms + SAMPLE_MS {
            self.last_sample_ms = now_ms;
            out.cmds.push(Cmd::SampleSelf);
        }
    }

    pub(super) fn set_snapshot(&mut self, s: ClusterSnapshot) {
        self.vms_by_node.clear();
        for (i, v) in s.vms.iter().enumerate() {
            self.vms_by_node.entry(v.node.clone()).or_default().push(i);
        }
        self.sel_node = self.sel_node.min(s.nodes.len().saturating_sub(1));
        let vm_gone = self.sel_vm.as_ref().is_some_and(|n| s.vm(n).is_none());
        // A selected VM that moved takes the node selection with it.
        let moved_to = self
            .sel_vm
            .as_ref()
            .and_then(|n| s.vm(n))
            .and_then(|v| s.nodes.iter().position(|n| n.name == v.node));
        let news: Vec<_> = s
            .migrations
            .iter()
            .flat_map(|m| {
                let old = self
                    .snap
                    .as_ref()
                    .and_then(|o| o.migrations.iter().find(|x| x.id == m.id));
                migration_news(old, m)
            })
            .collect();
        let taken = self.take_backend_events(&s);
        for m in &s.migrations {
            self.note_finished(m);
        }
        let storage_ends = self.storage_ends(&s);
        let old = self.snap.replace(s);
        for m in &storage_ends {
            self.flash_storage_end(m);
        }
        for (text, level) in news {
            self.log_event(text, level);
        }
        self.log_recoveries_and_alarms(old.as_ref(), taken);
        self.refresh_derived();
        if vm_gone || self.sel_vm.is_none() {
            self.sel_vm = self.first_vm_of_selected_node();
        } else if let Some(i) = moved_to
            && (self.view != View::Cluster || self.mode == Mode::Normal)
        {
            self.sel_node = i;
        }
        // Keep drag verdicts and the confirm dialog true to the new cluster.
        let snap = self.snap.as_ref().expect("just set");
        match &mut self.mode {
            Mode::Drag(d) => {
                let copy = self.settings.defaults.copy_storage;
                d.verdicts = drag::verdicts(snap, &d.vm, copy);
                if d.listed() {
                    d.rank(snap, &self.settings.defaults, &self.history);
                }
            }
            Mode::Confirm(c) => c.recompute(snap, &self.history),
            Mode::PickDisk(p) => p.refresh(snap),
            _ => {}
        }
        self.refresh_detail();
        self.replan_recover();
    }

    /// Recomputes the nodes view's rows and the problem marks.
    pub(crate) fn refresh_derived(&mut self) {
        if let Some(s) = &self.snap {
            self.derived =
                nodes::derive(s, &self.settings.thresholds, self.node_sort, self.problems);
        }
    }

    // ----- mouse -----
}

/// "s" for counts other than one.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
