//! The domain model, and what a backend is asked and answers.

mod backend;
mod manager;
mod model;
mod refusal;
pub mod rules;
pub mod text;
pub mod units;

pub use backend::{BackendError, MigrationRequest, cordon_sentence};
pub use manager::*;
pub use model::*;
pub use refusal::Refusal;
pub use rules::{BrokenRule, NodeSet, Rule, RuleKind, RuleOrigin, RuleOverrides, Strength};
