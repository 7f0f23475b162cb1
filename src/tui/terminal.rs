//! The terminal guard: raw mode, alternate screen, mouse capture and
//! bracketed paste on entry; all of it undone on quit, error, panic and
//! signals. `restore` is idempotent and safe to call from a panic hook.

use std::io::{self, BufRead, Stdout, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static MOUSE: AtomicBool = AtomicBool::new(false);
/// The terminal's stderr while fd 2 goes to the log pipe (-1: not captured).
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);

/// Owns the terminal while the TUI runs; restores it when dropped.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    pub fn enter(mouse: bool) -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = io::stdout();
        execute!(
            out,
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        set_mouse(mouse)?;
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        capture_stderr();
        Ok(Self { terminal })
    }
}

impl TerminalGuard {
    /// Gives the terminal back for a while (a console): the screen as the
    /// shell had it, cooked mode, no mouse capture.
    pub fn suspend(&mut self) -> io::Result<()> {
        let mut out = io::stdout();
        execute!(
            out,
            DisableMouseCapture,
            DisableBracketedPaste,
            LeaveAlternateScreen,
            cursor::Show
        )?;
        disable_raw_mode()?;
        out.flush()
    }

    /// Takes the terminal again after [`TerminalGuard::suspend`]; the next
    /// draw repaints everything.
    pub fn resume(&mut self, mouse: bool) -> io::Result<()> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        execute!(
            out,
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        set_mouse(mouse)?;
        self.full_redraw()
    }

    /// Clears the screen and makes the next draw write every cell. Unlike
    /// ratatui's `Terminal::clear`, it never asks the terminal where its
    /// cursor is: that answer can be lost right after a console hand-off
    /// (the old event reader still owns stdin), and then the view stayed
    /// half drawn with "the cursor position could not be read".
    pub fn full_redraw(&mut self) -> io::Result<()> {
        execute!(io::stdout(), Clear(ClearType::All))?;
        // Both buffers reset: the next frame is compared with nothing.
        self.terminal.swap_buffers();
        self.terminal.swap_buffers();
        Ok(())
    }
}

/// While the view runs, whatever is written to fd 2 — libvirt's own
/// messages, or a child it runs (ssh) — goes to the log (`VMSHIFT_LOG`)
/// instead of over the screen. [`restore`] puts the terminal back first.
fn capture_stderr() {
    if SAVED_STDERR.load(Ordering::SeqCst) >= 0 {
        return;
    }
    let mut fds = [0; 2];
    // SAFETY: plain fd calls; every fd is checked and owned once.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return;
        }
        let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if saved < 0 || libc::dup2(fds[1], 2) < 0 {
            libc::close(fds[0]);
            libc::close(fds[1]);
            if saved >= 0 {
                libc::close(saved);
            }
            return;
        }
        libc::close(fds[1]);
        SAVED_STDERR.store(saved, Ordering::SeqCst);
    }
    // SAFETY: fds[0] is ours alone from here.
    let read_end = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let _ = std::thread::Builder::new()
        .name("vmshift-stderr".into())
        .spawn(move || {
            let lines = io::BufReader::new(std::fs::File::from(read_end)).lines();
            for line in lines.map_while(Result::ok) {
                tracing::warn!(target: "vmshift::stderr", "{line}");
            }
        });
}

/// fd 2 back to the terminal (idempotent).
fn release_stderr() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the duplicate made by `capture_stderr`.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

/// A handle on the terminal's own stderr, for a program run on the
/// terminal while the view is suspended (`None`: fd 2 is not captured).
pub fn terminal_stderr() -> Option<OwnedFd> {
    let saved = SAVED_STDERR.load(Ordering::SeqCst);
    if saved < 0 {
        return None;
    }
    // SAFETY: a fresh duplicate, owned by the caller.
    let fd = unsafe { libc::fcntl(saved, libc::F_DUPFD_CLOEXEC, 3) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

pub fn set_mouse(on: bool) -> io::Result<()> {
    let mut out = io::stdout();
    if on {
        execute!(out, EnableMouseCapture)?;
    } else {
        execute!(out, DisableMouseCapture)?;
    }
    MOUSE.store(on, Ordering::SeqCst);
    Ok(())
}

/// The OSC 52 sequence that asks the terminal to put `text` on the
/// clipboard: `ESC ] 52 ; c ; <base64> BEL`. It works over SSH, and in
/// tmux with `set -g set-clipboard on`.
pub fn osc52(text: &str) -> String {
    use base64::Engine;
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// Writes the OSC 52 sequence for `text` through the terminal writer.
pub fn copy_to_clipboard(text: &str) -> io::Result<()> {
    let mut out = io::stdout();
    out.write_all(osc52(text).as_bytes())?;
    out.flush()
}

/// Puts the terminal back as it was. Does nothing the second time.
pub fn restore() {
    release_stderr();
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = io::stdout();
    // Mouse capture first: a terminal left capturing is unusable.
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    MOUSE.store(false, Ordering::SeqCst);
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Restores the terminal before the previous panic hook (color-eyre's)
/// prints, so the report is readable.
fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    #[test]
    fn osc52_carries_the_text_in_base64() {
        assert_eq!(super::osc52("hi ✓"), "\x1b]52;c;aGkg4pyT\x07");
    }
}
