//! `:recover` in the backend worker: the fence confirmed first, then each
//! planned restart; a restart that fails is reported with the backend's
//! sentence and the others go on.

use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use vmshift::app::{Cmd, Msg};
use vmshift::backends::Backend;
use vmshift::backends::sim::{SimCluster, clock::Speed};
use vmshift::cluster::{
    BackendError, ClusterSnapshot, Migration, MigrationId, MigrationRequest, Recovery,
    RecoveryStep, VmAction,
};
use vmshift::plan::{RecoverPlan, Restart};
use vmshift::record::{Cordons, Journal};
use vmshift::tui::worker::Worker;

/// The simulator as a backend that recovers like libvirt does: it takes
/// the fence confirmation and restarts every VM but `vdi-pool`.
struct Recovering {
    sim: SimCluster,
    fenced: Vec<String>,
}

impl Backend for Recovering {
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn snapshot(&mut self) -> Result<ClusterSnapshot, BackendError> {
        self.sim.snapshot()
    }
    fn start_migration(&mut self, req: &MigrationRequest) -> Result<MigrationId, BackendError> {
        self.sim.start_migration(req)
    }
    fn migration(&mut self, id: MigrationId) -> Result<Migration, BackendError> {
        self.sim.migration(id)
    }
    fn abort(&mut self, id: MigrationId) -> Result<(), BackendError> {
        self.sim.abort(id)
    }
    fn set_max_downtime(&mut self, id: MigrationId, ms: u64) -> Result<(), BackendError> {
        self.sim.set_max_downtime(id, ms)
    }
    fn set_bandwidth(&mut self, id: MigrationId, bps: Option<u64>) -> Result<(), BackendError> {
        self.sim.set_bandwidth(id, bps)
    }
    fn start_postcopy(&mut self, id: MigrationId) -> Result<(), BackendError> {
        self.sim.start_postcopy(id)
    }
    fn wait(&mut self, max: Duration) {
        self.sim.wait(max)
    }
    fn set_journal(&mut self, journal: Journal) {
        self.sim.set_journal(journal)
    }
    fn vm_action(&mut self, vm: &str, action: VmAction) -> Result<String, BackendError> {
        self.sim.vm_action(vm, action)
    }
    fn console_command(&mut self, vm: &str) -> Result<Vec<String>, BackendError> {
        self.sim.console_command(vm)
    }
    fn cordons(&mut self) -> &mut Cordons {
        self.sim.cordons()
    }
    fn shutdown(&mut self, why: &str) -> Vec<Migration> {
        self.sim.shutdown(why)
    }
    fn confirm_fenced(&mut self, node: &str) -> Result<(), BackendError> {
        self.fenced.push(node.into());
        Ok(())
    }
    fn restart_vm(&mut self, vm: &str, to: &str) -> Result<Recovery, BackendError> {
        assert_eq!(self.fenced, ["hv-04"], "the fence is confirmed first");
        if vm == "vdi-pool" {
            return Err(BackendError::NotPossible(format!(
                "defining {vm} on {to} failed: no storage pool csv-gold"
            )));
        }
        Ok(Recovery {
            vm: vm.into(),
            from: "hv-04".into(),
            to: to.into(),
            by: "operator".into(),
            steps: vec![(RecoveryStep::Lost, 0), (RecoveryStep::Started, 1)],
            error: None,
        })
    }
}

fn plan() -> RecoverPlan {
    let restart = |vm: &str, to: &str| Restart {
        vm: vm.into(),
        to: to.into(),
        memory: 1 << 30,
        breaks: Vec::new(),
    };
    RecoverPlan {
        node: "hv-04".into(),
        restarts: vec![restart("vdi-pool", "hv-03"), restart("cache-01", "hv-02")],
        cannot: Vec::new(),
    }
}

/// The replies to request `req`, up to its end (`Done` or `Failed`).
async fn replies(rx: &mut UnboundedReceiver<Msg>, req: u64) -> Vec<Msg> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the worker answered in time")
            .expect("the worker is alive");
        match &msg {
            Msg::StepFailed { req: r, .. } if *r == req => out.push(msg),
            Msg::Done { req: r, .. } | Msg::Failed { req: r, .. } if *r == req => {
                out.push(msg);
                return out;
            }
            _ => {}
        }
    }
}

fn run(backend: Box<dyn Backend>) -> Vec<Msg> {
    let (tx, mut rx) = unbounded_channel();
    let worker = Worker::spawn(backend, tx, Duration::from_millis(100));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    worker.send(Cmd::Recover(7, plan()));
    let out = rt.block_on(replies(&mut rx, 7));
    worker.stop("quit", Duration::from_secs(5));
    out
}

#[test]
fn a_failed_restart_is_reported_with_the_backends_sentence_and_the_next_goes() {
    let sim = SimCluster::from_spec("default", Speed::Times(0.0)).unwrap();
    let out = run(Box::new(Recovering {
        sim,
        fenced: Vec::new(),
    }));
    assert_eq!(
        out,
        [
            Msg::StepFailed {
                req: 7,
                what: "restart vdi-pool on hv-03".into(),
                error: "defining vdi-pool on hv-03 failed: no storage pool csv-gold".into(),
            },
            Msg::Failed {
                req: 7,
                error: "1 of 2 did not restart (vdi-pool); restarted: cache-01 on hv-02".into(),
            },
        ]
    );
}

#[test]
fn the_simulator_refuses_an_operator_recovery_with_its_sentence() {
    let sim = SimCluster::from_spec("default", Speed::Times(0.0)).unwrap();
    let out = run(Box::new(sim));
    let [Msg::Failed { req: 7, error }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert!(
        error.contains("the simulator restarts the VMs of a failed node itself (HA)"),
        "{error}"
    );
}
