//! What a backend is asked and answers: the migration request, the
//! backend's errors (each a sentence), and the snapshot's lookups that give
//! them. The trait itself is [`crate::backends::Backend`].

use super::Refusal;
use super::{ClusterSnapshot, Forecast, MigrationId, MigrationInputs, MigrationOptions, Node, Vm};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationRequest {
    pub vm: String,
    pub to: String,
    pub options: MigrationOptions,
    /// What the front end predicted from (and what it predicted), kept
    /// with the migration for live re-prediction and the record.
    pub inputs: Option<MigrationInputs>,
    pub forecast: Option<Forecast>,
}

impl MigrationRequest {
    /// What was predicted, as the flight recorder keeps it.
    pub fn forecast_json(&self) -> Option<serde_json::Value> {
        self.forecast
            .as_ref()
            .and_then(|f| serde_json::to_value(f).ok())
    }

    /// A move with nothing predicted yet (the backend predicts it itself).
    pub fn new(vm: &str, to: &str, options: MigrationOptions) -> Self {
        Self {
            vm: vm.into(),
            to: to.into(),
            options,
            inputs: None,
            forecast: None,
        }
    }
}

/// Errors a backend reports; each reads as a sentence that says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("there is no VM named {name:?}; known VMs: {}{}", known.join(", "), shell_hint(name, known))]
    UnknownVm { name: String, known: Vec<String> },
    #[error("there is no node named {name:?}; known nodes: {}{}", known.join(", "), shell_hint(name, known))]
    UnknownNode { name: String, known: Vec<String> },
    #[error("{0}")]
    Refused(Refusal),
    #[error("there is no migration with id {0}; it may have finished already")]
    NoSuchMigration(MigrationId),
    #[error("{0}")]
    NotPossible(String),
    #[error("node {node} is unreachable: {reason}")]
    Unreachable { node: String, reason: String },
    #[error(
        "no node answered ({0}); check the URIs and that libvirtd runs and accepts this user there"
    )]
    NoNodeAnswered(String),
    #[error("{0}")]
    Other(String),
}

impl ClusterSnapshot {
    /// The VM named `name`, or the error that lists the known ones.
    pub fn require_vm(&self, name: &str) -> Result<&Vm, BackendError> {
        self.vm(name).ok_or_else(|| BackendError::UnknownVm {
            name: name.to_string(),
            known: known_names(self.vms.iter().map(|v| v.name.as_str())),
        })
    }

    /// The node named `name`, or the error that lists the known ones.
    pub fn require_node(&self, name: &str) -> Result<&Node, BackendError> {
        self.node(name).ok_or_else(|| BackendError::UnknownNode {
            name: name.to_string(),
            known: known_names(self.nodes.iter().map(|n| n.name.as_str())),
        })
    }
}

/// A name typed as it is shown (`web\u{200b}` for "web" + a zero-width
/// space) names nothing on the command line: how to write it for a shell.
fn shell_hint(typed: &str, known: &[String]) -> String {
    known
        .iter()
        .find(|k| k.as_str() != typed && super::text::typed_names(typed, k))
        .map_or(String::new(), |k| {
            format!(
                "; to name {k} in a shell, write {}",
                super::text::shell_word(k)
            )
        })
}

/// Names for an error message, shortened for huge clusters.
fn known_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let all: Vec<&str> = names.collect();
    let mut out: Vec<String> = all.iter().take(25).map(|s| s.to_string()).collect();
    if all.len() > 25 {
        out.push(format!("and {} more", all.len() - 25));
    }
    out
}

/// What cordoning or uncordoning `node` did, as one sentence.
pub fn cordon_sentence(node: &str, on: bool, changed: bool) -> String {
    match (on, changed) {
        (true, true) => format!(
            "node {node} is cordoned: no VM is moved, started or restarted onto it until `vmshift uncordon {}` (kept by this vmshift install)",
            super::text::shell_word(node)
        ),
        (true, false) => format!("node {node} was already cordoned"),
        (false, true) => format!("node {node} is uncordoned: it takes VMs again"),
        (false, false) => format!("node {node} was not cordoned"),
    }
}
