//! Runs a cluster manager's command-line tools (`crm_mon`, `crm_resource`…)
//! where they work: on this machine, on a cluster node over ssh, or behind
//! a command prefix (`sudo`, `nsenter …`). Every run has a deadline: a slow
//! or unreachable manager is an error like a slow libvirt node, never a
//! frozen screen, and nothing it prints reaches the terminal.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::text::shell_line;

/// Where the tools run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// On this machine.
    Local,
    /// `ssh -o BatchMode=yes DEST …` (a cluster node, `root@hv1`).
    Ssh(String),
    /// These words, then the command (`sudo`, `nsenter -t PID -m -u --`).
    Prefix(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub via: Via,
    pub timeout: Duration,
}

impl Runner {
    pub fn new(via: Via, timeout: Duration) -> Runner {
        Runner { via, timeout }
    }

    /// Where commands run, for messages ("on root@hv1").
    pub fn place(&self) -> String {
        match &self.via {
            Via::Local => "on this machine".into(),
            Via::Ssh(d) => format!("on {d} over ssh"),
            Via::Prefix(p) => format!("through `{}`", shell_line(p)),
        }
    }

    /// Runs `args` (program first) and returns its standard output; any
    /// failure is one sentence with the command and what it said.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = match &self.via {
            Via::Local => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
            Via::Ssh(dest) => {
                let mut c = Command::new("ssh");
                c.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-T"]);
                c.arg(dest).arg("--");
                c.args(args.iter().map(|a| shell_quote(a)));
                c
            }
            Via::Prefix(p) => {
                let mut c = Command::new(&p[0]);
                c.args(&p[1..]).args(args);
                c
            }
        };
        let shown = shell_line(args);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .spawn()
            .map_err(|e| format!("cannot run `{shown}` {}: {e}", self.place()))?;
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let out_reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "`{shown}` {} did not answer within {} ms",
                        self.place(),
                        self.timeout.as_millis()
                    ));
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("`{shown}` {}: {e}", self.place())),
            }
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        if status.success() {
            Ok(stdout)
        } else {
            let said = stderr
                .lines()
                .chain(stdout.lines())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no message")
                .to_string();
            Err(format!(
                "`{shown}` {} failed ({}): {said}",
                self.place(),
                status
                    .code()
                    .map_or("killed by a signal".into(), |c| format!("exit {c}"))
            ))
        }
    }
}

/// One word for a remote shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_errors_and_deadline() {
        let r = Runner::new(Via::Local, Duration::from_secs(5));
        assert_eq!(r.run(&["echo", "hi"]).unwrap(), "hi\n");
        let e = r.run(&["sh", "-c", "echo oops >&2; exit 3"]).unwrap_err();
        assert!(e.contains("exit 3") && e.contains("oops"), "{e}");
        let e = r.run(&["/nonexistent/crm_mon"]).unwrap_err();
        assert!(e.starts_with("cannot run `/nonexistent/crm_mon`"), "{e}");
        let slow = Runner::new(Via::Local, Duration::from_millis(100));
        let e = slow.run(&["sleep", "5"]).unwrap_err();
        assert!(e.contains("did not answer within 100 ms"), "{e}");
    }

    #[test]
    fn a_prefix_goes_first() {
        let r = Runner::new(
            Via::Prefix(vec!["env".into(), "X=1".into()]),
            Duration::from_secs(5),
        );
        assert_eq!(r.run(&["sh", "-c", "echo $X"]).unwrap(), "1\n");
    }

    #[test]
    fn remote_words_are_quoted() {
        assert_eq!(shell_quote("crm_mon"), "crm_mon");
        assert_eq!(shell_quote("--output-as=xml"), "--output-as=xml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
