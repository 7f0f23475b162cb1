//! Placement rules the cluster must keep (which VMs stay apart, which stay
//! together, where a VM may run, how many of a group may be down at once),
//! as data. Where they come from is `config` (`[[rule]]`), the simulator's
//! scenario and the cluster manager (Pacemaker constraints); what they
//! allow is decided in `plan::rules`.

use serde::{Deserialize, Serialize};

/// How hard a rule binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    /// Never broken by vmshift (a config rule only with a typed override).
    Must,
    /// Kept where possible; broken only with a confirmation that names it.
    Should,
}

impl Strength {
    pub fn label(self) -> &'static str {
        match self {
            Strength::Must => "must",
            Strength::Should => "should",
        }
    }
}

/// Where a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum RuleOrigin {
    /// `[[rule]]` in config.toml.
    Config,
    /// `[[rule]]` in the simulator's scenario file.
    Scenario,
    /// A constraint in Pacemaker's CIB (`kind` is `colocation` or
    /// `location`; `id` the constraint's id). vmshift never overrides it.
    Pacemaker { kind: String, id: String },
}

impl RuleOrigin {
    /// `config`, `scenario`, `Pacemaker colocation db-apart`.
    pub fn label(&self) -> String {
        match self {
            RuleOrigin::Config => "config".into(),
            RuleOrigin::Scenario => "scenario".into(),
            RuleOrigin::Pacemaker { kind, id } => format!("Pacemaker {kind} {id}"),
        }
    }

    /// Whether an operator may override a must rule of this origin (with a
    /// typed reason): vmshift's own rules, never the cluster manager's.
    pub fn overridable(&self) -> bool {
        !matches!(self, RuleOrigin::Pacemaker { .. })
    }
}

/// A set of nodes by name or by label (`[libvirt.node] labels`, scenario
/// `labels`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl NodeSet {
    pub fn contains(&self, node: &super::Node) -> bool {
        self.nodes.iter().any(|n| *n == node.name)
            || self.labels.iter().any(|l| node.labels.contains(l))
    }

    /// `hv-01, hv-02, label gpu`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.nodes.clone();
        parts.extend(self.labels.iter().map(|l| format!("label {l}")));
        parts.join(", ")
    }
}

/// What a rule asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// At most `max_per_node` of the group on any one node (1: all apart).
    Apart { max_per_node: u32 },
    /// The whole group on one node; it moves as a whole.
    Together,
    /// The group runs only on these nodes.
    On { nodes: NodeSet },
    /// The group never runs on these nodes.
    NotOn { nodes: NodeSet },
    /// At most this many of the group stopped or migrating by vmshift at
    /// once (a budget for voluntary disruption; failures do not count).
    MaxUnavailable { max: u32 },
}

impl RuleKind {
    /// `apart`, `together`, `on`, `not_on`, `max_unavailable`.
    pub fn word(&self) -> &'static str {
        match self {
            RuleKind::Apart { .. } => "apart",
            RuleKind::Together => "together",
            RuleKind::On { .. } => "on",
            RuleKind::NotOn { .. } => "not_on",
            RuleKind::MaxUnavailable { .. } => "max_unavailable",
        }
    }
}

/// One placement rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    #[serde(flatten)]
    pub kind: RuleKind,
    /// The group: VM names and globs (`web-*`).
    pub vms: Vec<String>,
    pub strength: Strength,
    pub origin: RuleOrigin,
}

impl Rule {
    /// Whether `vm` is in the rule's group.
    pub fn has(&self, vm: &str) -> bool {
        self.vms.iter().any(|p| pattern_matches(p, vm))
    }

    /// `rule db-pair (must, config)`.
    pub fn tag(&self) -> String {
        format!(
            "rule {} ({}, {})",
            self.name,
            self.strength.label(),
            self.origin.label()
        )
    }

    /// What the rule asks, in a few words: `db-main, db-replica apart`.
    pub fn summary(&self) -> String {
        let group = self.vms.join(", ");
        match &self.kind {
            RuleKind::Apart { max_per_node: 1 } => format!("{group} apart"),
            RuleKind::Apart { max_per_node } => {
                format!("{group}: at most {max_per_node} per node")
            }
            RuleKind::Together => format!("{group} together"),
            RuleKind::On { nodes } => format!("{group} only on {}", nodes.describe()),
            RuleKind::NotOn { nodes } => format!("{group} never on {}", nodes.describe()),
            RuleKind::MaxUnavailable { max } => {
                format!("{group}: at most {max} stopped or moving at once")
            }
        }
    }
}

/// Whether `name` matches `pattern`: the name itself, or a glob (`*`, `?`,
/// `[…]`).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if !is_glob(pattern) {
        return pattern == name;
    }
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// Whether `pattern` has glob characters.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

impl BrokenRule {
    /// For the event log: `web-02 → hv-01 breaks rule web-pool (should,
    /// scenario): apart from web-01; reason: patching hv-04`.
    pub fn log_line(&self, vm: &str, from: &str, to: &str) -> String {
        let reason = match &self.reason {
            Some(r) => format!("; overridden, reason: {r}"),
            None => "; confirmed by the operator".to_string(),
        };
        format!(
            "{vm} {from} → {to} breaks rule {} ({}, {}): {}{reason}",
            self.rule,
            self.strength.label(),
            self.origin.label(),
            self.sentence
        )
    }
}

/// A rule broken, or to be broken by a move, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenRule {
    pub rule: String,
    pub strength: Strength,
    pub origin: RuleOrigin,
    /// One sentence: what is broken, naming the VMs and the rule.
    pub sentence: String,
    /// Overridden by the operator, with this typed reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The operator's leave to break must rules from vmshift's own config
/// (named), with the typed reason. (A should rule is never refused: the
/// move that breaks it is ranked below those that keep it, and its
/// confirmation names it.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RuleOverrides {
    /// Must rules (config or scenario) the operator overrides by name.
    pub rules: Vec<String>,
    /// Why (typed by the operator); required with `rules`.
    pub reason: Option<String>,
}

impl RuleOverrides {
    pub fn none() -> Self {
        Self::default()
    }

    /// The leave a request carries: the must rules it breaks with a reason
    /// (a backend checks the move again with the same leave).
    pub fn from_broken(broken: &[BrokenRule]) -> Self {
        let overridden = broken
            .iter()
            .filter(|b| b.strength == Strength::Must && b.reason.is_some());
        Self {
            rules: overridden.clone().map(|b| b.rule.clone()).collect(),
            reason: overridden.clone().find_map(|b| b.reason.clone()),
        }
    }

    /// Whether `rule` may be broken without a refusal.
    pub fn allows(&self, rule: &Rule) -> bool {
        match rule.strength {
            Strength::Should => true,
            Strength::Must => {
                rule.origin.overridable()
                    && self.reason.is_some()
                    && self.rules.iter().any(|r| *r == rule.name)
            }
        }
    }
}
