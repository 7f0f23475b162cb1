//! Nodes reached over SSH, safely: nothing the transport does may read from
//! or write to the terminal while the view runs.
//!
//! libvirt's `qemu+ssh://` transport runs the `ssh` binary as a child of
//! this process. Without a terminal to ask on, ssh must never ask: the URI
//! gets libvirt's `no_tty=1`, which makes libvirt run `ssh -T -o
//! BatchMode=yes -e none` (no password, passphrase or host-key question;
//! ssh fails instead). libvirt reads ssh's stderr into its error message,
//! which [`explain`] turns into the node's error with the command that
//! fixes it. (The `libssh`/`libssh2` transports ask through an auth
//! callback, and vmshift gives none: they fail instead of asking.)

use crate::cluster::text::shell_word;

/// The parts of a libvirt URI that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriParts {
    /// `ssh`, `libssh`, `tcp`… (empty: none given).
    pub transport: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

pub fn parts(uri: &str) -> UriParts {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let transport = scheme
        .split_once('+')
        .map_or(String::new(), |(_, t)| t.to_string());
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        // An IPv6 literal in brackets has colons of its own.
        Some((h, p)) if !p.contains(']') => (h.to_string(), p.parse().ok()),
        _ => (hostport.to_string(), None),
    };
    UriParts {
        transport,
        user,
        host,
        port,
    }
}

/// `uri` with `no_tty=1` added when it uses the ssh transport and does not
/// say `no_tty` itself.
pub fn batch_uri(uri: &str) -> String {
    if parts(uri).transport != "ssh" {
        return uri.to_string();
    }
    let (base, fragment) = match uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (uri, None),
    };
    let query = base.split_once('?').map_or("", |(_, q)| q);
    if query
        .split('&')
        .any(|kv| kv.split('=').next() == Some("no_tty"))
    {
        return uri.to_string();
    }
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let mut out = format!("{base}{sep}no_tty=1");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `[-p PORT ]USER@HOST` as ssh takes it.
fn ssh_target(p: &UriParts) -> String {
    let port = p.port.map_or(String::new(), |n| format!("-p {n} "));
    let who = match &p.user {
        Some(u) => format!("{u}@{}", p.host),
        None => p.host.clone(),
    };
    format!("{port}{}", shell_word(&who))
}

/// The known_hosts name of the host (`[host]:port` for other ports).
fn known_hosts_name(p: &UriParts) -> String {
    match p.port {
        Some(port) if port != 22 => format!("[{}]:{port}", p.host),
        _ => p.host.clone(),
    }
}

/// One sentence for a failed connection to `uri` (libvirt said `msg`):
/// what went wrong and the command that fixes it.
pub fn explain(uri: &str, msg: &str) -> String {
    let p = parts(uri);
    let said = msg.trim();
    let ssh = matches!(p.transport.as_str(), "ssh" | "libssh" | "libssh2");
    if !ssh {
        return format!("cannot connect to {uri}: {said}");
    }
    let target = ssh_target(&p);
    let lower = said.to_lowercase();
    if lower.contains("remote host identification has changed")
        || lower.contains("host key for") && lower.contains("has changed")
    {
        return format!(
            "the ssh host key of {} has CHANGED since it was accepted (a reinstalled node, or someone in between); check it with the node's owner, then `ssh-keygen -R {}` and `ssh -o StrictHostKeyChecking=accept-new {target} true` (ssh said: {said})",
            p.host,
            shell_word(&known_hosts_name(&p))
        );
    }
    if lower.contains("host key verification failed")
        || lower.contains("host key is known")
        || lower.contains("authenticity of host")
        || lower.contains("server not known")
        || lower.contains("unknown host key")
    {
        return format!(
            "ssh does not know the host key of {} yet and vmshift never answers ssh's questions; check the key, accept it with `ssh -o StrictHostKeyChecking=accept-new {target} true`, and vmshift connects on its next try (ssh said: {said})",
            p.host
        );
    }
    if lower.contains("permission denied")
        || lower.contains("authentication failed")
        || lower.contains("too many authentication failures")
        || lower.contains("no more authentication methods")
    {
        return format!(
            "ssh refused the login to {target}; vmshift logs in with keys only and never types a password: install a key with `ssh-copy-id {target}` or load yours with `ssh-add` (or name it with keyfile=PATH in the URI), and test with `ssh -o BatchMode=yes {target} true` (ssh said: {said})"
        );
    }
    if lower.contains("could not resolve hostname") || lower.contains("name or service not known") {
        return format!(
            "cannot resolve the host name {}; fix the name in the URI {uri} (ssh said: {said})",
            p.host
        );
    }
    if lower.contains("connection refused")
        || lower.contains("connection timed out")
        || lower.contains("no route to host")
        || lower.contains("network is unreachable")
    {
        return format!(
            "cannot reach sshd on {}{}; check that the node is up and sshd runs there (ssh said: {said})",
            p.host,
            p.port.map_or(String::new(), |n| format!(" port {n}"))
        );
    }
    format!("cannot connect to {uri}: {said}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_uris_get_no_tty_once() {
        assert_eq!(
            batch_uri("qemu+ssh://root@hv1/system"),
            "qemu+ssh://root@hv1/system?no_tty=1"
        );
        assert_eq!(
            batch_uri("qemu+ssh://root@hv1/system?keyfile=/k"),
            "qemu+ssh://root@hv1/system?keyfile=/k&no_tty=1"
        );
        assert_eq!(
            batch_uri("qemu+ssh://hv1/system?no_tty=0"),
            "qemu+ssh://hv1/system?no_tty=0",
            "the operator's own choice stays"
        );
        assert_eq!(batch_uri("qemu:///system"), "qemu:///system");
        assert_eq!(batch_uri("qemu+tcp://hv1/system"), "qemu+tcp://hv1/system");
        assert_eq!(batch_uri("test:///default"), "test:///default");
    }

    #[test]
    fn uri_parts() {
        assert_eq!(
            parts("qemu+ssh://admin@10.0.0.5:2222/system?no_tty=1"),
            UriParts {
                transport: "ssh".into(),
                user: Some("admin".into()),
                host: "10.0.0.5".into(),
                port: Some(2222),
            }
        );
        let p = parts("qemu+ssh://hv1/system");
        assert_eq!((p.user, p.host.as_str(), p.port), (None, "hv1", None));
    }

    #[test]
    fn an_unknown_host_key_says_the_ssh_line_that_accepts_it() {
        let uri = "qemu+ssh://root@127.0.0.1:2222/system?no_tty=1";
        let e = explain(
            uri,
            "End of file while reading data: Host key verification failed.: Input/output error",
        );
        assert!(
            e.contains("`ssh -o StrictHostKeyChecking=accept-new -p 2222 root@127.0.0.1 true`"),
            "{e}"
        );
        assert!(e.contains("Host key verification failed"), "{e}");
    }

    #[test]
    fn a_changed_host_key_is_not_accepted_blindly() {
        let e = explain(
            "qemu+ssh://root@hv1:2200/system",
            "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@ … Host key verification failed.",
        );
        assert!(e.contains("CHANGED"), "{e}");
        assert!(e.contains("ssh-keygen -R '[hv1]:2200'"), "{e}");
    }

    #[test]
    fn a_refused_key_or_password_prompt_says_how_to_install_a_key() {
        let e = explain(
            "qemu+ssh://root@hv1/system",
            "End of file while reading data: root@hv1: Permission denied (publickey,password).: Input/output error",
        );
        assert!(e.contains("`ssh-copy-id root@hv1`"), "{e}");
        assert!(e.contains("never types a password"), "{e}");
    }

    #[test]
    fn other_failures_keep_libvirts_words() {
        let e = explain("qemu+tcp://hv1/system", "unable to connect to server");
        assert_eq!(
            e,
            "cannot connect to qemu+tcp://hv1/system: unable to connect to server"
        );
        let e = explain(
            "qemu+ssh://hv9/system",
            "ssh: Could not resolve hostname hv9: Name or service not known",
        );
        assert!(e.starts_with("cannot resolve the host name hv9"), "{e}");
        let e = explain(
            "qemu+ssh://hv1:2222/system",
            "ssh: connect to host hv1 port 2222: Connection refused",
        );
        assert!(e.contains("sshd on hv1 port 2222"), "{e}");
    }
}
