//! The pre-copy model: a prediction (with its ranges) for an ordinary VM
//! and for one that does not converge (with the advice search), the live
//! re-prediction, and a drain plan at 1,000 nodes. `cargo bench --bench model`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::cluster::MigrationOptions;
use vmshift::plan;

fn model(c: &mut Criterion) {
    let mut sim = SimCluster::from_spec("default", Speed::Max).unwrap();
    let snap = sim.snapshot().unwrap();
    let o = MigrationOptions::default();
    let predict = |vm: &str, to: &str| {
        let (v, n) = (snap.vm(vm).unwrap(), snap.node(to).unwrap());
        plan::inputs_for(&snap, v, n, &o, 0, &[])
    };
    let web = predict("web-01", "hv-02");
    let batch = predict("batch-etl", "hv-01");
    c.bench_function("predict web-01 (4 GiB, converges), with ranges", |b| {
        b.iter(|| black_box(plan::predict(&web, &o)))
    });
    c.bench_function("predict batch-etl (32 GiB, stalls), with advice", |b| {
        b.iter(|| black_box(plan::predict(&batch, &o)))
    });

    // A migration a few seconds in: the live re-prediction.
    let id = sim
        .start_migration(&vmshift::cluster::MigrationRequest::new(
            "db-main",
            "hv-01",
            o.clone(),
        ))
        .unwrap();
    sim.advance(std::time::Duration::from_secs(6));
    let m = sim.migration(id).unwrap();
    c.bench_function("live re-prediction of a running migration", |b| {
        b.iter(|| black_box(plan::live(&m)))
    });

    let mut big = SimCluster::from_spec("gen:nodes=1000,vms=20000", Speed::Max).unwrap();
    let snap = big.snapshot().unwrap();
    let node = snap.nodes[0].name.clone();
    c.bench_function("drain plan of one node at 1000 nodes / 20000 VMs", |b| {
        b.iter(|| black_box(plan::plan_drain(&snap, &node, &o, &[])))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = model
}
criterion_main!(benches);
