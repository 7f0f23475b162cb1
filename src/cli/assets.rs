//! What this build can do (`--version`), and the man pages and shell
//! completions, all from the same clap definitions as the CLI ([`Cli`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::{Arg, CommandFactory, Parser};
use clap_complete::Shell;

use super::{Cli, CliError, exit};
use crate::output as out;

/// The `--version` text after "vmshift ": the version, the backends built
/// in (with the libvirt library's version), and where the config and the
/// state are (as `config::locate` and `record::state_dir` find them).
pub fn long_version() -> String {
    let config = match crate::config::locate(None) {
        Some((path, _)) => {
            let there = if path.exists() {
                ""
            } else {
                " (not there: built-in defaults)"
            };
            format!("{}{there}", path.display())
        }
        None => "none (no home directory): built-in defaults".into(),
    };
    let state = match crate::record::state_dir() {
        Some(dir) => dir.display().to_string(),
        None => "none (no home directory; set VMSHIFT_STATE_DIR)".into(),
    };
    format!(
        "{}\nbackends: {}\nconfig:   {config}\n          (--config PATH or VMSHIFT_CONFIG to use another)\nstate:    {state}\n          (flight recorder {}, cordons; VMSHIFT_STATE_DIR to use another)",
        env!("CARGO_PKG_VERSION"),
        backends(),
        crate::record::FILE_NAME,
    )
}

#[cfg(feature = "libvirt")]
fn backends() -> String {
    match virt::connect::Connect::version() {
        Ok(v) => format!(
            "simulator, libvirt (libvirt library {}.{}.{})",
            v / 1_000_000,
            v / 1000 % 1000,
            v % 1000
        ),
        Err(e) => format!("simulator, libvirt (libvirt library version unknown: {e})"),
    }
}

#[cfg(not(feature = "libvirt"))]
fn backends() -> String {
    "simulator (built without libvirt: `cargo build --features libvirt` adds it)".into()
}

/// The clap definitions, with the full `--version` text when the line asks
/// for it (it asks libvirt for its version: not on every run).
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    if !std::env::args_os().any(|a| a == "--version") {
        return cmd;
    }
    let text: &'static str = long_version().leak();
    cmd.long_version(text)
}

/// Commands for packaging and for the shell completions, not for people:
/// kept out of [`Cli`], so out of its help, man pages and completions.
#[derive(Debug, Parser)]
#[command(name = "vmshift")]
pub enum Internal {
    /// Write the man pages into DIR.
    Man {
        /// Where to write them.
        dir: PathBuf,
    },
    /// The names that complete the word after WORDS.
    CompleteNames {
        /// The command line after "vmshift", up to the word being completed.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

/// Runs an [`Internal`] command when the command line starts with one.
pub fn run_internal() -> Option<Result<ExitCode, CliError>> {
    let first = std::env::args_os().nth(1)?;
    if first != "man" && first != "complete-names" {
        return None;
    }
    Some(match Internal::parse() {
        Internal::Man { dir } => man(&dir),
        Internal::CompleteNames { words } => complete_names(&words),
    })
}

/// `vmshift man DIR`: one man page for vmshift and one per command.
pub fn man(dir: &Path) -> Result<ExitCode, CliError> {
    let fail = |e: std::io::Error| {
        CliError::new(
            exit::INPUT,
            format!("cannot write the man pages to {}: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(fail)?;
    Ok(ExitCode::SUCCESS)
}

/// `vmshift completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> Result<ExitCode, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vmshift", &mut script);
    match shell {
        Shell::Bash => script.extend_from_slice(BASH_NAMES.as_bytes()),
        Shell::Fish => script.extend_from_slice(FISH_NAMES.as_bytes()),
        _ => {}
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::new(1, format!("cannot write the script: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Bash: clap's completion (`_vmshift`) for commands and options, then the
/// names of VMs, nodes and volumes where the line wants one. The names are
/// matched here, not with `compgen -W`, which would expand them.
const BASH_NAMES: &str = r#"
# VM, node and volume names from the cluster the line names (its --config,
# --connect, --scenario): `vmshift complete-names` gives up after 2 s.
_vmshift_with_names() {
    _vmshift "$@"
    local cur="${COMP_WORDS[COMP_CWORD]}" names name
    [[ "$cur" == -* ]] && return 0
    names="$(command vmshift complete-names -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)" || return 0
    [[ -n "$names" ]] || return 0
    COMPREPLY=()
    while IFS= read -r name; do
        [[ "$name" == "$cur"* ]] && COMPREPLY+=("$name")
    done <<< "$names"
    return 0
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _vmshift_with_names -o nosort -o bashdefault -o default vmshift
else
    complete -F _vmshift_with_names -o bashdefault -o default vmshift
fi
"#;

/// Fish: the same names, from the tokens before the cursor.
const FISH_NAMES: &str = r#"
# VM, node and volume names from the cluster the line names: `vmshift complete-names` gives up after 2 s.
complete -c vmshift -a '(command vmshift complete-names -- (commandline -opc)[2..-1] 2>/dev/null)'
"#;

/// Which names complete a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    Vms,
    Nodes,
    Volumes,
}

/// What the word after `words` (the line after "vmshift", up to the word
/// being completed) is, and the line's global options (to reach the same
/// cluster), from the clap definitions.
pub fn wanted(words: &[String]) -> (Option<Names>, Vec<String>) {
    let mut root = Cli::command();
    root.build();
    let mut globals = Vec::new();
    let mut sub: Option<&clap::Command> = None;
    let mut positionals = 0;
    // An option whose value is the next word: (its arg, whether global).
    let mut pending: Option<&Arg> = None;
    let mut only_positionals = false;
    for w in words {
        if let Some(arg) = pending.take() {
            if arg.is_global_set() {
                globals.push(w.clone());
            }
            continue;
        }
        if !only_positionals && w == "--" {
            only_positionals = true;
            continue;
        }
        if !only_positionals && w.starts_with('-') && w.len() > 1 {
            let cmd = sub.unwrap_or(&root);
            let (name, inline) = match w.split_once('=') {
                Some((n, _)) => (n, true),
                None => (w.as_str(), false),
            };
            let arg = cmd.get_arguments().find(|a| {
                if let Some(long) = name.strip_prefix("--") {
                    a.get_long() == Some(long)
                } else {
                    name.len() == 2 && a.get_short() == name.chars().nth(1)
                }
            });
            if let Some(arg) = arg {
                if arg.is_global_set() {
                    globals.push(w.clone());
                }
                if arg.get_action().takes_values() && !inline {
                    pending = Some(arg);
                }
            }
            continue;
        }
        match sub {
            None => match root.find_subcommand(w) {
                Some(s) => sub = Some(s),
                None => return (None, globals),
            },
            Some(_) => positionals += 1,
        }
    }
    let arg = match (pending, sub) {
        (Some(arg), _) => Some(arg),
        (None, Some(s)) => s.get_positionals().nth(positionals),
        (None, None) => None,
    };
    let names = arg.and_then(|a| match a.get_id().as_str() {
        "vm" => Some(Names::Vms),
        "node" | "confirm_fenced" => Some(Names::Nodes),
        "disk" | "volume" => Some(Names::Volumes),
        _ => None,
    });
    (names, globals)
}

/// How long the completion waits for the cluster.
const NAMES_TIMEOUT: Duration = Duration::from_secs(2);

/// `vmshift complete-names -- WORDS`: the names that complete the next
/// word, one a line; nothing when the word is not a name or the cluster
/// does not answer within [`NAMES_TIMEOUT`]. Only names a shell can take
/// as one word unquoted are given.
pub fn complete_names(words: &[String]) -> Result<ExitCode, CliError> {
    let (Some(kind), globals) = wanted(words) else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut argv = vec!["vmshift".to_string()];
    argv.extend(globals);
    argv.push("status".into());
    let Ok(cli) = Cli::try_parse_from(argv) else {
        return Ok(ExitCode::SUCCESS);
    };
    let cfg = super::settings(&cli)?;
    let (tx, rx) = mpsc::channel();
    // A node that does not answer keeps this thread; the process ends
    // without it.
    std::thread::spawn(move || {
        let names = super::open_backend(&cfg).ok().and_then(|mut b| {
            let snap = b.snapshot().ok()?;
            Some(match kind {
                Names::Vms => snap.vms.into_iter().map(|v| v.name).collect::<Vec<_>>(),
                Names::Nodes => snap.nodes.into_iter().map(|n| n.name).collect(),
                Names::Volumes => snap.volumes.into_iter().map(|v| v.name).collect(),
            })
        });
        let _ = tx.send(names);
    });
    let Ok(Some(mut names)) = rx.recv_timeout(NAMES_TIMEOUT) else {
        return Ok(ExitCode::SUCCESS);
    };
    names.retain(|n| shell_word(n));
    names.sort();
    names.dedup();
    if !names.is_empty() {
        out::println(&names.join("\n"));
    }
    Ok(ExitCode::SUCCESS)
}

/// A name a shell takes as one word as it is: no spaces, quotes or
/// characters the shell would act on.
fn shell_word(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "._-+:@,%=/".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn names_follow_the_clap_definitions() {
        assert_eq!(wanted(&w("migrate")).0, Some(Names::Vms));
        assert_eq!(wanted(&w("migrate web-01")).0, Some(Names::Nodes));
        assert_eq!(wanted(&w("migrate web-01 hv-02")).0, None);
        assert_eq!(
            wanted(&w("migrate --max-downtime 300 web-01")).0,
            Some(Names::Nodes)
        );
        assert_eq!(
            wanted(&w("migrate --max-downtime=300 --dry-run")).0,
            Some(Names::Vms)
        );
        assert_eq!(wanted(&w("drain")).0, Some(Names::Nodes));
        assert_eq!(
            wanted(&w("recover hv-01 --confirm-fenced")).0,
            Some(Names::Nodes)
        );
        assert_eq!(wanted(&w("move-disk web-01")).0, Some(Names::Volumes));
        assert_eq!(wanted(&w("poweroff")).0, Some(Names::Vms));
        assert_eq!(wanted(&w("cordon")).0, Some(Names::Nodes));
        assert_eq!(wanted(&w("status")).0, None);
        assert_eq!(wanted(&w("")).0, None);
        assert_eq!(wanted(&w("maintenance")).0, None);
    }

    #[test]
    fn the_lines_cluster_options_are_kept() {
        let (names, globals) = wanted(&w(
            "--connect test:///default --read-only migrate --scenario=small --bandwidth 100",
        ));
        assert_eq!(names, Some(Names::Vms));
        assert_eq!(
            globals,
            w("--connect test:///default --read-only --scenario=small")
        );
    }

    #[test]
    fn only_plain_names_are_offered() {
        assert!(shell_word("web-01.example:2"));
        assert!(!shell_word("a b"));
        assert!(!shell_word("$(reboot)"));
        assert!(!shell_word("a;b"));
        assert!(!shell_word("--help"));
        assert!(!shell_word(""));
    }

    #[test]
    fn the_version_names_backends_config_and_state() {
        let v = long_version();
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
        assert!(v.contains("backends: simulator"), "{v}");
        assert_eq!(
            v.contains("libvirt library"),
            cfg!(feature = "libvirt"),
            "{v}"
        );
        assert!(v.contains("config:") && v.contains("state:"), "{v}");
    }
}
