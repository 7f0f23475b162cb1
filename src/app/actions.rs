//! Actions on a VM (start, shutdown, reboot, force off, console) and on a
//! node (cordon, uncordon): the keys, the `:` commands and their confirm
//! dialogs. Every one is refused in read-only mode; force off asks for the
//! VM's name, typed.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::command::Verb;
use super::{Action, App, Cmd, LineEdit, Mode, Pending, Update};
use crate::cluster::{VmAction, VmState};

/// A VM action waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq)]
pub struct VmConfirm {
    pub vm: String,
    pub node: String,
    pub action: VmAction,
    /// Force off: what has been typed of the VM's name.
    pub typed: LineEdit,
}

impl VmConfirm {
    /// Force off needs the name typed; the others a y.
    pub fn needs_name(&self) -> bool {
        self.action == VmAction::PowerOff
    }
}

/// The flash line for a failed request `p`.
pub(super) fn failure_text(p: &Pending, error: &str) -> String {
    match p {
        Pending::VmAction { vm, action } => format!("cannot {} {vm}: {error}", action.verb()),
        Pending::Cordon { node, on } => format!(
            "cannot {} node {node}: {error}",
            if *on { "cordon" } else { "uncordon" }
        ),
        Pending::Console { vm } => format!("cannot open the console of {vm}: {error}"),
        Pending::Maintenance { on } => format!(
            "cannot turn maintenance mode {}: {error}",
            if *on { "on" } else { "off" }
        ),
        Pending::Start { vm, to } => format!("cannot migrate {vm} to {to}: {error}"),
        Pending::MoveDisk { vm, disk, to } => {
            format!("cannot move the disk of {vm} ({disk} → {to}): {error}")
        }
        Pending::AbortDiskMove { vm } => format!("cannot abort the disk move of {vm}: {error}"),
        Pending::Change { what, vm } => format!("cannot {what} the migration of {vm}: {error}"),
        Pending::Recover { node } => format!("cannot recover the VMs of {node}: {error}"),
    }
}

/// The VM actions the footer offers for the selected VM now.
pub fn footer_vm_actions(app: &App) -> Vec<Action> {
    // A VM of a lost node takes no action there (`:recover` is the way).
    let state = app
        .sel_vm
        .as_ref()
        .and_then(|n| app.snap.as_ref()?.vm(n))
        .filter(|v| v.lost.is_none())
        .map(|v| v.state);
    match state {
        Some(VmState::Stopped) => vec![Action::StartVm],
        Some(VmState::Running) => vec![Action::ShutdownVm, Action::Console],
        _ => Vec::new(),
    }
}

impl App {
    /// A VM key (start, shutdown, reboot, force off, console) on the
    /// selected VM.
    pub(super) fn on_vm_key(&mut self, a: Action, out: &mut Update) {
        let Some(vm) = self.sel_vm.clone() else {
            self.flash(
                format!(
                    "select a VM first (arrows), then {}",
                    self.settings.keys.first_key(a)
                ),
                true,
            );
            return;
        };
        match a {
            Action::StartVm => self.ask_vm_action(&vm, VmAction::Start, out),
            Action::ShutdownVm => self.ask_vm_action(&vm, VmAction::Shutdown, out),
            Action::RebootVm => self.ask_vm_action(&vm, VmAction::Reboot, out),
            Action::PowerOffVm => self.ask_vm_action(&vm, VmAction::PowerOff, out),
            Action::MoveDisk => self.ask_disk_move(&vm, false),
            _ => self.ask_console(&vm, out),
        }
    }

    /// A `:` command of this module, on an exact name.
    pub(super) fn run_action_verb(&mut self, verb: Verb, name: String, out: &mut Update) {
        match verb {
            Verb::Start => self.ask_vm_action(&name, VmAction::Start, out),
            Verb::Shutdown => self.ask_vm_action(&name, VmAction::Shutdown, out),
            Verb::Reboot => self.ask_vm_action(&name, VmAction::Reboot, out),
            Verb::PowerOff => self.ask_vm_action(&name, VmAction::PowerOff, out),
            Verb::Console => self.ask_console(&name, out),
            Verb::Cordon | Verb::Uncordon => {
                let on = verb == Verb::Cordon;
                let already = self
                    .snap
                    .as_ref()
                    .and_then(|s| s.node(&name))
                    .map(|n| n.cordon.is_some());
                if already == Some(on) {
                    self.flash(
                        format!(
                            "node {name} is {} already",
                            if on { "cordoned" } else { "not cordoned" }
                        ),
                        false,
                    );
                    return;
                }
                let cmd = self.cordon_cmd(&name, on);
                out.cmds.push(cmd);
                self.log_event(
                    format!(
                        "{} of node {name} requested",
                        if on { "cordon" } else { "uncordon" }
                    ),
                    super::nodes::Level::Ok,
                );
                self.flash(
                    format!(
                        "{} node {name}…",
                        if on { "cordoning" } else { "uncordoning" }
                    ),
                    false,
                );
            }
            _ => {}
        }
    }

    /// `Cmd::SetCordon` with its request id.
    pub(super) fn cordon_cmd(&mut self, node: &str, on: bool) -> Cmd {
        let req = self.request(Pending::Cordon {
            node: node.into(),
            on,
        });
        Cmd::SetCordon(req, node.into(), on)
    }

    fn vm_cmd(&mut self, vm: &str, action: VmAction) -> Cmd {
        let req = self.request(Pending::VmAction {
            vm: vm.into(),
            action,
        });
        Cmd::VmAction(req, vm.into(), action)
    }

    /// Checks `action` on `vm`; a start goes at once, the others ask.
    fn ask_vm_action(&mut self, vm: &str, action: VmAction, out: &mut Update) {
        if self.refuse_read_only(&format!("the {} of {vm}", action.noun())) {
            return;
        }
        let Some(snap) = &self.snap else {
            self.flash("no cluster snapshot yet; try again in a moment", true);
            return;
        };
        let Some(v) = snap.vm(vm) else {
            self.flash(format!("{vm} is gone from the cluster"), true);
            return;
        };
        if let Err(why) = crate::plan::check_vm_action(snap, v, action) {
            self.flash(why, true);
            return;
        }
        let node = v.node.clone();
        if action == VmAction::Start {
            let cmd = self.vm_cmd(vm, action);
            out.cmds.push(cmd);
            self.flash(format!("starting {vm} on {node}…"), false);
            return;
        }
        self.mode = Mode::ConfirmVm(Box::new(VmConfirm {
            vm: vm.into(),
            node,
            action,
            typed: LineEdit::default(),
        }));
    }

    fn ask_console(&mut self, vm: &str, out: &mut Update) {
        if self.refuse_read_only(&format!("the console of {vm}")) {
            return;
        }
        let state = self.snap.as_ref().and_then(|s| s.vm(vm)).map(|v| v.state);
        match state {
            None => self.flash(format!("{vm} is gone from the cluster"), true),
            Some(VmState::Running | VmState::Paused | VmState::Migrating) => {
                let req = self.request(Pending::Console { vm: vm.into() });
                out.cmds.push(Cmd::Console(req, vm.into()));
                self.flash(format!("opening the console of {vm}…"), false);
            }
            Some(s) => self.flash(
                format!(
                    "{vm} is {}; start it first ({}) to reach its console",
                    s.label(),
                    self.settings.keys.first_key(Action::StartVm)
                ),
                true,
            ),
        }
    }

    /// A key while a VM action waits for its yes (or its typed name).
    pub(super) fn on_vm_confirm_key(&mut self, k: KeyEvent, out: &mut Update) {
        let Mode::ConfirmVm(c) = &mut self.mode else {
            return;
        };
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let cancel = k.code == KeyCode::Esc || (ctrl && k.code == KeyCode::Char('c'));
        if cancel {
            let text = format!("{} of {} cancelled", c.action.noun(), c.vm);
            self.mode = Mode::Normal;
            self.flash(text, false);
            return;
        }
        if c.needs_name() {
            if k.code != KeyCode::Enter {
                c.typed.key(&k);
                return;
            }
            if !crate::cluster::text::typed_names(c.typed.text.trim(), &c.vm) {
                let text = format!(
                    "type {} exactly, then Enter, to force it off (Esc cancels)",
                    c.vm
                );
                self.flash(text, true);
                return;
            }
        } else {
            let yes = matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y'))
                || self.settings.keys.action(&k) == Some(Action::Confirm);
            let no = matches!(k.code, KeyCode::Char('n') | KeyCode::Char('N'))
                || self.settings.keys.action(&k) == Some(Action::Cancel);
            if no {
                let text = format!("{} of {} cancelled", c.action.noun(), c.vm);
                self.mode = Mode::Normal;
                self.flash(text, false);
                return;
            }
            if !yes {
                return;
            }
        }
        let (vm, action) = (c.vm.clone(), c.action);
        self.mode = Mode::Normal;
        let cmd = self.vm_cmd(&vm, action);
        out.cmds.push(cmd);
        self.flash(format!("{} of {vm} requested…", action.noun()), false);
    }
}
