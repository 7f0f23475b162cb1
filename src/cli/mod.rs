//! Command-line interface (DESIGN §5): argument parsing and the sub-commands
//! for scripts and people without a TTY.

mod actions;
pub mod assets;
mod drain;
mod history;
mod migrate;
mod move_disk;
mod recover;
mod rules;
pub mod signals;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::backends::Backend;
use crate::backends::sim::{SimCluster, clock::Speed};
use crate::cluster::{MovePath, OnStall, PostcopyMode, VmAction};
use crate::config::{self, BackendKind, Config};
use crate::output as out;
use crate::record::{Cordons, Failure, Journal};

/// Exit codes: 0 success (README lists them).
pub mod exit {
    /// Bad input: arguments, config, scenario, unknown names.
    pub const INPUT: u8 = 2;
    /// The placement check refused the migration.
    pub const REFUSED: u8 = 3;
    /// The migration did not complete (aborted, failed, or predicted not to converge).
    pub const NOT_COMPLETED: u8 = 4;
    /// The backend could not be reached or failed.
    pub const BACKEND: u8 = 5;
    /// A migration ran (or was found) but could not be written to the flight recorder.
    pub const NOT_RECORDED: u8 = 6;
    /// vmshift stopped (SIGTERM, SIGHUP) while a libvirt migration goes on
    /// without it; it is recorded as detached.
    pub const DETACHED: u8 = 7;

    /// Stopped by signal `sig` (128 + its number), after ending what it ran.
    pub fn signal(sig: i32) -> u8 {
        (128 + sig.clamp(1, 127)) as u8
    }
}

/// Longest wait at exit for the flight recorder's last writes.
pub const RECORD_FLUSH: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "vmshift",
    version,
    disable_version_flag = true,
    about = "See a virtualization cluster and live-migrate VMs between its nodes.",
    long_about = "See a virtualization cluster and live-migrate VMs between its nodes.\n\nWith no command, opens the interactive view of the configured cluster (the built-in simulated cluster by default)."
)]
pub struct Cli {
    /// Config file (default: $VMSHIFT_CONFIG, then ~/.config/vmshift/config.toml).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Cluster (any command)"
    )]
    pub config: Option<PathBuf>,
    /// Simulator scenario: built-in name (default, small), TOML file, or gen:nodes=N,vms=M.
    #[arg(
        long,
        global = true,
        value_name = "NAME|PATH",
        help_heading = "Cluster (any command)"
    )]
    pub scenario: Option<String>,
    /// Simulated seconds per real second, or "max".
    #[arg(
        long,
        global = true,
        value_name = "N|max",
        help_heading = "Cluster (any command)"
    )]
    pub speed: Option<Speed>,
    /// Offer and accept no action that changes the cluster.
    #[arg(long, global = true, help_heading = "Cluster (any command)")]
    pub read_only: bool,
    /// Do not capture the mouse (the interactive view).
    #[arg(long)]
    pub no_mouse: bool,
    /// A libvirt node to use (repeat for each node); selects the libvirt backend.
    #[arg(
        long,
        global = true,
        value_name = "URI",
        help_heading = "Cluster (any command)"
    )]
    pub connect: Vec<String>,
    /// Print the version.
    ///
    /// --version also names the backends built in (libvirt with its
    /// library's version) and where the config and the state are.
    #[arg(short = 'V', long, action = clap::ArgAction::Version)]
    pub version: (),
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One snapshot of the cluster: nodes, volumes, VMs.
    Status {
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Live-migrate one VM, printing the plan and every round.
    Migrate(MigrateArgs),
    /// Move every running VM off a node (maintenance), one after the other.
    Drain(DrainArgs),
    /// Maintenance mode of the cluster manager (Pacemaker): while on, it
    /// moves, restarts and monitors nothing.
    Maintenance {
        /// on or off.
        #[arg(value_name = "on|off", value_parser = ["on", "off"])]
        state: String,
    },
    /// Move a running VM's disk to another volume (block copy, then pivot).
    MoveDisk(MoveDiskArgs),
    /// Restart the VMs of a lost node elsewhere, once it is confirmed off.
    Recover(RecoverArgs),
    /// Placement rules: each with its origin and whether it holds now.
    Rules {
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Past migrations from the flight recorder.
    History {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped VM.
    Start {
        /// The VM to start.
        vm: String,
    },
    /// Ask a VM's guest to shut down (ACPI power button).
    Shutdown {
        /// The VM to shut down.
        vm: String,
    },
    /// Ask a VM's guest to reboot.
    Reboot {
        /// The VM to reboot.
        vm: String,
    },
    /// Force a VM off at once, like pulling its power cord.
    Poweroff {
        /// The VM to force off.
        vm: String,
        /// Yes, lose what the guest has not written.
        #[arg(long)]
        yes: bool,
    },
    /// Keep a node out of placement: no VM is moved, started or restarted onto it.
    Cordon {
        /// The node to cordon.
        node: String,
    },
    /// Let a cordoned node take VMs again.
    Uncordon {
        /// The node to uncordon.
        node: String,
    },
    /// Print the shell completion script (bash, zsh, fish, ...).
    ///
    /// The packages install it; without them, e.g.
    /// `vmshift completions bash > ~/.local/share/bash-completion/completions/vmshift`.
    /// In bash and fish, VM, node and volume names are completed from the
    /// cluster (`vmshift complete-names`, 2 s at most).
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The VM to move.
    pub vm: String,
    /// The node to move it to.
    pub node: String,
    #[command(flatten)]
    pub flags: MigrationFlags,
    /// Check and predict only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The lost node.
    pub node: String,
    /// Type the lost node's name to confirm it is powered off or fenced.
    #[arg(long, value_name = "NODE")]
    pub confirm_fenced: Option<String>,
    /// Plan only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MoveDiskArgs {
    /// The VM whose disk moves (it keeps running).
    pub vm: String,
    /// The disk, named by the volume it is on now.
    pub disk: String,
    /// The volume to move it to.
    pub volume: String,
    /// Check only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node to empty.
    pub node: String,
    /// Move disks off plain LUNs shared with other VMs first (move-disk to
    /// a cluster-shared volume) where that frees a VM.
    #[arg(long)]
    pub storage_moves: bool,
    #[command(flatten)]
    pub flags: MigrationFlags,
    /// Plan only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Migration settings on the command line (over the config's).
#[derive(Debug, Args)]
pub struct MigrationFlags {
    /// Longest pause allowed at switchover, ms [default: config, else 300].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub max_downtime: Option<u64>,
    /// Bandwidth limit, MiB/s [default: config, else the link's speed].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub bandwidth: Option<u64>,
    /// Throttle the guest when pre-copy does not converge.
    #[arg(long)]
    pub auto_converge: bool,
    /// Post-copy: off, auto (when pre-copy stalls), now.
    #[arg(long, value_name = "off|auto|now")]
    pub postcopy: Option<PostcopyMode>,
    /// When rounds stop shrinking: abort, postcopy, wait.
    #[arg(long, value_name = "abort|postcopy|wait")]
    pub on_stall: Option<OnStall>,
    /// Copy disks the target cannot reach (shared-nothing migration).
    #[arg(long)]
    pub copy_storage: bool,
    /// Path of the move: auto (through Pacemaker where it owns the VM),
    /// pacemaker, or libvirt (refused for VMs Pacemaker owns).
    #[arg(long, value_name = "auto|pacemaker|libvirt")]
    pub via: Option<MovePath>,
    /// After a move through Pacemaker, keep its move constraint (the VM
    /// stays pinned to the target) instead of clearing it.
    #[arg(long)]
    pub keep_placement: bool,
    /// How long a kept move constraint lasts (ISO 8601 duration, e.g. PT1H).
    #[arg(long, value_name = "DURATION", requires = "keep_placement")]
    pub placement_lifetime: Option<String>,
    /// Break this placement rule knowingly (repeatable): confirms a should
    /// rule; a must rule of the config also needs --reason. Pacemaker's
    /// constraints are never overridden.
    #[arg(long, value_name = "RULE")]
    pub override_rule: Vec<String>,
    /// Why the rules named by --override-rule may be broken (recorded).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// An error that ends the program: a sentence and an exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Parses the command line, with the full `--version` text.
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = assets::command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Commands that need neither the config nor a log: the shell completions.
pub fn run_standalone(cli: &Cli) -> Option<Result<ExitCode, CliError>> {
    match cli.command.as_ref()? {
        Command::Completions { shell } => Some(assets::completions(*shell)),
        _ => None,
    }
}

/// Loads the config and applies the global flags on top of it.
pub fn settings(cli: &Cli) -> Result<Config, CliError> {
    let mut cfg = config::load(cli.config.as_deref())
        .map_err(|e| CliError::new(exit::INPUT, e.to_string()))?;
    if let Some(s) = &cli.scenario {
        cfg.scenario = s.clone();
        cfg.backend = BackendKind::Sim;
    }
    if !cli.connect.is_empty() {
        if cli.scenario.is_some() {
            return Err(CliError::new(
                exit::INPUT,
                "--scenario is for the simulator and --connect for libvirt; give one of them",
            ));
        }
        cfg.backend = BackendKind::Libvirt;
        cfg.libvirt.nodes = cli
            .connect
            .iter()
            .map(|uri| config::LibvirtNode {
                uri: uri.clone(),
                name: None,
                migrate_host: None,
                labels: Vec::new(),
            })
            .collect();
    }
    if let Some(s) = cli.speed {
        cfg.speed = s;
    }
    cfg.read_only |= cli.read_only;
    cfg.mouse &= !cli.no_mouse;
    Ok(cfg)
}

/// Opens the configured backend.
pub fn open_backend(cfg: &Config) -> Result<Box<dyn Backend>, CliError> {
    match cfg.backend {
        BackendKind::Sim => SimCluster::from_spec(&cfg.scenario, cfg.speed)
            .map(|s| Box::new(s) as Box<dyn Backend>)
            .map_err(|e| CliError::new(exit::INPUT, e.to_string())),
        #[cfg(feature = "libvirt")]
        BackendKind::Libvirt => {
            use crate::backends::libvirt::{LibvirtCluster, LibvirtConfig, NodeSpec, SharedDecl};
            let l = &cfg.libvirt;
            if l.nodes.is_empty() {
                return Err(CliError::new(
                    exit::INPUT,
                    "the libvirt backend has no nodes: add [[libvirt.node]] entries to the config or give --connect URI",
                ));
            }
            LibvirtCluster::connect(LibvirtConfig {
                cluster: l.cluster.clone(),
                nodes: l
                    .nodes
                    .iter()
                    .map(|n| NodeSpec {
                        name: n.name.clone(),
                        uri: n.uri.clone(),
                        migrate_host: n.migrate_host.clone(),
                        labels: n.labels.clone(),
                    })
                    .collect(),
                shared: l
                    .shared_volumes
                    .iter()
                    .map(|s| SharedDecl {
                        name: s.name.clone(),
                        pools: s.pools.clone(),
                        kind: s.kind,
                        trusted: s.trusted,
                    })
                    .collect(),
                timeout: std::time::Duration::from_millis(l.timeout_ms),
                lost_after: std::time::Duration::from_secs(l.lost_after_s),
                manager: crate::manager::connect(
                    &cfg.pacemaker,
                    &l.nodes.iter().map(|n| n.uri.clone()).collect::<Vec<_>>(),
                ),
                rules: cfg.rules.clone(),
            })
            .map(|b| Box::new(b) as Box<dyn Backend>)
            .map_err(|e| CliError::new(exit::BACKEND, e))
        }
        #[cfg(not(feature = "libvirt"))]
        BackendKind::Libvirt => Err(CliError::new(
            exit::INPUT,
            "this vmshift was built without libvirt support; rebuild with `cargo build --features libvirt` or set [backend] kind = \"sim\"",
        )),
    }
}

/// Runs a sub-command; `None` when the caller should open the TUI.
pub fn run(cli: &Cli, cfg: &Config) -> Option<Result<ExitCode, CliError>> {
    let command = cli.command.as_ref()?;
    Some(match command {
        Command::Status { json } => with_backend(cfg, |b| status::run(b, *json)),
        Command::Rules { json } => with_backend(cfg, |b| rules::run(b, *json)),
        Command::Migrate(args) => with_backend(cfg, |b| migrate::run(b, cfg, args)),
        Command::Drain(args) => with_backend(cfg, |b| drain::run(b, cfg, args)),
        Command::MoveDisk(args) => with_backend(cfg, |b| move_disk::run(b, cfg, args)),
        Command::Recover(args) => with_backend(cfg, |b| recover::run(b, cfg, args)),
        Command::History { json } => {
            settle_open_records(cfg);
            history::run(*json)
        }
        Command::Maintenance { state } => with_backend(cfg, |b| maintenance(b, cfg, state == "on")),
        Command::Start { vm } => {
            with_backend(cfg, |b| actions::vm(b, cfg, vm, VmAction::Start, false))
        }
        Command::Shutdown { vm } => {
            with_backend(cfg, |b| actions::vm(b, cfg, vm, VmAction::Shutdown, false))
        }
        Command::Reboot { vm } => {
            with_backend(cfg, |b| actions::vm(b, cfg, vm, VmAction::Reboot, false))
        }
        Command::Poweroff { vm, yes } => {
            with_backend(cfg, |b| actions::vm(b, cfg, vm, VmAction::PowerOff, *yes))
        }
        Command::Cordon { node } => with_backend(cfg, |b| actions::cordon(b, cfg, node, true)),
        Command::Uncordon { node } => with_backend(cfg, |b| actions::cordon(b, cfg, node, false)),
        Command::Completions { .. } => run_standalone(cli)?,
    })
}

/// Before history is shown: migrations left running (detached, or whose
/// vmshift was killed) that may have ended are settled from the cluster,
/// as any command that reaches it would, so history never says "still
/// running" of one that has ended. Only for a libvirt cluster with such
/// records; a cluster that cannot be reached leaves them as they are.
fn settle_open_records(cfg: &Config) {
    if cfg.backend != BackendKind::Libvirt {
        return;
    }
    let open = crate::record::Recorder::open_default()
        .and_then(|r| r.read())
        .is_ok_and(|h| {
            h.open_detached()
                .iter()
                .any(|r| r.backend == "libvirt" && r.cluster == cfg.libvirt.cluster)
        });
    if !open {
        return;
    }
    if let Err(e) = with_backend(cfg, |b| {
        b.snapshot()
            .map(|_| ExitCode::SUCCESS)
            .map_err(|e| CliError::new(exit::BACKEND, e.to_string()))
    }) {
        out::error(&format!(
            "migrations left running could not be settled from the cluster ({}); they are shown as last recorded",
            e.message
        ));
    }
}

/// `vmshift maintenance on|off`.
fn maintenance(backend: &mut dyn Backend, cfg: &Config, on: bool) -> Result<ExitCode, CliError> {
    if cfg.read_only {
        return Err(CliError::new(
            exit::INPUT,
            "vmshift runs read-only (--read-only or read_only in the config); drop it to change maintenance mode",
        ));
    }
    backend
        .snapshot()
        .map_err(|e| CliError::new(exit::BACKEND, e.to_string()))?;
    backend.set_manager_maintenance(on).map_err(|e| {
        let code = match e {
            crate::cluster::BackendError::NotPossible(_) => exit::INPUT,
            _ => exit::BACKEND,
        };
        CliError::new(code, e.to_string())
    })?;
    out::println(&format!(
        "Pacemaker maintenance mode {}",
        if on {
            "on: it moves, restarts and monitors nothing until `vmshift maintenance off`"
        } else {
            "off"
        }
    ));
    Ok(ExitCode::SUCCESS)
}

/// Longest wait at exit for a cluster manager to settle moves.
const MANAGER_SETTLE: std::time::Duration = std::time::Duration::from_secs(120);

/// Opens the backend with the flight recorder attached, runs `f`, and waits
/// for the records to be written: a record that could not be written turns
/// the result into [`exit::NOT_RECORDED`].
fn with_backend(
    cfg: &Config,
    f: impl FnOnce(&mut dyn Backend) -> Result<ExitCode, CliError>,
) -> Result<ExitCode, CliError> {
    let mut backend = open_backend(cfg)?;
    let journal = Journal::open_default();
    backend.set_journal(journal.clone());
    *backend.cordons() = Cordons::open_default();
    let result = f(backend.as_mut());
    // A move through Pacemaker ends with Pacemaker confirming it and its
    // move constraint cleared: wait for that before exiting.
    backend.settle(MANAGER_SETTLE);
    let failures = journal.flush(RECORD_FLUSH);
    not_recorded(result, &failures)
}

/// Reports records that could not be written (each with its JSON, so that it
/// can be added by hand) and makes the exit code say so.
pub fn not_recorded(
    result: Result<ExitCode, CliError>,
    failures: &[Failure],
) -> Result<ExitCode, CliError> {
    let Some(first) = failures.first() else {
        return result;
    };
    if let Err(e) = &result {
        out::error(&e.message);
    }
    for f in failures {
        out::error(&format!(
            "the migration of {} could not be recorded: {}; its record, to add by hand:",
            f.record.migration.vm, f.error
        ));
        if let Ok(line) = serde_json::to_string(&f.record) {
            out::eprintln(&out::json_safe(&line));
        }
    }
    Err(CliError::new(
        exit::NOT_RECORDED,
        format!(
            "{} migration{} not recorded in the flight recorder ({}); fix that, then add the record{} above to {}",
            failures.len(),
            if failures.len() == 1 {
                " was"
            } else {
                "s were"
            },
            first.error,
            if failures.len() == 1 { "" } else { "s" },
            crate::record::FILE_NAME
        ),
    ))
}
