//! The `:` command line: one table of commands that the parser, the help
//! screen, the completion and the error messages all read; the line editor
//! (shared with the `/` filter); and name matching for jumps.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What an argument of a command names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    Vm,
    Node,
    /// A disk of the VM named before it, by the volume it is on.
    Disk,
    Volume,
    /// A placement rule, by name.
    Rule,
    /// The rest of the line (may be empty).
    Text,
    /// One of these words.
    Choice(&'static [&'static str]),
}

impl Arg {
    pub fn label(self) -> String {
        match self {
            Arg::Vm => "VM".into(),
            Arg::Node => "NODE".into(),
            Arg::Disk => "DISK".into(),
            Arg::Volume => "VOLUME".into(),
            Arg::Rule => "RULE".into(),
            Arg::Text => "TEXT".into(),
            Arg::Choice(c) => c.join("|"),
        }
    }
}

/// What a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Migrate,
    Drain,
    Vm,
    Node,
    Filter,
    Mouse,
    Help,
    Quit,
    ForceQuit,
    Start,
    Shutdown,
    Reboot,
    PowerOff,
    Console,
    Cordon,
    Uncordon,
    Maintenance,
    MoveDisk,
    AbortMoveDisk,
    Recover,
    Rules,
    Override,
}

/// One command: its names (the first is shown), arguments and help.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub verb: Verb,
    pub names: &'static [&'static str],
    pub args: &'static [Arg],
    pub help: &'static str,
}

impl Spec {
    /// `:migrate VM NODE`
    pub fn usage(&self) -> String {
        let mut s = format!(":{}", self.names[0]);
        for a in self.args {
            s.push(' ');
            s.push_str(&a.label());
        }
        s
    }
}

/// Every `:` command. The parser, help, completion and errors read this.
pub const COMMANDS: &[Spec] = &[
    Spec {
        verb: Verb::Migrate,
        names: &["migrate", "m"],
        args: &[Arg::Vm, Arg::Node],
        help: "move a VM to a node (opens the confirm dialog)",
    },
    Spec {
        verb: Verb::Drain,
        names: &["drain"],
        args: &[Arg::Node],
        help: "move every running VM off a node (shows the plan first)",
    },
    Spec {
        verb: Verb::Cordon,
        names: &["cordon"],
        args: &[Arg::Node],
        help: "keep a node out of placement (Pacemaker standby on its nodes, else kept by this vmshift install)",
    },
    Spec {
        verb: Verb::Uncordon,
        names: &["uncordon"],
        args: &[Arg::Node],
        help: "let a cordoned node take VMs again",
    },
    Spec {
        verb: Verb::Recover,
        names: &["recover"],
        args: &[Arg::Node],
        help: "restart a lost node's VMs elsewhere (shows the plan; type the node's name once it is off or fenced)",
    },
    Spec {
        verb: Verb::Maintenance,
        names: &["maintenance"],
        args: &[Arg::Choice(&["on", "off"])],
        help: "Pacemaker maintenance mode on or off (it then moves, restarts and monitors nothing)",
    },
    Spec {
        verb: Verb::Start,
        names: &["start"],
        args: &[Arg::Vm],
        help: "start a stopped VM",
    },
    Spec {
        verb: Verb::Shutdown,
        names: &["shutdown"],
        args: &[Arg::Vm],
        help: "ask a VM's guest to shut down (ACPI; asks first)",
    },
    Spec {
        verb: Verb::Reboot,
        names: &["reboot"],
        args: &[Arg::Vm],
        help: "ask a VM's guest to reboot (asks first)",
    },
    Spec {
        verb: Verb::PowerOff,
        names: &["poweroff", "destroy"],
        args: &[Arg::Vm],
        help: "force a VM off at once (type its name to confirm)",
    },
    Spec {
        verb: Verb::Console,
        names: &["console"],
        args: &[Arg::Vm],
        help: "serial console of a VM (virsh console; ctrl-] comes back)",
    },
    Spec {
        verb: Verb::MoveDisk,
        names: &["move-disk"],
        args: &[Arg::Vm, Arg::Disk, Arg::Volume],
        help: "move a running VM's disk (named by its volume) to another volume while it runs (asks first)",
    },
    Spec {
        verb: Verb::AbortMoveDisk,
        names: &["abort-move-disk"],
        args: &[Arg::Vm],
        help: "abort a VM's disk move before its pivot (asks first)",
    },
    Spec {
        verb: Verb::Rules,
        names: &["rules"],
        args: &[],
        help: "every placement rule: origin, whether it holds, the move that repairs it",
    },
    Spec {
        verb: Verb::Override,
        names: &["override"],
        args: &[Arg::Rule, Arg::Text],
        help: "break a must rule of the config with the next move you confirm; TEXT is why (recorded); `:override off` takes it back",
    },
    Spec {
        verb: Verb::Vm,
        names: &["vm"],
        args: &[Arg::Vm],
        help: "jump to a VM (prefix or fuzzy; Tab completes)",
    },
    Spec {
        verb: Verb::Node,
        names: &["node"],
        args: &[Arg::Node],
        help: "jump to a node (prefix or fuzzy; Tab completes)",
    },
    Spec {
        verb: Verb::Filter,
        names: &["filter", "f"],
        args: &[Arg::Text],
        help: "show only VMs whose name, node or workload contains TEXT",
    },
    Spec {
        verb: Verb::Mouse,
        names: &["mouse"],
        args: &[Arg::Choice(&["on", "off"])],
        help: "mouse capture on or off",
    },
    Spec {
        verb: Verb::Help,
        names: &["help", "h"],
        args: &[],
        help: "this help",
    },
    Spec {
        verb: Verb::Quit,
        names: &["quit", "q"],
        args: &[],
        help: "quit (asks while migrations run)",
    },
    Spec {
        verb: Verb::ForceQuit,
        names: &["quit!", "q!"],
        args: &[],
        help: "quit without asking",
    },
];

/// A command line that names a known command with the right arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub verb: Verb,
    pub args: Vec<String>,
}

/// The commands in one line, for error messages.
pub fn summary() -> String {
    COMMANDS
        .iter()
        .map(Spec::usage)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn spec(verb: Verb) -> &'static Spec {
    COMMANDS
        .iter()
        .find(|s| s.verb == verb)
        .expect("every verb is in the table")
}

fn find_spec(word: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.names.contains(&word))
}

/// Parses a line; `Ok(None)` for an empty line; `Err` is one sentence.
pub fn parse(line: &str) -> Result<Option<Parsed>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&first, rest)) = words.split_first() else {
        return Ok(None);
    };
    let Some(spec) = find_spec(first) else {
        return Err(format!(
            "unknown command {first:?}; commands: {}",
            summary()
        ));
    };
    let usage = || format!("usage: {}", spec.usage());
    let takes_rest = spec.args.last() == Some(&Arg::Text);
    let args: Vec<String> = if takes_rest {
        let fixed = spec.args.len() - 1;
        if rest.len() < fixed {
            return Err(usage());
        }
        let mut a: Vec<String> = rest[..fixed].iter().map(|s| s.to_string()).collect();
        a.push(rest[fixed..].join(" "));
        a
    } else {
        if rest.len() != spec.args.len() {
            return Err(usage());
        }
        rest.iter().map(|s| s.to_string()).collect()
    };
    for (a, v) in spec.args.iter().zip(&args) {
        if let Arg::Choice(c) = a
            && !c.contains(&v.as_str())
        {
            return Err(usage());
        }
    }
    Ok(Some(Parsed {
        verb: spec.verb,
        args,
    }))
}

// ----- name matching -----

/// How well a name matches what was typed (lower is better): 0 exact,
/// 1 prefix, 2 substring, 3 the letters in order; `None`: no match.
pub fn match_rank(typed: &str, name: &str) -> Option<u8> {
    let (t, n) = (typed.to_lowercase(), name.to_lowercase());
    if t == n {
        Some(0)
    } else if n.starts_with(&t) {
        Some(1)
    } else if n.contains(&t) {
        Some(2)
    } else if is_subsequence(&t, &n) {
        Some(3)
    } else {
        None
    }
}

fn is_subsequence(t: &str, n: &str) -> bool {
    let mut it = n.chars();
    t.chars().all(|c| it.any(|x| x == c))
}

/// Names matching `typed`, best first: exact, prefix, substring, then the
/// letters in order (fuzzy); shorter names first within a kind.
pub fn matches<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    if typed.is_empty() {
        return Vec::new();
    }
    let mut m: Vec<(u8, &str)> = names
        .into_iter()
        .filter_map(|n| match_rank(typed, n).map(|r| (r, n)))
        .collect();
    m.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.len().cmp(&b.1.len()))
            .then(a.1.cmp(b.1))
    });
    m.into_iter().map(|(_, n)| n).collect()
}

/// A few names for a message: `a, b, c and 7 more`.
pub fn some_names(names: &[&str], most: usize) -> String {
    let mut s = names
        .iter()
        .take(most)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > most {
        s += &format!(" and {} more", names.len() - most);
    }
    s
}

/// The longest common prefix of names (by characters).
fn common_prefix(names: &[&str]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut p: Vec<char> = first.chars().collect();
    for n in &names[1..] {
        let len = p
            .iter()
            .zip(n.chars())
            .take_while(|(a, b)| **a == *b)
            .count();
        p.truncate(len);
    }
    p.into_iter().collect()
}

/// Tab completion of the word before the cursor (the line's last word).
/// `names(arg, before)` gives the names an argument of kind `arg` takes,
/// `before` being the arguments typed before it (a disk is one of the VM
/// named before it). Returns the new line, or `None` when nothing matches.
pub fn complete(line: &str, names: impl Fn(Arg, &[&str]) -> Vec<String>) -> Option<String> {
    completion(line, names).0
}

/// The completed line (see [`complete`]) and the candidates left when the
/// word is ambiguous.
fn completion(
    line: &str,
    names: impl Fn(Arg, &[&str]) -> Vec<String>,
) -> (Option<String>, Vec<String>) {
    let ends_in_space = line.is_empty() || line.ends_with(' ');
    let words: Vec<&str> = line.split_whitespace().collect();
    let index = if ends_in_space {
        words.len()
    } else {
        words.len() - 1
    };
    let word = if ends_in_space { "" } else { words[index] };
    let owned: Vec<String> = if index == 0 {
        COMMANDS.iter().map(|s| s.names[0].to_string()).collect()
    } else {
        let Some(spec) = find_spec(words[0]) else {
            return (None, Vec::new());
        };
        match spec.args.get(index - 1) {
            Some(Arg::Choice(c)) => c.iter().map(|c| c.to_string()).collect(),
            Some(Arg::Text) | None => return (None, Vec::new()),
            Some(a) => names(*a, &words[1..index]),
        }
    };
    let candidates: Vec<&str> = owned.iter().map(String::as_str).collect();
    let found: Vec<&str> = if word.is_empty() {
        candidates
    } else {
        let prefixed: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|c| c.starts_with(word))
            .collect();
        if prefixed.is_empty() {
            matches(word, candidates)
        } else {
            prefixed
        }
    };
    let listed = if found.len() > 1 {
        found.iter().map(|f| f.to_string()).collect()
    } else {
        Vec::new()
    };
    let new_word = match found.as_slice() {
        [] => return (None, listed),
        [one] => format!("{one} "),
        many => {
            let p = common_prefix(many);
            if p.chars().count() <= word.chars().count() {
                // Nothing longer in common: keep what was typed.
                return (None, listed);
            }
            p
        }
    };
    let keep = words[..index].join(" ");
    let line = if keep.is_empty() {
        new_word
    } else {
        format!("{keep} {new_word}")
    };
    (Some(line), listed)
}

// ----- the line editor -----

/// A line of text with a cursor (in characters), for `:` and `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEdit {
    pub text: String,
    pub cursor: usize,
}

impl LineEdit {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_index)
            .map_or(self.text.len(), |(b, _)| b)
    }

    pub fn insert(&mut self, s: &str) {
        let b = self.byte(self.cursor);
        self.text.insert_str(b, s);
        self.cursor += s.chars().count();
    }

    /// Whether `k` edits the narrowing text of a pick list (a character,
    /// Backspace, Ctrl-U, Ctrl-W) rather than moving in the list.
    pub fn narrows(k: &KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        match k.code {
            KeyCode::Char('u' | 'w') if ctrl => true,
            KeyCode::Char(_) => !ctrl && !alt,
            KeyCode::Backspace => true,
            _ => false,
        }
    }

    /// The text before and after the cursor.
    pub fn split(&self) -> (&str, &str) {
        self.text.split_at(self.byte(self.cursor))
    }

    /// Removes characters `from..to` (char indices) and puts the cursor at `from`.
    fn remove(&mut self, from: usize, to: usize) {
        let (a, b) = (self.byte(from), self.byte(to));
        self.text.replace_range(a..b, "");
        self.cursor = from;
    }

    /// Applies an editing key; false if the key is not an editing key.
    /// Backspace on an empty line does nothing (the line stays open).
    pub fn key(&mut self, k: &KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let len = self.text.chars().count();
        match k.code {
            KeyCode::Char('u') if ctrl => self.remove(0, self.cursor),
            KeyCode::Char('k') if ctrl => self.remove(self.cursor, len),
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = len,
            KeyCode::Char('w') if ctrl => {
                let chars: Vec<char> = self.text.chars().collect();
                let mut i = self.cursor;
                while i > 0 && chars[i - 1] == ' ' {
                    i -= 1;
                }
                while i > 0 && chars[i - 1] != ' ' {
                    i -= 1;
                }
                self.remove(i, self.cursor);
            }
            KeyCode::Char(_) if ctrl => return false,
            KeyCode::Char(c) => self.insert(c.encode_utf8(&mut [0; 4])),
            KeyCode::Backspace if self.cursor > 0 => self.remove(self.cursor - 1, self.cursor),
            KeyCode::Backspace => {}
            KeyCode::Delete if self.cursor < len => self.remove(self.cursor, self.cursor + 1),
            KeyCode::Delete => {}
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(len),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            _ => return false,
        }
        true
    }
}

/// The `:` line being typed, with its place in the history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    pub edit: LineEdit,
    /// What the last Tab could complete to, when it was ambiguous.
    pub candidates: Vec<String>,
    /// Index into the history while browsing it with ↑↓.
    pub history_pos: Option<usize>,
    /// What was typed before browsing the history.
    pub draft: String,
}

/// Lines kept in the command history.
pub const HISTORY_MAX: usize = 100;

impl CommandLine {
    /// ↑ (`older`) or ↓ through `history` (oldest first).
    pub fn browse(&mut self, history: &[String], older: bool) {
        if history.is_empty() {
            return;
        }
        let pos = match (self.history_pos, older) {
            (None, true) => {
                self.draft = self.edit.text.clone();
                Some(history.len() - 1)
            }
            (None, false) => return,
            (Some(p), true) => Some(p.saturating_sub(1)),
            (Some(p), false) if p + 1 < history.len() => Some(p + 1),
            (Some(_), false) => None,
        };
        self.history_pos = pos;
        self.edit = LineEdit::new(pos.map_or(&self.draft, |p| &history[p]));
    }
}

/// Adds a run line to the history (no empty lines, no repeats in a row).
pub fn remember(history: &mut Vec<String>, line: &str) {
    let line = line.trim();
    if line.is_empty() || history.last().is_some_and(|l| l == line) {
        return;
    }
    history.push(line.to_string());
    if history.len() > HISTORY_MAX {
        history.remove(0);
    }
}

// ----- the `:` line in the app -----

use super::{App, Cmd, Drag, Mode, Update, View};

impl App {
    /// A key while the `:` line is open. Only Enter runs it and only Esc
    /// (or ctrl-c) closes it: no key typed here ever runs as a normal-mode
    /// action.
    pub(super) fn on_command_key(&mut self, k: KeyEvent, out: &mut Update) {
        let Mode::Command(c) = &mut self.mode else {
            return;
        };
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if k.code != KeyCode::Tab {
            c.candidates.clear();
        }
        match k.code {
            KeyCode::Enter => {
                let line = std::mem::take(&mut c.edit.text);
                self.mode = Mode::Normal;
                remember(&mut self.command_history, &line);
                self.run_command(&line, out);
            }
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Char('c') if ctrl => self.mode = Mode::Normal,
            KeyCode::Up => c.browse(&self.command_history, true),
            KeyCode::Down => c.browse(&self.command_history, false),
            KeyCode::Tab => {
                let Some(s) = &self.snap else { return };
                let names = |a: Arg, before: &[&str]| -> Vec<String> {
                    match a {
                        Arg::Vm => s.vms.iter().map(|v| v.name.clone()).collect(),
                        Arg::Node => s.nodes.iter().map(|n| n.name.clone()).collect(),
                        Arg::Volume => s.volumes.iter().map(|v| v.name.clone()).collect(),
                        Arg::Rule => s.rules.iter().map(|r| r.name.clone()).collect(),
                        Arg::Disk => before
                            .first()
                            .and_then(|vm| s.vm(vm))
                            .map(|v| v.disks.iter().map(|d| d.volume.clone()).collect())
                            .unwrap_or_default(),
                        Arg::Text | Arg::Choice(_) => Vec::new(),
                    }
                };
                let (before, after) = c.edit.split();
                let (line, listed) = completion(before, names);
                if let Some(mut line) = line {
                    let cursor = line.chars().count();
                    line.push_str(after);
                    c.edit = LineEdit { text: line, cursor };
                }
                c.candidates = listed;
            }
            _ => {
                c.edit.key(&k);
            }
        }
    }

    pub(super) fn run_command(&mut self, line: &str, out: &mut Update) {
        // A refusal goes with the next command.
        self.flash.take_if(|f| f.refusal);
        let p = match parse(line) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                self.flash(e, true);
                return;
            }
        };
        // What a refusal names: the line as typed.
        let refused = format!("`:{}`", line.trim());
        let arg = |i: usize| p.args[i].as_str();
        match p.verb {
            Verb::Quit => self.ask_quit(out),
            Verb::ForceQuit => {
                self.quit = true;
                out.cmds.push(Cmd::Quit);
            }
            Verb::Filter => {
                self.filter = arg(0).to_string();
                self.after_filter_change();
            }
            Verb::Help => self.mode = Mode::Help(0),
            Verb::Mouse => {
                self.settings.mouse = arg(0) == "on";
                out.cmds.push(Cmd::SetMouse(self.settings.mouse));
            }
            Verb::Maintenance => {
                if self.refuse_read_only(&refused) {
                    return;
                }
                let on = arg(0) == "on";
                let req = self.request(super::Pending::Maintenance { on });
                out.cmds.push(Cmd::SetMaintenance(req, on));
                self.flash(
                    format!("asking Pacemaker for maintenance mode {}…", arg(0)),
                    false,
                );
            }
            Verb::Start
            | Verb::Shutdown
            | Verb::Reboot
            | Verb::PowerOff
            | Verb::Console
            | Verb::Cordon
            | Verb::Uncordon => {
                if self.refuse_read_only(&refused) {
                    return;
                }
                let kind = if matches!(p.verb, Verb::Cordon | Verb::Uncordon) {
                    Arg::Node
                } else {
                    Arg::Vm
                };
                let Some(name) = self.exact_name(kind, arg(0)) else {
                    return;
                };
                self.run_action_verb(p.verb, name, out);
            }
            Verb::MoveDisk | Verb::AbortMoveDisk => {
                if self.refuse_read_only(&refused) {
                    return;
                }
                let Some(vm) = self.exact_name(Arg::Vm, arg(0)) else {
                    return;
                };
                self.sel_vm = Some(vm.clone());
                if p.verb == Verb::MoveDisk {
                    let (disk, to) = (self.volume_name(arg(1)), self.volume_name(arg(2)));
                    self.ask_disk_move_to(&vm, &disk, &to);
                } else {
                    self.ask_abort_disk_move(&vm, false);
                }
            }
            Verb::Recover => {
                if self.refuse_read_only(&refused) {
                    return;
                }
                let Some(node) = self.exact_name(Arg::Node, arg(0)) else {
                    return;
                };
                self.ask_recover(&node);
            }
            Verb::Rules => self.open_rules(),
            Verb::Override => self.override_rule(arg(0), arg(1)),
            Verb::Vm => self.jump_vm(arg(0)),
            Verb::Node => self.jump_node(arg(0)),
            Verb::Migrate => {
                if self.refuse_read_only(&refused) {
                    return;
                }
                let Some(vm) = self.exact_name(Arg::Vm, arg(0)) else {
                    return;
                };
                let Some(node) = self.exact_name(Arg::Node, arg(1)) else {
                    return;
                };
                let snap = self.snap.as_ref().expect("names were found in it");
                let d = Drag::with_leave(
                    snap,
                    &vm,
                    self.settings.defaults.copy_storage,
                    &self.rule_leave,
                )
                .expect("VM exists");
                self.sel_vm = Some(vm);
                self.drop_on(&d, Some(node));
            }
            Verb::Drain => {
                if self.refuse_read_only(&refused) {
                    return;
                }
                if self.drain.is_some() {
                    self.flash("a drain is already running; wait for it to finish", true);
                    return;
                }
                let Some(node) = self.exact_name(Arg::Node, arg(0)) else {
                    return;
                };
                let snap = self.snap.as_ref().expect("the name was found in it");
                let plan = crate::plan::plan_drain_with(
                    snap,
                    &node,
                    &self.settings.defaults,
                    &self.history,
                    false,
                    &self.rule_leave,
                );
                self.mode = Mode::ConfirmDrain(Box::new(plan));
            }
        }
    }

    /// VM or node names of the snapshot.
    fn names(&self, kind: Arg) -> Vec<&str> {
        let Some(s) = &self.snap else {
            return Vec::new();
        };
        match kind {
            Arg::Vm => s.vms.iter().map(|v| v.name.as_str()).collect(),
            _ => s.nodes.iter().map(|n| n.name.as_str()).collect(),
        }
    }

    /// The VM or node named exactly `typed` (or shown as `typed`: a name
    /// with a character shown escaped, such as a zero-width space, is typed
    /// as it is shown); otherwise flashes why not (with the names it may
    /// have meant) and returns `None`. Commands that change the cluster
    /// take exact names only.
    pub(super) fn exact_name(&mut self, kind: Arg, typed: &str) -> Option<String> {
        if self.snap.is_none() {
            self.flash("no cluster snapshot yet; try again in a moment", true);
            return None;
        }
        let names = self.names(kind);
        if names.contains(&typed) {
            return Some(typed.to_string());
        }
        let shown: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| crate::cluster::text::typed_names(typed, n))
            .collect();
        if let [one] = shown[..] {
            return Some(one.to_string());
        }
        let what = if kind == Arg::Vm { "VM" } else { "node" };
        let near = matches(typed, names.iter().copied());
        let text = if near.is_empty() {
            format!("there is no {what} named {typed:?}")
        } else {
            format!(
                "there is no {what} named {typed:?}; did you mean {}?",
                some_names(&near, 5)
            )
        };
        self.flash(text, true);
        None
    }

    /// The volume named `typed`, or the one volume shown as `typed` (see
    /// [`Self::exact_name`]); else `typed` as it is, for the check to refuse.
    fn volume_name(&self, typed: &str) -> String {
        let names: Vec<&str> = self.snap.as_ref().map_or(Vec::new(), |s| {
            s.volumes.iter().map(|v| v.name.as_str()).collect()
        });
        if names.contains(&typed) {
            return typed.to_string();
        }
        match names
            .iter()
            .filter(|n| crate::cluster::text::typed_names(typed, n))
            .collect::<Vec<_>>()[..]
        {
            [one] => one.to_string(),
            _ => typed.to_string(),
        }
    }

    /// The best match for `typed` among VM or node names; flashes when none.
    fn best_match(&mut self, kind: Arg, typed: &str) -> Option<(String, usize)> {
        let names = self.names(kind);
        let found = matches(typed, names.iter().copied());
        match found.first() {
            Some(best) => Some((best.to_string(), found.len())),
            None => {
                let what = if kind == Arg::Vm { "VM" } else { "node" };
                self.flash(format!("no {what} name matches {typed:?}"), true);
                None
            }
        }
    }

    /// `:vm NAME`: selects the best-matching VM and shows it.
    fn jump_vm(&mut self, typed: &str) {
        let Some((vm, n)) = self.best_match(Arg::Vm, typed) else {
            return;
        };
        if !self
            .visible_vms()
            .iter()
            .any(|&i| self.snap.as_ref().is_some_and(|s| s.vms[i].name == vm))
        {
            self.clear_filters();
        }
        self.select_vm(&vm);
        if self.view != View::Vms {
            self.view = View::Cluster;
        }
        let node = self
            .snap
            .as_ref()
            .and_then(|s| s.vm(&vm))
            .map_or(String::new(), |v| v.node.clone());
        let others = if n > 1 {
            format!(" ({} other matches; type more of the name)", n - 1)
        } else {
            String::new()
        };
        self.flash(format!("{vm} on {node}{others}"), false);
    }

    /// `:node NAME`: selects the best-matching node and shows it.
    fn jump_node(&mut self, typed: &str) {
        let Some((node, n)) = self.best_match(Arg::Node, typed) else {
            return;
        };
        let Some(i) = self.node_names().iter().position(|x| *x == node) else {
            return;
        };
        self.clear_filters();
        self.sel_node = i;
        self.sel_vm = self.first_vm_of_selected_node();
        if self.view != View::Nodes {
            self.view = View::Cluster;
        }
        let others = if n > 1 {
            format!(" ({} other matches; type more of the name)", n - 1)
        } else {
            String::new()
        };
        self.flash(format!("node {node}{others}"), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }
    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn every_verb_is_in_the_table_once_and_names_are_unique() {
        let mut names: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|s| s.names.iter().copied())
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a name used twice");
        for s in COMMANDS {
            assert_eq!(spec(s.verb).names, s.names);
            // Only the last argument may take the rest of the line.
            assert!(
                !s.args[..s.args.len().saturating_sub(1)].contains(&Arg::Text),
                "{}",
                s.usage()
            );
        }
    }

    #[test]
    fn parse_reads_the_table() {
        assert_eq!(parse("  "), Ok(None));
        let p = parse("m web-01 hv-02").unwrap().unwrap();
        assert_eq!(
            (p.verb, p.args),
            (Verb::Migrate, vec!["web-01".into(), "hv-02".into()])
        );
        let p = parse("filter a b").unwrap().unwrap();
        assert_eq!(p.args, vec!["a b".to_string()]);
        assert_eq!(parse("filter").unwrap().unwrap().args, vec![String::new()]);
        assert_eq!(
            parse("migrate web-01"),
            Err("usage: :migrate VM NODE".into())
        );
        assert_eq!(parse("mouse maybe"), Err("usage: :mouse on|off".into()));
        assert_eq!(parse("q!").unwrap().unwrap().verb, Verb::ForceQuit);
        let e = parse("frobnicate").unwrap_err();
        for s in COMMANDS {
            assert!(e.contains(&s.usage()), "{e} lacks {}", s.usage());
        }
    }

    #[test]
    fn the_readme_lists_every_command() {
        let readme = include_str!("../../README.md");
        for s in COMMANDS {
            assert!(
                readme.contains(&format!("`{}`", s.usage())),
                "README lacks `{}`",
                s.usage()
            );
        }
    }

    #[test]
    fn matching_prefers_exact_then_prefix_then_substring_then_fuzzy() {
        let names = ["web-10", "web-1", "api-web", "w-e-b", "db"];
        assert_eq!(matches("web-1", names), ["web-1", "web-10"]);
        assert_eq!(
            matches("web", names),
            ["web-1", "web-10", "api-web", "w-e-b"]
        );
        assert_eq!(matches("wb1", names), ["web-1", "web-10"]);
        assert!(matches("zz", names).is_empty());
        assert!(matches("", names).is_empty());
        assert_eq!(some_names(&["a", "b", "c"], 2), "a, b and 1 more");
    }

    /// Names for completion: VMs, nodes, volumes; db-main has two disks.
    fn names(a: Arg, before: &[&str]) -> Vec<String> {
        let list: &[&str] = match a {
            Arg::Vm => &["web-01", "web-02", "db-main"],
            Arg::Node => &["hv-01", "hv-02"],
            Arg::Volume => &["csv-gold", "csv-silver", "lun-db"],
            Arg::Disk if before.first() == Some(&"db-main") => &["lun-db", "csv-silver"],
            Arg::Disk => &["csv-gold"],
            _ => &[],
        };
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tab_completes_the_disks_of_the_vm_named_before_and_volumes() {
        assert_eq!(complete("move-d", names).as_deref(), Some("move-disk "));
        assert_eq!(
            complete("move-disk db-main l", names).as_deref(),
            Some("move-disk db-main lun-db ")
        );
        assert_eq!(
            complete("move-disk web-01 ", names).as_deref(),
            Some("move-disk web-01 csv-gold "),
            "web-01's only disk"
        );
        assert_eq!(
            complete("move-disk db-main lun-db csv-g", names).as_deref(),
            Some("move-disk db-main lun-db csv-gold ")
        );
        assert_eq!(
            complete("move-disk db-main lun-db csv", names).as_deref(),
            Some("move-disk db-main lun-db csv-")
        );
        assert_eq!(
            complete("abort-move-disk db", names).as_deref(),
            Some("abort-move-disk db-main ")
        );
    }

    #[test]
    fn tab_completes_commands_and_names_by_argument_kind() {
        assert_eq!(complete("mig", names).as_deref(), Some("migrate "));
        assert_eq!(complete("vm db", names).as_deref(), Some("vm db-main "));
        assert_eq!(complete("vm we", names).as_deref(), Some("vm web-0"));
        assert_eq!(
            complete("vm web-0", names),
            None,
            "ambiguous, nothing more in common"
        );
        assert_eq!(complete("migrate web-01 hv-0", names), None);
        assert_eq!(
            complete("migrate web-01 h", names).as_deref(),
            Some("migrate web-01 hv-0")
        );
        assert_eq!(
            complete("node 0", names).as_deref(),
            Some("node hv-0"),
            "fuzzy, in common"
        );
        assert_eq!(
            complete("vm main", names).as_deref(),
            Some("vm db-main "),
            "fuzzy"
        );
        assert_eq!(complete("mouse o", names), None);
        assert_eq!(complete("mouse of", names).as_deref(), Some("mouse off "));
        assert_eq!(complete("filter x", names), None);
        assert_eq!(complete("nope x", names), None);
    }

    #[test]
    fn editing_keys() {
        let mut e = LineEdit::new("migrate web-01 hv-02");
        assert!(e.key(&ctrl('w')));
        assert_eq!(e.text, "migrate web-01 ");
        e.key(&ctrl('w'));
        assert_eq!(e.text, "migrate ");
        e.key(&key(KeyCode::Home));
        e.key(&key(KeyCode::Char('x')));
        assert_eq!((e.text.as_str(), e.cursor), ("xmigrate ", 1));
        e.key(&key(KeyCode::Right));
        e.key(&key(KeyCode::Backspace));
        assert_eq!(e.text, "xigrate ");
        e.key(&key(KeyCode::Delete));
        assert_eq!(e.split(), ("x", "grate "));
        e.key(&ctrl('u'));
        assert_eq!((e.text.as_str(), e.cursor), ("grate ", 0));
        e.key(&ctrl('k'));
        assert_eq!(e.text, "");
        assert!(
            e.key(&key(KeyCode::Backspace)),
            "backspace on empty is swallowed"
        );
        assert_eq!(e, LineEdit::default());
        e.insert("ça");
        e.key(&key(KeyCode::Left));
        e.key(&key(KeyCode::Backspace));
        assert_eq!(e.text, "a");
        assert!(!e.key(&key(KeyCode::Enter)));
        assert!(!e.key(&ctrl('c')));
    }

    #[test]
    fn history_browses_and_restores_the_draft() {
        let mut h = Vec::new();
        for l in ["drain hv-01", "drain hv-01", " ", "vm web-01"] {
            remember(&mut h, l);
        }
        assert_eq!(h, ["drain hv-01", "vm web-01"]);
        let mut c = CommandLine {
            edit: LineEdit::new("fil"),
            ..Default::default()
        };
        c.browse(&h, true);
        assert_eq!(c.edit.text, "vm web-01");
        c.browse(&h, true);
        c.browse(&h, true);
        assert_eq!(c.edit.text, "drain hv-01");
        c.browse(&h, false);
        c.browse(&h, false);
        assert_eq!((c.edit.text.as_str(), c.history_pos), ("fil", None));
        for _ in 0..200 {
            let line = format!("{}", h.len());
            remember(&mut h, &line);
        }
        assert_eq!(h.len(), HISTORY_MAX);
    }
}
