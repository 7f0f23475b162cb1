//! Scale: render and update at 1,000 nodes / 20,000 VMs, one simulator
//! poll cycle at that size, and what a poll that brings nothing new costs
//! at 5,000 nodes / 100,000 VMs (issue 17, item 7). `cargo bench --bench scale`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use vmshift::app::{App, HitMap, Msg, Settings, View};
use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::tui::render::render;

const SPEC: &str = "gen:nodes=1000,vms=20000";

fn app_with(sim: &mut SimCluster) -> App {
    let mut app = App::new(Settings::default());
    app.update(Msg::Resize(200, 60), &HitMap::default(), 0);
    app.update(
        Msg::Snapshot(Box::new(sim.snapshot().unwrap())),
        &HitMap::default(),
        0,
    );
    app
}

fn scale(c: &mut Criterion) {
    let mut sim = SimCluster::from_spec(SPEC, Speed::Max).unwrap();
    let mut app = app_with(&mut sim);
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();

    c.bench_function("render cluster view 200x60, 1000 nodes / 20000 VMs", |b| {
        b.iter(|| {
            term.draw(|f| {
                black_box(render(&app, f));
            })
            .unwrap();
        })
    });

    app.view = View::Vms;
    c.bench_function("render VM table 200x60, 20000 VMs", |b| {
        b.iter(|| {
            term.draw(|f| {
                black_box(render(&app, f));
            })
            .unwrap();
        })
    });
    app.filter = "vm-1999".into();
    c.bench_function("render filtered VM table 200x60, 20000 VMs", |b| {
        b.iter(|| {
            term.draw(|f| {
                black_box(render(&app, f));
            })
            .unwrap();
        })
    });
    app.filter.clear();
    app.view = View::Cluster;

    c.bench_function(
        "update with a fresh snapshot, 1000 nodes / 20000 VMs",
        |b| {
            b.iter_batched(
                || {
                    sim.advance(Duration::from_secs(2));
                    Msg::Snapshot(Box::new(sim.snapshot().unwrap()))
                },
                |msg| black_box(app.update(msg, &HitMap::default(), 0)),
                BatchSize::LargeInput,
            )
        },
    );

    c.bench_function("update: key press (move selection) at 20000 VMs", |b| {
        let key = Msg::Key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        b.iter(|| black_box(app.update(key.clone(), &HitMap::default(), 0)))
    });

    // A keyboard move: pick up a VM (every node checked and ranked by the
    // prediction), then one typed character narrowing the list.
    let vm = app.snap.as_ref().unwrap().vms[0].name.clone();
    let m = Msg::Key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE));
    let esc = Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    c.bench_function("update: pick up a VM, 1000 targets ranked", |b| {
        b.iter(|| {
            app.sel_vm = Some(vm.clone());
            black_box(app.update(m.clone(), &HitMap::default(), 0));
            app.update(esc.clone(), &HitMap::default(), 0);
        })
    });
    app.sel_vm = Some(vm.clone());
    app.update(m.clone(), &HitMap::default(), 0);
    let typed = Msg::Key(KeyEvent::new(KeyCode::Char('9'), KeyModifiers::NONE));
    let back = Msg::Key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
    c.bench_function("update: a typed character narrows 1000 targets", |b| {
        b.iter(|| {
            black_box(app.update(typed.clone(), &HitMap::default(), 0));
            app.update(back.clone(), &HitMap::default(), 0);
        })
    });
    c.bench_function("render ranked targets 80x24, 1000 nodes", |b| {
        let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
        b.iter(|| {
            small
                .draw(|f| {
                    black_box(render(&app, f));
                })
                .unwrap();
        })
    });
    app.update(esc.clone(), &HitMap::default(), 0);

    c.bench_function(
        "simulator poll cycle (2 s advance + snapshot), 1000 nodes / 20000 VMs",
        |b| {
            b.iter(|| {
                sim.advance(Duration::from_secs(2));
                black_box(sim.snapshot().unwrap())
            })
        },
    );
}

/// A poll that brings nothing new at 5,000 nodes / 100,000 VMs, with the
/// clock frozen (`--speed 0`): the view must neither rebuild nor redraw.
/// Measured as the worker and the view pay it: the backend's snapshot,
/// then `update` with it; and `update` alone, the view's share.
fn unchanged_poll(c: &mut Criterion) {
    let mut sim = SimCluster::from_spec(BIG, Speed::Times(0.0)).unwrap();
    let mut app = app_with(&mut sim);
    let same = sim.snapshot().unwrap();
    assert!(
        !app.update(Msg::Snapshot(Box::new(same.clone())), &HitMap::default(), 0)
            .redraw,
        "an unchanged poll redraws"
    );
    c.bench_function(
        "unchanged poll, 5000 nodes / 100000 VMs: snapshot + update",
        |b| {
            b.iter(|| {
                let s = sim.snapshot().unwrap();
                black_box(app.update(Msg::Snapshot(Box::new(s)), &HitMap::default(), 0))
            })
        },
    );
    c.bench_function(
        "unchanged poll, 5000 nodes / 100000 VMs: update alone",
        |b| {
            b.iter_batched(
                || Msg::Snapshot(Box::new(same.clone())),
                |msg| black_box(app.update(msg, &HitMap::default(), 0)),
                BatchSize::LargeInput,
            )
        },
    );
}

const BIG: &str = "gen:nodes=5000,vms=100000";

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = scale, unchanged_poll
}
criterion_main!(benches);
