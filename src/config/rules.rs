//! `[[rule]]` tables, in `config.toml` and in scenario files: placement
//! rules as written, checked with the place of each mistake.
//!
//! ```toml
//! [[rule]]
//! name = "db-pair"
//! kind = "apart"              # apart | together | on | not_on | max_unavailable
//! vms = ["db-main", "db-replica"]
//! strength = "must"           # must (default) | should
//! ```

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::cluster::{NodeSet, Rule, RuleKind, RuleOrigin, Strength};

/// One `[[rule]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    name: Spanned<String>,
    kind: Spanned<String>,
    vms: Spanned<Vec<String>>,
    strength: Option<Spanned<String>>,
    /// `apart`: at most this many of the group per node (default 1).
    max_per_node: Option<Spanned<u32>>,
    /// `on` / `not_on`: node names.
    nodes: Option<Spanned<Vec<String>>>,
    /// `on` / `not_on`: node labels.
    labels: Option<Spanned<Vec<String>>>,
    /// `max_unavailable`: how many of the group may be stopped or moving.
    max: Option<Spanned<u32>>,
}

impl RuleSpec {
    /// Where the rule's name is written.
    pub fn name_span(&self) -> Range<usize> {
        self.name.span()
    }
}

/// Labels of a node as written (`labels = ["gpu"]`), checked.
pub fn labels<E>(
    list: Option<Spanned<Vec<String>>>,
    at: &impl Fn(Range<usize>, String) -> E,
) -> Result<Vec<String>, E> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    for l in list.get_ref() {
        if !word(l) {
            return Err(at(
                list.span(),
                format!(
                    "node label {l:?} must be a word of letters, digits, '-', '_' or '.' (like \"gpu\" or \"rack-a\")"
                ),
            ));
        }
    }
    Ok(list.into_inner())
}

fn word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The rules as written → rules, or the first mistake as one sentence made
/// by `at` (which adds the place).
pub fn rules_from<E>(
    specs: Vec<RuleSpec>,
    origin: RuleOrigin,
    at: &impl Fn(Range<usize>, String) -> E,
) -> Result<Vec<Rule>, E> {
    let mut rules: Vec<Rule> = Vec::new();
    for spec in specs {
        let name = spec.name.get_ref().clone();
        if !word(&name) {
            return Err(at(
                spec.name.span(),
                format!(
                    "rule name {name:?} must be a word of letters, digits, '-', '_' or '.' (it is typed in --override-rule)"
                ),
            ));
        }
        if rules.iter().any(|r| r.name == name) {
            return Err(at(
                spec.name.span(),
                format!("there are two rules named {name:?}; give each rule its own name"),
            ));
        }
        rules.push(rule_from(spec, &name, origin.clone(), at)?);
    }
    Ok(rules)
}

fn rule_from<E>(
    spec: RuleSpec,
    name: &str,
    origin: RuleOrigin,
    at: &impl Fn(Range<usize>, String) -> E,
) -> Result<Rule, E> {
    let strength = match spec.strength.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("must") => Strength::Must,
        Some("should") => Strength::Should,
        Some(other) => {
            return Err(at(
                spec.strength.as_ref().map_or(0..0, |s| s.span()),
                format!("rule {name}: strength must be \"must\" or \"should\", not {other:?}"),
            ));
        }
    };
    let vms = spec.vms.get_ref().clone();
    if vms.is_empty() || vms.iter().any(|v| v.trim().is_empty()) {
        return Err(at(
            spec.vms.span(),
            format!("rule {name}: vms must list VM names or globs (like [\"web-*\"])"),
        ));
    }
    if let Some(bad) = vms
        .iter()
        .find(|v| crate::cluster::rules::is_glob(v) && glob::Pattern::new(v).is_err())
    {
        return Err(at(
            spec.vms.span(),
            format!("rule {name}: {bad:?} is not a valid glob"),
        ));
    }
    let kind_word = spec.kind.get_ref().as_str();
    // Keys that belong to other kinds are mistakes, not silently ignored.
    let only = |key: &str, present: bool, kinds: &[&str]| -> Result<(), E> {
        if present && !kinds.contains(&kind_word) {
            return Err(at(
                spec.kind.span(),
                format!(
                    "rule {name}: `{key}` is for kind {} only, not {kind_word:?}",
                    kinds.join(" or ")
                ),
            ));
        }
        Ok(())
    };
    only("max_per_node", spec.max_per_node.is_some(), &["apart"])?;
    only("nodes", spec.nodes.is_some(), &["on", "not_on"])?;
    only("labels", spec.labels.is_some(), &["on", "not_on"])?;
    only("max", spec.max.is_some(), &["max_unavailable"])?;
    let count = |v: &Option<Spanned<u32>>, key: &str, default: Option<u32>| match (v, default) {
        (Some(v), _) if *v.get_ref() == 0 => Err(at(
            v.span(),
            format!("rule {name}: {key} must be at least 1"),
        )),
        (Some(v), _) => Ok(*v.get_ref()),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(at(
            spec.kind.span(),
            format!("rule {name}: kind {kind_word:?} needs `{key}`"),
        )),
    };
    let kind = match kind_word {
        "apart" => {
            if vms.len() < 2 && !vms.iter().any(|v| crate::cluster::rules::is_glob(v)) {
                return Err(at(
                    spec.vms.span(),
                    format!("rule {name}: an apart rule needs two VMs or more (or a glob)"),
                ));
            }
            RuleKind::Apart {
                max_per_node: count(&spec.max_per_node, "max_per_node", Some(1))?,
            }
        }
        "together" => {
            if vms.len() < 2 && !vms.iter().any(|v| crate::cluster::rules::is_glob(v)) {
                return Err(at(
                    spec.vms.span(),
                    format!("rule {name}: a together rule needs two VMs or more (or a glob)"),
                ));
            }
            RuleKind::Together
        }
        "on" | "not_on" => {
            let nodes = NodeSet {
                nodes: spec.nodes.map(|n| n.into_inner()).unwrap_or_default(),
                labels: labels(spec.labels, at)?,
            };
            if nodes.nodes.is_empty() && nodes.labels.is_empty() {
                return Err(at(
                    spec.kind.span(),
                    format!("rule {name}: kind {kind_word:?} needs `nodes` or `labels`"),
                ));
            }
            if kind_word == "on" {
                RuleKind::On { nodes }
            } else {
                RuleKind::NotOn { nodes }
            }
        }
        "max_unavailable" => RuleKind::MaxUnavailable {
            max: count(&spec.max, "max", None)?,
        },
        other => {
            return Err(at(
                spec.kind.span(),
                format!(
                    "rule {name}: kind must be apart, together, on, not_on or max_unavailable, not {other:?}"
                ),
            ));
        }
    };
    Ok(Rule {
        name: name.to_string(),
        kind,
        vms,
        strength,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct F {
        #[serde(rename = "rule")]
        rules: Vec<RuleSpec>,
    }

    fn parse(text: &str) -> Result<Vec<Rule>, String> {
        let f: F = toml::from_str(text).map_err(|e| e.message().to_string())?;
        rules_from(f.rules, RuleOrigin::Config, &|span: Range<usize>, m| {
            format!("{}: {m}", crate::input::line_col(text, span.start).0)
        })
    }

    #[test]
    fn every_kind_is_read() {
        let r = parse(
            r#"
[[rule]]
name = "db-pair"
kind = "apart"
vms = ["db-main", "db-replica"]
[[rule]]
name = "web-pool"
kind = "apart"
vms = ["web-*"]
max_per_node = 2
strength = "should"
[[rule]]
name = "erp"
kind = "together"
vms = ["erp-app", "erp-report"]
[[rule]]
name = "dc-icelake"
kind = "on"
vms = ["dc-*"]
labels = ["icelake"]
[[rule]]
name = "no-04"
kind = "not_on"
vms = ["batch-etl"]
nodes = ["hv-04"]
[[rule]]
name = "web-budget"
kind = "max_unavailable"
vms = ["web-*"]
max = 1
"#,
        )
        .unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r[0].kind, RuleKind::Apart { max_per_node: 1 });
        assert_eq!(r[0].strength, Strength::Must);
        assert_eq!(r[1].kind, RuleKind::Apart { max_per_node: 2 });
        assert_eq!(r[1].strength, Strength::Should);
        assert_eq!(r[2].kind, RuleKind::Together);
        assert_eq!(
            r[3].kind,
            RuleKind::On {
                nodes: NodeSet {
                    nodes: vec![],
                    labels: vec!["icelake".into()]
                }
            }
        );
        assert!(matches!(&r[4].kind, RuleKind::NotOn { nodes } if nodes.nodes == ["hv-04"]));
        assert_eq!(r[5].kind, RuleKind::MaxUnavailable { max: 1 });
        assert!(r[1].has("web-07") && !r[1].has("db-main"));
        assert_eq!(r[0].tag(), "rule db-pair (must, config)");
    }

    #[test]
    fn mistakes_name_the_rule_and_the_line() {
        let e =
            parse("[[rule]]\nname = \"a\"\nkind = \"near\"\nvms = [\"x\", \"y\"]\n").unwrap_err();
        assert!(e.starts_with("3: rule a: kind must be apart"), "{e}");
        let e = parse("[[rule]]\nname = \"a\"\nkind = \"apart\"\nvms = [\"x\"]\n").unwrap_err();
        assert!(e.contains("needs two VMs or more"), "{e}");
        let e = parse("[[rule]]\nname = \"a\"\nkind = \"on\"\nvms = [\"x\"]\n").unwrap_err();
        assert!(e.contains("needs `nodes` or `labels`"), "{e}");
        let e = parse("[[rule]]\nname = \"a\"\nkind = \"apart\"\nvms = [\"x\",\"y\"]\nmax = 2\n")
            .unwrap_err();
        assert!(e.contains("`max` is for kind max_unavailable only"), "{e}");
        let e = parse(
            "[[rule]]\nname = \"a\"\nkind = \"apart\"\nvms = [\"x\",\"y\"]\nstrength = \"may\"\n",
        )
        .unwrap_err();
        assert!(e.starts_with("5: rule a: strength must be"), "{e}");
        let e = parse("[[rule]]\nname = \"a\"\nkind = \"apart\"\nvms = [\"x\",\"y\"]\n[[rule]]\nname = \"a\"\nkind = \"together\"\nvms = [\"x\",\"y\"]\n").unwrap_err();
        assert!(e.contains("two rules named \"a\""), "{e}");
        let e =
            parse("[[rule]]\nname = \"a b\"\nkind = \"apart\"\nvms = [\"x\",\"y\"]\n").unwrap_err();
        assert!(e.contains("must be a word"), "{e}");
        let e =
            parse("[[rule]]\nname = \"a\"\nkind = \"max_unavailable\"\nvms = [\"x\"]\nmax = 0\n")
                .unwrap_err();
        assert!(e.contains("max must be at least 1"), "{e}");
    }
}
