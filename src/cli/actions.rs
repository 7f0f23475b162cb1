//! `vmshift start|shutdown|reboot|poweroff VM` and `vmshift cordon|uncordon
//! NODE`: one action, one sentence, the exit code says how it went.

use std::process::ExitCode;

use super::{CliError, exit};
use crate::backends::Backend;
use crate::cluster::{BackendError, VmAction};
use crate::config::Config;
use crate::output as out;

fn refuse_read_only(cfg: &Config, what: &str) -> Result<(), CliError> {
    if cfg.read_only {
        return Err(CliError::new(
            exit::INPUT,
            format!(
                "vmshift runs read-only (--read-only or read_only in the config); drop it to {what}"
            ),
        ));
    }
    Ok(())
}

fn backend_error(e: BackendError) -> CliError {
    let code = match e {
        BackendError::UnknownVm { .. } | BackendError::UnknownNode { .. } => exit::INPUT,
        BackendError::NotPossible(_) | BackendError::Refused(_) => exit::REFUSED,
        _ => exit::BACKEND,
    };
    CliError::new(code, e.to_string())
}

/// Starts, shuts down, reboots or forces off `vm`. Force off needs `yes`.
pub fn vm(
    backend: &mut dyn Backend,
    cfg: &Config,
    vm: &str,
    action: VmAction,
    yes: bool,
) -> Result<ExitCode, CliError> {
    refuse_read_only(cfg, &format!("{} {vm}", action.verb()))?;
    if action == VmAction::PowerOff && !yes {
        return Err(CliError::new(
            exit::INPUT,
            format!(
                "forcing {vm} off loses what its guest has not written; add --yes to do it, or use `vmshift shutdown {}` to ask the guest",
                crate::cluster::text::shell_word(vm)
            ),
        ));
    }
    let text = backend.vm_action(vm, action).map_err(backend_error)?;
    out::println(&crate::cluster::text::escape(&text));
    Ok(ExitCode::SUCCESS)
}

/// Cordons (`on`) or uncordons `node`.
pub fn cordon(
    backend: &mut dyn Backend,
    cfg: &Config,
    node: &str,
    on: bool,
) -> Result<ExitCode, CliError> {
    refuse_read_only(
        cfg,
        &format!("{} {node}", if on { "cordon" } else { "uncordon" }),
    )?;
    let text = backend.set_cordon(node, on).map_err(backend_error)?;
    out::println(&crate::cluster::text::escape(&text));
    Ok(ExitCode::SUCCESS)
}
