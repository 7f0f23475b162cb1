//! The interactive view: the terminal guard, the one event loop, and
//! rendering. Input, backend news, timers and signals all arrive as `Msg`
//! on one channel; `App::update` decides; commands go to the backend worker.

pub mod render;
pub mod terminal;
pub mod worker;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossterm::event::{Event, EventStream, MouseEventKind};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use futures::StreamExt;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::app::{App, Cmd, HitMap, Mode, Msg, SelfUsage, Settings};
use crate::backends::Backend;
use crate::record::Journal;
use terminal::TerminalGuard;
use worker::Worker;

/// Converts a terminal event; pointer motion matters only while dragging.
fn to_msg(ev: Event, app: &App) -> Option<Msg> {
    match ev {
        Event::Key(k) => Some(Msg::Key(k)),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Moved if !matches!(app.mode, Mode::Drag(_)) => None,
            _ => Some(Msg::Mouse(m)),
        },
        Event::Paste(p) => Some(Msg::Paste(p)),
        Event::Resize(w, h) => Some(Msg::Resize(w, h)),
        _ => None,
    }
}

/// How long the backend worker gets to end or detach what runs when the
/// view closes.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs the TUI until the user quits or a signal arrives; returns the
/// signal that ended it, if one did. Record failures of `journal` (the
/// backend's) show in the flash line.
pub fn run(
    backend: Box<dyn Backend>,
    settings: Settings,
    journal: &Journal,
) -> color_eyre::Result<Option<i32>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_loop(backend, settings, journal))
}

async fn run_loop(
    backend: Box<dyn Backend>,
    settings: Settings,
    journal: &Journal,
) -> color_eyre::Result<Option<i32>> {
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let mouse = settings.mouse;
    if render::theme::plain() {
        // The theme has no colours then; let crossterm write its colour
        // resets as they are (see theme.rs).
        crossterm::style::Colored::set_ansi_color_disabled(false);
    }
    let mut guard = TerminalGuard::enter(mouse)?;
    let (tx, mut rx) = unbounded_channel::<Msg>();
    spawn_signal_watchers(tx.clone())?;
    let failed = tx.clone();
    journal.on_failure(move |e| {
        let _ = failed.send(Msg::RecordFailed(e.to_string()));
    });
    let worker = Worker::spawn(backend, tx.clone(), poll);
    let sampler = Arc::new(Mutex::new(sysinfo::System::new()));

    let start = Instant::now();
    let mut app = App::new(settings);
    app.started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let size = guard.terminal.size()?;
    app.size = (size.width, size.height);
    let mut events = EventStream::new();
    let mut hit = HitMap::default();
    let mut dirty = true;
    let result: color_eyre::Result<()> = loop {
        if dirty {
            let mut out = io::stdout();
            let _ = crossterm::execute!(out, BeginSynchronizedUpdate);
            guard.terminal.draw(|f| hit = render::render(&app, f))?;
            let _ = crossterm::execute!(out, EndSynchronizedUpdate);
            dirty = false;
        }
        let timer = app
            .next_timer_ms()
            .map(|t| tokio::time::Instant::from_std(start + Duration::from_millis(t)));
        let first = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => match to_msg(ev, &app) {
                    Some(m) => m,
                    None => continue,
                },
                Some(Err(e)) => break Err(e.into()),
                None => break Ok(()),
            },
            Some(m) = rx.recv() => m,
            _ = async { tokio::time::sleep_until(timer.expect("guarded")).await }, if timer.is_some() => Msg::Tick,
        };
        for msg in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            let now = start.elapsed().as_millis() as u64;
            let update = app.update(msg, &hit, now);
            dirty |= update.redraw;
            for cmd in update.cmds {
                match cmd {
                    Cmd::SetMouse(on) => {
                        let _ = terminal::set_mouse(on);
                    }
                    Cmd::SampleSelf => sample_self(sampler.clone(), tx.clone()),
                    Cmd::Redraw => {
                        // Whatever wrote over the screen goes: clear, then all of it again.
                        let _ = guard.full_redraw();
                        dirty = true;
                    }
                    Cmd::RunConsole { vm, argv } => {
                        // The terminal's input is the console's until it ends:
                        // no event reader may take keys meanwhile.
                        drop(events);
                        let result = hand_over(&mut guard, &argv, app.settings.mouse);
                        events = EventStream::new();
                        // A fresh alternate screen: all of the view again, not a diff.
                        let _ = guard.full_redraw();
                        dirty = true;
                        let _ = tx.send(Msg::ConsoleEnded { vm, result });
                    }
                    Cmd::Copy(text) => {
                        let _ = terminal::copy_to_clipboard(&text);
                    }
                    Cmd::Quit => {}
                    other => worker.send(other),
                }
            }
        }
        if app.quit {
            break Ok(());
        }
    };
    let why = app.signal.map_or("quit", signal_name);
    worker.stop(why, STOP_TIMEOUT);
    drop(guard);
    let _ = io::stdout().flush();
    let running = app.running_migrations().len();
    if running > 0 && app.snap.as_ref().is_some_and(|s| s.backend != "sim") {
        crate::output::eprintln(&format!(
            "vmshift: {running} migration(s) still running; peer-to-peer migrations continue without vmshift and are recorded as detached."
        ));
    }
    result.map(|()| app.signal)
}

/// The signals that end the view, by number and name.
const ENDING_SIGNALS: [(i32, &str); 4] = [
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
];

fn signal_name(sig: i32) -> &'static str {
    ENDING_SIGNALS
        .iter()
        .find(|(n, _)| *n == sig)
        .map_or("a signal", |(_, name)| name)
}

/// Every signal that ends the view becomes a message, so the terminal is
/// restored and the backend stopped in order (raw mode turns Ctrl-C into
/// a key; SIGINT and SIGQUIT still come from `kill`).
fn spawn_signal_watchers(tx: UnboundedSender<Msg>) -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    for (number, _) in ENDING_SIGNALS {
        let mut s = signal(SignalKind::from_raw(number))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            if s.recv().await.is_some() {
                let _ = tx.send(Msg::Signal(number));
            }
        });
    }
    Ok(())
}

/// Measures vmshift's own CPU and memory off the loop.
fn sample_self(sys: Arc<Mutex<sysinfo::System>>, tx: UnboundedSender<Msg>) {
    tokio::task::spawn_blocking(move || {
        let Ok(pid) = sysinfo::get_current_pid() else {
            return;
        };
        let Ok(mut sys) = sys.lock() else { return };
        sys.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            true,
            sysinfo::ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory(),
        );
        if let Some(p) = sys.process(pid) {
            let threads = std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count());
            let _ = tx.send(Msg::SelfUsage(SelfUsage {
                cpu_pct: p.cpu_usage(),
                rss_bytes: p.memory(),
                threads,
            }));
        }
    });
}

/// The line shown above a console: its command as a shell takes it (names
/// quoted, so it can be copied), with nothing in it a terminal obeys.
fn console_banner(argv: &[String]) -> String {
    crate::cluster::text::escape(&format!(
        "vmshift: {} — leave the console with ctrl-] to come back to vmshift",
        crate::cluster::text::shell_line(argv)
    ))
    .into_owned()
}

/// Suspends the view, runs `argv` (a console) on the terminal until it
/// ends, and takes the terminal back. `Err` is one sentence.
fn hand_over(guard: &mut TerminalGuard, argv: &[String], mouse: bool) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("the backend gave no console command".into());
    };
    guard
        .suspend()
        .map_err(|e| format!("cannot give the terminal to the console: {e}"))?;
    let shown = crate::cluster::text::shell_line(argv);
    let mut out = io::stdout();
    let _ = writeln!(out, "{}", console_banner(argv));
    let _ = out.flush();
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(fd) = terminal::terminal_stderr() {
        cmd.stderr(std::process::Stdio::from(fd));
    }
    let status = cmd.status();
    let back = guard.resume(mouse);
    let status = status.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!(
            "cannot run {program}: it is not installed here; install libvirt's clients (virsh), e.g. `apt install libvirt-clients`"
        ),
        _ => format!("cannot run {program}: {e}"),
    })?;
    back.map_err(|e| format!("cannot take the terminal back after the console: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the console ended with {status}: `{shown}` (its words are in the terminal's scrollback)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_banner_quotes_the_command_for_a_shell() {
        let argv = |vm: &str| -> Vec<String> {
            ["virsh", "-c", "qemu+ssh://root@hv1/system", "console", vm]
                .map(String::from)
                .to_vec()
        };
        let b = console_banner(&argv("web-01"));
        assert!(
            b.starts_with("vmshift: virsh -c qemu+ssh://root@hv1/system console web-01 — "),
            "{b}"
        );
        let b = console_banner(&argv("my vm;reboot"));
        assert!(b.contains(" console 'my vm;reboot' — "), "{b}");
        // A name with a control or invisible character: its bytes, pasted
        // back they name exactly that VM, and nothing raw reaches the terminal.
        let b = console_banner(&argv("web\u{200b}\u{1b}[2J"));
        assert!(
            b.contains(" console $'web\\xe2\\x80\\x8b\\x1b[2J' — "),
            "{b}"
        );
        assert!(!b.chars().any(crate::cluster::text::is_escaped), "{b:?}");
    }
}
