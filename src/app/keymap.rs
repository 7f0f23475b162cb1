//! Key bindings: one table drives input, the footer hints and the help
//! screen. Users rebind in config.toml (`[keys] "ctrl-c" = "quit"`).

use std::collections::BTreeMap;

use crossterm::event::KeyEvent;

pub use crate::config::keys::{Action, Key, KeyCodeOrd};

/// The default bindings.
pub const DEFAULTS: &[(&str, Action)] = &[
    ("q", Action::Quit),
    ("ctrl-c", Action::Quit),
    ("?", Action::Help),
    ("f1", Action::Help),
    ("i", Action::About),
    ("up", Action::Up),
    ("k", Action::Up),
    ("down", Action::Down),
    ("j", Action::Down),
    ("left", Action::Left),
    ("h", Action::Left),
    ("right", Action::Right),
    ("l", Action::Right),
    ("pageup", Action::PageUp),
    ("pagedown", Action::PageDown),
    ("home", Action::Top),
    ("g", Action::Top),
    ("end", Action::Bottom),
    ("G", Action::Bottom),
    ("tab", Action::NextView),
    ("shift-tab", Action::PrevView),
    ("1", Action::ViewCluster),
    ("2", Action::ViewVms),
    ("3", Action::ViewNodes),
    ("4", Action::ViewVolumes),
    ("5", Action::ViewMigrations),
    ("6", Action::ViewEvents),
    ("7", Action::ViewHistory),
    ("m", Action::Move),
    ("space", Action::Move),
    ("enter", Action::Confirm),
    ("esc", Action::Cancel),
    ("/", Action::Filter),
    ("!", Action::Problems),
    ("s", Action::SortNext),
    ("S", Action::SortReverse),
    (":", Action::Command),
    ("a", Action::Abort),
    ("p", Action::Postcopy),
    ("+", Action::DowntimeUp),
    ("-", Action::DowntimeDown),
    ("]", Action::BandwidthUp),
    ("[", Action::BandwidthDown),
    ("M", Action::ToggleMouse),
    ("r", Action::Refresh),
    ("U", Action::StartVm),
    ("D", Action::ShutdownVm),
    ("R", Action::RebootVm),
    ("X", Action::PowerOffVm),
    ("C", Action::Console),
    ("V", Action::MoveDisk),
    ("ctrl-l", Action::Redraw),
    ("c", Action::Copy),
    ("y", Action::Yes),
    ("Y", Action::Yes),
    ("n", Action::No),
    ("N", Action::No),
];

#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap {
    map: BTreeMap<Key, Action>,
}

impl Default for KeyMap {
    fn default() -> Self {
        Self {
            map: DEFAULTS
                .iter()
                .map(|(k, a)| (Key::parse(k).expect("default keys parse"), *a))
                .collect(),
        }
    }
}

impl KeyMap {
    /// The defaults with the user's bindings on top.
    pub fn with_overrides(overrides: &[(String, Action)]) -> Result<Self, String> {
        let mut m = Self::default();
        for (k, a) in overrides {
            m.map.insert(Key::parse(k)?, *a);
        }
        Ok(m)
    }

    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        self.map.get(&Key::from_event(ev)?).copied()
    }

    /// Keys bound to `action`, in display form.
    pub fn keys_for(&self, action: Action) -> Vec<String> {
        self.map
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// The first key for `action`, for the footer.
    pub fn first_key(&self, action: Action) -> String {
        // Prefer the default's first key if it is still bound to the action.
        DEFAULTS
            .iter()
            .filter(|(_, a)| *a == action)
            .filter_map(|(k, _)| Key::parse(k).ok())
            .find(|k| self.map.get(k) == Some(&action))
            .map(|k| k.to_string())
            .or_else(|| self.keys_for(action).into_iter().next())
            .unwrap_or_else(|| "—".into())
    }

    /// (keys, description) for every action that has a key, in action order.
    pub fn help_rows(&self) -> Vec<(String, &'static str, Action)> {
        let mut by_action: BTreeMap<Action, Vec<String>> = BTreeMap::new();
        for (k, a) in &self.map {
            by_action.entry(*a).or_default().push(k.to_string());
        }
        by_action
            .into_iter()
            .map(|(a, keys)| (keys.join(" "), a.description(), a))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn defaults_map_keys_to_actions() {
        let k = KeyMap::default();
        assert_eq!(
            k.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char(' '), KeyModifiers::NONE)),
            Some(Action::Move)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            k.action(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevView)
        );
        assert_eq!(k.action(&ev(KeyCode::Char('z'), KeyModifiers::NONE)), None);
    }

    #[test]
    fn overrides_rebind_and_help_follows() {
        let k = KeyMap::with_overrides(&[("x".into(), Action::Quit), ("q".into(), Action::Help)])
            .unwrap();
        assert_eq!(
            k.action(&ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            k.action(&ev(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Help)
        );
        let quit = k
            .help_rows()
            .into_iter()
            .find(|r| r.2 == Action::Quit)
            .unwrap();
        assert_eq!(quit.0, "ctrl-c x");
        assert_eq!(k.first_key(Action::Quit), "ctrl-c");
    }

    #[test]
    fn no_default_key_is_bound_twice() {
        let mut keys: Vec<Key> = DEFAULTS
            .iter()
            .map(|(k, _)| Key::parse(k).unwrap())
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key in DEFAULTS is bound to two actions");
    }

    #[test]
    fn bad_key_names_say_what_is_allowed() {
        assert!(Key::parse("hyper-x").unwrap_err().contains("ctrl-"));
        assert_eq!(Key::parse("ctrl-x").unwrap().to_string(), "ctrl-x");
        assert_eq!(Key::parse("f5").unwrap().to_string(), "f5");
    }
}
