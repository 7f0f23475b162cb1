//! Render snapshots of the real app on ratatui's TestBackend at 80×24 and
//! 120×40. Review changes to `tests/snapshots/` before accepting them.

mod common;

use common::Rig;
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use vmshift::app::{App, HitMap, Msg, Settings, Target};
use vmshift::backends::Backend;
use vmshift::cluster::{MigrationOptions, OnStall, Step};
use vmshift::tui::render::render;

fn draw(app: &App, w: u16, h: u16) -> (Terminal<TestBackend>, HitMap) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut hit = HitMap::default();
    t.draw(|f| hit = render(app, f)).unwrap();
    (t, hit)
}

/// Snapshots the app at both sizes.
fn snap_both(name: &str, rig: &mut Rig) {
    for (w, h) in [(80, 24), (120, 40)] {
        rig.send(Msg::Resize(w, h));
        let (t, _) = draw(&rig.app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

#[test]
fn main_screen() {
    let mut r = Rig::default();
    snap_both("main", &mut r);
}

/// A mouse drag keeps the node cards, each marked allowed or refused.
#[test]
fn drag_over_a_refused_node() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut r = Rig::default();
        r.send(Msg::Resize(w, h));
        r.app.sel_vm = Some("batch-etl".into());
        // Press on the VM, drag onto hv-04's card (found on screen).
        let (_, hit) = draw(&r.app, w, h);
        let vm = hit.rect_of(&Target::Vm("batch-etl".into())).unwrap();
        r.send_hit(common::down(vm.x + 2, vm.y), &hit);
        r.send_hit(common::drag(vm.x + 3, vm.y), &hit);
        let (_, hit) = draw(&r.app, w, h);
        let card = hit.rect_of(&Target::Node("hv-04".into())).unwrap();
        r.send_hit(common::drag(card.x + 4, card.y + 2), &hit);
        let (t, _) = draw(&r.app, w, h);
        insta::assert_snapshot!(format!("drag_refused_{w}x{h}"), t.backend());
    }
}

/// A keyboard move: the targets ranked by the prediction, refused below.
#[test]
fn ranked_targets() {
    let mut r = Rig::default();
    r.app.sel_vm = Some("web-01".into());
    r.key(KeyCode::Char('m'));
    snap_both("ranked_targets", &mut r);
    // batch-etl (32 GiB) does not converge at the defaults and does not
    // fit on hv-04: selected, hv-04 says why.
    r.key(KeyCode::Esc);
    r.app.sel_vm = Some("batch-etl".into());
    r.key(KeyCode::Char('m'));
    r.keys(&[KeyCode::End, KeyCode::Up]);
    snap_both("ranked_targets_refused_selected", &mut r);
}

/// 1,000 nodes at 80×24: the best target first, and the refused ones
/// counted with their reasons; a refused one typed shows its reason.
#[test]
fn ranked_targets_of_a_thousand_nodes_at_80x24() {
    let mut r = Rig::new("gen:nodes=1000,vms=20000", Settings::default());
    r.send(Msg::Resize(80, 24));
    let vm = r.app.snap.as_ref().unwrap().vms[0].clone();
    r.app.sel_vm = Some(vm.name.clone());
    r.key(KeyCode::Char('m'));
    let (t, _) = draw(&r.app, 80, 24);
    let screen = format!("{}", t.backend());
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines[4].contains("NODE") && lines[4].contains("PREDICTION"),
        "{screen}"
    );
    assert!(
        lines[5].contains("✓ node-") && lines[5].contains("converges"),
        "{screen}"
    );
    assert!(
        screen.contains("refused further down") && screen.contains("no room to copy disk"),
        "{screen}"
    );
    // Type a node the VM's disks do not reach: its reason in full.
    let far = if vm.node == "node-1000" {
        "node-0001"
    } else {
        "node-1000"
    };
    r.text(far);
    let (t, _) = draw(&r.app, 80, 24);
    let screen = format!("{}", t.backend());
    assert!(screen.contains(&format!("✗ {far}")), "{screen}");
    assert!(screen.contains("must be copied"), "{screen}");
}

#[test]
fn confirm_converging() {
    let mut r = Rig::default();
    r.drag_to("web-01", "hv-02");
    r.key(KeyCode::Enter);
    snap_both("confirm_converging", &mut r);
}

#[test]
fn confirm_not_converging() {
    let mut r = Rig::default();
    r.drag_to("batch-etl", "hv-01");
    r.key(KeyCode::Enter);
    snap_both("confirm_not_converging", &mut r);
}

/// During the first pass libvirt reports no dirty rate yet: the view says
/// so (not "0 B/s") and shows how far the first pass is.
#[test]
fn migration_in_its_first_pass() {
    let mut r = Rig::default();
    let id = r.start("db-main", "hv-01", MigrationOptions::default());
    r.advance_until(|s| s.migration(id).unwrap().current_round_sent > 2 << 30);
    let m = r.sim.migration(id).unwrap();
    assert!(m.rounds.is_empty() && m.dirty_bps == 0, "{m:?}");
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        assert!(screen.contains("dirty not reported yet"), "{screen}");
        assert!(!screen.contains("0 B/s"), "{screen}");
        assert!(screen.contains("first pass: 2."), "{screen}");
    }
    snap_both("migration_first_pass", &mut r);
}

#[test]
fn migration_at_round_3() {
    let mut r = Rig::default();
    let options = MigrationOptions {
        auto_converge: true,
        ..Default::default()
    };
    let id = r.start("batch-etl", "hv-01", options);
    r.advance_until(|s| s.migration(id).unwrap().rounds.len() == 3);
    let m = r.sim.migration(id).unwrap();
    assert_eq!(m.step, Step::PreCopy);
    snap_both("migration_round_3", &mut r);
}

#[test]
fn finished_migration_with_actual_downtime() {
    let mut r = Rig::default();
    let id = r.start("web-01", "hv-02", MigrationOptions::default());
    r.advance_until(|s| s.migration(id).unwrap().is_finished());
    snap_both("migration_done", &mut r);
}

#[test]
fn stalled_migration() {
    let mut r = Rig::default();
    let options = MigrationOptions {
        on_stall: OnStall::Wait,
        ..Default::default()
    };
    let id = r.start("batch-etl", "hv-01", options);
    r.advance_until(|s| s.migration(id).unwrap().stalled);
    snap_both("migration_stalled", &mut r);
}

#[test]
fn help() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('?'));
    snap_both("help", &mut r);
}

#[test]
fn stale() {
    let mut r = Rig::default();
    r.send(Msg::PollFailed(
        "node hv-01 did not answer within 5 s".into(),
    ));
    r.now += 12_000;
    r.send(Msg::Tick);
    snap_both("stale", &mut r);
}

#[test]
fn read_only() {
    let mut r = Rig::new(
        "default",
        Settings {
            read_only: true,
            ..Default::default()
        },
    );
    snap_both("read_only", &mut r);
}

#[test]
fn vm_table_and_volumes_and_events() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('2'));
    snap_both("vms", &mut r);
    r.key(KeyCode::Char('4'));
    snap_both("volumes", &mut r);
    r.sim.fail_node("hv-04");
    r.sim.advance(std::time::Duration::from_secs(30));
    r.poll();
    r.key(KeyCode::Char('6'));
    snap_both("events_after_node_failure", &mut r);
    r.key(KeyCode::Char('1'));
    snap_both("cluster_after_node_failure", &mut r);
}

/// A lost node: its card with the VMs as last seen and `:recover`; then
/// the recover dialog with the plan and the name half typed.
#[test]
fn lost_node_card_and_the_recover_dialog_at_80x24() {
    let mut r = Rig::default();
    r.send(Msg::Resize(80, 24));
    let s = r.lost_snapshot("hv-04");
    r.send(Msg::Snapshot(Box::new(s)));
    let (t, _) = draw(&r.app, 80, 24);
    let screen = format!("{}", t.backend());
    assert!(
        screen.contains("✖ cache-01") && screen.contains("lost 00:00:05"),
        "{screen}"
    );
    insta::assert_snapshot!("lost_node_card_80x24", t.backend());
    // The VM table says it as the state, in a column wide enough for it.
    r.key(KeyCode::Char('2'));
    let (t, _) = draw(&r.app, 80, 24);
    let screen = format!("{}", t.backend());
    let row = screen.lines().find(|l| l.contains("cache-01")).unwrap();
    assert!(
        row.contains("✖ cache-01       hv-04     lost 00:00:05  12.0 GiB cache"),
        "{screen}"
    );
    r.key(KeyCode::Char('1'));
    r.key(KeyCode::Char(':'));
    r.text("recover hv-04");
    r.key(KeyCode::Enter);
    r.text("hv-0");
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("recover_dialog_80x24", t.backend());
}

/// An alarm takes the top of the screen, before everything else.
#[test]
fn alarm_in_the_header_at_80x24() {
    let mut r = Rig::default();
    r.send(Msg::Resize(80, 24));
    let mut s = r.sim.snapshot().unwrap();
    s.alarms = vec![
        "ALARM: db-main runs on hv-02 and hv-04 at once — its disks are being corrupted; stop the copy that should not run now (virsh destroy db-main on the node that was lost)".into(),
        "ALARM: web-02 runs on hv-02 and hv-04 at once".into(),
    ];
    r.send(Msg::Snapshot(Box::new(s)));
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("alarm_header_80x24", t.backend());
}

/// The simulator's HA restart of a failed node's VM, as a timeline in
/// the VM's detail.
#[test]
fn vm_detail_with_a_finished_ha_recovery_at_80x24() {
    let mut r = Rig::default();
    r.send(Msg::Resize(80, 24));
    r.sim.fail_node("hv-04");
    r.poll();
    r.sim.advance(std::time::Duration::from_secs(30));
    r.poll();
    r.app.sel_vm = Some("cache-01".into());
    r.key(KeyCode::Enter);
    let (t, _) = draw(&r.app, 80, 24);
    let screen = format!("{}", t.backend());
    assert!(
        screen.contains("recovered by HA from lost node hv-04 to hv-03"),
        "{screen}"
    );
    insta::assert_snapshot!("ha_recovery_detail_80x24", t.backend());
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut r = Rig::default();
    for mode_keys in [
        &[][..],
        &[KeyCode::Char('?')][..],
        &[KeyCode::Esc, KeyCode::Char('m')][..],
        &[KeyCode::Enter][..],
    ] {
        for k in mode_keys {
            r.key(*k);
        }
        for (w, h) in [(1, 1), (20, 5), (2, 30), (200, 3), (30, 8)] {
            draw(&r.app, w, h);
        }
    }
    r.key(KeyCode::Esc);
    let id = r.start("web-01", "hv-02", MigrationOptions::default());
    r.advance_until(|s| s.migration(id).unwrap().rounds.len() == 1);
    for (w, h) in [(1, 1), (20, 5), (40, 10), (25, 12)] {
        draw(&r.app, w, h);
    }
}

#[test]
fn the_hit_map_names_every_vm_row_and_node_card_on_screen() {
    let r = Rig::default();
    let (_, hit) = draw(&r.app, 120, 40);
    let snap = r.app.snap.as_ref().unwrap();
    for n in &snap.nodes {
        assert!(
            hit.rect_of(&Target::Node(n.name.clone())).is_some(),
            "{}",
            n.name
        );
    }
    for v in &snap.vms {
        let rect = hit
            .rect_of(&Target::Vm(v.name.clone()))
            .unwrap_or_else(|| panic!("{}", v.name));
        // A VM row lies inside its node's card.
        let card = hit.rect_of(&Target::Node(v.node.clone())).unwrap();
        assert!(
            card.contains(rect.as_position()),
            "{} inside {}",
            v.name,
            v.node
        );
        assert_eq!(hit.node_at(rect.x, rect.y), Some(v.node.as_str()));
    }
}

#[test]
fn a_big_generated_cluster_renders_its_selection() {
    let mut r = Rig::new("gen:nodes=1000,vms=20000", Settings::default());
    r.key(KeyCode::End); // last node
    let (t, _) = draw(&r.app, 200, 60);
    let screen = format!("{}", t.backend());
    assert!(
        screen.contains("node-1000"),
        "the selected last node is on screen"
    );
    r.key(KeyCode::Char('2'));
    r.key(KeyCode::Char('/'));
    r.text("vm-19999");
    r.key(KeyCode::Enter);
    let (t, _) = draw(&r.app, 200, 60);
    let screen = format!("{}", t.backend());
    assert!(
        screen.contains("vm-19999") && screen.contains("1 of 20000"),
        "{screen}"
    );
}

#[test]
fn the_selected_vm_is_shown_in_reverse_video() {
    let r = Rig::default();
    let (t, hit) = draw(&r.app, 120, 40);
    let rect = hit.rect_of(&Target::Vm("web-01".into())).unwrap();
    let buf = t.backend().buffer();
    let cell = &buf[(rect.x + 2, rect.y)];
    assert!(
        cell.modifier.contains(ratatui::style::Modifier::REVERSED),
        "{cell:?}"
    );
    let other = hit.rect_of(&Target::Vm("api-01".into())).unwrap();
    assert!(
        !buf[(other.x + 2, other.y)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );
}

#[test]
fn drain_confirm() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("drain hv-01");
    r.key(KeyCode::Enter);
    snap_both("drain_confirm", &mut r);
}

/// The help lists every `:` command from the one table (scrolled to its end).
#[test]
fn help_lists_every_command_of_the_table() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('?'));
    for _ in 0..6 {
        r.key(KeyCode::PageDown);
    }
    let (t, _) = draw(&r.app, 120, 40);
    let screen = format!("{}", t.backend());
    for spec in vmshift::app::command::COMMANDS {
        assert!(
            screen.contains(&spec.usage()),
            "{} not in\n{screen}",
            spec.usage()
        );
    }
}

#[test]
fn command_line_shows_the_cursor_where_it_is() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("vm web");
    r.keys(&[KeyCode::Left, KeyCode::Left]);
    let (t, _) = draw(&r.app, 80, 24);
    let screen = format!("{}", t.backend());
    assert!(screen.contains(":vm w▏eb"), "{screen}");
}

/// The nodes view (sorted by memory, hv-04 past the warning threshold)
/// and the problems filter in the nodes and cluster views, with a node
/// down.
#[test]
fn nodes_view_and_problems_filter() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('3'));
    r.key(KeyCode::Char('s'));
    snap_both("nodes_by_memory", &mut r);
    r.sim.fail_node("hv-02");
    r.poll();
    r.key(KeyCode::Char('!'));
    snap_both("nodes_problems", &mut r);
    // The sort selected its top, hv-04; the down node (last by memory) is
    // the subject here.
    r.key(KeyCode::End);
    r.key(KeyCode::Char('1'));
    snap_both("cluster_problems", &mut r);
}

/// Thresholds show by a glyph as well as by colour (NO_COLOR keeps them).
#[test]
fn thresholds_show_a_glyph_not_only_colour() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('3'));
    let (t, _) = draw(&r.app, 120, 40);
    let screen = format!("{}", t.backend());
    let row = screen.lines().find(|l| l.contains("hv-04")).unwrap();
    assert!(
        row.contains("! ▕"),
        "warning glyph before the memory bar: {row}"
    );
    let ok = screen.lines().find(|l| l.contains("hv-01")).unwrap();
    assert!(!ok.contains('!'), "{ok}");
}

#[test]
fn a_click_on_a_column_header_sorts_by_it() {
    let mut r = Rig::default();
    r.key(KeyCode::Char('3'));
    let (_, hit) = draw(&r.app, 120, 40);
    let rect = hit
        .rect_of(&Target::Column(vmshift::app::NodeCol::Cpu))
        .unwrap();
    r.send_hit(common::down(rect.x + 1, rect.y), &hit);
    let snap = r.app.snap.as_ref().unwrap();
    let names: Vec<&str> = r
        .app
        .derived
        .rows
        .iter()
        .map(|&i| snap.nodes[i].name.as_str())
        .collect();
    assert_eq!(
        names,
        ["hv-03", "hv-04", "hv-02", "hv-01"],
        "CPU, highest first"
    );
    r.send_hit(common::down(rect.x + 1, rect.y), &hit);
    assert!(!r.app.node_sort.descending, "a second click reverses");
}

/// A refusal opened from the event log: the whole text, wrapped.
#[test]
fn detail_view_of_a_refusal() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("migrate batch-etl hv-04");
    r.key(KeyCode::Enter);
    r.key(KeyCode::Char('6'));
    r.key(KeyCode::Enter);
    snap_both("detail_refusal", &mut r);
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen: String = format!("{}", t.backend())
            .lines()
            .map(|l| {
                l.trim_matches('"')
                    .trim_matches(|c| c == '│' || c == '║')
                    .trim()
            })
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            screen.contains("free memory there or pick another node"),
            "the end of the reason is on screen at {w}x{h}"
        );
    }
}

/// The history tab from the flight recorder, and one past migration
/// opened as it ran (timeline, every round, downtime gauge).
#[test]
fn history_and_a_past_migration() {
    let mut run = Rig::default();
    let ok = run.start("web-01", "hv-02", MigrationOptions::default());
    let bad = run.start("batch-etl", "hv-01", MigrationOptions::default());
    run.advance_until(|s| {
        s.migration(ok).unwrap().is_finished() && s.migration(bad).unwrap().is_finished()
    });
    let mut record = |id, day: u64, who: &str| {
        let meta = vmshift::record::Meta {
            id: format!("rec-{id}"),
            started_at_ms: 1_764_000_000_000 + day * 86_400_000,
            found: false,
            prediction: None,
        };
        let m = run.sim.migration(id).unwrap();
        let mut r = vmshift::record::Record::finished(&meta, "sim", "prod-east", &m);
        r.operator = who.into();
        r
    };
    let records = vec![record(bad, 0, "alice"), record(ok, 1, "bob")];
    let mut long = records.clone();
    let mut r = Rig::default();
    r.send(Msg::History(records));
    r.key(KeyCode::Char('7'));
    snap_both("history", &mut r);
    r.key(KeyCode::Enter);
    snap_both("history_past_migration", &mut r);

    // Long node names: the route is kept whole while the outcome has room.
    for rec in &mut long {
        rec.migration.from = "node-0001".into();
        rec.migration.to = "node-0002".into();
    }
    // Many of them: the list says which show.
    let many: Vec<_> = (0..100).flat_map(|_| long.clone()).collect();
    let mut r = Rig::default();
    r.send(Msg::History(many));
    r.key(KeyCode::Char('7'));
    let (t, _) = draw(&r.app, 80, 24);
    let screen = format!("{}", t.backend());
    assert!(screen.contains(" 1–17 of 200 "), "{screen}");
    let mut r = Rig::default();
    r.send(Msg::History(long));
    r.key(KeyCode::Char('7'));
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        let rows: Vec<&str> = screen.lines().filter(|l| l.contains("2025-")).collect();
        assert_eq!(rows.len(), 2, "{screen}");
        for row in rows {
            assert!(row.contains("node-0001 → node-0002"), "{screen}");
        }
        assert!(screen.contains("completed"), "{screen}");
    }
}

/// A cluster where Pacemaker owns web-01 and hv-04 is in standby: the
/// header says Pacemaker is ok, the VM carries its resource, the node its
/// badge; the confirm dialog of a move says Pacemaker does it.
#[test]
fn pacemaker_cluster_and_a_move_through_it() {
    use vmshift::cluster::{ManagedNode, ManagedVm, ManagerView};
    let mut r = Rig::default();
    let mut s = r.sim.snapshot().unwrap();
    let node = s.vm("web-01").unwrap().node.clone();
    s.manager = Some(ManagerView {
        kind: "pacemaker".into(),
        known: true,
        quorate: true,
        dc: Some("hv-01".into()),
        nodes: s
            .nodes
            .iter()
            .map(|n| ManagedNode {
                name: n.name.clone(),
                online: true,
                standby: n.name == "hv-04",
                ..Default::default()
            })
            .collect(),
        vms: vec![ManagedVm {
            resource: "vm-web".into(),
            domain: "web-01".into(),
            agent: "ocf:heartbeat:VirtualDomain".into(),
            role: "Started".into(),
            managed: true,
            allow_migrate: true,
            running_on: vec![node],
            ..Default::default()
        }],
        ..Default::default()
    });
    r.send(Msg::Snapshot(Box::new(s)));
    snap_both("pacemaker_cluster", &mut r);
    r.key(KeyCode::Char(':'));
    r.text("migrate web-01 hv-03");
    r.key(KeyCode::Enter);
    snap_both("pacemaker_confirm", &mut r);
}

/// The volume matrix of 50 nodes scrolls sideways (→), and each column
/// keeps the end of its node's name, so numbered nodes differ.
#[test]
fn the_volume_matrix_scrolls_across_many_nodes() {
    let mut r = Rig::new("gen:nodes=50,vms=300", Settings::default());
    r.send(Msg::Resize(120, 40));
    r.key(KeyCode::Char('4'));
    let header = |r: &Rig| {
        let (t, _) = draw(&r.app, 120, 40);
        let screen = format!("{}", t.backend());
        screen.lines().nth(3).unwrap().to_string()
    };
    let first = header(&r);
    assert!(
        first.contains("…de-0001") && first.contains("…de-0002"),
        "{first}"
    );
    assert!(first.contains("/50 ←→"), "{first}");
    for _ in 0..10 {
        r.key(KeyCode::Right);
    }
    let later = header(&r);
    assert!(
        later.contains("…de-0011") && !later.contains("…de-0001 "),
        "{later}"
    );
    assert!(later.contains("11–"), "{later}");
}

/// 200 nodes: compact node cards (the stats and one line of VM names,
/// "+N" for the rest), so that several rows of nodes fit.
#[test]
fn many_nodes_get_compact_cards() {
    let mut r = Rig::new("gen:nodes=200,vms=4000", Settings::default());
    snap_both("compact_cards", &mut r);
}

#[test]
fn migration_copying_its_disk_before_the_rounds() {
    let mut r = Rig::default();
    let options = MigrationOptions {
        copy_storage: true,
        ..Default::default()
    };
    let id = r.start("build-runner", "hv-01", options);
    r.advance_until(|s| {
        s.migration(id)
            .unwrap()
            .disk_copy
            .is_some_and(|d| d.copied_bytes > 30 * vmshift::cluster::GIB)
    });
    let m = r.sim.migration(id).unwrap();
    assert!(m.rounds.is_empty());
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{:?}", t.backend());
        assert!(
            screen.contains("▶disk"),
            "the disk phase is current:\n{screen}"
        );
        insta::assert_snapshot!(format!("migration_disk_copy_{w}x{h}"), t.backend());
    }
}

/// Moving erp-app's disk from its detail (V): the volumes, allowed ones
/// first, refused ones below with why; the message line has the selected
/// one in full.
#[test]
fn disk_picker_at_80x24() {
    let mut r = Rig::default();
    r.send(Msg::Resize(80, 24));
    r.key(KeyCode::Char('2'));
    r.app.sel_vm = Some("erp-app".into());
    r.key(KeyCode::Enter);
    r.key(KeyCode::Char('V'));
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("disk_picker_80x24", t.backend());
    // A refused one selected: its reason in full.
    r.key(KeyCode::End);
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("disk_picker_refused_80x24", t.backend());
}

/// erp-app's detail while its disk copies to csv-gold: the gauge, bytes,
/// rate and time left; the header counts it.
#[test]
fn vm_detail_with_a_disk_move_at_80x24() {
    let mut r = Rig::default();
    r.send(Msg::Resize(80, 24));
    let id = r
        .sim
        .move_disk("erp-app", "lun-legacy", "csv-gold")
        .unwrap();
    r.sim.advance(std::time::Duration::from_secs(120));
    r.poll();
    assert!(!r.sim.storage_move(id).unwrap().is_finished());
    r.key(KeyCode::Char('2'));
    r.app.sel_vm = Some("erp-app".into());
    r.key(KeyCode::Enter);
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("vm_detail_disk_move_80x24", t.backend());
}

/// Names that look alike or hide characters (issue 16): a scenario with
/// "web" and "web" + a zero-width space, a right-to-left override, a soft
/// hyphen and a word joiner, and a VM named as libvirt may name one,
/// `c` + CSI (U+009B) + `2Jd`. Every view shows them escaped as the CLI
/// does, told apart, and within its columns at 80x24.
#[test]
fn names_are_shown_escaped_and_told_apart() {
    let names = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/names.toml");
    let mut r = Rig::new(names, Settings::default());
    let mut s = r.sim.snapshot().unwrap();
    let mut csi = s.vms.iter().find(|v| v.name == "web").unwrap().clone();
    csi.name = "c\u{9b}2Jd".into();
    s.vms.push(csi);
    r.send(Msg::Snapshot(Box::new(s)));
    r.send(Msg::Resize(80, 24));
    // Nothing a terminal obeys or hides reaches a cell, and every name is
    // there, escaped.
    let check_at = |app: &App, (w, h): (u16, u16), names: &[&str]| -> String {
        let (t, _) = draw(app, w, h);
        for cell in t.backend().buffer().content() {
            assert!(
                !cell
                    .symbol()
                    .chars()
                    .any(vmshift::cluster::text::is_escaped),
                "{:?} in a cell:\n{}",
                cell.symbol(),
                t.backend()
            );
        }
        let screen = format!("{}", t.backend());
        for n in names {
            assert!(screen.contains(n), "{n} not on screen:\n{screen}");
        }
        assert!(
            !screen.contains("c2Jd"),
            "a control character dropped:\n{screen}"
        );
        screen
    };
    let check = |app: &App, names: &[&str]| check_at(app, (80, 24), names);
    // The cards: node titles, VM rows, the recent events.
    r.app.sel_vm = Some("web\u{200b}".into());
    check(
        &r.app,
        &[
            "hv-a\\u{200b}",
            "web\\u{200b}",
            "\\u{202e}gpj.exe",
            "db\\u{2060}",
            "c\\u{9b}2Jd",
        ],
    );
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("names_escaped_cluster_80x24", t.backend());
    // The VM table: each name escaped in its column; one longer than its
    // column is cut with "…" like any long name (Enter shows it whole).
    r.key(KeyCode::Char('2'));
    check(&r.app, &["web\\u{200b}  ", "c\\u{9b}2Jd", " hv-a\\u{2… "]);
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("names_escaped_vms_80x24", t.backend());
    // The volume matrix: the soft hyphen and the node columns.
    r.key(KeyCode::Char('4'));
    check(&r.app, &["csv\\u{ad}1"]);
    // The command line after Tab completion, then the VM it jumps to.
    r.key(KeyCode::Char('1'));
    r.key(KeyCode::Char(':'));
    r.text("vm db");
    r.key(KeyCode::Tab);
    check(&r.app, &[":vm db\\u{2060} ▏"]);
    r.key(KeyCode::Esc);
    // A move of the look-alike onto the other look-alike: the confirm
    // dialog names both, escaped.
    r.drag_to("web\u{200b}", "hv-a\u{200b}");
    r.key(KeyCode::Enter);
    check(
        &r.app,
        &[
            "Move web\\u{200b} from hv-a to hv-a\\u{200b}?",
            "✓ hv-a\\u{200b} up",
        ],
    );
    let (t, _) = draw(&r.app, 80, 24);
    insta::assert_snapshot!("names_escaped_confirm_80x24", t.backend());
    // Once it ran: the migrations, the event log, the nodes and the wide
    // cluster view (the selected VM and the volumes beside the cards).
    let cmds = r.key(KeyCode::Char('y')).cmds;
    let id = r.run_cmds(cmds).expect("the migration started");
    r.advance_until(|s| s.migration(id).is_ok_and(|m| m.is_finished()));
    for size in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(size.0, size.1));
        r.key(KeyCode::Char('5'));
        check_at(&r.app, size, &["web\\u{200b}", "hv-a\\u{200b}"]);
        r.key(KeyCode::Char('6'));
        check_at(&r.app, size, &["web\\u{200b}", "hv-a\\u{200b}"]);
        r.key(KeyCode::Char('3'));
        check_at(&r.app, size, &["hv-a\\u{200b}"]);
    }
    r.key(KeyCode::Char('1'));
    r.app.sel_vm = Some("\u{202e}gpj.exe".into());
    check_at(
        &r.app,
        (120, 40),
        &[
            "\\u{202e}gpj.exe on hv-a\\u{200b}",
            "csv\\u{ad}1",
            "web\\u{200b}",
        ],
    );
    // A VM opened in full.
    r.key(KeyCode::Enter);
    check_at(&r.app, (120, 40), &["\\u{202e}gpj.exe", "csv\\u{ad}1"]);
}

/// A source node that fails during a migration takes the VM down with it:
/// the migration view says HA restarts it, not that it keeps running there.
#[test]
fn a_source_that_fails_mid_migration_is_not_said_to_keep_the_vm() {
    let mut r = Rig::default();
    r.drag_to("db-main", "hv-01");
    let cmds = r.keys(&[KeyCode::Enter, KeyCode::Char('y')]);
    r.run_cmds(cmds);
    r.sim.advance(std::time::Duration::from_millis(1500));
    r.poll();
    r.sim.fail_node("hv-02");
    r.poll();
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        assert!(!screen.contains("keeps running"), "{screen}");
        // The reason wraps inside the box: read it as one text.
        let words: Vec<&str> = screen
            .split(|c: char| c.is_whitespace() || c == '│' || c == '"')
            .filter(|w| !w.is_empty())
            .collect();
        assert!(
            words
                .join(" ")
                .contains("db-main went down with hv-02 and HA restarts it on another node"),
            "{screen}"
        );
    }
}

/// A prediction whose expected downtime is above the limit says so first
/// (a cut line keeps it) in the confirm dialog and the drain plan, and the
/// downtime gauge turns to a warning before the first pass ends.
#[test]
fn a_downtime_above_the_limit_is_marked() {
    let mark = "⚠ downtime above the 300 ms limit: converges";
    let mut r = Rig::default();
    // The ranked targets of a keyboard move.
    r.app.sel_vm = Some("web-01".into());
    r.key(KeyCode::Char('m'));
    let vmshift::app::Mode::Drag(d) = &mut r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    let best = d.ranked[0].node;
    let p = d.ranked[0].prediction.as_mut().unwrap();
    std::sync::Arc::make_mut(p).downtime_ms = 316.0;
    let best = r.app.snap.as_ref().unwrap().nodes[best].name.clone();
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        let row = screen
            .lines()
            .find(|l| l.contains(&best) && l.contains("converges"))
            .unwrap_or_else(|| panic!("{screen}"));
        assert!(row.contains(&format!("⚠ {best}")), "{screen}");
        assert!(row.contains("⚠≈316 ms"), "{screen}");
    }
    r.key(KeyCode::Esc);
    r.drag_to("web-01", "hv-02");
    r.key(KeyCode::Enter);
    let vmshift::app::Mode::Confirm(c) = &mut r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert_eq!(c.options.max_downtime_ms, 300);
    c.prediction.as_mut().unwrap().downtime_ms = 316.0;
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        assert!(screen.contains(&format!("prediction: {mark}")), "{screen}");
    }
    r.key(KeyCode::Esc);
    r.key(KeyCode::Char(':'));
    r.text("drain hv-01");
    r.key(KeyCode::Enter);
    let vmshift::app::Mode::ConfirmDrain(plan) = &mut r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    plan.moves[0].prediction.downtime_ms = 316.0;
    let first = plan.moves[0].vm.clone();
    let (t, _) = draw(&r.app, 120, 40);
    let screen = format!("{}", t.backend());
    assert!(
        screen.contains(&format!("{first} → hv-03: {mark}")),
        "{screen}"
    );
    r.key(KeyCode::Esc);

    // The gauge: 510 ms expected against a 500 ms limit, first pass running.
    let id = r.start("web-01", "hv-02", MigrationOptions::default());
    r.sim.advance(std::time::Duration::from_millis(300));
    r.poll();
    let m = r.app.snap.as_mut().unwrap();
    let m = m.migrations.iter_mut().find(|m| m.id == id).unwrap();
    assert!(m.rounds.is_empty() && !m.is_finished(), "{m:?}");
    m.options.max_downtime_ms = 500;
    let f = m.live.as_mut().expect("a live forecast");
    f.converges = true;
    f.downtime_ms.value = 510.0;
    r.key(KeyCode::Char('5'));
    let (t, _) = draw(&r.app, 120, 40);
    let screen = format!("{}", t.backend());
    let (x, y) = screen
        .lines()
        .enumerate()
        .find_map(|(y, l)| l.find("▕").map(|b| (l[..b].chars().count() - 1, y)))
        .expect("the gauge");
    assert!(screen.contains("limit 500 ms ⚠ above"), "{screen}");
    let bar = &t.backend().buffer()[(x as u16 + 1, y as u16)];
    assert_eq!(
        bar.fg,
        vmshift::tui::render::theme::warn().fg.unwrap(),
        "{screen}"
    );
}

/// Sorting the nodes view shows the top of the sort (the selection goes
/// there), and a long list says which of its rows show.
#[test]
fn a_sort_starts_at_the_top_and_long_lists_show_their_position() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut r = Rig::new("gen:nodes=200,vms=4000", Settings::default());
        r.send(Msg::Resize(w, h));
        r.key(KeyCode::Char('3'));
        for _ in 0..60 {
            r.key(KeyCode::Down);
        }
        r.key(KeyCode::Char('s'));
        let top = r.app.derived.rows[0];
        let top = r.app.snap.as_ref().unwrap().nodes[top].name.clone();
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        let lines: Vec<&str> = screen.lines().collect();
        // Header, tabs, border, column titles: the first row is line 4.
        assert!(lines[4].contains(&top), "{top} first:\n{screen}");
        // All but header, tabs, borders, column titles, message and footer.
        let rows = h as usize - 7;
        assert!(
            screen.contains(&format!(" 1–{rows} of 200 ")),
            "{rows}:\n{screen}"
        );
        // Further down, the mark follows.
        r.key(KeyCode::End);
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        assert!(
            screen.contains(&format!(" {}–200 of 200 ", 200 - rows + 1)),
            "{screen}"
        );
        // The VM table too.
        r.key(KeyCode::Char('2'));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        assert!(screen.contains(" of 4000 "), "{screen}");
    }
}

/// At 80 and 60 columns on a big cluster the header keeps, whole, what
/// matters most: the cluster, its problems, READ-ONLY, the poll time; what
/// does not fit goes whole, never as a cut number.
#[test]
fn the_header_keeps_what_matters_whole_on_narrow_screens() {
    let settings = Settings {
        read_only: true,
        mouse: false,
        ..Settings::default()
    };
    let mut r = Rig::new("gen:nodes=200,vms=4000", settings);
    let name = r.app.snap.as_ref().unwrap().cluster.clone();
    for w in [120, 80, 60] {
        let (t, _) = draw(&r.app, w, 24);
        let head = format!("{}", t.backend())
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert!(head.contains(&name), "{w}: {head}");
        assert!(head.contains("READ-ONLY"), "{w}: {head}");
        assert!(head.contains("polled 00:00:00"), "{w}: {head}");
        assert!(
            !head.contains("200/20 ") && !head.contains("200/2 "),
            "{w}: {head}"
        );
    }
    r.sim.fail_node("node-0007");
    r.poll();
    for w in [80, 60] {
        let (t, _) = draw(&r.app, w, 24);
        let head = format!("{}", t.backend())
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert!(head.contains("nodes 199/200 up"), "{w}: {head}");
        assert!(head.contains("READ-ONLY"), "{w}: {head}");
    }
}

/// A cordoned node keeps the nodes view's columns in place: ANSWER stays
/// (the cordon shortens to ⊘, the title says what it means); with `!`
/// every listed node says why it is there.
#[test]
fn nodes_view_keeps_its_columns_when_cordoned_and_problems_say_why() {
    let mut r = Rig::default();
    r.sim.fail_node("hv-02");
    let mut s = r.sim.snapshot().unwrap();
    s.nodes[0].cordon = Some(vmshift::cluster::Cordon {
        since_unix_ms: 0,
        by: vmshift::cluster::Cordon::LOCAL.into(),
    });
    r.send(Msg::Snapshot(Box::new(s)));
    r.key(KeyCode::Char('3'));
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        let lines: Vec<&str> = screen.lines().collect();
        assert!(lines[3].contains("ANSWER"), "{screen}");
        let hv01 = lines.iter().find(|l| l.contains("hv-01")).unwrap();
        assert!(hv01.contains("⊘") && hv01.contains(" ok "), "{screen}");
        assert!(screen.contains("node failed"), "{screen}");
    }
    snap_both("nodes_cordoned", &mut r);
    r.key(KeyCode::Char('!'));
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        assert!(screen.lines().nth(3).unwrap().contains("WHY"), "{screen}");
        let row = |n: &str| {
            screen
                .lines()
                .find(|l| l.contains(n))
                .unwrap_or_else(|| panic!("{n}: {screen}"))
                .to_string()
        };
        assert!(row("hv-02").contains(" node failed "), "{screen}");
        assert!(row("hv-04").contains(" memory 93% "), "{screen}");
    }
}

/// With `!` the VM table says why each VM is listed: its own trouble, or
/// its node's.
#[test]
fn problem_vms_say_why_they_are_listed() {
    let mut r = Rig::default();
    r.sim.fail_node("hv-02");
    r.poll();
    r.key(KeyCode::Char('!'));
    r.key(KeyCode::Char('2'));
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        let row = |n: &str| {
            screen
                .lines()
                .find(|l| l.contains(n))
                .unwrap_or_else(|| panic!("{n}: {screen}"))
                .to_string()
        };
        assert!(row("NAME").contains("WHY"), "{screen}");
        assert!(row("db-main").contains("lost with hv-02"), "{screen}");
        assert!(row("cache-01").contains("node: memory 93%"), "{screen}");
    }
    snap_both("vms_problems_why", &mut r);
}

/// An ambiguous Tab on the `:` line shows the names it could complete to
/// under the line being typed.
#[test]
fn an_ambiguous_tab_shows_its_candidates() {
    let mut r = Rig::default();
    r.key(KeyCode::Char(':'));
    r.text("drain hv");
    r.key(KeyCode::Tab);
    for (w, h) in [(80, 24), (120, 40)] {
        r.send(Msg::Resize(w, h));
        let (t, _) = draw(&r.app, w, h);
        let screen = format!("{}", t.backend());
        assert!(
            screen.contains(":drain hv-0▏   Tab: 4 match: hv-01  hv-02  hv-03  hv-04"),
            "{screen}"
        );
    }
}
