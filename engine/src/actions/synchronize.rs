//! `ansible.posix.synchronize`: rsync between the controller and the task's host, over the SSH
//! settings settle uses for that host (address, port, user, key). rsync runs on the controller,
//! or on the delegate with `delegate_to` (through the `command` module there); with the local
//! connection, or delegated to the host itself, it copies within one machine.
//!
//! As Ansible's module: changed when rsync's `--out-format` lists anything, check mode is
//! `--dry-run`, and `--diff` shows that list (`%i %n%L`, the itemized changes).

use serde_json::{Map, Value, json};
use settle_modules::{ContentDiff, Plan};

use super::{ActionContext, ActionResult, Reach, call, done, failed, rendered_args};
use crate::connection::expand_home;
use crate::filters::text::shell_quote;
use crate::template::{OMIT, json_bool, templar};
use crate::value_text;

/// Every argument of Ansible's module.
pub(super) const ARGS: &[&str] = &[
    "src",
    "dest",
    "dest_port",
    "mode",
    "archive",
    "checksum",
    "compress",
    "existing_only",
    "delete",
    "dirs",
    "recursive",
    "links",
    "copy_links",
    "perms",
    "times",
    "owner",
    "group",
    "rsync_path",
    "rsync_timeout",
    "set_remote_user",
    "use_ssh_args",
    "ssh_connection_multiplexing",
    "rsync_opts",
    "partial",
    "verify_host",
    "private_key",
    "link_dest",
    "delay_updates",
];

/// What rsync prints before each line of `--out-format`: a line with it is a change.
const CHANGED_MARKER: &str = "<<CHANGED>>";

/// Ansible's default `ssh_args` (ansible.cfg's `[ssh_connection]`), for `use_ssh_args`.
const ANSIBLE_SSH_ARGS: &str = "-C -o ControlMaster=auto -o ControlPersist=60s";

pub(super) fn synchronize(ctx: &ActionContext) -> Result<ActionResult, String> {
    let args = rendered_args(ctx, &[])?;
    let reach = ctx.reach;
    let flag =
        |key: &str| -> Option<bool> { args.get(key).filter(|v| !v.is_null()).map(json_bool) };
    let text = |key: &str| -> Option<String> {
        args.get(key)
            .filter(|v| !v.is_null())
            .map(value_text)
            .filter(|s| !s.is_empty())
    };
    let (Some(src), Some(dest)) = (text("src"), text("dest")) else {
        return Ok(failed(
            "synchronize requires both src and dest parameters are set",
        ));
    };
    let pull = match text("mode").as_deref() {
        None | Some("push") => false,
        Some("pull") => true,
        Some(other) => {
            return Ok(failed(format!(
                "value of mode must be one of: pull, push, got: {other}"
            )));
        }
    };
    let var = |name: &str| -> Option<String> {
        ctx.scope
            .get(name)
            .ok()
            .flatten()
            .filter(|v| !v.is_null())
            .map(|v| value_text(&v))
            .filter(|s| !s.is_empty())
    };
    if var("ansible_password")
        .or(var("ansible_ssh_pass"))
        .is_some()
    {
        return Ok(failed(
            "synchronize: the host logs in with a password (ansible_password), which rsync \
             cannot give; use a key",
        ));
    }
    // Delegated to the host itself (which settle's executor treats as not delegated), rsync
    // runs there, between two of its own folders, as in Ansible.
    let delegate_to = reach.delegate_to.clone().or_else(|| {
        let written = ctx.task.keywords.delegate_to.as_ref()?;
        templar()
            .render_text(&value_text(written), ctx.scope)
            .ok()
            .filter(|name| name != OMIT)
    });
    // rsync runs on the controller, unless delegated to a host reached over SSH.
    let runs_locally = delegate_to.is_none() || reach.exec.transport == "local";
    let host_ids = [var("inventory_hostname"), Some(reach.host.address.clone())];
    // Whether rsync runs on the machine whose files it changes (no SSH at all).
    let dest_is_local = match &delegate_to {
        None => reach.host.transport == "local",
        Some(to) => host_ids.iter().flatten().any(|id| id == to),
    };

    let mut cmd: Vec<String> = vec![var("ansible_rsync_path").unwrap_or_else(|| "rsync".into())];
    let on = |key: &str, default: bool| flag(key).unwrap_or(default);
    if on("delay_updates", true) {
        cmd.extend(["--delay-updates".into(), "-F".into()]);
    }
    if on("compress", true) {
        cmd.push("--compress".into());
    }
    if let Some(t) = text("rsync_timeout").filter(|t| t != "0") {
        cmd.push(format!("--timeout={t}"));
    }
    if ctx.check_mode {
        cmd.push("--dry-run".into());
    }
    for (key, option) in [
        ("delete", "--delete-after"),
        ("existing_only", "--existing"),
        ("checksum", "--checksum"),
        ("copy_links", "--copy-links"),
    ] {
        if on(key, false) {
            cmd.push(option.into());
        }
    }
    // With archive, the flags it implies are turned off one by one; without, turned on.
    let archive = on("archive", true);
    if archive {
        cmd.push("--archive".into());
    }
    for key in ["recursive", "links", "perms", "times", "owner", "group"] {
        match (archive, flag(key)) {
            (true, Some(false)) => cmd.push(format!("--no-{key}")),
            (false, Some(true)) => cmd.push(format!("--{key}")),
            _ => {}
        }
    }
    if on("dirs", false) {
        cmd.push("--dirs".into());
    }

    let rsync_opts: Vec<String> = match args.get("rsync_opts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(other) => vec![value_text(other)],
    };

    // The host's side of the copy: `user@address:path`, unless rsync runs there.
    let (src, dest) = if dest_is_local {
        (local_path(ctx, &src), local_path(ctx, &dest))
    } else {
        let user = if on("set_remote_user", true) {
            reach.host.user.clone()
        } else {
            None
        };
        let remote = |path: &str| remote_path(&reach.host.address, path, user.as_deref());
        if !rsync_opts.iter().any(|o| o.contains("--rsh")) {
            cmd.push(format!("--rsh={}", ssh_command(ctx, reach, &args, &flag)?));
        }
        if pull {
            (remote(&src), local_path(ctx, &dest))
        } else {
            (local_path(ctx, &src), remote(&dest))
        }
    };

    // become on the host: rsync there runs through sudo, as Ansible's action sets it up.
    let rsync_path = text("rsync_path").or_else(|| match (&reach.become_, dest_is_local) {
        (Some(b), false) if b.method == crate::connection::BecomeMethod::Sudo => {
            Some(if b.user.is_empty() {
                "sudo rsync".into()
            } else {
                format!("sudo -u {} rsync", b.user)
            })
        }
        _ => None,
    });
    if let Some(path) = rsync_path {
        cmd.push(format!("--rsync-path={path}"));
    }
    let mut warnings = Vec::new();
    if rsync_opts.iter().any(String::is_empty) {
        warnings.push(
            "The empty string is present in rsync_opts which will cause rsync to transfer the \
             current working directory. If this is intended, use \".\" instead to get rid of \
             this warning. If this is unintended, check for problems in your playbook leading \
             to empty string in rsync_opts.",
        );
    }
    cmd.extend(rsync_opts);
    if on("partial", false) {
        cmd.push("--partial".into());
    }
    let link_dest: Vec<String> = match args.get("link_dest") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(one) => vec![value_text(one)],
    };
    if !link_dest.is_empty() {
        // -vv: rsync does not count a new hard link as a change otherwise.
        cmd.extend(["-H".into(), "-vv".into()]);
        for path in &link_dest {
            cmd.push(format!("--link-dest={}", expand_home(path)));
        }
    }
    cmd.push(format!("--out-format={CHANGED_MARKER}%i %n%L"));
    cmd.push(src);
    cmd.push(dest);
    // rsync and ssh by their full paths on the machine that runs them, as the module's
    // `get_bin_path` finds them (known here only when that is this one).
    if runs_locally {
        if let Some(path) = full_path(&cmd[0]) {
            cmd[0] = path;
        }
        for word in cmd.iter_mut() {
            if let Some(rest) = word.strip_prefix("--rsh=ssh ")
                && let Some(ssh) = full_path("ssh")
            {
                *word = format!("--rsh={} {rest}", shell_quote(&ssh));
            }
        }
    }
    let shown = shown_command(&cmd);

    let (rc, stdout, stderr) = if runs_locally {
        run_here(&cmd)?
    } else {
        match run_there(ctx, &cmd)? {
            Ok(ran) => ran,
            Err(other) => return Ok(other),
        }
    };
    if rc != 0 {
        return Ok(done(json!({
            "changed": false,
            "failed": true,
            "msg": stderr,
            "rc": rc,
            "cmd": shown,
        })));
    }
    let changed = if link_dest.is_empty() {
        stdout.contains(CHANGED_MARKER)
    } else {
        // A leading dot says nothing changed.
        !stdout.contains(&format!("{CHANGED_MARKER}."))
    };
    let clean = stdout.replace(CHANGED_MARKER, "");
    let lines: Vec<&str> = clean.split('\n').filter(|l| !l.is_empty()).collect();
    let mut result = json!({
        "changed": changed,
        "failed": false,
        "msg": clean,
        "rc": 0,
        "cmd": shown,
        "stdout_lines": lines,
    });
    if !warnings.is_empty() {
        result["warnings"] = json!(warnings);
    }
    let mut plan = Plan::default();
    if ctx.diff {
        result["diff"] = json!({"prepared": clean});
        if changed {
            plan.content.push(ContentDiff {
                path: String::new(),
                before: None,
                after: None,
                summary: Some(clean.clone()),
            });
        }
    }
    Ok(ActionResult::Done(
        result.as_object().cloned().unwrap_or_default(),
        plan,
    ))
}

/// A path on the machine rsync runs on: relative ones are looked up in the role's and play's
/// `files` folders as Ansible's action does, keeping a trailing `/` (it means "the contents").
fn local_path(ctx: &ActionContext, path: &str) -> String {
    if path.contains(':') || path.starts_with('/') {
        return path.to_string();
    }
    if path.starts_with('~') {
        return expand_home(path);
    }
    let dirs = settle_playbooks::search_paths("files", ctx.task.role.as_deref(), ctx.play_dir);
    let found = dirs
        .iter()
        .map(|d| d.join(path))
        .find(|p| p.exists())
        .unwrap_or_else(|| ctx.play_dir.join(path));
    let found = std::path::absolute(&found).unwrap_or(found);
    let mut found = found.display().to_string();
    if path.ends_with('/') && !found.ends_with('/') {
        found.push('/');
    }
    found
}

/// `user@host:path`, with brackets for an IPv6 address; a path naming its own host is kept.
fn remote_path(host: &str, path: &str, user: Option<&str>) -> String {
    if path.starts_with("rsync://") {
        return path.to_string();
    }
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    if host.contains(':') {
        return format!("[{user}{host}]:{path}");
    }
    if !path.contains(':') {
        format!("{user}{host}:{path}")
    } else if !path.contains('@') {
        format!("{user}{path}")
    } else {
        path.to_string()
    }
}

/// The ssh command rsync runs (its `--rsh`), as Ansible's module builds it: no multiplexing,
/// the key, the port, and no host key checking unless `verify_host`. With `verify_host`,
/// settle's own checking applies: its policy and the known_hosts file its ssh options name.
fn ssh_command(
    ctx: &ActionContext,
    reach: &Reach,
    args: &crate::Vars,
    flag: &dyn Fn(&str) -> Option<bool>,
) -> Result<String, String> {
    let mut ssh: Vec<String> = vec!["ssh".into()];
    if !flag("ssh_connection_multiplexing").unwrap_or(false) {
        ssh.extend(["-S".into(), "none".into()]);
    }
    let key = args
        .get("private_key")
        .filter(|v| !v.is_null())
        .map(value_text)
        .or(reach.host.private_key_file.clone());
    if let Some(key) = key {
        ssh.extend(["-i".into(), expand_home(&key)]);
    }
    let port = args
        .get("dest_port")
        .filter(|v| !v.is_null())
        .map(value_text)
        .or(reach.host.port.map(|p| p.to_string()));
    if let Some(port) = port {
        ssh.extend(["-o".into(), format!("Port={port}")]);
    }
    let ssh_args = std::env::var("ANSIBLE_SSH_ARGS").unwrap_or_else(|_| ANSIBLE_SSH_ARGS.into());
    let common = reach.host.ssh_common_args.clone().unwrap_or_default();
    let extra = ctx
        .scope
        .get("ansible_ssh_extra_args")
        .ok()
        .flatten()
        .map(|v| value_text(&v))
        .unwrap_or_default();
    if flag("verify_host").unwrap_or(false) {
        use crate::connection::HostKeyPolicy;
        let policy = match crate::connection::host_key_policy() {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Off => "no",
        };
        ssh.extend(["-o".into(), format!("StrictHostKeyChecking={policy}")]);
        if let Some(file) = known_hosts_file(&format!("{ssh_args} {common}")) {
            ssh.extend(["-o".into(), format!("UserKnownHostsFile={file}")]);
        }
    } else {
        ssh.extend([
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
        ]);
    }
    let mut text = ssh
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ");
    if flag("use_ssh_args").unwrap_or(false) {
        for more in [ssh_args, common, extra] {
            if !more.trim().is_empty() {
                text.push(' ');
                text.push_str(more.trim());
            }
        }
    }
    Ok(text)
}

/// The `UserKnownHostsFile` named in ssh options, if any.
fn known_hosts_file(options: &str) -> Option<String> {
    let words = shell_words::split(options).ok()?;
    let mut found = None;
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        let option = match word.strip_prefix("-o") {
            Some("") => iter.next().map(String::as_str),
            Some(rest) => Some(rest),
            None => None,
        };
        if let Some((k, v)) = option.and_then(|o| o.split_once(['=', ' ']))
            && k.trim().eq_ignore_ascii_case("UserKnownHostsFile")
        {
            found = Some(expand_home(v.trim()));
        }
    }
    found
}

/// rsync on the controller.
/// The command as the module puts it together and shows it: the values of `--rsh`,
/// `--rsync-path` and `--out-format`, and the two paths, quoted for a shell; the other words as
/// they are.
fn shown_command(cmd: &[String]) -> String {
    let paths = cmd.len().saturating_sub(2);
    cmd.iter()
        .enumerate()
        .map(|(n, word)| {
            if n >= paths {
                return shell_quote(word);
            }
            for option in ["--rsh=", "--rsync-path=", "--out-format="] {
                if let Some(value) = word.strip_prefix(option) {
                    return format!("{option}{}", shell_quote(value));
                }
            }
            word.clone()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A program's full path as Ansible's `get_bin_path` finds it (`PATH`, then the sbin
/// folders); a name with a `/` is taken as it is.
fn full_path(name: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return None;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .chain(["/sbin", "/usr/sbin", "/usr/local/sbin"])
        .map(|dir| std::path::Path::new(dir).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|p| p.display().to_string())
}

fn run_here(cmd: &[String]) -> Result<(i64, String, String), String> {
    let out = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("synchronize: cannot run {}: {e}", cmd[0]))?;
    Ok((
        out.status.code().map_or(-1, i64::from),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// rsync on the delegate (or the host itself), through the `command` module there: it runs
/// in check mode too, since `--dry-run` is what keeps it from changing anything.
fn run_there(
    ctx: &ActionContext,
    cmd: &[String],
) -> Result<Result<(i64, String, String), ActionResult>, String> {
    let mut args = Map::new();
    args.insert("argv".into(), json!(cmd));
    args.insert("strip_empty_ends".into(), false.into());
    let real = ActionContext {
        check_mode: false,
        diff: false,
        environment: ctx.environment.clone(),
        ..*ctx
    };
    match call(&real, settle_modules::Request::new("command", args))? {
        ActionResult::Done(result, _) => {
            let get = |k: &str| result.get(k).map(value_text).unwrap_or_default();
            let rc = result.get("rc").and_then(Value::as_i64);
            match rc {
                Some(rc) => Ok(Ok((rc, get("stdout"), get("stderr")))),
                None => Ok(Err(ActionResult::Done(result, Plan::default()))),
            }
        }
        other => Ok(Err(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_name_the_user_and_bracket_ipv6() {
        assert_eq!(
            remote_path("10.0.0.5", "/srv", Some("root")),
            "root@10.0.0.5:/srv"
        );
        assert_eq!(
            remote_path("fe80::1", "/srv", Some("u")),
            "[u@fe80::1]:/srv"
        );
        assert_eq!(remote_path("h", "/srv", None), "h:/srv");
        // A path that names its own host keeps it.
        assert_eq!(remote_path("h", "other:/srv", Some("u")), "u@other:/srv");
        assert_eq!(
            remote_path("h", "rsync://mirror/x", Some("u")),
            "rsync://mirror/x"
        );
    }

    #[test]
    fn the_known_hosts_file_comes_from_the_ssh_options() {
        assert_eq!(
            known_hosts_file("-C -o UserKnownHostsFile=/k -o ControlPersist=60s").as_deref(),
            Some("/k")
        );
        assert_eq!(
            known_hosts_file("-oUserKnownHostsFile=/a -o 'userknownhostsfile /b'").as_deref(),
            Some("/b")
        );
        assert_eq!(known_hosts_file("-o ControlMaster=auto"), None);
    }
}
