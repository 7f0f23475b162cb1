//! Shared helpers: an app fed from the simulator on its virtual clock.
#![allow(dead_code)]

pub mod tmux;

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use vmshift::app::{App, Cmd, HitMap, Mode, Msg, Settings, Update};
use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::cluster::{MigrationId, MigrationOptions, MigrationRequest};

pub struct Rig {
    pub app: App,
    pub sim: SimCluster,
    pub now: u64,
}

impl Rig {
    pub fn new(spec: &str, settings: Settings) -> Rig {
        let sim = SimCluster::from_spec(spec, Speed::Max).unwrap();
        let mut r = Rig {
            app: App::new(settings),
            sim,
            now: 1000,
        };
        r.app.size = (120, 40);
        r.poll();
        r
    }

    pub fn default() -> Rig {
        Rig::new("default", Settings::default())
    }

    /// Feeds one message at the current wall time.
    pub fn send(&mut self, msg: Msg) -> Update {
        self.app.update(msg, &HitMap::default(), self.now)
    }

    pub fn send_hit(&mut self, msg: Msg, hit: &HitMap) -> Update {
        self.app.update(msg, hit, self.now)
    }

    /// The simulator's cluster with `node` lost, as a real backend shows
    /// it: down, its VMs as last seen there (running), lost since 00:00:05.
    pub fn lost_snapshot(&mut self, node: &str) -> vmshift::cluster::ClusterSnapshot {
        let mut s = self.sim.snapshot().unwrap();
        let n = s.nodes.iter_mut().find(|n| n.name == node).unwrap();
        n.state = vmshift::cluster::NodeState::Down;
        n.error = Some("lost: not answering since 00:00:05".into());
        for v in s.vms.iter_mut().filter(|v| v.node == node) {
            v.lost = Some(vmshift::cluster::LostWith {
                node: node.into(),
                since_ms: 5_000,
            });
        }
        s
    }

    pub fn poll(&mut self) -> Update {
        let s = self.sim.snapshot().unwrap();
        self.send(Msg::Snapshot(Box::new(s)))
    }

    pub fn key(&mut self, code: KeyCode) -> Update {
        self.send(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    pub fn keys(&mut self, codes: &[KeyCode]) -> Vec<Cmd> {
        codes.iter().flat_map(|c| self.key(*c).cmds).collect()
    }

    pub fn text(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    /// Runs commands against the simulator as the worker would (migration
    /// starts, disk moves and their aborts); returns the id of what started.
    pub fn run_cmds(&mut self, cmds: Vec<Cmd>) -> Option<MigrationId> {
        let mut started = None;
        for c in cmds {
            match c {
                Cmd::Start(r, req) => {
                    let id = self.sim.start_migration(&req).unwrap();
                    self.send(Msg::Started {
                        req: r,
                        vm: req.vm.clone(),
                        id,
                    });
                    started = Some(id);
                }
                Cmd::MoveDisk(req, vm, disk, to) => match self.sim.move_disk(&vm, &disk, &to) {
                    Ok(id) => {
                        self.send(Msg::Done {
                            req,
                            text: format!("the disk move of {vm} started: {disk} → {to}"),
                        });
                        let m = self.sim.storage_move(id).unwrap();
                        self.send(Msg::StorageProgress(vec![m]));
                        started = Some(id);
                    }
                    Err(e) => {
                        self.send(Msg::Failed {
                            req,
                            error: e.to_string(),
                        });
                    }
                },
                Cmd::AbortDiskMove(req, id) => {
                    let reply = match self.sim.abort_storage_move(id) {
                        Ok(()) => Msg::Done {
                            req,
                            text: "disk move abort requested".into(),
                        },
                        Err(e) => Msg::Failed {
                            req,
                            error: e.to_string(),
                        },
                    };
                    self.send(reply);
                }
                _ => {}
            }
        }
        started
    }

    /// What the worker sends while storage moves run: their state now.
    pub fn storage_progress(&mut self) -> Update {
        let ids: Vec<u64> = self
            .app
            .running_storage_moves()
            .iter()
            .map(|m| m.id)
            .collect();
        let moves = ids
            .into_iter()
            .map(|id| self.sim.storage_move(id).unwrap())
            .collect();
        self.send(Msg::StorageProgress(moves))
    }

    /// Selects `vm`, presses m and types `node` (the ranked list puts the
    /// exact name first and selects it).
    pub fn drag_to(&mut self, vm: &str, node: &str) {
        self.app.sel_vm = Some(vm.into());
        self.key(KeyCode::Char('m'));
        assert!(
            matches!(self.app.mode, Mode::Drag(_)),
            "m starts a drag: {:?}",
            self.app.mode
        );
        self.text(node);
        let Mode::Drag(d) = &self.app.mode else {
            unreachable!()
        };
        assert_eq!(d.over.as_deref(), Some(node), "typing selects {node}");
    }

    pub fn start(&mut self, vm: &str, to: &str, options: MigrationOptions) -> MigrationId {
        let id = self
            .sim
            .start_migration(&MigrationRequest {
                vm: vm.into(),
                to: to.into(),
                options,
                inputs: None,
                forecast: None,
            })
            .unwrap();
        // Started outside the app: a request id it never sent.
        self.send(Msg::Started {
            req: 0,
            vm: vm.into(),
            id,
        });
        id
    }

    /// Advances the simulator until `done` holds (virtual time, no sleeping).
    pub fn advance_until(&mut self, mut done: impl FnMut(&mut SimCluster) -> bool) {
        for _ in 0..200_000 {
            if done(&mut self.sim) {
                self.poll();
                return;
            }
            self.sim.advance(Duration::from_millis(50));
        }
        panic!("condition never reached");
    }
}

pub fn mouse(kind: MouseEventKind, x: u16, y: u16) -> Msg {
    Msg::Mouse(MouseEvent {
        kind,
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    })
}

pub fn down(x: u16, y: u16) -> Msg {
    mouse(MouseEventKind::Down(MouseButton::Left), x, y)
}
pub fn drag(x: u16, y: u16) -> Msg {
    mouse(MouseEventKind::Drag(MouseButton::Left), x, y)
}
pub fn up(x: u16, y: u16) -> Msg {
    mouse(MouseEventKind::Up(MouseButton::Left), x, y)
}
