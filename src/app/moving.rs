//! A move in progress: picking a VM up (the ranked target list), the keys
//! that choose its node, and dropping it (the confirm dialog, or why not).

use crossterm::event::KeyEvent;

use super::command::LineEdit;
use super::navigation::list_step;
use super::nodes;
use super::{Action, App, Confirm, Drag, Mode, View};

impl App {
    pub(super) fn start_keyboard_drag(&mut self) {
        let Some(snap) = &self.snap else { return };
        let Some(vm) = self.sel_vm.clone() else {
            self.flash("select a VM first (arrows), then m", true);
            return;
        };
        if let Some(mut d) = Drag::with_leave(
            snap,
            &vm,
            self.settings.defaults.copy_storage,
            &self.rule_leave,
        ) {
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

    pub(super) fn on_drag_key(&mut self, mut d: Drag, k: &KeyEvent, action: Option<Action>) {
        // Typing narrows the ranked list of a keyboard move.
        if d.listed() && LineEdit::narrows(k) {
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
    pub(super) fn follow_drag(&mut self, d: &Drag) {
        if let Some(i) = d.over.as_ref().and_then(|o| self.node_index(o)) {
            self.sel_node = i;
        }
    }

    /// Ends a drag over `target`: the confirm dialog, or why not.
    pub(super) fn drop_on(&mut self, d: &Drag, target: Option<String>) {
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
                    Some(mut c) => {
                        // The operator's `:override` goes with this move.
                        if !self.rule_leave.rules.is_empty() {
                            c.overrides = self.rule_leave.clone();
                            c.recompute(snap, &self.history);
                        }
                        self.mode = Mode::Confirm(Box::new(c));
                    }
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
}
