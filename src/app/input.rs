//! Keys: text entry first, then dialog answers (yes/no through the key
//! map), then the actions of the key map in normal mode.

use crossterm::event::{KeyCode, KeyEvent};

use super::nodes;
use super::{Action, App, Cmd, CommandLine, Detail, LineEdit, Mode, Update, View, drag, plural};
use crate::cluster::units;

impl App {
    pub(super) fn on_key(&mut self, k: KeyEvent, out: &mut Update) {
        if self.on_text_entry_key(k, out) {
            return;
        }
        let action = self.settings.keys.action(&k);
        if self.on_dialog_key(k, action, out) {
            return;
        }
        let Some(action) = action else { return };
        self.on_action(action, out);
    }

    /// Text entry first: typed characters are text, not actions. Whether
    /// the key was taken.
    fn on_text_entry_key(&mut self, k: KeyEvent, out: &mut Update) -> bool {
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
                return true;
            }
            Mode::Command(_) => {
                self.on_command_key(k, out);
                return true;
            }
            Mode::ConfirmVm(_) => {
                self.on_vm_confirm_key(k, out);
                return true;
            }
            Mode::ConfirmRecover(_) => {
                self.on_recover_confirm_key(k, out);
                return true;
            }
            _ => {}
        }
        false
    }

    /// Dialog answers, through the key map: yes (y) or the confirm key
    /// (enter); no (n) or the cancel key (esc). Whether a dialog took the key.
    fn on_dialog_key(&mut self, k: KeyEvent, action: Option<Action>, out: &mut Update) -> bool {
        let yes = matches!(action, Some(Action::Yes | Action::Confirm));
        let no = matches!(action, Some(Action::No | Action::Cancel));
        match self.mode.clone() {
            Mode::ConfirmQuit => {
                if yes || action == Some(Action::Quit) {
                    self.quit = true;
                    out.cmds.push(Cmd::Quit);
                } else if no {
                    self.mode = Mode::Normal;
                }
                return true;
            }
            Mode::ConfirmDiskMove(c) => {
                if yes || no {
                    self.on_disk_move_answer(*c, yes, out);
                }
                return true;
            }
            Mode::ConfirmAbortDiskMove(a) => {
                if yes || no {
                    self.on_abort_disk_move_answer(*a, yes, out);
                }
                return true;
            }
            Mode::PickDisk(p) => {
                self.on_disk_pick_key(*p, &k, action);
                return true;
            }
            Mode::ConfirmAbort(id) => {
                if yes {
                    let cmd = self.change_for(id, "abort", |r| Cmd::Abort(r, id));
                    out.cmds.push(cmd);
                    self.mode = Mode::Normal;
                } else if no {
                    self.mode = Mode::Normal;
                }
                return true;
            }
            Mode::ConfirmPostcopy(id) => {
                // Irreversible: only the yes key switches, never Enter.
                if action == Some(Action::Yes) {
                    let cmd = self.change_for(id, "switch to post-copy", |r| Cmd::Postcopy(r, id));
                    out.cmds.push(cmd);
                    self.mode = Mode::Normal;
                } else if no {
                    self.mode = Mode::Normal;
                }
                return true;
            }
            Mode::ConfirmDrain(plan) => {
                self.on_drain_answer(&plan, yes, no, out);
                return true;
            }
            Mode::Confirm(c) => {
                self.on_move_confirm_key(c, action, yes, no, out);
                return true;
            }
            Mode::Help(scroll) => {
                match action {
                    Some(Action::Down) => self.mode = Mode::Help(scroll.saturating_add(1)),
                    Some(Action::Up) => self.mode = Mode::Help(scroll.saturating_sub(1)),
                    Some(Action::PageDown) => self.mode = Mode::Help(scroll.saturating_add(10)),
                    Some(Action::PageUp) => self.mode = Mode::Help(scroll.saturating_sub(10)),
                    // Any other key, q included, closes the help (and only it).
                    _ => self.mode = Mode::Normal,
                }
                return true;
            }
            Mode::About => {
                self.mode = Mode::Normal;
                if action == Some(Action::Quit) {
                    self.ask_quit(out);
                }
                return true;
            }
            Mode::Drag(d) => {
                self.on_drag_key(d, &k, action);
                return true;
            }
            Mode::Detail(d) => {
                self.on_detail_key(d, action, out);
                return true;
            }
            _ => {}
        }
        false
    }

    /// The drain question's answer: yes cordons the node and starts the moves.
    fn on_drain_answer(
        &mut self,
        plan: &crate::plan::DrainPlan,
        yes: bool,
        no: bool,
        out: &mut Update,
    ) {
        if yes && !plan.moves.is_empty() {
            // Cordoned first: nothing moves onto it meanwhile.
            out.cmds.push(self.cordon_cmd(&plan.node, true));
            self.log_event(
                format!(
                    "drain of node {} started: cordoned, {} move{} to run{}",
                    plan.node,
                    plan.moves.len(),
                    plural(plan.moves.len()),
                    if plan.stuck.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} VM{} cannot move",
                            plan.stuck.len(),
                            plural(plan.stuck.len())
                        )
                    }
                ),
                nodes::Level::Ok,
            );
            self.start_drain(plan);
            self.mode = Mode::Normal;
        } else if yes || no {
            self.mode = Mode::Normal;
        }
    }

    /// A key in the move dialog: y or the confirm key starts the migration,
    /// the others choose and change its options.
    fn on_move_confirm_key(
        &mut self,
        mut c: Box<drag::Confirm>,
        action: Option<Action>,
        yes: bool,
        no: bool,
        out: &mut Update,
    ) {
        match action {
            // y, or the confirm key (enter).
            _ if yes => {
                match &c.placement {
                    Ok(_) if !self.settings.read_only => {
                        // An `:override` serves one move.
                        if !c.overrides.rules.is_empty() {
                            self.rule_leave = Default::default();
                        }
                        if let Ok(p) = &c.placement {
                            self.follow_later(&c.vm, &c.to, &p.followers);
                        }
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
            Some(Action::Left) | Some(Action::DowntimeDown) | Some(Action::BandwidthDown) => {
                c.change(false)
            }
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
    }

    /// A key in a detail panel: scroll, copy, close; a VM's detail moves or
    /// aborts its disk moves.
    fn on_detail_key(&mut self, mut d: Box<Detail>, action: Option<Action>, out: &mut Update) {
        match (action, d.vm.clone()) {
            // A VM's detail: its disk moves.
            (Some(Action::MoveDisk), Some(vm)) => {
                self.ask_disk_move(&vm, true);
                return;
            }
            (Some(Action::Abort), Some(vm)) => {
                self.ask_abort_disk_move(&vm, true);
                return;
            }
            _ => {}
        }
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
    }

    /// A key while the window is too small to show what it would act on:
    /// only quitting (and its answer) and backing out of a dialog work.
    pub(super) fn on_key_too_small(&mut self, k: KeyEvent, out: &mut Update) {
        let action = self.settings.keys.action(&k);
        match (&self.mode, action) {
            (Mode::ConfirmQuit, Some(Action::Yes | Action::Quit)) => {
                self.quit = true;
                out.cmds.push(Cmd::Quit);
            }
            (Mode::Normal, Some(Action::Quit)) => self.ask_quit(out),
            (_, Some(Action::Cancel)) => self.mode = Mode::Normal,
            _ => {}
        }
    }

    pub(super) fn on_action(&mut self, a: Action, out: &mut Update) {
        // A refusal goes with the next action.
        self.flash.take_if(|f| f.refusal);
        if a.mutates() && self.refuses_in_read_only(a) {
            return;
        }
        match a {
            Action::Quit => self.ask_quit(out),
            // Answers only mean something in a question.
            Action::Yes | Action::No => {}
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
            Action::Problems => self.toggle_problems(),
            Action::SortNext | Action::SortReverse => self.on_sort_key(a),
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
            Action::ToggleMouse => self.toggle_mouse(out),
            Action::Refresh => out.cmds.push(Cmd::Refresh),
            Action::Redraw => out.cmds.push(Cmd::Redraw),
            Action::StartVm
            | Action::ShutdownVm
            | Action::RebootVm
            | Action::PowerOffVm
            | Action::Console
            | Action::MoveDisk => self.on_vm_key(a, out),
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
            Action::Confirm => self.open_selected(),
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

    /// Read-only refuses an action that changes the cluster, saying what
    /// was refused; whether it did.
    fn refuses_in_read_only(&mut self, a: Action) -> bool {
        let key = self.settings.keys.first_key(a);
        let what = match (&self.sel_vm, a) {
            (
                Some(vm),
                Action::Move
                | Action::StartVm
                | Action::ShutdownVm
                | Action::RebootVm
                | Action::PowerOffVm
                | Action::Console
                | Action::MoveDisk,
            ) => format!("{key} ({} {vm})", a.hint()),
            _ => format!("{key} ({})", a.hint()),
        };
        self.refuse_read_only(&what)
    }

    /// `!`: only what is in trouble, or everything again.
    fn toggle_problems(&mut self) {
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

    /// Sorting the nodes view by the next column, or the other way round.
    fn on_sort_key(&mut self, a: Action) {
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

    fn toggle_mouse(&mut self, out: &mut Update) {
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

    /// Enter: what the selection leads to in this view (a node's card, a
    /// VM's migration or detail, an event's or a migration's detail, a
    /// past migration).
    fn open_selected(&mut self) {
        match self.view {
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
        }
    }

    pub(super) fn on_migration_action(&mut self, a: Action, out: &mut Update) {
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

    pub(super) fn ask_quit(&mut self, out: &mut Update) {
        if self.running_migrations().is_empty() && self.running_storage_moves().is_empty() {
            self.quit = true;
            out.cmds.push(Cmd::Quit);
        } else {
            self.mode = Mode::ConfirmQuit;
        }
    }

    /// In read-only mode, refuses `what` (as the operator asked for it:
    /// the key or the `:` line) and says so; the refusal goes with the
    /// next command or key.
    pub(crate) fn refuse_read_only(&mut self, what: &str) -> bool {
        if self.settings.read_only {
            self.flash(
                format!("read-only: {what} refused; vmshift changes nothing in this mode"),
                true,
            );
            if let Some(f) = &mut self.flash {
                f.refusal = true;
            }
        }
        self.settings.read_only
    }
}
