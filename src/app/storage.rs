//! Storage moves in the view: a running VM's disk moved to another volume
//! while it runs (block copy, then pivot), like `vmshift move-disk`.
//!
//! ```text
//! VM detail ─V─▶ pick the disk (skipped with one) ─Enter─▶ pick the volume ─Enter─▶ confirm ─y─▶ Cmd::MoveDisk
//! VM detail ─a─▶ abort? ─y─▶ Cmd::AbortDiskMove          (Esc anywhere: back, nothing sent)
//! :move-disk VM DISK VOLUME ▶ confirm      :abort-move-disk VM ▶ abort?
//! ```
//!
//! The volumes are listed allowed first (cluster-shared before shared LUNs
//! before local ones, then most room), refused ones below with the
//! planner's reason. Progress comes with the snapshots and the worker's
//! reads of running moves (`Msg::StorageProgress`); the backends log the
//! start and the end (pivot or not) in the event log.

use crossterm::event::KeyEvent;

use super::command::{LineEdit, match_rank};
use super::navigation::list_step;
use super::{Action, App, Cmd, Mode, Pending, Update};
use crate::cluster::{ClusterSnapshot, StorageMove, StorageMoveId, VolumeKind, units};
use crate::plan;

/// Choosing what to move: the disk (when the VM has more than one), then
/// the volume it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskPick {
    pub vm: String,
    pub node: String,
    /// The disk chosen (named by the volume it is on); `None` while the
    /// disk is being chosen.
    pub disk: Option<String>,
    /// The rows of this step, in the order shown.
    pub rows: Vec<PickRow>,
    /// What was typed to narrow the rows.
    pub query: LineEdit,
    /// Indices into `rows` that match `query`.
    pub shown: Vec<usize>,
    /// The selected position in `shown`.
    pub sel: usize,
    /// Opened from the VM's detail: it comes back when this ends.
    pub from_detail: bool,
}

/// A disk, or a volume the disk may go to.
#[derive(Debug, Clone, PartialEq)]
pub struct PickRow {
    pub name: String,
    /// The volume's kind (and room), or the disk's size.
    pub note: String,
    /// A disk: its size. A volume: the bytes to copy, or why not.
    pub verdict: Result<u64, String>,
}

/// A disk move waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskMovePlan {
    pub vm: String,
    pub disk: String,
    pub to: String,
    pub bytes: u64,
    /// The plan in one sentence (as the CLI prints it).
    pub sentence: String,
    pub from_detail: bool,
}

/// An abort of a storage move waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq)]
pub struct AbortDiskMove {
    pub id: StorageMoveId,
    pub vm: String,
    pub from: String,
    pub to: String,
    pub from_detail: bool,
}

impl DiskPick {
    /// The picker for `vm`, or why its disks cannot move now.
    pub fn new(snap: &ClusterSnapshot, vm: &str, from_detail: bool) -> Result<DiskPick, String> {
        let v = snap
            .vm(vm)
            .ok_or_else(|| format!("{vm} is gone from the cluster"))?;
        plan::check_disk_move_vm(snap, v)?;
        if v.disks.is_empty() {
            return Err(format!("{vm} has no disks to move"));
        }
        let mut p = DiskPick {
            vm: vm.into(),
            node: v.node.clone(),
            disk: None,
            rows: Vec::new(),
            query: LineEdit::default(),
            shown: Vec::new(),
            sel: 0,
            from_detail,
        };
        if let [d] = v.disks.as_slice() {
            p.disk = Some(d.volume.clone());
        }
        p.refresh(snap);
        Ok(p)
    }

    /// Rebuilds the rows from `snap` (a new snapshot: room and reasons
    /// change), keeping the selection on the same name when it is shown.
    pub fn refresh(&mut self, snap: &ClusterSnapshot) {
        let keep = self.selected().map(|r| r.name.clone());
        self.rows = match &self.disk {
            None => disk_rows(snap, &self.vm),
            Some(d) => volume_rows(snap, &self.vm, d),
        };
        self.narrow();
        if let Some(k) = keep
            && let Some(i) = self.shown.iter().position(|&i| self.rows[i].name == k)
        {
            self.sel = i;
        }
    }

    /// Applies `query`: an exact name first, the rest in their order.
    fn narrow(&mut self) {
        let q = self.query.text.trim();
        let mut exact = Vec::new();
        let mut rest = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            match (q.is_empty(), match_rank(q, &r.name)) {
                (true, _) => rest.push(i),
                (false, Some(0)) => exact.push(i),
                (false, Some(_)) => rest.push(i),
                (false, None) => {}
            }
        }
        exact.extend(rest);
        self.shown = exact;
        self.sel = 0;
    }

    pub fn selected(&self) -> Option<&PickRow> {
        self.shown.get(self.sel).map(|&i| &self.rows[i])
    }

    /// Allowed rows and refused rows.
    pub fn counts(&self) -> (usize, usize) {
        let ok = self.rows.iter().filter(|r| r.verdict.is_ok()).count();
        (ok, self.rows.len() - ok)
    }
}

/// The VM's disks, in its order.
fn disk_rows(snap: &ClusterSnapshot, vm: &str) -> Vec<PickRow> {
    let Some(v) = snap.vm(vm) else {
        return Vec::new();
    };
    v.disks
        .iter()
        .map(|d| PickRow {
            name: d.volume.clone(),
            note: format!(
                "{}, {}",
                snap.volume(&d.volume).map_or("", |x| x.kind.label()),
                units::bytes(d.size)
            ),
            verdict: Ok(d.size),
        })
        .collect()
}

/// Every other volume for the disk on `disk`: allowed ones first
/// (cluster-shared, then shared LUNs, then local; most room first within
/// a kind), refused ones below in the snapshot's order with the reason.
fn volume_rows(snap: &ClusterSnapshot, vm: &str, disk: &str) -> Vec<PickRow> {
    let Some(v) = snap.vm(vm) else {
        return Vec::new();
    };
    let kind_rank = |k: VolumeKind| match k {
        VolumeKind::ClusterShared => 0,
        VolumeKind::SharedLun => 1,
        VolumeKind::Local => 2,
    };
    let mut rows: Vec<(bool, u8, u64, usize, PickRow)> = snap
        .volumes
        .iter()
        .enumerate()
        .filter(|(_, t)| t.name != disk)
        .map(|(i, t)| {
            let verdict = plan::check_disk_move(snap, v, disk, &t.name);
            let row = PickRow {
                name: t.name.clone(),
                note: format!("{}, {} free", t.kind.label(), units::bytes(t.free())),
                verdict,
            };
            (row.verdict.is_err(), kind_rank(t.kind), t.free(), i, row)
        })
        .collect();
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0).then(if a.0 {
            a.3.cmp(&b.3)
        } else {
            a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.3.cmp(&b.3))
        })
    });
    rows.into_iter().map(|r| r.4).collect()
}

impl App {
    /// Storage moves that have not ended.
    pub fn running_storage_moves(&self) -> Vec<&StorageMove> {
        self.snap
            .as_ref()
            .map(|s| {
                s.storage_moves
                    .iter()
                    .filter(|m| !m.is_finished())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `V` on a VM (its detail, or the selected one): the picker.
    pub(super) fn ask_disk_move(&mut self, vm: &str, from_detail: bool) {
        if self.refuse_read_only(&format!("a disk move of {vm}")) {
            return;
        }
        let Some(snap) = &self.snap else {
            self.flash("no cluster snapshot yet; try again in a moment", true);
            return;
        };
        match DiskPick::new(snap, vm, from_detail) {
            Ok(p) => self.mode = Mode::PickDisk(Box::new(p)),
            Err(why) => self.flash(why, true),
        }
    }

    /// `:move-disk VM DISK VOLUME`: the confirm, or why not.
    pub(super) fn ask_disk_move_to(&mut self, vm: &str, disk: &str, to: &str) {
        let Some(snap) = &self.snap else { return };
        let Some(v) = snap.vm(vm) else { return };
        match plan::check_disk_move(snap, v, disk, to) {
            Ok(bytes) => {
                self.mode = Mode::ConfirmDiskMove(Box::new(DiskMovePlan {
                    vm: vm.into(),
                    disk: disk.into(),
                    to: to.into(),
                    bytes,
                    sentence: plan::disk_move_sentence(v, disk, bytes, to),
                    from_detail: false,
                }))
            }
            Err(why) => self.report(format!("cannot move the disk of {vm}: {why}"), true),
        }
    }

    /// A key while the picker is open: typing narrows, ↑↓ pick, Enter
    /// chooses, Esc goes back.
    pub(super) fn on_disk_pick_key(&mut self, mut p: DiskPick, k: &KeyEvent, a: Option<Action>) {
        if LineEdit::narrows(k) {
            p.query.key(k);
            p.narrow();
            self.mode = Mode::PickDisk(Box::new(p));
            return;
        }
        match a {
            Some(Action::Cancel | Action::Quit) => {
                let text = format!("disk move of {} cancelled", p.vm);
                self.back(&p.vm, p.from_detail);
                self.flash(text, false);
                return;
            }
            Some(Action::Confirm) => {
                self.choose(p);
                return;
            }
            Some(a) => {
                let a = match a {
                    Action::Left | Action::PrevView => Action::Up,
                    Action::Right | Action::NextView => Action::Down,
                    a => a,
                };
                p.sel = list_step(a, p.sel, p.shown.len().saturating_sub(1));
            }
            None => {}
        }
        self.mode = Mode::PickDisk(Box::new(p));
    }

    /// Enter in the picker: the disk goes on to the volumes; an allowed
    /// volume goes on to the confirm.
    fn choose(&mut self, mut p: DiskPick) {
        let Some(row) = p.selected().cloned() else {
            self.flash(
                format!(
                    "nothing matches {:?}; Backspace to widen the list",
                    p.query.text
                ),
                true,
            );
            self.mode = Mode::PickDisk(Box::new(p));
            return;
        };
        let Some(snap) = &self.snap else { return };
        match (&p.disk, &row.verdict) {
            (None, _) => {
                p.disk = Some(row.name);
                p.query = LineEdit::default();
                p.refresh(snap);
                self.mode = Mode::PickDisk(Box::new(p));
            }
            (Some(disk), Ok(bytes)) => {
                let Some(v) = snap.vm(&p.vm) else {
                    self.mode = Mode::Normal;
                    self.flash(format!("{} is gone from the cluster", p.vm), true);
                    return;
                };
                self.mode = Mode::ConfirmDiskMove(Box::new(DiskMovePlan {
                    sentence: plan::disk_move_sentence(v, disk, *bytes, &row.name),
                    vm: p.vm.clone(),
                    disk: disk.clone(),
                    to: row.name,
                    bytes: *bytes,
                    from_detail: p.from_detail,
                }));
            }
            (Some(_), Err(why)) => {
                self.flash(format!("cannot move it to {}: {why}", row.name), true);
                self.mode = Mode::PickDisk(Box::new(p));
            }
        }
    }

    /// y (or Enter) / n (or Esc) on a disk move's confirm.
    pub(super) fn on_disk_move_answer(&mut self, c: DiskMovePlan, yes: bool, out: &mut Update) {
        self.back(&c.vm, c.from_detail);
        if !yes {
            self.flash(format!("disk move of {} cancelled", c.vm), false);
            return;
        }
        if self.refuse_read_only(&format!("the disk move of {}", c.vm)) {
            return;
        }
        // Checked again: the cluster may have changed while it waited.
        let check = self
            .snap
            .as_ref()
            .and_then(|s| Some(plan::check_disk_move(s, s.vm(&c.vm)?, &c.disk, &c.to)));
        match check {
            Some(Ok(_)) => {
                let req = self.request(Pending::MoveDisk {
                    vm: c.vm.clone(),
                    disk: c.disk.clone(),
                    to: c.to.clone(),
                });
                out.cmds.push(Cmd::MoveDisk(
                    req,
                    c.vm.clone(),
                    c.disk.clone(),
                    c.to.clone(),
                ));
                self.flash(
                    format!("starting the disk move of {}: {} → {}…", c.vm, c.disk, c.to),
                    false,
                );
            }
            Some(Err(why)) => self.report(format!("cannot move the disk of {}: {why}", c.vm), true),
            None => self.flash(format!("{} is gone from the cluster", c.vm), true),
        }
    }

    /// `a` on a VM's detail, or `:abort-move-disk VM`: asks first.
    pub(super) fn ask_abort_disk_move(&mut self, vm: &str, from_detail: bool) {
        if self.refuse_read_only(&format!("the abort of the disk move of {vm}")) {
            return;
        }
        let m = self
            .snap
            .as_ref()
            .and_then(|s| s.active_storage_move_of(vm))
            .cloned();
        match m {
            Some(m) => {
                self.mode = Mode::ConfirmAbortDiskMove(Box::new(AbortDiskMove {
                    id: m.id,
                    vm: m.vm,
                    from: m.from,
                    to: m.to,
                    from_detail,
                }))
            }
            None => self.flash(format!("no disk of {vm} is moving"), true),
        }
    }

    /// y / n on the abort question.
    pub(super) fn on_abort_disk_move_answer(
        &mut self,
        a: AbortDiskMove,
        yes: bool,
        out: &mut Update,
    ) {
        self.back(&a.vm, a.from_detail);
        if !yes {
            return;
        }
        let req = self.request(Pending::AbortDiskMove { vm: a.vm.clone() });
        out.cmds.push(Cmd::AbortDiskMove(req, a.id));
        self.flash(
            format!(
                "aborting the disk move of {} before its pivot ({} stays on {})…",
                a.vm, a.vm, a.from
            ),
            false,
        );
    }

    /// Back where the dialog came from: the VM's detail, or the view.
    fn back(&mut self, vm: &str, to_detail: bool) {
        self.mode = Mode::Normal;
        if to_detail {
            self.open_vm_detail_of(vm);
        }
    }

    /// Live state of storage moves from the worker: into the snapshot.
    pub(super) fn take_storage_progress(&mut self, moves: Vec<StorageMove>, out: &mut Update) {
        let Some(s) = &mut self.snap else { return };
        let mut ended = Vec::new();
        for m in moves {
            match s.storage_moves.iter_mut().find(|x| x.id == m.id) {
                Some(x) if *x != m => {
                    if !x.is_finished() && m.is_finished() {
                        ended.push(m.clone());
                    }
                    *x = m;
                    out.redraw = true;
                }
                Some(_) => {}
                None => {
                    if m.is_finished() {
                        ended.push(m.clone());
                    }
                    s.storage_moves.push(m);
                    out.redraw = true;
                }
            }
        }
        for m in ended {
            self.flash_storage_end(&m);
        }
        if out.redraw {
            self.refresh_detail();
        }
    }

    /// A storage move ended: flashed (its line in the event log is the
    /// backend's, which comes with the next snapshot).
    pub(super) fn flash_storage_end(&mut self, m: &StorageMove) {
        if let Some(text) = m.outcome_sentence() {
            let ok = m.outcome == Some(crate::cluster::Outcome::Completed);
            self.flash(text, !ok);
        }
    }

    /// Storage moves that ended between the snapshot on screen and `new`.
    pub(super) fn storage_ends(&self, new: &ClusterSnapshot) -> Vec<StorageMove> {
        let Some(old) = &self.snap else {
            return Vec::new();
        };
        new.storage_moves
            .iter()
            .filter(|m| m.is_finished())
            .filter(|m| {
                old.storage_moves
                    .iter()
                    .any(|o| o.id == m.id && !o.is_finished())
            })
            .cloned()
            .collect()
    }
}

/// The lines about `vm`'s disk moves for its detail: the one running
/// (a gauge, bytes, rate, time left), else how the last one ended.
pub fn detail_lines(snap: &ClusterSnapshot, vm: &str) -> Vec<String> {
    let Some(m) = snap.storage_moves.iter().rev().find(|m| m.vm == vm) else {
        return Vec::new();
    };
    if m.is_finished() {
        return vec![format!(
            "last disk move: {}",
            m.outcome_sentence().unwrap_or_default()
        )];
    }
    let mut figures = format!(
        "{} of {}",
        units::bytes(m.copied_bytes),
        units::bytes(m.total_bytes)
    );
    if m.bps > 0 {
        figures += &format!(" at {}", units::rate(m.bps));
    }
    if let Some(eta) = m.eta_ms() {
        figures += &format!(", {} left", units::millis(eta));
    }
    vec![
        format!(
            "moving disk {} → {} while it runs (block copy, then pivot):",
            m.from, m.to
        ),
        format!(
            "{} {:>3.0} %  {figures}",
            units::bar(m.ratio(), 20),
            m.ratio() * 100.0
        ),
    ]
}
