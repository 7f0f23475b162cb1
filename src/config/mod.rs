//! `config.toml`: backend, UI and migration defaults, validated with errors
//! that name file, line and column. `config.example.toml` documents every key.

pub mod keys;
pub mod rules;
mod thresholds;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use std::collections::BTreeMap;

use crate::cluster::{MIB, MigrationOptions, OnStall, PostcopyMode};
use crate::input::{ReadError, line_col, read_text};
use keys::{Action, Key};
pub use thresholds::{Level, Limits, Thresholds};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}:{column}: {message}")]
    At {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// The settings vmshift runs with (defaults where the file is silent).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from, if a file was read.
    pub path: Option<PathBuf>,
    pub backend: BackendKind,
    pub scenario: String,
    pub speed: Speed,
    pub poll_interval_ms: u64,
    pub mouse: bool,
    pub read_only: bool,
    pub migration: MigrationOptions,
    /// Warning and critical levels of node CPU and memory, volume fill.
    pub thresholds: Thresholds,
    /// Key bindings on top of the defaults: (key, action).
    pub keys: Vec<(String, Action)>,
    pub libvirt: LibvirtSettings,
    pub pacemaker: PacemakerSettings,
    /// Placement rules (`[[rule]]`).
    pub rules: Vec<crate::cluster::Rule>,
}

/// `[pacemaker]`: whether Pacemaker owns VMs of the libvirt cluster, and
/// how its tools (`crm_mon`, `crm_resource`…) are run.
#[derive(Debug, Clone, PartialEq)]
pub struct PacemakerSettings {
    pub mode: PacemakerMode,
    /// Run the tools on this cluster node over ssh (`root@hv1`).
    pub ssh: Option<String>,
    /// Run the tools behind these words (`sudo`, `nsenter …`).
    pub command_prefix: Vec<String>,
    /// Longest wait for one of its tools.
    pub timeout_ms: u64,
}

impl Default for PacemakerSettings {
    fn default() -> Self {
        Self {
            mode: PacemakerMode::Auto,
            ssh: None,
            command_prefix: Vec::new(),
            timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacemakerMode {
    /// Use Pacemaker where its tools answer.
    Auto,
    /// Pacemaker owns VMs here: if it does not answer, moves are refused.
    On,
    /// Never ask Pacemaker.
    Off,
}

/// `[libvirt]`: the real cluster's nodes and shared volumes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibvirtSettings {
    /// Name shown for the cluster.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Longest wait for a node's answer before it counts as unreachable.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// A node unreachable this long is lost: its VMs can be recovered.
    #[serde(default = "default_lost_after")]
    pub lost_after_s: u64,
    #[serde(default, rename = "node")]
    pub nodes: Vec<LibvirtNode>,
    #[serde(default, rename = "shared_volume")]
    pub shared_volumes: Vec<SharedVolume>,
}

impl Default for LibvirtSettings {
    fn default() -> Self {
        Self {
            cluster: default_cluster(),
            timeout_ms: default_timeout(),
            lost_after_s: default_lost_after(),
            nodes: Vec::new(),
            shared_volumes: Vec::new(),
        }
    }
}

fn default_cluster() -> String {
    "libvirt".into()
}
fn default_timeout() -> u64 {
    5000
}
fn default_lost_after() -> u64 {
    60
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibvirtNode {
    pub uri: String,
    pub name: Option<String>,
    pub migrate_host: Option<String>,
    /// Labels placement rules can name (`on`/`not_on` by label).
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedVolume {
    pub name: String,
    pub pools: Vec<String>,
    #[serde(default = "default_shared_kind")]
    pub kind: crate::cluster::VolumeKind,
    /// The operator vouches that this volume is one coherent storage on
    /// every node that has it (a cluster file system libvirt does not
    /// recognise). libvirt then gets `VIR_MIGRATE_UNSAFE` for VMs whose
    /// disks are all on such volumes; never set it for a directory that
    /// only has the same path on each node.
    #[serde(default)]
    pub trusted: bool,
}

fn default_shared_kind() -> crate::cluster::VolumeKind {
    crate::cluster::VolumeKind::ClusterShared
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Sim,
    Libvirt,
}

/// How fast the simulator's clock runs (`--speed`, `speed` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Virtual time moves only when `advance` (or `wait`) is called; `wait`
    /// advances it at once, so runs finish as fast as the CPU allows.
    Max,
    /// Virtual seconds per real second; 0 freezes the clock.
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "max" {
            return Ok(Speed::Max);
        }
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() && (0.0..=10_000.0).contains(&x) => Ok(Speed::Times(x)),
            _ => Err(format!(
                "speed must be a number from 0 (frozen) to 10000, or \"max\", not {s:?}"
            )),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: None,
            backend: BackendKind::Sim,
            scenario: "default".into(),
            speed: Speed::Times(1.0),
            poll_interval_ms: 2000,
            mouse: true,
            read_only: false,
            migration: MigrationOptions::default(),
            thresholds: Thresholds::default(),
            keys: Vec::new(),
            libvirt: LibvirtSettings::default(),
            pacemaker: PacemakerSettings::default(),
            rules: Vec::new(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    backend: BackendSection,
    #[serde(default)]
    ui: UiSection,
    #[serde(default)]
    migration: MigrationSection,
    #[serde(default)]
    thresholds: ThresholdsSection,
    keys: Option<BTreeMap<Spanned<String>, Action>>,
    libvirt: Option<LibvirtSection>,
    pacemaker: Option<PacemakerSection>,
    #[serde(default, rename = "rule")]
    rules: Vec<rules::RuleSpec>,
}

/// `[pacemaker]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PacemakerSection {
    mode: Option<PacemakerMode>,
    ssh: Option<Spanned<String>>,
    command_prefix: Option<Spanned<Vec<String>>>,
    timeout_ms: Option<Spanned<u64>>,
}

/// `[libvirt]` as written, with the place of each value for errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LibvirtSection {
    cluster: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    lost_after_s: Option<Spanned<u64>>,
    #[serde(default, rename = "node")]
    nodes: Vec<LibvirtNodeSection>,
    #[serde(default, rename = "shared_volume")]
    shared_volumes: Vec<SharedVolume>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LibvirtNodeSection {
    uri: Spanned<String>,
    name: Option<Spanned<String>>,
    migrate_host: Option<Spanned<String>>,
    labels: Option<Spanned<Vec<String>>>,
}

/// Largest config file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BackendSection {
    kind: Option<BackendKind>,
    scenario: Option<String>,
    speed: Option<Spanned<SpeedValue>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SpeedValue {
    Number(f64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UiSection {
    poll_interval_ms: Option<Spanned<u64>>,
    mouse: Option<bool>,
    read_only: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ThresholdsSection {
    cpu_warn_pct: Option<Spanned<u8>>,
    cpu_crit_pct: Option<Spanned<u8>>,
    memory_warn_pct: Option<Spanned<u8>>,
    memory_crit_pct: Option<Spanned<u8>>,
    volume_warn_pct: Option<Spanned<u8>>,
    volume_crit_pct: Option<Spanned<u8>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MigrationSection {
    max_downtime_ms: Option<Spanned<u64>>,
    bandwidth_mib: Option<Spanned<u64>>,
    auto_converge: Option<bool>,
    postcopy: Option<PostcopyMode>,
    on_stall: Option<OnStall>,
    parallel_connections: Option<Spanned<u32>>,
}

/// Which file to read: `--config`, then `VMSHIFT_CONFIG`, then the user's
/// config dir. The bool says whether the file must exist (it was named).
pub fn locate(cli: Option<&Path>) -> Option<(PathBuf, bool)> {
    if let Some(p) = cli {
        return Some((p.to_path_buf(), true));
    }
    if let Some(p) = std::env::var_os("VMSHIFT_CONFIG").filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    directories::ProjectDirs::from("", "", "vmshift")
        .map(|d| (d.config_dir().join("config.toml"), false))
}

/// Loads the config (defaults if no file is there and none was named).
pub fn load(cli: Option<&Path>) -> Result<Config, ConfigError> {
    let Some((path, required)) = locate(cli) else {
        return Ok(Config::default());
    };
    let absent = || !required && !path.exists();
    match read_text(&path, MAX_FILE_BYTES) {
        Ok(text) => parse(&text, &path),
        Err(ReadError::NotFound) if !required => Ok(Config::default()),
        // A path under something that is not a folder is absent too.
        Err(ReadError::Other(_)) if absent() => Ok(Config::default()),
        Err(ReadError::NotFound) => Err(ConfigError::File {
            path: path.display().to_string(),
            message: "cannot read the config file: there is no such file; fix the path (--config or VMSHIFT_CONFIG) or unset VMSHIFT_CONFIG".into(),
        }),
        Err(ReadError::Other(e)) => Err(ConfigError::File {
            path: path.display().to_string(),
            message: format!(
                "cannot read the config file: {e}; fix the path (--config or VMSHIFT_CONFIG) or unset VMSHIFT_CONFIG"
            ),
        }),
    }
}

pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let at = |span: Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        ConfigError::At {
            path: path.display().to_string(),
            line,
            column,
            message,
        }
    };
    let file: File = toml::from_str(text)
        .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim_end().to_string()))?;
    let mut c = Config {
        path: Some(path.to_path_buf()),
        ..Config::default()
    };
    if let Some(k) = file.backend.kind {
        c.backend = k;
    }
    if let Some(s) = file.backend.scenario {
        c.scenario = s;
    }
    if let Some(s) = file.backend.speed {
        let text = match s.get_ref() {
            SpeedValue::Number(n) => n.to_string(),
            SpeedValue::Text(t) => t.clone(),
        };
        c.speed = text.parse().map_err(|m| at(s.span(), m))?;
    }
    if let Some(p) = file.ui.poll_interval_ms {
        if !(100..=600_000).contains(p.get_ref()) {
            return Err(at(
                p.span(),
                "poll_interval_ms must be between 100 and 600000".into(),
            ));
        }
        c.poll_interval_ms = *p.get_ref();
    }
    if let Some(m) = file.ui.mouse {
        c.mouse = m;
    }
    if let Some(r) = file.ui.read_only {
        c.read_only = r;
    }
    let t = file.thresholds;
    for (name, warn, crit, level) in [
        ("cpu", t.cpu_warn_pct, t.cpu_crit_pct, &mut c.thresholds.cpu),
        (
            "memory",
            t.memory_warn_pct,
            t.memory_crit_pct,
            &mut c.thresholds.memory,
        ),
        (
            "volume",
            t.volume_warn_pct,
            t.volume_crit_pct,
            &mut c.thresholds.volume,
        ),
    ] {
        for (v, slot, what) in [
            (&warn, &mut level.warn_pct, "warn"),
            (&crit, &mut level.crit_pct, "crit"),
        ] {
            if let Some(v) = v {
                if !(1..=100).contains(v.get_ref()) {
                    return Err(at(
                        v.span(),
                        format!("[thresholds] {name}_{what}_pct must be between 1 and 100"),
                    ));
                }
                *slot = *v.get_ref();
            }
        }
        if level.warn_pct > level.crit_pct {
            let span = crit.or(warn).map(|v| v.span()).unwrap_or(0..0);
            return Err(at(
                span,
                format!(
                    "[thresholds] {name}_warn_pct ({}) must not be above {name}_crit_pct ({})",
                    level.warn_pct, level.crit_pct
                ),
            ));
        }
    }
    let m = file.migration;
    if let Some(d) = m.max_downtime_ms {
        if !(1..=600_000).contains(d.get_ref()) {
            return Err(at(
                d.span(),
                "max_downtime_ms must be between 1 and 600000".into(),
            ));
        }
        c.migration.max_downtime_ms = *d.get_ref();
    }
    if let Some(b) = m.bandwidth_mib {
        if *b.get_ref() > 1_000_000 {
            return Err(at(
                b.span(),
                "bandwidth_mib must be at most 1000000 (0 means link speed)".into(),
            ));
        }
        c.migration.bandwidth_bps = (*b.get_ref() > 0).then(|| b.get_ref() * MIB);
    }
    if let Some(a) = m.auto_converge {
        c.migration.auto_converge = a;
    }
    if let Some(p) = m.postcopy {
        c.migration.postcopy = p;
    }
    if let Some(s) = m.on_stall {
        c.migration.on_stall = s;
    }
    if let Some(p) = m.parallel_connections {
        if !(1..=64).contains(p.get_ref()) {
            return Err(at(
                p.span(),
                "parallel_connections must be between 1 and 64".into(),
            ));
        }
        c.migration.parallel_connections = *p.get_ref();
    }
    if let Some(l) = file.libvirt {
        libvirt_section(l, &mut c.libvirt, path, &at)?;
    }
    if let Some(p) = file.pacemaker {
        pacemaker_section(p, &mut c.pacemaker, &at)?;
    }
    c.rules = rules::rules_from(file.rules, crate::cluster::RuleOrigin::Config, &at)?;
    if let Some(keys) = file.keys {
        for (k, a) in &keys {
            Key::parse(k.get_ref()).map_err(|m| at(k.span(), format!("in [keys]: {m}")))?;
            c.keys.push((k.get_ref().clone(), *a));
        }
    }
    Ok(c)
}

/// `[libvirt]` and its `[[libvirt.node]]`s and `[[libvirt.shared_volume]]`s, checked.
fn libvirt_section(
    l: LibvirtSection,
    c: &mut LibvirtSettings,
    path: &Path,
    at: &impl Fn(Range<usize>, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if let Some(t) = &l.timeout_ms {
        if !(100..=600_000).contains(t.get_ref()) {
            return Err(at(
                t.span(),
                "[libvirt] timeout_ms must be between 100 and 600000".into(),
            ));
        }
        c.timeout_ms = *t.get_ref();
    }
    if let Some(t) = &l.lost_after_s {
        if !(1..=86_400).contains(t.get_ref()) {
            return Err(at(
                t.span(),
                "[libvirt] lost_after_s must be between 1 and 86400 (seconds)".into(),
            ));
        }
        c.lost_after_s = *t.get_ref();
    }
    if let Some(name) = l.cluster {
        c.cluster = printable(name, "[libvirt] cluster", at)?;
    }
    for n in l.nodes {
        if !n.uri.get_ref().contains(':') {
            return Err(at(
                n.uri.span(),
                format!(
                    "[[libvirt.node]] uri {:?} is not a libvirt URI (like qemu+ssh://root@host/system)",
                    n.uri.get_ref()
                ),
            ));
        }
        c.nodes.push(LibvirtNode {
            uri: printable(n.uri, "[[libvirt.node]] uri", at)?,
            name: n
                .name
                .map(|x| printable(x, "[[libvirt.node]] name", at))
                .transpose()?,
            migrate_host: n
                .migrate_host
                .map(|x| printable(x, "[[libvirt.node]] migrate_host", at))
                .transpose()?,
            labels: rules::labels(n.labels, at)?,
        });
    }
    if let Some(v) = l
        .shared_volumes
        .iter()
        .find(|v| v.trusted && v.kind != crate::cluster::VolumeKind::ClusterShared)
    {
        return Err(ConfigError::File {
            path: path.display().to_string(),
            message: format!(
                "[[libvirt.shared_volume]] {:?}: `trusted` is for a cluster file system (kind = \"cluster-shared\"); remove it or change the kind",
                v.name
            ),
        });
    }
    c.shared_volumes = l.shared_volumes;
    Ok(())
}

/// `[pacemaker]`, checked.
fn pacemaker_section(
    p: PacemakerSection,
    c: &mut PacemakerSettings,
    at: &impl Fn(Range<usize>, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if let Some(m) = p.mode {
        c.mode = m;
    }
    if let Some(t) = &p.timeout_ms {
        if !(100..=600_000).contains(t.get_ref()) {
            return Err(at(
                t.span(),
                "[pacemaker] timeout_ms must be between 100 and 600000".into(),
            ));
        }
        c.timeout_ms = *t.get_ref();
    }
    if let (Some(_), Some(prefix)) = (&p.ssh, &p.command_prefix) {
        return Err(at(
            prefix.span(),
            "[pacemaker] takes ssh or command_prefix, not both; keep the one that reaches a cluster node".into(),
        ));
    }
    if let Some(prefix) = p.command_prefix {
        let span = prefix.span();
        let words = prefix.into_inner();
        if words.is_empty() || words[0].trim().is_empty() {
            return Err(at(
                span,
                "[pacemaker] command_prefix must name a program first, like [\"sudo\"]".into(),
            ));
        }
        c.command_prefix = words;
    }
    if let Some(ssh) = p.ssh {
        c.ssh = Some(printable(ssh, "[pacemaker] ssh", at)?);
    }
    Ok(())
}

/// A string value without control characters, or the error at it.
fn printable(
    v: Spanned<String>,
    what: &str,
    at: &impl Fn(Range<usize>, String) -> ConfigError,
) -> Result<String, ConfigError> {
    if v.get_ref().chars().any(char::is_control) {
        return Err(at(
            v.span(),
            format!(
                "{what} {:?} holds a control character; use printable characters",
                v.get_ref()
            ),
        ));
    }
    Ok(v.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (usize, usize, String) {
        match parse(text, Path::new("c.toml")).unwrap_err() {
            ConfigError::At {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn the_example_config_is_valid_and_matches_the_defaults() {
        let text = include_str!("../../config.example.toml");
        let c = parse(text, Path::new("config.example.toml")).unwrap();
        assert_eq!(Config { path: None, ..c }, Config::default());
    }

    #[test]
    fn values_are_read() {
        let c = parse(
            "[backend]\nscenario = \"small\"\nspeed = \"max\"\n[migration]\nmax_downtime_ms = 500\nbandwidth_mib = 200\npostcopy = \"auto\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.scenario, "small");
        assert_eq!(c.speed, Speed::Max);
        assert_eq!(c.migration.max_downtime_ms, 500);
        assert_eq!(c.migration.bandwidth_bps, Some(200 * MIB));
        assert_eq!(c.migration.postcopy, PostcopyMode::Auto);
        let c = parse(
            "[keys]\n\"x\" = \"quit\"\n\"ctrl-d\" = \"move\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            c.keys,
            vec![
                ("ctrl-d".to_string(), Action::Move),
                ("x".to_string(), Action::Quit)
            ]
        );
    }

    #[test]
    fn thresholds_are_read_and_checked() {
        let c = parse(
            "[thresholds]\nmemory_warn_pct = 70\ncpu_crit_pct = 99\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.thresholds.memory.warn_pct, 70);
        assert_eq!(c.thresholds.memory.crit_pct, 95);
        assert_eq!(c.thresholds.cpu.crit_pct, 99);
        let e = parse("[thresholds]\nvolume_warn_pct = 0\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml:2:19") && e.contains("between 1 and 100"),
            "{e}"
        );
        let e = parse("[thresholds]\ncpu_warn_pct = 96\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must not be above cpu_crit_pct (95)"), "{e}");
    }

    #[test]
    fn pacemaker_settings_are_read_and_checked() {
        let c = parse(
            "[pacemaker]\nmode = \"on\"\ncommand_prefix = [\"/lab/bin/on-a\"]\ntimeout_ms = 800\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.pacemaker.mode, PacemakerMode::On);
        assert_eq!(c.pacemaker.command_prefix, vec!["/lab/bin/on-a"]);
        assert_eq!(c.pacemaker.timeout_ms, 800);
        let c = parse("[pacemaker]\nssh = \"root@hv1\"\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.pacemaker.ssh.as_deref(), Some("root@hv1"));
        assert_eq!(c.pacemaker.mode, PacemakerMode::Auto);
        let (line, _, msg) = err("[pacemaker]\nssh = \"root@hv1\"\ncommand_prefix = [\"sudo\"]\n");
        assert_eq!(line, 3);
        assert!(msg.contains("not both"), "{msg}");
        let (_, _, msg) = err("[pacemaker]\ncommand_prefix = []\n");
        assert!(msg.contains("must name a program"), "{msg}");
        let (_, _, msg) = err("[pacemaker]\nmode = \"maybe\"\n");
        assert!(msg.contains("auto") && msg.contains("off"), "{msg}");
    }

    #[test]
    fn libvirt_nodes_and_shared_volumes_are_read() {
        let c = parse(
            "[backend]\nkind = \"libvirt\"\n[libvirt]\ntimeout_ms = 2000\n[[libvirt.node]]\nuri = \"qemu+ssh://root@hv1/system\"\nmigrate_host = \"10.0.0.1\"\n[[libvirt.node]]\nuri = \"qemu+ssh://root@hv2/system\"\nname = \"two\"\n[[libvirt.shared_volume]]\nname = \"vmstore\"\npools = [\"vms\"]\nkind = \"shared-lun\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.backend, BackendKind::Libvirt);
        assert_eq!(c.libvirt.timeout_ms, 2000);
        assert_eq!(c.libvirt.nodes.len(), 2);
        assert_eq!(c.libvirt.nodes[0].migrate_host.as_deref(), Some("10.0.0.1"));
        assert_eq!(c.libvirt.nodes[1].name.as_deref(), Some("two"));
        assert_eq!(
            c.libvirt.shared_volumes[0].kind,
            crate::cluster::VolumeKind::SharedLun
        );
        assert!(
            !c.libvirt.shared_volumes[0].trusted,
            "not vouched for unless said"
        );
        let c = parse(
            "[[libvirt.shared_volume]]\nname = \"gfs\"\npools = [\"gfs\"]\ntrusted = true\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(c.libvirt.shared_volumes[0].trusted);
        let e = parse(
            "[[libvirt.shared_volume]]\nname = \"lun\"\npools = [\"l\"]\nkind = \"shared-lun\"\ntrusted = true\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"lun\"") && e.contains("cluster-shared"), "{e}");
        let (_, _, msg) = err("[libvirt]\nlost_after_s = 0\n");
        assert!(msg.contains("lost_after_s"), "{msg}");
        let (line, col, msg) = err("[libvirt]\ntimeout_ms = 5\n");
        assert_eq!((line, col), (2, 14), "at the value, not the table");
        assert!(msg.contains("timeout_ms"), "{msg}");
        let (line, col, msg) =
            err("[libvirt]\n[[libvirt.node]]\nname = \"a\"\nuri = \"hostname\"\n");
        assert_eq!((line, col), (4, 7), "{msg}");
        let (_, _, msg) = err("[[libvirt.node]]\nurl = \"x\"\n");
        assert!(msg.contains("url"), "{msg}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let (line, col, msg) = err("[migration]\nmax_downtime_ms = 0\n");
        assert_eq!((line, col), (2, 19));
        assert!(msg.contains("between 1 and"), "{msg}");
        let (line, _, msg) = err("[ui]\nmouse = true\ncolour = \"red\"\n");
        assert_eq!(line, 3);
        assert!(msg.contains("colour"), "{msg}");
        let (line, _, msg) = err("[migration]\npostcopy = \"sometimes\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("sometimes"), "{msg}");
        let (line, col, _) = err("[backend]\nspeed = -3\n");
        assert_eq!((line, col), (2, 9));
        let (line, _, msg) = err("[keys]\n\"x\" = \"explode\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("explode"), "{msg}");
        let (line, col, msg) = err("[keys]\n\"x\" = \"quit\"\n\"hyper-x\" = \"quit\"\n");
        assert!(msg.contains("unknown key"), "{msg}");
        assert_eq!((line, col), (3, 1), "at the key, not the table");
    }
}
