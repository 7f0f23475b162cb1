//! The mouse: press, drag and release over what the hit map says is there.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::{Action, App, Drag, HitMap, Mode, Press, Target, Update};

impl App {
    pub(super) fn on_mouse(&mut self, m: MouseEvent, hit: &HitMap, out: &mut Update) {
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
                        && let Some(mut d) = Drag::with_leave(
                            snap,
                            &vm,
                            self.settings.defaults.copy_storage,
                            &self.rule_leave,
                        )
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
}
