//! Many real nodes: one libvirt poll cycle of 500 nodes with 20 domains
//! each, against libvirt's own test driver (`test:///PATH.xml`, one file
//! per node; no daemon), and the process's resident memory and threads
//! after it. `cargo bench --features libvirt --bench libvirt_poll`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vmshift::backends::Backend;
use vmshift::backends::libvirt::{LibvirtCluster, LibvirtConfig, NodeSpec, testdriver};
use vmshift::cluster::NodeState;

const NODES: usize = 500;
const DOMAINS: usize = 20;

fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .map(|l| l[key.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn poll(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let uris = testdriver::write_nodes(dir.path(), NODES, DOMAINS).expect("node files");
    let before = status("VmRSS:");
    let mut cluster = LibvirtCluster::connect(LibvirtConfig {
        cluster: "bench".into(),
        nodes: uris
            .iter()
            .enumerate()
            .map(|(i, uri)| NodeSpec {
                name: Some(format!("n{i}")),
                uri: uri.clone(),
                migrate_host: None,
                labels: Vec::new(),
            })
            .collect(),
        shared: Vec::new(),
        timeout: Duration::from_secs(30),
        manager: None,
        lost_after: Duration::from_secs(60),
        rules: Vec::new(),
    })
    .expect("connect");
    let t = Instant::now();
    let first = cluster.snapshot().expect("first poll");
    let first_ms = t.elapsed().as_millis();
    let after_first = status("VmRSS:");
    let up = first
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Up)
        .count();
    assert_eq!(up, NODES, "every test-driver node answers");
    assert_eq!(first.vms.len(), NODES * DOMAINS);

    let mut group = c.benchmark_group("libvirt");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(
        format!("poll cycle, {NODES} test-driver nodes × {DOMAINS} domains"),
        |b| b.iter(|| black_box(cluster.snapshot().expect("poll"))),
    );
    group.finish();
    eprintln!(
        "\n{NODES} nodes × {DOMAINS} domains: first cycle (connecting) {first_ms} ms; \
         RSS before connecting {before}, after the first cycle {after_first}; \
         after the cycles: RSS {} (peak {}), {} threads in the process, {} poll threads\n",
        status("VmRSS:"),
        status("VmHWM:"),
        status("Threads:"),
        cluster.poll_threads()
    );
}

criterion_group!(benches, poll);
criterion_main!(benches);
