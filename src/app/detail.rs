//! The detail view: one event, VM or migration in full, wrapped, never
//! cut off; its text can be copied to the clipboard (OSC 52). The text is
//! made by `update` when the view opens, so render only draws it.

use super::log::{Clock, LogEntry, stall_advice};
use super::nodes::Level;
use super::{App, Mode};
use crate::cluster::{Migration, Outcome, units};

#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub title: String,
    /// Lines of text; each wraps on screen.
    pub lines: Vec<String>,
    /// First line shown (clamped to the end when drawn).
    pub scroll: u16,
    /// The VM this detail shows, if it shows one: its text is made again
    /// as the VM changes (a disk move's progress), and its keys act on it.
    pub vm: Option<String>,
}

impl Detail {
    /// Any text, under a title.
    pub fn text(title: String, lines: Vec<String>) -> Detail {
        Self::new(title, lines)
    }

    fn new(title: String, lines: Vec<String>) -> Detail {
        Detail {
            title,
            lines,
            scroll: 0,
            vm: None,
        }
    }

    /// What `c` copies: the title and every line.
    pub fn copy_text(&self) -> String {
        let mut t = self.title.clone();
        for l in &self.lines {
            t.push('\n');
            t.push_str(l);
        }
        t
    }

    pub fn event(e: &LogEntry, clock: Clock) -> Detail {
        let level = match e.level {
            Level::Ok => "information",
            Level::Warn => "warning",
            Level::Crit => "failure",
        };
        Detail::new(
            format!("event at {} ({level})", clock.text(e.at_ms)),
            vec![e.text.clone()],
        )
    }

    pub fn migration(m: &Migration) -> Detail {
        let mut lines = vec![format!(
            "{} from {} to {}, {} of memory{}",
            m.vm,
            m.from,
            m.to,
            units::bytes(m.memory),
            if m.storage_bytes > 0 {
                format!(" and {} of disk", units::bytes(m.storage_bytes))
            } else {
                String::new()
            }
        )];
        lines.push(match m.outcome_sentence() {
            Some(s) => s,
            None => m.progress_line(),
        });
        if let Some(Outcome::Aborted { reason } | Outcome::Failed { reason }) = &m.outcome {
            lines.push(format!("reason: {reason}"));
        }
        if m.stalled && !m.is_finished() {
            lines.push(format!(
                "stalled: rounds no longer shrink. {}",
                stall_advice(m)
            ));
        }
        let o = &m.options;
        lines.push(format!(
            "options: max downtime {} ms, bandwidth {}, auto-converge {}, post-copy {}, on stall {}",
            o.max_downtime_ms,
            o.bandwidth_bps.map_or("link speed".into(), units::rate),
            if o.auto_converge { "on" } else { "off" },
            o.postcopy.label(),
            o.on_stall.label()
        ));
        if let Some(f) = &m.forecast {
            lines.push(format!(
                "predicted before the start: {} rounds, {}, downtime ≈ {}{}",
                f.rounds.value.round(),
                units::millis(f.total_ms.value),
                units::millis(f.downtime_ms.value),
                if f.converges { "" } else { ", not converging" }
            ));
            if !f.advice.is_empty() {
                lines.push(format!("advice then: {}", f.advice.join(" · ")));
            }
        }
        if let Some(i) = &m.inputs {
            for b in &i.basis {
                lines.push(format!("based on: {b}"));
            }
        }
        for r in &m.rounds {
            lines.push(format!(
                "round {}: sent {}, {} still dirty, dirty rate {}, bandwidth {}, {}{}",
                r.index,
                units::bytes(r.bytes_sent),
                units::bytes(r.bytes_dirty),
                units::rate(r.dirty_bps),
                units::rate(r.bandwidth_bps),
                units::millis(r.duration_ms),
                if r.throttle_pct > 0 {
                    format!(", throttled {} %", r.throttle_pct)
                } else {
                    String::new()
                }
            ));
        }
        if let Some(d) = m.actual_downtime_ms {
            lines.push(format!(
                "actual downtime {} (limit {} ms)",
                units::millis(d),
                o.max_downtime_ms
            ));
        }
        Detail::new(format!("migration #{} of {}", m.id, m.vm), lines)
    }
}

/// Events about a VM or node shown in its detail view, at most.
const DETAIL_EVENTS: usize = 20;

impl App {
    /// Opens the selected VM in the detail view.
    pub(super) fn open_vm_detail(&mut self) {
        if let Some(vm) = self.sel_vm.clone() {
            self.open_vm_detail_of(&vm);
        }
    }

    /// Opens `vm` in the detail view.
    pub(super) fn open_vm_detail_of(&mut self, vm: &str) {
        let Some(d) = self.vm_detail(vm) else { return };
        self.mode = Mode::Detail(Box::new(d));
    }

    /// Makes an open VM detail's text again from the state now (where it
    /// was scrolled to stays).
    pub(super) fn refresh_detail(&mut self) {
        let Mode::Detail(d) = &self.mode else { return };
        let Some(vm) = &d.vm else { return };
        let Some(mut new) = self.vm_detail(vm) else {
            return;
        };
        if let Mode::Detail(d) = &mut self.mode {
            new.scroll = d.scroll;
            **d = new;
        }
    }

    fn vm_detail(&self, vm: &str) -> Option<Detail> {
        let s = self.snap.as_ref()?;
        let v = s.vm(vm)?;
        let mut lines = vec![
            format!("{} on {}: {}", v.name, v.node, v.state.label()),
            format!(
                "{} vCPU, {} memory, CPU {:.0} %",
                v.vcpus,
                units::bytes(v.memory),
                v.cpu_used_pct
            ),
            format!(
                "workload {}: dirties {} over a {} hot set",
                v.workload.kind,
                units::rate(v.workload.dirty_bps),
                units::bytes(v.workload.wws_bytes)
            ),
        ];
        let clock = self.clock();
        if let Some(l) = &v.lost {
            lines.insert(
                1,
                format!(
                    "✖ {}: shown as last seen there; once {} is powered off or fenced, :recover {} restarts it elsewhere",
                    super::recover::lost_text(l, clock),
                    l.node,
                    l.node
                ),
            );
        }
        if let Some(m) = &v.workload.measured {
            lines.push(format!("measured: {}", m.basis));
        }
        for d in &v.disks {
            let kind = s.volume(&d.volume).map_or("", |x| x.kind.label());
            lines.push(format!(
                "disk on {} ({kind}), {}",
                d.volume,
                units::bytes(d.size)
            ));
        }
        lines.extend(super::storage::detail_lines(s, &v.name));
        lines.push(format!(
            "HA {}, CPU model {}",
            if v.ha { "on" } else { "off" },
            if v.cpu_model.is_empty() {
                "any"
            } else {
                &v.cpu_model
            }
        ));
        if let Some(m) = s.active_migration_of(&v.name) {
            lines.push(format!("migrating: {}", m.progress_line()));
        }
        lines.extend(super::rules::vm_rule_lines(s, v));
        lines.extend(super::recover::recovery_lines(s, &v.name, clock));
        // A VM Pacemaker owns: what it says, and what it did (its timeline:
        // moves, stops, starts, failures, fencing-driven restarts).
        if let Some(r) = s.managed_vm(&v.name) {
            lines.push(String::new());
            lines.push(format!(
                "Pacemaker resource {} ({}): {} on {}{}{}",
                r.resource,
                r.agent,
                r.role,
                if r.running_on.is_empty() {
                    "no node".to_string()
                } else {
                    r.running_on.join(", ")
                },
                if r.managed { "" } else { ", unmanaged" },
                if r.allow_migrate {
                    ", live moves (allow-migrate)"
                } else {
                    ", allow-migrate off: a move is a stop and a cold start"
                }
            ));
            lines.push(
                "Pacemaker moves, restarts and recovers it (fencing its node first when one fails); vmshift asks Pacemaker and never moves it behind its back".into(),
            );
            for (node, n) in &r.failcounts {
                lines.push(format!("failures on {node}: {n}"));
            }
            for c in &r.constraints {
                lines.push(format!(
                    "constraint {} ({} {}{})",
                    c.id,
                    c.kind,
                    c.node,
                    c.until
                        .as_deref()
                        .map_or(String::new(), |u| format!(", until {u}"))
                ));
            }
            if !r.recent.is_empty() {
                lines.push("Pacemaker's operations (oldest first):".into());
                for o in &r.recent {
                    lines.push(format!(
                        "  {}  {} on {}: {} ({} ms)",
                        o.when, o.task, o.node, o.result, o.exec_ms
                    ));
                }
            }
        }
        let about: Vec<&LogEntry> = self
            .log
            .iter()
            .rev()
            .filter(|e| mentions(&e.text, &v.name))
            .take(DETAIL_EVENTS)
            .collect();
        if !about.is_empty() {
            lines.push(String::new());
            lines.push(format!("events about {} (newest first):", v.name));
            for e in about {
                lines.push(format!("{} {}", clock.text(e.at_ms), e.text));
            }
        }
        let mut d = Detail::new(format!("VM {}", v.name), lines);
        d.vm = Some(v.name.clone());
        Some(d)
    }
}

/// Whether `text` names `name` as a whole word (web-1 is not in web-10).
fn mentions(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_found_as_a_whole_word_only() {
        assert!(mentions("web-1 migrated hv-01 → hv-02", "web-1"));
        assert!(mentions("cannot move web-1: x", "web-1"));
        assert!(!mentions("web-10 migrated", "web-1"));
        assert!(!mentions("aweb-1", "web-1"));
    }
}
