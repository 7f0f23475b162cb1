//! May an operator start, shut down, reboot or force off a VM now? One
//! check for every backend, the app and the CLI, each refusal one sentence.

use crate::cluster::{ClusterSnapshot, NodeState, Strength, Vm, VmAction, VmState};

use super::placement::cordon_check;
use super::rules::VmRules;

/// Whether `action` applies to `vm` (taken from `snap`) now; `Err` says
/// why not and what to do instead. Memory for a start is the backend's
/// to judge (a real host's free memory leaves out its page cache).
pub fn check_vm_action(snap: &ClusterSnapshot, vm: &Vm, action: VmAction) -> Result<(), String> {
    let name = &vm.name;
    if snap.active_migration_of(name).is_some() || vm.state == VmState::Migrating {
        return Err(format!(
            "{name} is migrating; wait for the migration to end or abort it first"
        ));
    }
    if vm.state == VmState::Restarting {
        return Err(format!(
            "{name} is being restarted after its node failed; wait for it to run"
        ));
    }
    if action != VmAction::Reboot {
        if let Some(why) = super::manager_hold(snap, name, action.verb()) {
            return Err(why);
        }
        if let Some(m) = snap.managed_vm(name) {
            // Pacemaker keeps its resources in the role it was told: a
            // start or stop behind its back is undone or starts a copy.
            let (role, words) = match action {
                VmAction::Start => ("Started", "start"),
                _ => ("Stopped", "stop"),
            };
            return Err(format!(
                "{name} is Pacemaker resource {r}: Pacemaker starts and stops it, and would undo (or double) a {verb} done behind its back; ask Pacemaker: `crm resource {words} {r}` (target-role {role})",
                r = m.resource,
                verb = action.verb(),
            ));
        }
    }
    if action == VmAction::Start
        && let Some(c) = snap.stale_copies.iter().find(|c| c.vm == *name)
    {
        return Err(format!(
            "the shut-off copy of {name} on {} is stale: {name} runs on {}, and starting this copy would run it twice on its disks; remove it: `{}`",
            c.node, c.runs_on, c.remove
        ));
    }
    let node = snap.node(&vm.node);
    if let Some(n) = node
        && n.state != NodeState::Up
    {
        return Err(format!(
            "{name}'s node {} is {}; it cannot {} {name} now",
            n.name,
            n.state.label(),
            action.verb()
        ));
    }
    // A stop (not a reboot: the guest comes back at once) counts against
    // the group's disruption budget.
    if matches!(action, VmAction::Shutdown | VmAction::PowerOff)
        && let Some(b) = VmRules::new(snap, vm)
            .stop_breaches()
            .into_iter()
            .find(|b| b.rule.strength == Strength::Must)
    {
        return Err(format!(
            "stopping {name} now would put too many of its group out: {}; wait until one is back",
            b.sentence
        ));
    }
    match action {
        VmAction::Start => {
            if vm.state != VmState::Stopped {
                return Err(format!("{name} is {} already", vm.state.label()));
            }
            if let Some(n) = node {
                cordon_check(snap, n).map_err(|r| format!("cannot start {name}: {r}"))?;
                // Running there must keep the placement rules.
                if let Some(b) = VmRules::new(snap, vm)
                    .breaches(n, false)
                    .into_iter()
                    .find(|b| b.rule.strength == Strength::Must)
                {
                    return Err(format!(
                        "starting {name} on {} would break a placement rule: {}; move the other VM first, or change the rule",
                        n.name, b.sentence
                    ));
                }
            }
        }
        VmAction::Shutdown | VmAction::Reboot => {
            if vm.state != VmState::Running {
                return Err(format!(
                    "{name} is {}; only a running guest can {}",
                    vm.state.label(),
                    action.verb()
                ));
            }
        }
        VmAction::PowerOff => {
            if !matches!(vm.state, VmState::Running | VmState::Paused) {
                return Err(format!(
                    "{name} is {}; nothing to force off",
                    vm.state.label()
                ));
            }
        }
    }
    Ok(())
}
