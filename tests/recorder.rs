//! The flight recorder hears every migration from the backend itself,
//! whichever front end started it and however rarely that front end looks.

use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use vmshift::app::{Cmd, Msg};
use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::cluster::{MigrationId, MigrationRequest, Outcome};
use vmshift::record::{Journal, Recorder};
use vmshift::tui::worker::Worker;

/// The next message the worker sends that `pick` accepts (at most 30 s).
async fn wait_for<T>(
    rx: &mut UnboundedReceiver<Msg>,
    mut pick: impl FnMut(&Msg) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the worker answered in time")
            .expect("the worker is alive");
        if let Some(t) = pick(&msg) {
            return t;
        }
    }
}

fn finished(msg: &Msg, id: MigrationId) -> bool {
    let done =
        |ms: &[vmshift::cluster::Migration]| ms.iter().any(|m| m.id == id && m.is_finished());
    match msg {
        Msg::Progress(ms) => done(ms),
        Msg::Snapshot(s) => done(&s.migrations),
        _ => false,
    }
}

/// The interactive view's backend worker at `poll_interval_ms = 100` with
/// the simulator at `--speed max` (1000×): each migration ends between two
/// reads of it, and all 20 back-to-back migrations are recorded, once each.
#[test]
fn the_interactive_view_records_20_of_20_back_to_back_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::new(Ok(Recorder::in_dir(dir.path())));
    let mut sim = SimCluster::from_spec("default", Speed::Times(1000.0)).unwrap();
    sim.set_journal(journal.clone());
    let (tx, mut rx) = unbounded_channel();
    let worker = Worker::spawn(Box::new(sim), tx, Duration::from_millis(100));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..20u64 {
            let to = if i % 2 == 0 { "hv-02" } else { "hv-01" };
            worker.send(Cmd::Start(
                i + 1,
                MigrationRequest {
                    vm: "web-01".into(),
                    to: to.into(),
                    ..Default::default()
                },
            ));
            let id = wait_for(&mut rx, |m| match m {
                Msg::Started { req, id, .. } if *req == i + 1 => Some(*id),
                Msg::Failed { req, error } if *req == i + 1 => panic!("move {i}: {error}"),
                _ => None,
            })
            .await;
            wait_for(&mut rx, |m| finished(m, id).then_some(())).await;
        }
    });
    worker.stop("quit", Duration::from_secs(5));
    assert!(journal.flush(Duration::from_secs(10)).is_empty());
    let h = journal.read().unwrap();
    assert!(h.damaged.is_empty());
    assert_eq!(h.records.len(), 20, "one record per migration");
    assert_eq!(h.latest().len(), 20, "20 distinct ids");
    assert!(
        h.records
            .iter()
            .all(|r| r.migration.outcome == Some(Outcome::Completed)
                && r.migration.rounds.len() >= 2)
    );
}

/// Migrations still running when the view closes end with the simulator
/// (its process) and are recorded as such.
#[test]
fn closing_the_view_ends_and_records_a_simulated_migration() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::new(Ok(Recorder::in_dir(dir.path())));
    // A frozen clock: the migration cannot end by itself.
    let mut sim = SimCluster::from_spec("default", Speed::Times(0.0)).unwrap();
    sim.set_journal(journal.clone());
    let id = sim
        .start_migration(&MigrationRequest {
            vm: "web-01".into(),
            to: "hv-02".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(
        sim.shutdown("SIGTERM").is_empty(),
        "nothing goes on without vmshift"
    );
    assert!(sim.migration(id).unwrap().is_finished());
    assert!(journal.flush(Duration::from_secs(10)).is_empty());
    let h = journal.read().unwrap();
    assert_eq!(h.records.len(), 1);
    let Some(Outcome::Aborted { reason }) = &h.records[0].migration.outcome else {
        panic!("{:?}", h.records[0].migration.outcome)
    };
    assert!(
        reason.contains("vmshift stopped (SIGTERM)") && reason.contains("keeps running on hv-01"),
        "{reason}"
    );
}
