//! VM actions, console hand-off, cordons and ctrl-l in the app: keys and
//! `:` commands in, commands out, on the simulator's virtual clock.

mod common;

use common::Rig;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use vmshift::app::{Cmd, HitMap, Mode, Msg, Settings};
use vmshift::backends::Backend;
use vmshift::cluster::{VmAction, VmState};
use vmshift::plan::Refusal;
use vmshift::tui::render::render;

fn command(r: &mut Rig, line: &str) -> Vec<Cmd> {
    r.key(KeyCode::Char(':'));
    r.text(line);
    r.key(KeyCode::Enter).cmds
}

fn flash(r: &Rig) -> (String, bool) {
    let f = r.app.flash.as_ref().expect("a flash message");
    (f.text.clone(), f.error)
}

/// Runs the backend commands as the worker does and feeds the replies back.
fn run(r: &mut Rig, cmds: Vec<Cmd>) {
    for c in cmds {
        let reply = match c {
            Cmd::VmAction(req, vm, a) => match r.sim.vm_action(&vm, a) {
                Ok(text) => Msg::Done { req, text },
                Err(e) => Msg::Failed {
                    req,
                    error: e.to_string(),
                },
            },
            Cmd::SetCordon(req, node, on) => match r.sim.set_cordon(&node, on) {
                Ok(text) => Msg::Done { req, text },
                Err(e) => Msg::Failed {
                    req,
                    error: e.to_string(),
                },
            },
            other => panic!("not a backend command here: {other:?}"),
        };
        r.send(reply);
    }
    r.poll();
}

fn select(r: &mut Rig, vm: &str) {
    r.key(KeyCode::Char(':'));
    r.text(&format!("vm {vm}"));
    r.key(KeyCode::Enter);
    assert_eq!(r.app.sel_vm.as_deref(), Some(vm));
}

#[test]
fn read_only_refuses_every_action_with_one_sentence() {
    let mut r = Rig::new(
        "default",
        Settings {
            read_only: true,
            ..Settings::default()
        },
    );
    select(&mut r, "web-01");
    for key in ['U', 'D', 'R', 'X', 'C'] {
        r.app.flash = None;
        let cmds = r.key(KeyCode::Char(key)).cmds;
        assert!(cmds.is_empty(), "{key}: {cmds:?}");
        assert_eq!(r.app.mode, Mode::Normal, "{key}");
        let (text, error) = flash(&r);
        assert!(error, "{key}");
        assert!(
            text.starts_with(&format!("read-only: {key} (")) && text.contains(" web-01) refused"),
            "{key}: {text}"
        );
    }
    for line in [
        "start web-01",
        "shutdown web-01",
        "reboot web-01",
        "poweroff web-01",
        "console web-01",
        "cordon hv-01",
        "uncordon hv-01",
    ] {
        r.app.flash = None;
        assert!(command(&mut r, line).is_empty(), "{line}");
        assert_eq!(r.app.mode, Mode::Normal, "{line}");
        assert!(
            flash(&r)
                .0
                .starts_with(&format!("read-only: `:{line}` refused")),
            "{line}"
        );
    }
}

#[test]
fn force_off_needs_the_vm_name_typed() {
    let mut r = Rig::default();
    select(&mut r, "web-01");
    assert!(r.key(KeyCode::Char('X')).cmds.is_empty());
    assert!(matches!(&r.app.mode, Mode::ConfirmVm(c) if c.action == VmAction::PowerOff));
    // y and Enter alone do nothing: the name is what confirms.
    r.text("y");
    assert!(r.key(KeyCode::Enter).cmds.is_empty());
    assert!(matches!(r.app.mode, Mode::ConfirmVm(_)));
    assert_eq!(
        flash(&r),
        (
            "type web-01 exactly, then Enter, to force it off (Esc cancels)".into(),
            true
        )
    );
    r.key(KeyCode::Backspace);
    r.text("web-01");
    let cmds = r.key(KeyCode::Enter).cmds;
    assert!(
        matches!(cmds.as_slice(), [Cmd::VmAction(_, vm, VmAction::PowerOff)] if vm == "web-01"),
        "{cmds:?}"
    );
    assert_eq!(r.app.mode, Mode::Normal);
    run(&mut r, cmds);
    assert_eq!(flash(&r), ("web-01 forced off on hv-01".into(), false));
    assert_eq!(
        r.app.snap.as_ref().unwrap().vm("web-01").unwrap().state,
        VmState::Stopped
    );
    // Esc leaves the dialog without a command.
    select(&mut r, "api-01");
    r.key(KeyCode::Char('X'));
    r.text("api-01");
    assert!(r.key(KeyCode::Esc).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal);
}

#[test]
fn shutdown_asks_and_takes_a_few_simulated_seconds() {
    let mut r = Rig::default();
    select(&mut r, "web-02");
    r.key(KeyCode::Char('D'));
    assert!(r.key(KeyCode::Char('n')).cmds.is_empty());
    assert_eq!(r.app.mode, Mode::Normal);
    assert_eq!(
        flash(&r),
        ("shutdown (ACPI) of web-02 cancelled".into(), false)
    );
    r.key(KeyCode::Char('D'));
    let cmds = r.key(KeyCode::Char('y')).cmds;
    assert!(
        matches!(cmds.as_slice(), [Cmd::VmAction(_, vm, VmAction::Shutdown)] if vm == "web-02"),
        "{cmds:?}"
    );
    run(&mut r, cmds);
    assert!(flash(&r).0.contains("the guest is shutting down"));
    r.advance_until(|s| s.snapshot().unwrap().vm("web-02").unwrap().state == VmState::Stopped);
    // A stopped VM: shutdown is refused before any dialog, start is offered.
    assert!(command(&mut r, "shutdown web-02").is_empty());
    assert_eq!(r.app.mode, Mode::Normal);
    assert_eq!(
        flash(&r),
        (
            "web-02 is stopped; only a running guest can shut down".into(),
            true
        )
    );
    let cmds = command(&mut r, "start web-02");
    assert!(
        matches!(cmds.as_slice(), [Cmd::VmAction(_, vm, VmAction::Start)] if vm == "web-02"),
        "{cmds:?}"
    );
    run(&mut r, cmds);
    assert_eq!(
        r.app.snap.as_ref().unwrap().vm("web-02").unwrap().state,
        VmState::Running
    );
}

#[test]
fn a_failed_action_says_what_failed() {
    let mut r = Rig::default();
    let cmds = command(&mut r, "reboot monitor");
    assert!(cmds.is_empty(), "reboot asks first");
    let cmds = r.key(KeyCode::Enter).cmds;
    let [Cmd::VmAction(req, ..)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    r.send(Msg::Failed {
        req,
        error: "the node went away".into(),
    });
    assert_eq!(
        flash(&r),
        ("cannot reboot monitor: the node went away".into(), true)
    );
}

#[test]
fn console_hands_the_terminal_over_and_reports_how_it_ended() {
    let mut r = Rig::default();
    select(&mut r, "db-main");
    let cmds = r.key(KeyCode::Char('C')).cmds;
    let [Cmd::Console(req, ref vm)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    assert_eq!(vm, "db-main");
    let argv: Vec<String> = ["virsh", "-c", "qemu:///system", "console", "db-main"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cmds = r
        .send(Msg::ConsoleReady {
            req,
            vm: "db-main".into(),
            argv: argv.clone(),
        })
        .cmds;
    assert_eq!(
        cmds,
        [Cmd::RunConsole {
            vm: "db-main".into(),
            argv
        }]
    );
    let u = r.send(Msg::ConsoleEnded {
        vm: "db-main".into(),
        result: Err("cannot run virsh: it is not installed here".into()),
    });
    assert!(u.redraw);
    assert_eq!(
        flash(&r),
        ("cannot run virsh: it is not installed here".into(), true)
    );
    // The simulator's own answer, as the worker passes it on.
    let cmds = r.key(KeyCode::Char('C')).cmds;
    let [Cmd::Console(req, ref vm)] = cmds[..] else {
        panic!("{cmds:?}")
    };
    let e = r.sim.console_command(vm).unwrap_err().to_string();
    r.send(Msg::Failed { req, error: e });
    assert!(
        flash(&r).0.starts_with(
            "cannot open the console of db-main: the simulated cluster has no consoles"
        ),
        "{:?}",
        flash(&r)
    );
}

#[test]
fn a_cordoned_node_is_refused_in_a_drag_and_uncordon_lets_it_take_vms() {
    let mut r = Rig::default();
    let cmds = command(&mut r, "cordon hv-02");
    assert!(
        matches!(cmds.as_slice(), [Cmd::SetCordon(_, n, true)] if n == "hv-02"),
        "{cmds:?}"
    );
    run(&mut r, cmds);
    assert!(flash(&r).0.starts_with("node hv-02 is cordoned"));
    assert!(
        command(&mut r, "cordon hv-02").is_empty(),
        "already cordoned"
    );
    r.drag_to("web-01", "hv-02");
    let Mode::Drag(d) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert!(
        matches!(d.verdict("hv-02"), Some(Err(Refusal::Cordoned { .. }))),
        "{:?}",
        d.verdict("hv-02")
    );
    r.key(KeyCode::Enter);
    let (text, error) = flash(&r);
    assert!(error);
    assert!(
        text.starts_with("cannot move web-01 to hv-02: node hv-02 is cordoned (since ")
            && text.ends_with("uncordon it with `:uncordon hv-02` or `vmshift uncordon hv-02`, or pick another node"),
        "{text}"
    );
    let cmds = command(&mut r, "uncordon hv-02");
    run(&mut r, cmds);
    r.drag_to("web-01", "hv-02");
    let Mode::Drag(d) = &r.app.mode else {
        panic!("{:?}", r.app.mode)
    };
    assert!(matches!(d.verdict("hv-02"), Some(Ok(_))));
}

/// The loop's side (the screen repainted in full) is
/// `tui_e2e::ctrl_l_redraws_the_whole_screen`.
#[test]
fn ctrl_l_asks_the_loop_for_a_full_redraw() {
    let mut r = Rig::default();
    let u = r.send(Msg::Key(KeyEvent::new(
        KeyCode::Char('l'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(u.cmds, [Cmd::Redraw]);
}

#[test]
fn the_footer_offers_what_applies_to_the_selected_vm() {
    let mut r = Rig::default();
    select(&mut r, "web-01");
    let actions = vmshift::tui::render::footer_actions(&r.app);
    use vmshift::app::Action;
    assert!(actions.contains(&Action::ShutdownVm) && actions.contains(&Action::Console));
    assert!(!actions.contains(&Action::StartVm));
    r.sim.vm_action("web-01", VmAction::PowerOff).unwrap();
    r.poll();
    let actions = vmshift::tui::render::footer_actions(&r.app);
    assert!(actions.contains(&Action::StartVm));
    assert!(!actions.contains(&Action::Console));
}

#[test]
fn force_off_dialog_and_a_cordoned_card_at_80x24() {
    let mut r = Rig::default();
    r.sim.set_cordon("hv-01", true).unwrap();
    r.poll();
    r.send(Msg::Resize(80, 24));
    select(&mut r, "web-01");
    r.key(KeyCode::Char('X'));
    r.text("web-");
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut hit = HitMap::default();
    t.draw(|f| hit = render(&r.app, f)).unwrap();
    let _ = hit;
    let screen = format!("{}", t.backend());
    assert!(screen.contains("⊘ cordoned"), "{screen}");
    insta::assert_snapshot!("force_off_80x24", t.backend());
}

/// A name holding a character that cannot be typed (a zero-width space)
/// is typed as the view shows it, `hv-a\u{200b}`: in `:` commands and in
/// the name a force-off asks for; the plain look-alike is not taken for it.
#[test]
fn a_name_with_an_invisible_character_is_typed_as_it_is_shown() {
    let names = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/names.toml");
    let mut r = Rig::new(names, Settings::default());
    let cmds = command(&mut r, "cordon hv-a\\u{200b}");
    assert!(
        matches!(cmds.as_slice(), [Cmd::SetCordon(_, n, true)] if n == "hv-a\u{200b}"),
        "{cmds:?}"
    );
    run(&mut r, cmds);
    assert!(
        flash(&r).0.starts_with("node hv-a\u{200b} is cordoned"),
        "{:?}",
        flash(&r)
    );
    select(&mut r, "web\u{200b}");
    r.key(KeyCode::Char('X'));
    // "web" is the other VM: not this one.
    r.text("web");
    assert!(r.key(KeyCode::Enter).cmds.is_empty());
    assert!(matches!(r.app.mode, Mode::ConfirmVm(_)));
    r.text("\\u{200b}");
    let cmds = r.key(KeyCode::Enter).cmds;
    assert!(
        matches!(cmds.as_slice(), [Cmd::VmAction(_, vm, VmAction::PowerOff)] if vm == "web\u{200b}"),
        "{cmds:?}"
    );
    // A volume with a soft hyphen, typed as shown, in `:move-disk`.
    command(&mut r, "move-disk web csv\\u{ad}1 csv-2");
    assert!(
        matches!(&r.app.mode, Mode::ConfirmDiskMove(p) if p.disk == "csv\u{ad}1" && p.to == "csv-2"),
        "{:?} {:?}",
        r.app.mode,
        r.app.flash
    );
}

/// The `/` filter matches a name as it is shown too: `200b` finds the VMs
/// whose name or node holds a zero-width space, and not their look-alikes.
#[test]
fn the_filter_finds_names_by_their_escaped_characters() {
    let names = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/names.toml");
    let mut r = Rig::new(names, Settings::default());
    r.key(KeyCode::Char('/'));
    r.text("200B");
    let shown: Vec<&str> = r
        .app
        .visible_vms()
        .into_iter()
        .map(|i| r.app.snap.as_ref().unwrap().vms[i].name.as_str())
        .collect();
    assert_eq!(shown, ["web\u{200b}", "\u{202e}gpj.exe", "db\u{2060}"]);
}
