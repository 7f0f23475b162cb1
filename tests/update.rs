//! `App::update`: messages in, state and commands out. The drag state
//! machine by keyboard and by mouse (with a hand-built hit map).

mod common;

use common::{Rig, down, drag, up};
use crossterm::event::KeyCode;
use ratatui::layout::Rect;
use vmshift::app::{Cmd, HitMap, Mode, Msg, Settings, Target, View};
use vmshift::cluster::{Backend, MigrationOptions, OnStall};
use vmshift::plan::Refusal;

#[test]
fn keyboard_move_goes_drag_confirm_start() {
    let mut r = Rig::default();
    r.drag_to("web-01", "hv-02");
    let Mode::Drag(d) = &r.app.mode else {
        unreachable!()
    };
    assert_eq!(d.from, "hv-01");
    assert!(d.verdict("hv-02").unwrap().is_ok());
    assert!(matches!(
        d.verdict("hv-01"),
        Some(Err(Refusal::SameNode { .. }))
    ));
    assert!(
        r.key(KeyCode::Enter).cmds.is_empty(),
        "dropping opens the dialog, starts nothing"
    );
    let Mode::Confirm(c) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert_eq!((c.vm.as_str(), c.to.as_str()), ("web-01", "hv-02"));
    assert!(c.prediction.as_ref().unwrap().converges);
    let cmds = r.key(KeyCode::Char('y')).cmds;
    assert_eq!(cmds.len(), 1);
    let Cmd::Start(_, req) = &cmds[0] else {
        panic!("{cmds:?}")
    };
    assert_eq!((req.vm.as_str(), req.to.as_str()), ("web-01", "hv-02"));
    assert_eq!(req.options, MigrationOptions::default());
    assert_eq!(r.app.mode, Mode::Normal);
}

#[test]
fn esc_cancels_a_drag_and_a_confirm_without_commands() {
    let mut r = Rig::default();
    r.drag_to("web-01", "hv-02");
    assert!(r.key(KeyCode::Esc).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal);
    r.drag_to("web-01", "hv-02");
    r.key(KeyCode::Enter);
    assert!(r.key(KeyCode::Esc).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal);
}

#[test]
fn dropping_on_a_refused_node_says_why_and_starts_nothing() {
    let mut r = Rig::default();
    r.drag_to("batch-etl", "hv-04");
    let Mode::Drag(d) = &r.app.mode else {
        unreachable!()
    };
    assert!(matches!(
        d.verdict("hv-04"),
        Some(Err(Refusal::NotEnoughMemory { .. }))
    ));
    let cmds = r.key(KeyCode::Enter).cmds;
    assert!(cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal);
    let f = r.app.flash.as_ref().unwrap();
    assert!(f.error && f.text.contains("needs 32.0 GiB"), "{}", f.text);
}

#[test]
fn confirm_options_change_the_prediction_and_the_request() {
    let mut r = Rig::default();
    r.drag_to("batch-etl", "hv-01");
    r.key(KeyCode::Enter);
    let Mode::Confirm(c) = &r.app.mode else {
        panic!()
    };
    let p = c.prediction.as_ref().unwrap();
    assert!(!p.converges && !p.advice.is_empty());
    // Down twice to auto-converge, right toggles it.
    r.keys(&[KeyCode::Down, KeyCode::Down, KeyCode::Right]);
    let Mode::Confirm(c) = &r.app.mode else {
        panic!()
    };
    assert!(c.options.auto_converge);
    assert!(
        c.prediction.as_ref().unwrap().converges,
        "auto-converge makes it converge"
    );
    // Up twice to max downtime, raise it once.
    r.keys(&[KeyCode::Up, KeyCode::Up, KeyCode::Right]);
    let cmds = r.key(KeyCode::Enter).cmds;
    let [Cmd::Start(_, req)] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert!(req.options.auto_converge);
    assert_eq!(req.options.max_downtime_ms, 500);
}

#[test]
fn mouse_press_drag_release_from_a_hand_built_hit_map() {
    let mut r = Rig::default();
    let mut hit = HitMap::default();
    hit.push(Rect::new(0, 0, 40, 10), Target::Node("hv-01".into()));
    hit.push(Rect::new(1, 2, 38, 1), Target::Vm("web-01".into()));
    hit.push(Rect::new(40, 0, 40, 10), Target::Node("hv-02".into()));
    hit.push(Rect::new(0, 10, 40, 10), Target::Node("hv-04".into()));
    hit.push(Rect::new(60, 30, 10, 1), Target::Tab(View::Events));

    r.send_hit(down(5, 2), &hit);
    assert_eq!(r.app.sel_vm.as_deref(), Some("web-01"));
    assert_eq!(r.app.mode, Mode::Normal, "a press alone is not a drag");
    r.send_hit(drag(20, 5), &hit);
    let Mode::Drag(d) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert_eq!(d.over.as_deref(), Some("hv-01"));
    assert_eq!(d.pointer, Some((20, 5)));
    r.send_hit(drag(50, 4), &hit);
    let Mode::Drag(d) = &r.app.mode else { panic!() };
    assert_eq!(d.over.as_deref(), Some("hv-02"));
    r.send_hit(up(50, 4), &hit);
    let Mode::Confirm(c) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert_eq!(c.to, "hv-02");
    assert!(matches!(
        r.key(KeyCode::Char('y')).cmds.as_slice(),
        [Cmd::Start(..)]
    ));

    // Released outside any node: cancelled.
    r.send_hit(down(5, 2), &hit);
    r.send_hit(drag(70, 25), &hit);
    assert!(r.send_hit(up(70, 25), &hit).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal);

    // A click on a tab switches the view.
    r.send_hit(down(62, 30), &hit);
    assert_eq!(r.app.view, View::Events);
}

#[test]
fn read_only_offers_and_accepts_no_move() {
    let mut r = Rig::new(
        "default",
        Settings {
            read_only: true,
            ..Default::default()
        },
    );
    r.app.sel_vm = Some("web-01".into());
    r.key(KeyCode::Char('m'));
    assert_eq!(r.app.mode, Mode::Normal);
    assert!(r.app.flash.as_ref().unwrap().text.contains("read-only"));
    r.key(KeyCode::Char(':'));
    r.text("migrate web-01 hv-02");
    assert!(r.key(KeyCode::Enter).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal);
    let mut hit = HitMap::default();
    hit.push(Rect::new(0, 0, 10, 1), Target::Vm("web-01".into()));
    r.send_hit(down(1, 0), &hit);
    r.send_hit(drag(5, 5), &hit);
    assert_eq!(r.app.mode, Mode::Normal, "no mouse drag either");
}

#[test]
fn command_line_migrate_opens_the_confirm_dialog() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("migrate db-main hv-01");
    r.key(KeyCode::Enter);
    let Mode::Confirm(c) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert_eq!(
        c.placement.as_ref().unwrap().lun_moves,
        vec!["lun-db".to_string()]
    );
    r.key(KeyCode::Esc);
    r.key(KeyCode::Char(':'));
    r.text("migrate erp-app hv-02");
    r.key(KeyCode::Enter);
    assert_eq!(r.app.mode, Mode::Normal);
    assert!(r.app.flash.as_ref().unwrap().text.contains("erp-report"));
    r.key(KeyCode::Char(':'));
    r.text("frobnicate");
    r.key(KeyCode::Enter);
    assert!(
        r.app
            .flash
            .as_ref()
            .unwrap()
            .text
            .contains("unknown command")
    );
}

#[test]
fn filter_narrows_the_vm_table_and_esc_clears_it() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('2'));
    r.key(KeyCode::Char('/'));
    r.text("db");
    r.key(KeyCode::Enter);
    let names: Vec<String> = {
        let s = r.app.snap.as_ref().unwrap();
        r.app
            .visible_vms()
            .iter()
            .map(|&i| s.vms[i].name.clone())
            .collect()
    };
    assert_eq!(names, ["db-main", "db-replica"]);
    assert_eq!(r.app.sel_vm.as_deref(), Some("db-main"));
    r.key(KeyCode::Down);
    assert_eq!(r.app.sel_vm.as_deref(), Some("db-replica"));
    r.key(KeyCode::Esc);
    assert!(r.app.filter.is_empty());
    assert_eq!(r.app.visible_vms().len(), 14);
}

#[test]
fn quit_asks_while_migrations_run() {
    let mut r = Rig::default();
    r.start("db-replica", "hv-01", MigrationOptions::default());
    r.poll();
    r.key(KeyCode::Char('1'));
    assert!(r.key(KeyCode::Char('q')).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::ConfirmQuit);
    r.key(KeyCode::Char('n'));
    assert!(!r.app.quit);
    r.key(KeyCode::Char('q'));
    assert_eq!(r.key(KeyCode::Char('y')).cmds, vec![Cmd::Quit]);
    assert!(r.app.quit);
}

#[test]
fn quit_without_migrations_is_immediate_and_signals_quit_too() {
    let mut r = Rig::default();
    assert_eq!(r.key(KeyCode::Char('q')).cmds, vec![Cmd::Quit]);
    let mut r = Rig::default();
    r.send(Msg::Signal(15));
    assert!(r.app.quit);
    assert_eq!(r.app.signal, Some(15), "the exit code comes from it");
}

#[test]
fn migration_keys_act_on_the_selected_migration() {
    let mut r = Rig::default();
    let id = r.start("db-replica", "hv-01", MigrationOptions::default());
    r.poll();
    assert_eq!(r.app.view, View::Migrations);
    assert!(
        r.key(KeyCode::Char('a')).cmds.is_empty(),
        "abort asks first"
    );
    assert_eq!(r.app.mode, Mode::ConfirmAbort(id));
    let [Cmd::Abort(abort, m)] = r.key(KeyCode::Char('y')).cmds[..] else {
        panic!("abort")
    };
    assert_eq!(m, id);
    let [Cmd::SetMaxDowntime(down, m, 500)] = r.key(KeyCode::Char('+')).cmds[..] else {
        panic!("max downtime")
    };
    assert_eq!(m, id);
    let [Cmd::SetBandwidth(bw, m, Some(b))] = r.key(KeyCode::Char('[')).cmds[..] else {
        panic!("bandwidth")
    };
    assert_eq!((m, b), (id, 1000 * 1024 * 1024));
    r.key(KeyCode::Char('p'));
    assert_eq!(r.app.mode, Mode::ConfirmPostcopy(id));
    // The switch cannot be undone: Enter does not confirm it, only y.
    assert!(r.key(KeyCode::Enter).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::ConfirmPostcopy(id));
    let [Cmd::Postcopy(post, m)] = r.key(KeyCode::Char('y')).cmds[..] else {
        panic!("post-copy")
    };
    assert_eq!(m, id);
    // Every command has its own request id, and each reply names its command.
    let mut ids = vec![abort, down, bw, post];
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    r.send(Msg::Failed {
        req: abort,
        error: "the migration is past its switchover".into(),
    });
    let f = r.app.flash.as_ref().unwrap();
    assert!(
        f.error
            && f.text
                .starts_with("cannot abort the migration of db-replica:"),
        "{}",
        f.text
    );
    r.send(Msg::Done {
        req: down,
        text: "max downtime set to 500 ms".into(),
    });
    assert_eq!(
        r.app.flash.as_ref().unwrap().text,
        "db-replica: max downtime set to 500 ms"
    );
    assert!(!r.app.pending.contains_key(&abort) && !r.app.pending.contains_key(&down));
}

#[test]
fn an_unchanged_snapshot_does_not_redraw() {
    let mut r = Rig::default();
    assert!(!r.poll().redraw, "same virtual time, same cluster");
    r.sim.advance(std::time::Duration::from_secs(2));
    assert!(r.poll().redraw);
}

#[test]
fn failed_polls_keep_the_last_snapshot_and_mark_it_stale() {
    let mut r = Rig::default();
    r.now = 5000;
    r.send(Msg::PollFailed("connection refused".into()));
    assert!(r.app.snap.is_some());
    assert_eq!(r.app.stale.as_ref().unwrap().0, 5000);
    r.now = 9000;
    r.send(Msg::PollFailed("connection refused".into()));
    assert_eq!(
        r.app.stale.as_ref().unwrap().0,
        5000,
        "stale since the first failure"
    );
    assert!(r.app.next_timer_ms().is_some(), "the STALE age ticks");
    r.poll();
    assert!(r.app.stale.is_none());
}

#[test]
fn the_flash_line_clears_itself() {
    let mut r = Rig::default();
    r.send(Msg::RecordFailed("boom".into()));
    let until = r.app.flash.as_ref().unwrap().until_ms;
    assert_eq!(r.app.next_timer_ms(), Some(until));
    r.now = until;
    assert!(r.send(Msg::Tick).redraw);
    assert!(r.app.flash.is_none());
    assert_eq!(r.app.next_timer_ms(), None, "idle: no timer at all");
}

#[test]
fn progress_updates_the_migration_and_the_vm_follows_to_its_node() {
    let mut r = Rig::default();
    let id = r.start("web-01", "hv-02", MigrationOptions::default());
    r.sim.advance(std::time::Duration::from_secs(2));
    let m = vmshift::cluster::Backend::migration(&mut r.sim, id).unwrap();
    assert!(r.send(Msg::Progress(vec![m.clone()])).redraw);
    assert!(
        !r.send(Msg::Progress(vec![m])).redraw,
        "same progress: no redraw"
    );
    r.advance_until(|s| {
        vmshift::cluster::Backend::migration(s, id)
            .unwrap()
            .is_finished()
    });
    let snap = r.app.snap.as_ref().unwrap();
    assert_eq!(snap.vm("web-01").unwrap().node, "hv-02");
    assert_eq!(r.app.sel_migration, Some(id));
}

#[test]
fn keyboard_drag_moves_by_rows_of_cards_with_up_and_down() {
    let mut r = Rig::default();
    r.app.size = (80, 24); // two cards per row
    r.drag_to("web-01", "hv-02");
    r.key(KeyCode::Down);
    let Mode::Drag(d) = &r.app.mode else { panic!() };
    assert_eq!(
        d.over.as_deref(),
        Some("hv-04"),
        "down from hv-02 is the card below it"
    );
}

#[test]
fn on_stall_wait_in_options_reaches_the_request() {
    let mut r = Rig::new(
        "default",
        Settings {
            defaults: MigrationOptions {
                on_stall: OnStall::Wait,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    r.drag_to("web-01", "hv-03");
    r.key(KeyCode::Enter);
    let cmds = r.key(KeyCode::Enter).cmds;
    let [Cmd::Start(_, req)] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(req.options.on_stall, OnStall::Wait);
}

#[test]
fn drain_runs_its_moves_one_after_the_other() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("drain hv-02");
    r.key(KeyCode::Enter);
    let Mode::ConfirmDrain(plan) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert_eq!(plan.moves.len(), 3);
    // y: the first move starts, and only it.
    let cmds = r.key(KeyCode::Char('y')).cmds;
    let [Cmd::Start(first_req, first)] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    let mut started = vec![first.vm.clone()];
    let mut pending = Some((*first_req, first.clone()));
    while let Some((request, req)) = pending.take() {
        let id = r.sim.start_migration(&req).unwrap();
        let next = r
            .send(Msg::Started {
                req: request,
                vm: req.vm.clone(),
                id,
            })
            .cmds;
        assert!(next.is_empty(), "nothing new while {} runs", req.vm);
        while !r.sim.migration(id).unwrap().is_finished() {
            r.sim.advance(std::time::Duration::from_millis(100));
        }
        // The snapshot after it finished starts the next move.
        let cmds = r.poll().cmds;
        if let [Cmd::Start(request, n)] = cmds.as_slice() {
            started.push(n.vm.clone());
            pending = Some((*request, n.clone()));
        } else {
            assert!(cmds.is_empty(), "{cmds:?}");
        }
    }
    assert_eq!(started.len(), 3);
    assert!(r.app.drain.is_none());
    let f = r.app.flash.as_ref().unwrap();
    assert!(
        f.text.contains("3 moved, 0 failed") && !f.error,
        "{}",
        f.text
    );
    let snap = r.app.snap.as_ref().unwrap();
    assert_eq!(snap.vms_on("hv-02").count(), 0);
}

#[test]
fn a_drain_move_that_cannot_start_is_counted_and_the_next_goes() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("drain hv-04");
    r.key(KeyCode::Enter);
    let cmds = r.key(KeyCode::Char('y')).cmds;
    let [Cmd::Start(req, _)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    let next = r
        .send(Msg::Failed {
            req,
            error: "boom".into(),
        })
        .cmds;
    assert!(matches!(next.as_slice(), [Cmd::Start(..)]), "{next:?}");
    assert_eq!(r.app.drain.as_ref().unwrap().failed, ["vdi-pool"]);
    assert_eq!(
        r.app.flash.as_ref().unwrap().text,
        "cannot migrate vdi-pool to hv-03: boom"
    );
}

/// A reply to another command (or a failed record write) while a drain
/// waits for its move must not count as that move: the next move starts
/// only when the current migration has ended.
#[test]
fn a_drain_waits_for_its_own_reply_not_any_failure() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("drain hv-02");
    r.key(KeyCode::Enter);
    let cmds = r.key(KeyCode::Char('y')).cmds;
    let [Cmd::Start(req, ref first)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    let id = r.sim.start_migration(first).unwrap();
    // Unrelated news before the move's own reply.
    assert!(
        r.send(Msg::RecordFailed("disk full".into()))
            .cmds
            .is_empty()
    );
    assert!(
        r.send(Msg::Failed {
            req: req + 100,
            error: "someone else's".into()
        })
        .cmds
        .is_empty()
    );
    r.send(Msg::Started {
        req,
        vm: first.vm.clone(),
        id,
    });
    // And after it, while the move runs.
    assert!(
        r.send(Msg::RecordFailed("disk full".into()))
            .cmds
            .is_empty()
    );
    assert!(
        r.send(Msg::Failed {
            req: req + 100,
            error: "someone else's".into()
        })
        .cmds
        .is_empty(),
        "no second move while the first runs"
    );
    let d = r.app.drain.as_ref().unwrap();
    assert!(d.failed.is_empty(), "{:?}", d.failed);
    assert_eq!(d.current.as_ref().unwrap().migration, Some(id));
}

#[test]
fn the_confirm_dialog_learns_from_the_vms_past_migrations() {
    let mut r = Rig::default();
    // A migration of web-01 that finished, as the flight recorder gave it.
    let id = r.start("web-01", "hv-02", MigrationOptions::default());
    let past = loop {
        r.sim.advance(std::time::Duration::from_millis(100));
        let m = r.sim.migration(id).unwrap();
        if m.is_finished() {
            break m;
        }
    };
    let mut fresh = Rig::default();
    let before = {
        fresh.drag_to("web-01", "hv-03");
        fresh.key(KeyCode::Enter);
        let Mode::Confirm(c) = &fresh.app.mode else {
            panic!("{:?}", fresh.app.mode)
        };
        c.prediction.clone().unwrap()
    };
    fresh.key(KeyCode::Esc);
    fresh.send(Msg::History(vec![past.clone()]));
    fresh.drag_to("web-01", "hv-03");
    fresh.key(KeyCode::Enter);
    let Mode::Confirm(c) = &fresh.app.mode else {
        panic!("{:?}", fresh.app.mode)
    };
    let after = c.prediction.clone().unwrap();
    assert!(
        after.basis.iter().any(|b| b.contains("its last migration")),
        "{:?}",
        after.basis
    );
    assert!(
        !before
            .basis
            .iter()
            .any(|b| b.contains("its last migration"))
    );
    // What the request carries is what the dialog predicted from.
    // Memory in use from what the first pass sent (2.4 GiB of data in the
    // scenario): at least that, at most that and the threshold's share.
    let t = c.inputs.clone().unwrap().touched;
    let truth = r
        .sim
        .snapshot()
        .unwrap()
        .vm("web-01")
        .unwrap()
        .workload
        .touched_bytes
        .unwrap() as f64;
    assert!(t.lo >= past.rounds[0].bytes_sent as f64 * 0.95, "{t:?}");
    assert!(t.lo <= truth && truth <= t.hi, "{t:?} vs {truth}");
    assert!((t.value - truth).abs() < 0.05 * truth, "{t:?} vs {truth}");
}

fn ctrl(r: &mut Rig, c: char) {
    r.send(Msg::Key(crossterm::event::KeyEvent::new(
        KeyCode::Char(c),
        crossterm::event::KeyModifiers::CONTROL,
    )));
}

fn command_text(r: &Rig) -> String {
    match &r.app.mode {
        Mode::Command(c) => c.edit.text.clone(),
        m => panic!("the command line is closed: {m:?}"),
    }
}

/// The bug: backspace on the empty `:` line closed it, and the
/// rest of a scripted command ran as normal-mode keys (space moved the
/// selected VM, Enter opened a confirm nobody asked for).
#[test]
fn backspace_on_an_empty_command_line_keeps_it_open() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.key(KeyCode::Backspace);
    assert_eq!(command_text(&r), "");
    let mut cmds = Vec::new();
    for c in "filter web".chars() {
        cmds.extend(r.key(KeyCode::Char(c)).cmds);
        assert!(matches!(r.app.mode, Mode::Command(_)), "{:?}", r.app.mode);
    }
    cmds.extend(r.key(KeyCode::Enter).cmds);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(r.app.mode, Mode::Normal);
    assert_eq!(r.app.filter, "web");
}

#[test]
fn command_line_editing_keys_and_history() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("drain hv-01");
    ctrl(&mut r, 'w');
    assert_eq!(command_text(&r), "drain ");
    r.text("hv-02");
    r.keys(&[KeyCode::Home, KeyCode::Right, KeyCode::Delete]);
    assert_eq!(command_text(&r), "dain hv-02");
    r.key(KeyCode::Char('r'));
    r.key(KeyCode::End);
    r.key(KeyCode::Left);
    r.key(KeyCode::Backspace);
    r.key(KeyCode::Char('0'));
    assert_eq!(command_text(&r), "drain hv-02");
    r.key(KeyCode::Enter);
    let Mode::ConfirmDrain(plan) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert_eq!(plan.node, "hv-02");
    r.key(KeyCode::Char('n'));
    r.key(KeyCode::Char(':'));
    r.text("filter db");
    r.key(KeyCode::Enter);
    assert_eq!(r.app.command_history, ["drain hv-02", "filter db"]);
    // ↑ recalls, newest first; ↓ past the newest gives back the draft.
    r.key(KeyCode::Char(':'));
    r.text("x");
    r.key(KeyCode::Up);
    assert_eq!(command_text(&r), "filter db");
    r.key(KeyCode::Up);
    assert_eq!(command_text(&r), "drain hv-02");
    r.key(KeyCode::Down);
    r.key(KeyCode::Down);
    assert_eq!(command_text(&r), "x");
    ctrl(&mut r, 'u');
    assert_eq!(command_text(&r), "");
    // Esc, and only Esc (or ctrl-c), closes it.
    r.key(KeyCode::Esc);
    assert_eq!(r.app.mode, Mode::Normal);
    r.key(KeyCode::Char(':'));
    ctrl(&mut r, 'c');
    assert_eq!(r.app.mode, Mode::Normal);
    assert!(!r.app.quit, "ctrl-c in the command line does not quit");
}

#[test]
fn errors_name_the_commands_of_the_table_and_near_names() {
    let mut r = Rig::default();
    let flash = |r: &mut Rig, line: &str| {
        r.key(KeyCode::Char(':'));
        r.text(line);
        r.key(KeyCode::Enter);
        r.app.flash.as_ref().unwrap().text.clone()
    };
    let e = flash(&mut r, "frobnicate");
    for spec in vmshift::app::command::COMMANDS {
        assert!(e.contains(&spec.usage()), "{e}");
    }
    assert_eq!(flash(&mut r, "drain"), "usage: :drain NODE");
    let e = flash(&mut r, "migrate web hv-02");
    assert_eq!(
        e,
        "there is no VM named \"web\"; did you mean web-01, web-02, web-03?"
    );
    assert_eq!(
        r.app.mode,
        Mode::Normal,
        "a near name is not taken for a move"
    );
}

#[test]
fn jump_to_a_vm_or_node_by_prefix_or_fuzzy_name_with_tab_completion() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('4'));
    r.key(KeyCode::Char(':'));
    r.text("vm batch");
    r.key(KeyCode::Tab);
    assert_eq!(command_text(&r), "vm batch-etl ");
    r.key(KeyCode::Enter);
    assert_eq!(r.app.sel_vm.as_deref(), Some("batch-etl"));
    assert_eq!(r.app.node_names()[r.app.sel_node], "hv-03");
    assert_eq!(r.app.view, View::Cluster, "a jump shows the VM");
    // Fuzzy: the letters in order; a filter that hides the VM is cleared.
    r.key(KeyCode::Char('/'));
    r.text("web");
    r.key(KeyCode::Enter);
    r.key(KeyCode::Char(':'));
    r.text("vm bldrnr");
    r.key(KeyCode::Enter);
    assert_eq!(r.app.sel_vm.as_deref(), Some("build-runner"));
    assert!(r.app.filter.is_empty());
    r.key(KeyCode::Char(':'));
    r.text("node 4");
    r.key(KeyCode::Enter);
    assert_eq!(r.app.node_names()[r.app.sel_node], "hv-04");
    r.key(KeyCode::Char(':'));
    r.text("vm zzz");
    r.key(KeyCode::Enter);
    let f = r.app.flash.as_ref().unwrap();
    assert!(
        f.error && f.text.contains("no VM name matches"),
        "{}",
        f.text
    );
}

fn node_rows(r: &Rig) -> Vec<String> {
    let s = r.app.snap.as_ref().unwrap();
    r.app
        .derived
        .rows
        .iter()
        .map(|&i| s.nodes[i].name.clone())
        .collect()
}

#[test]
fn nodes_view_sorts_by_any_column_and_moves_the_selection_in_that_order() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('3'));
    assert_eq!(r.app.view, View::Nodes);
    assert_eq!(node_rows(&r), ["hv-01", "hv-02", "hv-03", "hv-04"]);
    // One key: highest memory use first.
    r.key(KeyCode::Char('s'));
    assert_eq!(node_rows(&r)[0], "hv-04");
    r.key(KeyCode::Char('S'));
    assert_eq!(node_rows(&r).last().unwrap(), "hv-04", "S reverses");
    r.key(KeyCode::Char('s'));
    assert_eq!(r.app.node_sort.col, vmshift::app::NodeCol::Cpu);
    assert_eq!(node_rows(&r), ["hv-03", "hv-04", "hv-02", "hv-01"]);
    // Down walks the sorted rows, not the snapshot's order.
    r.key(KeyCode::Home);
    assert_eq!(r.app.node_names()[r.app.sel_node], "hv-03");
    r.key(KeyCode::Down);
    assert_eq!(r.app.node_names()[r.app.sel_node], "hv-04");
    // Enter shows the node's card.
    r.key(KeyCode::Enter);
    assert_eq!(r.app.view, View::Cluster);
    assert_eq!(r.app.node_names()[r.app.sel_node], "hv-04");
    // Sorting outside the nodes view says where it applies.
    r.key(KeyCode::Char('s'));
    assert!(r.app.flash.as_ref().unwrap().text.contains("nodes view"));
}

#[test]
fn problems_filter_works_in_every_view_and_esc_clears_it() {
    let mut r = Rig::default();
    r.sim.fail_node("hv-02");
    r.poll();
    r.key(KeyCode::Char('!'));
    assert!(r.app.problems);
    // Nodes: hv-02 is down, hv-04 is at 93 % memory (warning at 85 %).
    assert_eq!(node_rows(&r), ["hv-02", "hv-04"]);
    // Cluster: cards only for nodes with problems; no empty cards.
    assert_eq!(r.app.card_nodes(), [1, 3]);
    // VMs: those in trouble, and those on nodes in trouble.
    let s = r.app.snap.as_ref().unwrap();
    let vms: Vec<&str> = r
        .app
        .visible_vms()
        .iter()
        .map(|&i| s.vms[i].name.as_str())
        .collect();
    assert!(
        vms.contains(&"web-02") && vms.contains(&"vdi-pool"),
        "{vms:?}"
    );
    assert!(!vms.contains(&"web-01"), "{vms:?}");
    // Keyboard navigation steps over hidden cards.
    r.key(KeyCode::Char('1'));
    r.key(KeyCode::Home);
    assert_eq!(r.app.node_names()[r.app.sel_node], "hv-02");
    r.key(KeyCode::Right);
    assert_eq!(r.app.node_names()[r.app.sel_node], "hv-04");
    r.key(KeyCode::Esc);
    assert!(!r.app.problems);
    assert_eq!(node_rows(&r).len(), 4);
    assert_eq!(r.app.card_nodes().len(), 4);
}

#[test]
fn a_text_filter_hides_cards_with_no_matching_vm() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('/'));
    r.text("db");
    r.key(KeyCode::Enter);
    let names: Vec<&str> = r
        .app
        .card_nodes()
        .iter()
        .map(|&i| r.app.node_names()[i])
        .collect();
    assert_eq!(names, ["hv-02", "hv-03"]);
}

#[test]
fn problems_filter_shows_stalled_migrations_only() {
    let mut r = Rig::default();
    let ok = r.start("web-01", "hv-02", MigrationOptions::default());
    let stuck = r.start(
        "batch-etl",
        "hv-01",
        MigrationOptions {
            on_stall: OnStall::Wait,
            ..Default::default()
        },
    );
    r.advance_until(|s| s.migration(stuck).unwrap().stalled);
    r.key(KeyCode::Char('!'));
    let shown: Vec<u64> = r
        .app
        .migrations_newest_first()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(shown, [stuck], "not {ok}");
    assert!(
        node_rows(&r).contains(&"hv-01".to_string()),
        "the stalled migration's target"
    );
}

#[test]
fn a_migration_in_post_copy_is_not_offered_abort() {
    let mut r = Rig::default();
    let id = r.start(
        "batch-etl",
        "hv-01",
        MigrationOptions {
            postcopy: vmshift::cluster::PostcopyMode::Now,
            ..Default::default()
        },
    );
    r.advance_until(|s| s.migration(id).unwrap().postcopy_active);
    assert!(r.app.selected_migration().unwrap().postcopy_active);
    let footer = vmshift::tui::render::footer_actions(&r.app);
    assert!(!footer.contains(&vmshift::app::Action::Abort), "{footer:?}");
    assert!(r.key(KeyCode::Char('a')).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal, "no abort dialog");
    let f = r.app.flash.as_ref().unwrap();
    assert!(
        f.error && f.text.contains("can no longer be aborted"),
        "{}",
        f.text
    );
}

#[test]
fn a_node_that_cannot_reach_the_disk_is_offered_with_the_disk_copied() {
    let mut r = Rig::default();
    // build-runner's disk is on hv-04's local volume.
    r.drag_to("build-runner", "hv-01");
    let Mode::Drag(d) = &r.app.mode else {
        unreachable!()
    };
    let p = d.verdict("hv-01").unwrap().as_ref().expect("offered");
    assert_eq!(p.copies.len(), 1, "{p:?}");
    let (from, to, bytes) = p.copies[0].clone();
    let bytes = &bytes;
    assert_eq!((from.as_str(), to.as_str()), ("local-hv-04", "local-hv-01"));
    assert!(*bytes > 0);
    assert!(r.key(KeyCode::Enter).cmds.is_empty());
    let Mode::Confirm(c) = &r.app.mode else {
        panic!("the confirm dialog opens: {:?}", r.app.mode)
    };
    assert!(c.options.copy_storage, "copy storage is on");
    // The disk copy is in the prediction: its bytes, and the time they take.
    let pred = c.prediction.clone().unwrap();
    assert!(pred.total_bytes >= *bytes, "{pred:?}");
    let link = 1100.0 * 1024.0 * 1024.0;
    assert!(pred.total_ms >= *bytes as f64 / link * 1000.0, "{pred:?}");
    let cmds = r.key(KeyCode::Char('y')).cmds;
    let Cmd::Start(_, req) = &cmds[0] else {
        panic!("{cmds:?}")
    };
    assert!(req.options.copy_storage);
}
