//! The cluster's event log, VMs lost with their node, and their restart
//! elsewhere as a timeline.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    pub at_ms: u64,
    pub text: String,
}

/// A VM of a lost node, as last seen: the node, and when it stopped
/// answering (on the cluster's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWith {
    pub node: String,
    pub since_ms: u64,
}

/// The steps of restarting a lost node's VM on another node, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryStep {
    /// Its node stopped answering (or failed).
    Lost,
    /// Someone made sure the node is powered off or fenced: the operator
    /// (typing the node's name) or a cluster manager.
    FenceConfirmed,
    /// Defined on the target from its last known definition.
    Defined,
    /// Started there.
    Started,
    /// Reported running there.
    Running,
}

impl RecoveryStep {
    pub fn label(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::FenceConfirmed => "fence confirmed",
            Self::Defined => "defined",
            Self::Started => "started",
            Self::Running => "running",
        }
    }
}

/// Restarting one VM of a lost node elsewhere, as a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub vm: String,
    /// The lost node, and where the VM restarts (empty until chosen).
    pub from: String,
    pub to: String,
    /// Who fenced and restarted: `operator` (vmshift recover) or `HA`
    /// (a cluster manager; the simulator models one).
    pub by: String,
    /// The steps reached, each with its time on the cluster's clock.
    pub steps: Vec<(RecoveryStep, u64)>,
    /// Why it stopped short of running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Recovery {
    /// When `step` was reached, if it was.
    pub fn reached(&self, step: RecoveryStep) -> Option<u64> {
        self.steps.iter().find(|s| s.0 == step).map(|s| s.1)
    }

    /// Adds `step` at `at_ms` unless it was reached already.
    pub fn reach(&mut self, step: RecoveryStep, at_ms: u64) {
        if self.reached(step).is_none() {
            self.steps.push((step, at_ms));
        }
    }

    pub fn is_finished(&self) -> bool {
        self.error.is_some() || self.reached(RecoveryStep::Running).is_some()
    }

    /// `lost 10:42:07 → fence confirmed +35.2 s → defined +0.1 s → …`,
    /// the first time by `clock`, each next one as the time it took.
    pub fn timeline(&self, clock: impl Fn(u64) -> String) -> String {
        let mut out = String::new();
        let mut prev: Option<u64> = None;
        for (step, at) in &self.steps {
            if let Some(p) = prev {
                out.push_str(&format!(
                    " → {} +{}",
                    step.label(),
                    super::units::millis(at.saturating_sub(p) as f64)
                ));
            } else {
                out.push_str(&format!("{} {}", step.label(), clock(*at)));
            }
            prev = Some(*at);
        }
        if let Some(e) = &self.error {
            out.push_str(&format!(" → failed: {e}"));
        }
        out
    }
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    #[test]
    fn the_timeline_says_each_step_with_the_time_it_took() {
        let mut r = Recovery {
            vm: "db".into(),
            from: "a".into(),
            to: "b".into(),
            by: "operator".into(),
            steps: vec![(RecoveryStep::Lost, 10_000)],
            error: None,
        };
        r.reach(RecoveryStep::FenceConfirmed, 45_000);
        r.reach(RecoveryStep::Defined, 45_100);
        r.reach(RecoveryStep::Defined, 99_000);
        assert!(!r.is_finished());
        r.reach(RecoveryStep::Started, 45_500);
        r.reach(RecoveryStep::Running, 46_700);
        assert!(r.is_finished());
        let t = r.timeline(|ms| format!("t={ms}"));
        assert!(t.starts_with("lost t=10000 → fence confirmed +"), "{t}");
        assert_eq!(t.matches(" → ").count(), 4, "{t}");
        assert!(t.contains("defined +100 ms"), "{t}");
        r.error = Some("no room".into());
        assert!(r.timeline(|_| String::new()).ends_with("failed: no room"));
    }
}
