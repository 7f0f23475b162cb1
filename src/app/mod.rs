//! App state and the one `update` function: `Msg` in, state changed,
//! `Cmd`s out. Nothing here does I/O; the event loop (`tui`) runs the
//! commands and feeds their results back as messages.

pub mod command;
pub mod detail;
pub mod drag;
pub mod history;
pub mod hitmap;
pub mod keymap;
pub mod log;
pub mod msg;
pub mod nodes;

use std::collections::HashMap;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::cluster::{
    ClusterSnapshot, Migration, MigrationId, MigrationOptions, MigrationRequest, units,
};
use crate::plan::DrainPlan;
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
    Help(u16),
    About,
    /// An event, a VM or a migration in full, wrapped; can be copied.
    Detail(Box<Detail>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub until_ms: u64,
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
}

/// A confirmed drain: what is left to start, and the move under way.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainRun {
    pub node: String,
    pub queue: std::collections::VecDeque<MigrationRequest>,
    /// The move under way.
    pub current: Option<DrainStep>,
    pub moved: usize,
    pub failed: Vec<String>,
    pub stuck: usize,
}

/// The move of a drain under way: its start request, then its migration.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainStep {
    pub vm: String,
    pub req: RequestId,
    pub migration: Option<MigrationId>,
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
    fn request(&mut self, what: Pending) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.pending.insert(id, what);
        id
    }

    /// A change command for the migration with id `id`.
    fn change_for(
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
    fn start_cmd(&mut self, req: MigrationRequest) -> (RequestId, Cmd) {
        let id = self.request(Pending::Start {
            vm: req.vm.clone(),
            to: req.to.clone(),
        });
        (id, Cmd::Start(id, req))
    }

    /// A command that changes the running migration `m` (abort, limits, post-copy).
    fn change_cmd(
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
        let text = f.is_empty()
            || v.name.to_lowercase().contains(&f)
            || v.node.to_lowercase().contains(&f)
            || v.workload.kind.contains(&f);
        text && (!self.problems
            || self.derived.vm_problem.get(i).copied().unwrap_or(false)
            || self.node_problem(&v.node))
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

    fn flash(&mut self, text: impl Into<String>, error: bool) {
        self.flash = Some(Flash {
            text: text.into(),
            error,
            until_ms: self.now_ms + FLASH_MS,
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
                    self.on_key(k, &mut out);
                    out.redraw = true;
                }
            }
            Msg::Mouse(m) => self.on_mouse(m, hit, &mut out),
            Msg::Paste(text) => {
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
            Msg::Resize(w, h) => {
                self.size = (w, h);
                out.redraw = true;
            }
            Msg::Snapshot(s) => {
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
            Msg::PollFailed(e) => {
                if self.stale.is_none() {
                    self.log_event(format!("polling fails: {e}"), nodes::Level::Crit);
                }
                let since = self.stale.as_ref().map_or(now_ms, |s| s.0);
                self.stale = Some((since, e));
                out.redraw = true;
            }
            Msg::History(records) => {
                let mut past: Vec<Migration> =
                    records.iter().map(|r| r.migration.clone()).collect();
                past.append(&mut self.history);
                self.history = past;
                self.take_records(records);
                out.redraw = self.view == View::History;
            }
            Msg::Progress(ms) => {
                for m in ms
                    .iter()
                    .filter(|m| m.outcome == Some(crate::cluster::Outcome::Completed))
                {
                    let seen = self.history.iter().any(|h| {
                        h.id == m.id && h.started_at_ms == m.started_at_ms && h.vm == m.vm
                    });
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
            Msg::Started { req, vm, id } => {
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
            Msg::Failed { req, error } => {
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
                    None => error,
                };
                self.log_event(text.clone(), nodes::Level::Crit);
                self.flash(text, true);
                out.redraw = true;
            }
            Msg::Done { req, text } => {
                let text = match self.pending.remove(&req) {
                    Some(Pending::Change { vm, .. }) => format!("{vm}: {text}"),
                    _ => text,
                };
                self.flash(text, false);
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
            Msg::Tick => {
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
            Msg::Signal(sig) => {
                self.quit = true;
                self.signal = Some(sig);
                out.cmds.push(Cmd::Quit);
            }
        }
        self.advance_drain(&mut out);
        out
    }

    /// Starts the next move of a drain once the current one has finished.
    fn advance_drain(&mut self, out: &mut Update) {
        let Some(d) = &mut self.drain else { return };
        if let Some(DrainStep {
            vm,
            migration: Some(id),
            ..
        }) = d.current.clone()
        {
            let finished = self
                .snap
                .as_ref()
                .and_then(|s| s.migrations.iter().find(|m| m.id == id))
                .and_then(|m| m.outcome.clone());
            match finished {
                Some(o) if o.is_success() => d.moved += 1,
                Some(_) => d.failed.push(vm),
                None => return,
            }
            d.current = None;
        }
        if d.current.is_some() {
            return;
        }
        match d.queue.pop_front() {
            Some(req) => {
                let vm = req.vm.clone();
                let (id, cmd) = self.start_cmd(req);
                if let Some(d) = &mut self.drain {
                    d.current = Some(DrainStep {
                        vm,
                        req: id,
                        migration: None,
                    });
                }
                out.cmds.push(cmd);
            }
            None => {
                let d = self.drain.take().expect("checked");
                let text = format!(
                    "drain of {}: {} moved, {} failed{}, {} cannot leave",
                    d.node,
                    d.moved,
                    d.failed.len(),
                    if d.failed.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.failed.join(", "))
                    },
                    d.stuck
                );
                let bad = !d.failed.is_empty() || d.stuck > 0;
                self.log_event(
                    text.clone(),
                    if bad {
                        nodes::Level::Warn
                    } else {
                        nodes::Level::Ok
                    },
                );
                self.flash(text, bad);
            }
        }
        out.redraw = true;
    }

    fn set_snapshot(&mut self, s: ClusterSnapshot) {
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
        self.take_backend_events(&s);
        for m in &s.migrations {
            self.note_finished(m);
        }
        self.snap = Some(s);
        for (text, level) in news {
            self.log_event(text, level);
        }
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
            _ => {}
        }
    }

    /// Recomputes the nodes view's rows and the problem marks.
    pub(crate) fn refresh_derived(&mut self) {
        if let Some(s) = &self.snap {
            self.derived =
                nodes::derive(s, &self.settings.thresholds, self.node_sort, self.problems);
        }
    }

    fn first_vm_of_selected_node(&self) -> Option<String> {
        let s = self.snap.as_ref()?;
        let node = s.nodes.get(self.sel_node)?;
        self.card_vms(&node.name)
            .first()
            .map(|&i| s.vms[i].name.clone())
    }

    fn on_key(&mut self, k: KeyEvent, out: &mut Update) {
        // Text entry first: typed characters are text, not actions.
        match &mut self.mode {
            Mode::Filter(edit) => {
                match k.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    _ => {
                        edit.key(&k);
                        self.filter = edit.text.clone();
                    }
                }
                self.after_filter_change();
                return;
            }
            Mode::Command(_) => {
                self.on_command_key(k, out);
                return;
            }
            _ => {}
        }
        let action = self.settings.keys.action(&k);
        // Dialog answers by letter.
        let yes = matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y'))
            || action == Some(Action::Confirm);
        let no = matches!(k.code, KeyCode::Char('n') | KeyCode::Char('N'))
            || action == Some(Action::Cancel);
        match self.mode.clone() {
            Mode::ConfirmQuit => {
                if yes || action == Some(Action::Quit) {
                    self.quit = true;
                    out.cmds.push(Cmd::Quit);
                } else if no {
                    self.mode = Mode::Normal;
                }
                return;
            }
            Mode::ConfirmAbort(id) => {
                if yes {
                    let cmd = self.change_for(id, "abort", |r| Cmd::Abort(r, id));
                    out.cmds.push(cmd);
                    self.mode = Mode::Normal;
                } else if no {
                    self.mode = Mode::Normal;
                }
                return;
            }
            Mode::ConfirmPostcopy(id) => {
                // Irreversible: only the letter y switches, never Enter.
                if matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    let cmd = self.change_for(id, "switch to post-copy", |r| Cmd::Postcopy(r, id));
                    out.cmds.push(cmd);
                    self.mode = Mode::Normal;
                } else if no {
                    self.mode = Mode::Normal;
                }
                return;
            }
            Mode::ConfirmDrain(plan) => {
                if yes && !plan.moves.is_empty() {
                    let options = self.settings.defaults.clone();
                    self.drain = Some(DrainRun {
                        node: plan.node.clone(),
                        queue: plan
                            .moves
                            .iter()
                            .map(|m| MigrationRequest {
                                vm: m.vm.clone(),
                                to: m.to.clone(),
                                options: options.clone(),
                                inputs: Some(m.inputs.clone()),
                                forecast: Some(m.prediction.forecast()),
                            })
                            .collect(),
                        current: None,
                        moved: 0,
                        failed: Vec::new(),
                        stuck: plan.stuck.len(),
                    });
                    self.mode = Mode::Normal;
                } else if yes || no {
                    self.mode = Mode::Normal;
                }
                return;
            }
            Mode::Confirm(mut c) => {
                match action {
                    // y, or the confirm key (enter).
                    _ if yes => {
                        match &c.placement {
                            Ok(_) if !self.settings.read_only => {
                                let (_, cmd) = self.start_cmd(c.request());
                                out.cmds.push(cmd);
                                let (text, level) = c.start_note();
                                self.log_event(text, level);
                                self.flash(
                                    format!("starting migration of {} to {}…", c.vm, c.to),
                                    false,
                                );
                                self.mode = Mode::Normal;
                            }
                            Ok(_) => self.flash("read-only: migrations are not started", true),
                            Err(r) => {
                                let text = format!("cannot move {} to {}: {r}", c.vm, c.to);
                                self.log_event(text.clone(), nodes::Level::Warn);
                                self.flash(text, true);
                            }
                        }
                        return;
                    }
                    _ if no => {
                        self.mode = Mode::Normal;
                        return;
                    }
                    Some(Action::Up) => c.move_field(false),
                    Some(Action::Down) | Some(Action::NextView) => c.move_field(true),
                    Some(Action::Left)
                    | Some(Action::DowntimeDown)
                    | Some(Action::BandwidthDown) => c.change(false),
                    Some(Action::Right)
                    | Some(Action::DowntimeUp)
                    | Some(Action::BandwidthUp)
                    | Some(Action::Move) => c.change(true),
                    _ => return,
                }
                if let Some(s) = &self.snap {
                    c.recompute(s, &self.history);
                }
                self.mode = Mode::Confirm(c);
                return;
            }
            Mode::Help(scroll) => {
                match action {
                    Some(Action::Down) => self.mode = Mode::Help(scroll.saturating_add(1)),
                    Some(Action::Up) => self.mode = Mode::Help(scroll.saturating_sub(1)),
                    Some(Action::PageDown) => self.mode = Mode::Help(scroll.saturating_add(10)),
                    Some(Action::PageUp) => self.mode = Mode::Help(scroll.saturating_sub(10)),
                    Some(Action::Quit) => self.ask_quit(out),
                    _ => self.mode = Mode::Normal,
                }
                return;
            }
            Mode::About => {
                self.mode = Mode::Normal;
                if action == Some(Action::Quit) {
                    self.ask_quit(out);
                }
                return;
            }
            Mode::Drag(d) => {
                self.on_drag_key(d, &k, action);
                return;
            }
            Mode::Detail(mut d) => {
                match action {
                    Some(Action::Copy) => {
                        out.cmds.push(Cmd::Copy(d.copy_text()));
                        self.flash(
                            format!(
                                "copied {} characters to the clipboard (OSC 52; in tmux: set -g set-clipboard on)",
                                d.copy_text().chars().count()
                            ),
                            false,
                        );
                    }
                    Some(Action::Down) => d.scroll = d.scroll.saturating_add(1),
                    Some(Action::Up) => d.scroll = d.scroll.saturating_sub(1),
                    Some(Action::PageDown) => d.scroll = d.scroll.saturating_add(10),
                    Some(Action::PageUp) => d.scroll = d.scroll.saturating_sub(10),
                    Some(Action::Top) => d.scroll = 0,
                    Some(Action::Bottom) => d.scroll = u16::MAX,
                    Some(Action::Cancel | Action::Confirm | Action::Quit) => {
                        self.mode = Mode::Normal;
                        return;
                    }
                    _ => return,
                }
                self.mode = Mode::Detail(d);
                return;
            }
            _ => {}
        }
        let Some(action) = action else { return };
        self.on_action(action, out);
    }

    fn on_drag_key(&mut self, mut d: Drag, k: &KeyEvent, action: Option<Action>) {
        // Typing narrows the ranked list of a keyboard move.
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        let text_key = match k.code {
            KeyCode::Char('u' | 'w') if ctrl => true,
            KeyCode::Char(_) => !ctrl && !alt,
            KeyCode::Backspace => true,
            _ => false,
        };
        if d.listed() && text_key {
            d.query.key(k);
            d.narrow(true);
            self.follow_drag(&d);
            self.mode = Mode::Drag(d);
            return;
        }
        match action {
            Some(Action::Cancel) | Some(Action::Quit) => {
                self.mode = Mode::Normal;
                self.flash(format!("move of {} cancelled", d.vm), false);
                return;
            }
            Some(Action::Confirm) => {
                if d.over.is_none() {
                    self.flash(
                        format!(
                            "no node matches {:?}; Backspace to widen the list",
                            d.query.text
                        ),
                        true,
                    );
                    self.mode = Mode::Drag(d);
                } else {
                    self.drop_on(&d, d.over.clone());
                }
                return;
            }
            Some(a) if d.listed() => {
                let last = d.shown.len().saturating_sub(1);
                let cur = d.selected_row().unwrap_or(0);
                let a = match a {
                    Action::Left | Action::PrevView => Action::Up,
                    Action::Right | Action::NextView => Action::Down,
                    a => a,
                };
                d.select_row(list_step(a, cur, last));
            }
            Some(a) => {
                // A mouse drag: the keys step through the cards.
                let nodes: Vec<String> = self.node_names().into_iter().map(String::from).collect();
                if nodes.is_empty() {
                    self.mode = Mode::Normal;
                    return;
                }
                let cur = d
                    .over
                    .as_ref()
                    .and_then(|o| nodes.iter().position(|n| n == o))
                    .or_else(|| nodes.iter().position(|n| *n == d.from))
                    .unwrap_or(0);
                let cols = self.card_columns() as isize;
                let step = |delta: isize| -> String {
                    nodes[(cur as isize + delta).rem_euclid(nodes.len() as isize) as usize].clone()
                };
                match a {
                    Action::Right | Action::NextView => d.over = Some(step(1)),
                    Action::Left | Action::PrevView => d.over = Some(step(-1)),
                    Action::Down => d.over = Some(step(cols)),
                    Action::Up => d.over = Some(step(-cols)),
                    Action::Top => d.over = nodes.first().cloned(),
                    Action::Bottom => d.over = nodes.last().cloned(),
                    _ => {}
                }
            }
            None => {}
        }
        self.follow_drag(&d);
        self.mode = Mode::Drag(d);
    }

    /// The node selection follows the move's target.
    fn follow_drag(&mut self, d: &Drag) {
        if let Some(i) = d.over.as_ref().and_then(|o| self.node_index(o)) {
            self.sel_node = i;
        }
    }

    /// How many node cards stand in a row on the current screen.
    pub fn card_columns(&self) -> usize {
        cards_per_row(self.size.0)
    }

    /// Ends a drag over `target`: the confirm dialog, or why not.
    fn drop_on(&mut self, d: &Drag, target: Option<String>) {
        let Some(to) = target else {
            self.mode = Mode::Normal;
            self.flash(
                format!("move of {} cancelled: not dropped on a node", d.vm),
                false,
            );
            return;
        };
        match d.verdict(&to) {
            Some(Ok(_)) | None => {
                let snap = self.snap.as_ref().expect("a drag needs a snapshot");
                match Confirm::new(snap, &d.vm, &to, &self.settings.defaults, &self.history) {
                    Some(c) => self.mode = Mode::Confirm(Box::new(c)),
                    None => {
                        self.mode = Mode::Normal;
                        self.flash(format!("{} or {to} is gone from the cluster", d.vm), true);
                    }
                }
            }
            Some(Err(r)) => {
                let text = format!("cannot move {} to {to}: {r}", d.vm);
                self.mode = Mode::Normal;
                self.log_event(text.clone(), nodes::Level::Warn);
                self.flash(text, true);
            }
        }
    }

    fn ask_quit(&mut self, out: &mut Update) {
        if self.running_migrations().is_empty() {
            self.quit = true;
            out.cmds.push(Cmd::Quit);
        } else {
            self.mode = Mode::ConfirmQuit;
        }
    }

    fn refuse_read_only(&mut self) -> bool {
        if self.settings.read_only {
            self.flash("read-only: vmshift changes nothing in this mode", true);
        }
        self.settings.read_only
    }

    fn on_action(&mut self, a: Action, out: &mut Update) {
        if a.mutates() && self.refuse_read_only() {
            return;
        }
        match a {
            Action::Quit => self.ask_quit(out),
            Action::Help => self.mode = Mode::Help(0),
            Action::About => {
                self.mode = Mode::About;
                self.last_sample_ms = self.now_ms;
                out.cmds.push(Cmd::SampleSelf);
            }
            Action::Cancel if self.showing_past() => self.past_open = false,
            Action::Cancel => {
                self.press = None;
                self.clear_filters();
            }
            Action::Problems => {
                self.problems = !self.problems;
                self.refresh_derived();
                self.after_filter_change();
                if self.problems {
                    let nodes = self.derived.rows.len();
                    let vms = self.derived.vm_problem.iter().filter(|p| **p).count();
                    self.flash(
                        format!(
                            "problems only: {nodes} node{}, {vms} VM{} in trouble ({} again or Esc shows all)",
                            plural(nodes),
                            plural(vms),
                            self.settings.keys.first_key(Action::Problems)
                        ),
                        false,
                    );
                } else {
                    self.flash("showing everything", false);
                }
            }
            Action::SortNext | Action::SortReverse => {
                if self.view != View::Nodes {
                    self.flash(
                        format!(
                            "sorting is for the nodes view ({})",
                            self.settings.keys.first_key(Action::ViewNodes)
                        ),
                        true,
                    );
                    return;
                }
                self.sort_nodes(if a == Action::SortNext {
                    self.node_sort.next()
                } else {
                    self.node_sort.reversed()
                });
            }
            Action::Filter => self.mode = Mode::Filter(LineEdit::new(&self.filter)),
            Action::Command => self.mode = Mode::Command(CommandLine::default()),
            Action::NextView | Action::PrevView => {
                let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
                let n = View::ALL.len();
                self.view = View::ALL[if a == Action::NextView {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                }];
            }
            Action::ViewCluster => self.view = View::Cluster,
            Action::ViewVms => self.view = View::Vms,
            Action::ViewNodes => self.view = View::Nodes,
            Action::ViewVolumes => self.view = View::Volumes,
            Action::ViewMigrations => self.view = View::Migrations,
            Action::ViewEvents => self.view = View::Events,
            Action::ViewHistory => self.view = View::History,
            Action::ToggleMouse => {
                self.settings.mouse = !self.settings.mouse;
                out.cmds.push(Cmd::SetMouse(self.settings.mouse));
                self.flash(
                    if self.settings.mouse {
                        "mouse on: drag VMs onto nodes (text selection needs shift in most terminals)"
                    } else {
                        "mouse off: text can be selected; move VMs with m"
                    },
                    false,
                );
            }
            Action::Refresh => out.cmds.push(Cmd::Refresh),
            Action::Move => self.start_keyboard_drag(),
            Action::Abort
            | Action::Postcopy
            | Action::DowntimeUp
            | Action::DowntimeDown
            | Action::BandwidthUp
            | Action::BandwidthDown => self.on_migration_action(a, out),
            Action::Up
            | Action::Down
            | Action::Left
            | Action::Right
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => self.navigate(a),
            Action::Confirm => match self.view {
                View::Nodes => self.view = View::Cluster,
                View::Cluster | View::Vms if self.sel_vm.is_some() => {
                    match self
                        .sel_vm
                        .as_ref()
                        .and_then(|v| self.snap.as_ref()?.active_migration_of(v))
                    {
                        Some(m) if self.view == View::Cluster => {
                            self.sel_migration = Some(m.id);
                            self.view = View::Migrations;
                        }
                        _ => self.open_vm_detail(),
                    }
                }
                View::Events => {
                    if let Some(e) = self.selected_event() {
                        let d = Detail::event(e, self.clock());
                        self.mode = Mode::Detail(Box::new(d));
                    }
                }
                View::Migrations => {
                    if let Some(m) = self.selected_migration() {
                        let d = Detail::migration(m);
                        self.mode = Mode::Detail(Box::new(d));
                    }
                }
                View::History if self.past_open => {
                    if let Some(p) = self.selected_past() {
                        let d = Detail::migration(&p.migration);
                        self.mode = Mode::Detail(Box::new(d));
                    }
                }
                View::History => self.open_past(),
                _ => {}
            },
            Action::Copy => self.flash(
                format!(
                    "open something first ({} on an event, a VM or a migration), then {} copies it",
                    self.settings.keys.first_key(Action::Confirm),
                    self.settings.keys.first_key(Action::Copy)
                ),
                true,
            ),
        }
    }

    fn start_keyboard_drag(&mut self) {
        let Some(snap) = &self.snap else { return };
        let Some(vm) = self.sel_vm.clone() else {
            self.flash("select a VM first (arrows), then m", true);
            return;
        };
        if let Some(mut d) = Drag::new(snap, &vm, self.settings.defaults.copy_storage) {
            // The targets ranked by the prediction; the best one selected.
            d.rank(snap, &self.settings.defaults, &self.history);
            d.narrow(true);
            if let Some(i) = d
                .over
                .as_ref()
                .and_then(|o| snap.nodes.iter().position(|n| n.name == *o))
            {
                self.sel_node = i;
            }
            self.view = View::Cluster;
            self.mode = Mode::Drag(d);
        }
    }

    fn on_migration_action(&mut self, a: Action, out: &mut Update) {
        if self.view == View::History {
            self.flash(
                "past migrations are read-only; the migrations view (5) acts on running ones",
                true,
            );
            return;
        }
        let Some(m) = self.selected_migration().cloned() else {
            self.flash("no migration selected", true);
            return;
        };
        if m.is_finished() {
            self.flash(
                format!("the migration of {} has already finished", m.vm),
                true,
            );
            return;
        }
        match a {
            Action::Abort if m.postcopy_active => self.flash(
                format!(
                    "the migration of {} is in post-copy: it runs on {} already and can no longer be aborted",
                    m.vm, m.to
                ),
                true,
            ),
            Action::Abort => self.mode = Mode::ConfirmAbort(m.id),
            Action::Postcopy => self.mode = Mode::ConfirmPostcopy(m.id),
            Action::DowntimeUp | Action::DowntimeDown => {
                let ms = drag::downtime_step(m.options.max_downtime_ms, a == Action::DowntimeUp);
                let cmd = self.change_cmd("change the max downtime of", &m, |r| {
                    Cmd::SetMaxDowntime(r, m.id, ms)
                });
                out.cmds.push(cmd);
                self.flash(format!("max downtime of {} → {ms} ms", m.vm), false);
            }
            _ => {
                let link = self
                    .snap
                    .as_ref()
                    .map_or(u64::MAX, |s| s.link_bps(&m.from, &m.to));
                let bw =
                    drag::bandwidth_step(m.options.bandwidth_bps, link, a == Action::BandwidthUp);
                let cmd = self.change_cmd("change the bandwidth of", &m, |r| {
                    Cmd::SetBandwidth(r, m.id, bw)
                });
                out.cmds.push(cmd);
                self.flash(
                    format!(
                        "bandwidth of {} → {}",
                        m.vm,
                        bw.map_or(format!("link ({})", units::rate(link)), units::rate)
                    ),
                    false,
                );
            }
        }
    }

    /// Clears the VM filter and the problems filter.
    fn clear_filters(&mut self) {
        if self.filtering() {
            self.filter.clear();
            self.problems = false;
            self.refresh_derived();
            self.after_filter_change();
        }
    }

    /// Orders the nodes view by `sort`; the selected node stays selected.
    fn sort_nodes(&mut self, sort: NodeSort) {
        self.node_sort = sort;
        self.refresh_derived();
    }

    fn after_filter_change(&mut self) {
        let cards = self.card_nodes();
        if !cards.is_empty() && !cards.contains(&self.sel_node) {
            self.sel_node = cards[0];
        }
        let vis = self.visible_vms();
        if let Some(s) = &self.snap {
            let keep = self
                .sel_vm
                .as_ref()
                .is_some_and(|n| vis.iter().any(|&i| s.vms[i].name == *n));
            if !keep {
                self.sel_vm = vis.first().map(|&i| s.vms[i].name.clone());
                if let Some(v) = self.sel_vm.as_ref().and_then(|n| s.vm(n)) {
                    self.sel_node = s.nodes.iter().position(|n| n.name == v.node).unwrap_or(0);
                }
            }
        }
    }

    fn navigate(&mut self, a: Action) {
        let Some(snap) = &self.snap else { return };
        match self.view {
            View::Cluster => {
                // Cards in order; positions in this list, not node indices.
                let cards = self.card_nodes();
                let n = cards.len();
                if n == 0 {
                    return;
                }
                let pos = cards.iter().position(|&i| i == self.sel_node).unwrap_or(0);
                let node_delta: isize = match a {
                    Action::Left => -1,
                    Action::Right => 1,
                    Action::PageUp => -4,
                    Action::PageDown => 4,
                    Action::Top => -(n as isize),
                    Action::Bottom => n as isize,
                    _ => 0,
                };
                if node_delta != 0 {
                    self.sel_node =
                        cards[(pos as isize + node_delta).clamp(0, n as isize - 1) as usize];
                    self.sel_vm = self.first_vm_of_selected_node();
                    return;
                }
                let vms = self.card_vms(&snap.nodes[self.sel_node].name);
                let cur = self
                    .sel_vm
                    .as_ref()
                    .and_then(|s| vms.iter().position(|&i| snap.vms[i].name == *s));
                let next = match (a, cur) {
                    (Action::Down, Some(c)) if c + 1 < vms.len() => Some(c + 1),
                    (Action::Down, Some(_)) if pos + 1 < n => {
                        // Past the last VM of this card: the next card.
                        self.sel_node = cards[pos + 1];
                        self.sel_vm = self.first_vm_of_selected_node();
                        return;
                    }
                    (Action::Up, Some(0)) if pos > 0 => {
                        self.sel_node = cards[pos - 1];
                        let s = self.snap.as_ref().expect("checked");
                        let prev = self.card_vms(&s.nodes[self.sel_node].name);
                        self.sel_vm = prev.last().map(|&i| s.vms[i].name.clone());
                        return;
                    }
                    (Action::Up, Some(c)) => Some(c.saturating_sub(1)),
                    (_, None) => Some(0),
                    (_, Some(c)) => Some(c),
                };
                self.sel_vm = next
                    .and_then(|i| vms.get(i))
                    .map(|&i| snap.vms[i].name.clone());
            }
            View::Nodes => {
                let rows = &self.derived.rows;
                if rows.is_empty() {
                    return;
                }
                let cur = rows.iter().position(|&i| i == self.sel_node).unwrap_or(0);
                let last = rows.len() - 1;
                let next = list_step(a, cur, last);
                self.sel_node = rows[next];
                self.sel_vm = self.first_vm_of_selected_node();
            }
            View::Vms => {
                let vis = self.visible_vms();
                if vis.is_empty() {
                    return;
                }
                let cur = self
                    .sel_vm
                    .as_ref()
                    .and_then(|s| vis.iter().position(|&i| snap.vms[i].name == *s))
                    .unwrap_or(0);
                let last = vis.len() - 1;
                let next = list_step(a, cur, last);
                let v = &snap.vms[vis[next]];
                self.sel_vm = Some(v.name.clone());
                self.sel_node = snap
                    .nodes
                    .iter()
                    .position(|n| n.name == v.node)
                    .unwrap_or(self.sel_node);
            }
            View::Migrations => {
                let all: Vec<MigrationId> = self
                    .migrations_newest_first()
                    .iter()
                    .map(|m| m.id)
                    .collect();
                if all.is_empty() {
                    return;
                }
                let cur = self
                    .selected_migration()
                    .and_then(|m| all.iter().position(|&i| i == m.id))
                    .unwrap_or(0);
                let next = match a {
                    Action::Up => cur.saturating_sub(1),
                    Action::Down => (cur + 1).min(all.len() - 1),
                    Action::Top => 0,
                    Action::Bottom => all.len() - 1,
                    _ => cur,
                };
                self.sel_migration = Some(all[next]);
            }
            View::Volumes => {
                let n = snap.volumes.len();
                self.scroll_volumes = scroll(self.scroll_volumes, a, n);
            }
            View::History => {
                let n = self.past.len();
                if !self.past_open {
                    self.sel_past = list_step(
                        a,
                        self.sel_past.min(n.saturating_sub(1)),
                        n.saturating_sub(1),
                    );
                }
            }
            View::Events => {
                let n = self.events_shown().len();
                self.sel_event = list_step(
                    a,
                    self.sel_event.min(n.saturating_sub(1)),
                    n.saturating_sub(1),
                );
            }
        }
    }

    // ----- mouse -----

    fn on_mouse(&mut self, m: MouseEvent, hit: &HitMap, out: &mut Update) {
        let (x, y) = (m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                out.redraw = true;
                if let Mode::Drag(d) = &mut self.mode
                    && d.listed()
                    && let Some(n) = hit.node_at(x, y)
                {
                    // A click on a ranked target selects it; on the selected one, drops.
                    if d.over.as_deref() == Some(n) {
                        let d = d.clone();
                        self.drop_on(&d, d.over.clone());
                    } else {
                        d.over = Some(n.to_string());
                    }
                    return;
                }
                if !matches!(self.mode, Mode::Normal) {
                    return;
                }
                match hit.at(x, y).cloned() {
                    Some(Target::Vm(vm)) => {
                        self.select_vm(&vm);
                        if !self.settings.read_only {
                            self.press = Some(Press { vm, x, y });
                        }
                    }
                    Some(Target::Node(n)) => {
                        if let Some(i) = self.node_names().iter().position(|x| *x == n) {
                            self.sel_node = i;
                            self.sel_vm = self.first_vm_of_selected_node();
                        }
                    }
                    Some(Target::Tab(v)) => self.view = v,
                    Some(Target::Column(c)) => self.sort_nodes(self.node_sort.click(c)),
                    Some(Target::Migration(id)) => self.sel_migration = Some(id),
                    _ => {}
                }
            }
            MouseEventKind::Drag(MouseButton::Left) => {
                if let Mode::Drag(d) = &mut self.mode {
                    d.pointer = Some((x, y));
                    d.over = hit.node_at(x, y).map(String::from);
                    out.redraw = true;
                    return;
                }
                let Some(p) = &self.press else { return };
                if p.x.abs_diff(x) + p.y.abs_diff(y) >= 1 {
                    let vm = p.vm.clone();
                    self.press = None;
                    if let Some(snap) = &self.snap
                        && let Some(mut d) =
                            Drag::new(snap, &vm, self.settings.defaults.copy_storage)
                    {
                        d.pointer = Some((x, y));
                        d.over = hit.node_at(x, y).map(String::from);
                        self.mode = Mode::Drag(d);
                        out.redraw = true;
                    }
                }
            }
            MouseEventKind::Up(MouseButton::Left) => {
                self.press = None;
                if let Mode::Drag(d) = self.mode.clone()
                    && d.pointer.is_some()
                {
                    let over = hit.node_at(x, y).map(String::from);
                    self.drop_on(&d, over);
                    out.redraw = true;
                }
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                if let Mode::Drag(d) = &mut self.mode
                    && d.listed()
                {
                    let cur = d.selected_row().unwrap_or(0);
                    let last = d.shown.len().saturating_sub(1);
                    d.select_row(if m.kind == MouseEventKind::ScrollDown {
                        (cur + 1).min(last)
                    } else {
                        cur.saturating_sub(1)
                    });
                    out.redraw = true;
                } else if matches!(self.mode, Mode::Normal) {
                    let a = if m.kind == MouseEventKind::ScrollDown {
                        Action::Down
                    } else {
                        Action::Up
                    };
                    self.navigate(a);
                    out.redraw = true;
                }
            }
            _ => {}
        }
    }

    fn select_vm(&mut self, vm: &str) {
        let Some(s) = &self.snap else { return };
        if let Some(v) = s.vm(vm) {
            self.sel_node = s
                .nodes
                .iter()
                .position(|n| n.name == v.node)
                .unwrap_or(self.sel_node);
            self.sel_vm = Some(vm.to_string());
        }
    }
}

/// "s" for counts other than one.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn scroll(cur: usize, a: Action, n: usize) -> usize {
    let last = n.saturating_sub(1);
    match a {
        Action::Up => cur.saturating_sub(1),
        Action::Down => (cur + 1).min(last),
        Action::PageUp => cur.saturating_sub(10),
        Action::PageDown => (cur + 10).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => cur,
    }
}

/// Where a list's selection goes with `a`, from `cur` in `0..=last`.
fn list_step(a: Action, cur: usize, last: usize) -> usize {
    match a {
        Action::Up => cur.saturating_sub(1),
        Action::Down => (cur + 1).min(last),
        Action::PageUp => cur.saturating_sub(20),
        Action::PageDown => (cur + 20).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        _ => cur,
    }
}
