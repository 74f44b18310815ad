//! Where a task runs and as whom: `delegate_to` (with the delegate's variables), the connection
//! target from `ansible_*` variables, `become`, and the task's `environment`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use settle_playbooks::Task;

use super::results::ItemResult;
use super::{PlayRun, bool_of, type_name, value_text};
use crate::RunOptions;
use crate::Vars;
use crate::connection::{Become, BecomeMethod, Password, Target};
use crate::hosts::HostState;
use crate::template::{Layer, OMIT, Scope, json_bool, templar};

/// The variables of an `environment:` keyword (a mapping, or a list of them, the later
/// winning). As Ansible does, a value that is omitted is left out, and so is one that cannot
/// be rendered for want of `ansible_env` (facts not gathered yet).
pub(crate) fn environment_of(
    entries: &[Value],
    scope: &Arc<Scope>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    // Each item with whether it was rendered already (then its values are data).
    let mut items: VecDeque<(Value, bool)> = entries.iter().map(|e| (e.clone(), false)).collect();
    while let Some((item, rendered)) = items.pop_front() {
        let item = match item {
            Value::Object(_) | Value::Array(_) => item,
            _ if rendered => item,
            other => match render_env(&other, scope)? {
                Some(v) => {
                    items.push_front((v, true));
                    continue;
                }
                None => continue,
            },
        };
        match item {
            Value::Array(list) => list
                .into_iter()
                .rev()
                .for_each(|i| items.push_front((i, rendered))),
            Value::Object(map) => {
                for (k, v) in map {
                    let v = if rendered {
                        Some(v)
                    } else {
                        render_env(&v, scope)?
                    };
                    match v {
                        Some(Value::String(s)) if s == OMIT => {}
                        Some(v) => {
                            env.insert(k, value_text(&v));
                        }
                        None => {}
                    }
                }
            }
            Value::Null => {}
            Value::String(s) if s == OMIT => {}
            other => {
                return Err(format!(
                    "environment must be a mapping, got {}",
                    type_name(&other)
                ));
            }
        }
    }
    Ok(env)
}

/// One value of `environment:` rendered; `None` when it needs `ansible_env` that is not there.
fn render_env(value: &Value, scope: &Arc<Scope>) -> Result<Option<Value>, String> {
    match templar().render(value, scope) {
        Ok(v) => Ok(Some(v)),
        Err(e)
            if e.undefined_message().is_some()
                && (e.message.contains("ansible_env")
                    || e.message.contains("ansible_facts.env")) =>
        {
            Ok(None)
        }
        Err(e) => Err(format!("environment: {}", e.message)),
    }
}

pub(super) fn become_of(
    task: &Task,
    scope: &Arc<Scope>,
    opts: &RunOptions,
) -> Result<Option<Become>, String> {
    // The first of these variables that is set, as Ansible's become plugins read their options.
    // Ansible's connection variables win over keywords: a task's `ansible_become_user` beats the
    // `become_user` of its role or play.
    let var = |names: &[&str]| -> Result<Option<Value>, String> {
        for name in names {
            if let Some(v) = scope.get(name).map_err(|e| e.message)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    let keyword = |v: Option<&Value>| -> Result<Option<String>, String> {
        v.map(|v| {
            Ok(value_text(
                &templar().render(v, scope).map_err(|e| e.message)?,
            ))
        })
        .transpose()
    };
    let wanted = match var(&["ansible_become"])? {
        Some(v) => json_bool(&v),
        None => bool_of("become", task.keywords.become_.as_deref(), scope)?.unwrap_or(opts.become_),
    };
    if !wanted {
        return Ok(None);
    }
    let method_name = match var(&["ansible_become_method"])? {
        Some(m) => value_text(&m),
        None => match &task.keywords.become_method {
            Some(m) => keyword(Some(&Value::String(m.clone())))?.unwrap_or_default(),
            None => opts.become_method.clone().unwrap_or_else(|| "sudo".into()),
        },
    };
    let method = BecomeMethod::parse(&method_name).ok_or_else(|| {
        format!("become_method {method_name:?} is not supported; settle becomes with sudo or su")
    })?;
    let m = method.name();
    // Unset, null and empty all mean "the default", as for Ansible's options.
    let text = |v: Option<Value>| v.filter(|v| !v.is_null()).map(|v| value_text(&v));
    let user = match var(&["ansible_become_user", &format!("ansible_{m}_user")])? {
        Some(u) => value_text(&u),
        None => match keyword(task.keywords.become_user.as_deref())? {
            Some(u) => u,
            None => opts.become_user.clone().unwrap_or_else(|| "root".into()),
        },
    };
    let exe = match text(var(&["ansible_become_exe", &format!("ansible_{m}_exe")])?) {
        Some(e) => Some(e),
        None => keyword(task.keywords.become_exe.as_deref())?.or(opts.become_exe.clone()),
    };
    let flags = match text(var(&[
        "ansible_become_flags",
        &format!("ansible_{m}_flags"),
    ])?) {
        Some(f) => Some(f),
        None => keyword(task.keywords.become_flags.as_deref())?.or(opts.become_flags.clone()),
    };
    let password = text(var(&[
        "ansible_become_password",
        "ansible_become_pass",
        &format!("ansible_{m}_password"),
        &format!("ansible_{m}_pass"),
    ])?)
    .or(opts.become_password.clone())
    .filter(|p| !p.is_empty());
    let prompts = match (method, var(&["ansible_su_prompt_l10n"])?) {
        (BecomeMethod::Su, Some(Value::Array(words))) => words.iter().map(value_text).collect(),
        (BecomeMethod::Su, Some(Value::String(words))) => words
            .split(',')
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    let chdir = match method {
        BecomeMethod::Sudo => text(var(&["ansible_sudo_chdir"])?).filter(|d| !d.is_empty()),
        BecomeMethod::Su => None,
    };
    let timeout_secs = match text(var(&["ansible_local_become_success_timeout"])?) {
        Some(t) => match t.trim().parse::<u64>() {
            Ok(t) if t >= 1 => t,
            _ => 10,
        },
        None => 10,
    };
    let pipelining = match var(&["ansible_pipelining"])? {
        Some(v) => json_bool(&v),
        None => crate::template::env_flag("ANSIBLE_PIPELINING"),
    };
    let strip_preamble = match var(&["ansible_local_become_strip_preamble"])? {
        Some(v) if !v.is_null() => json_bool(&v),
        _ => true,
    };
    Ok(Some(Become {
        user,
        method,
        exe,
        flags,
        password,
        prompts,
        chdir,
        timeout_secs,
        pipelining,
        strip_preamble,
    }))
}

/// How Ansible shows a delegated task's host after the arrow: `db1`, with the address when the
/// delegate's `ansible_host` is not its name: `db1(10.0.0.5)`.
pub(super) fn delegate_label(to: &str, delegate_scope: &Arc<Scope>) -> String {
    match delegate_scope
        .get("ansible_host")
        .ok()
        .flatten()
        .map(|a| value_text(&a))
    {
        Some(address) if address != to => format!("{to}({address})"),
        _ => to.to_string(),
    }
}

/// How to reach a host, from its variables (`ansible_connection`, `ansible_host`, …).
/// `keyword` is the `connection` keyword, `remote_user` the rendered `remote_user` keyword: the
/// host's variables win over both, and both over the command line's.
pub(super) fn target_of(
    scope: &Arc<Scope>,
    opts: &RunOptions,
    keyword: &Option<String>,
    remote_user: Option<String>,
) -> Result<Target, String> {
    let get = |name: &str| -> Result<Option<String>, String> {
        Ok(scope
            .get(name)
            .map_err(|e| e.message)?
            .map(|v| value_text(&v)))
    };
    let host = get("inventory_hostname")?.unwrap_or_default();
    let transport = match get("ansible_connection")? {
        Some(c) => c,
        None => keyword
            .clone()
            .or(opts.connection.clone())
            .unwrap_or_else(|| "smart".into()),
    };
    let port = match get("ansible_port")?.or(get("ansible_ssh_port")?) {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("ansible_port {p:?} is not a port number"))?,
        ),
        None => None,
    };
    // The ssh plugin's `timeout` (`ansible_ssh_timeout`), else the run's.
    let timeout_secs = match get("ansible_ssh_timeout")? {
        Some(t) if transport != "local" => t
            .trim()
            .parse()
            .map_err(|_| format!("ansible_ssh_timeout {t:?} is not a number of seconds"))?,
        _ => opts.timeout,
    };
    Ok(Target {
        transport,
        // Of the two, ansible_ssh_host wins, as in the ssh plugin (and `ansible_host` is the
        // inventory name when nothing sets it).
        address: get("ansible_ssh_host")?
            .or(get("ansible_host")?)
            .unwrap_or(host),
        port,
        user: get("ansible_user")?
            .or(get("ansible_ssh_user")?)
            .or(remote_user)
            .or(opts.remote_user.clone()),
        private_key_file: get("ansible_ssh_private_key_file")?
            .or(get("ansible_private_key_file")?)
            .or(opts.private_key_file.clone()),
        ssh_common_args: get("ansible_ssh_common_args")?,
        ssh_args: get("ansible_ssh_args")?,
        timeout_secs,
        // The ssh plugin's `password`, else -k's.
        password: get("ansible_ssh_password")?
            .or(get("ansible_ssh_pass")?)
            .or(get("ansible_password")?)
            .filter(|p| !p.is_empty())
            .or(opts.connection_password.clone())
            .map(Password),
        ssh_verbosity: match get("ansible_ssh_verbosity")?
            .or_else(|| std::env::var("ANSIBLE_SSH_VERBOSITY").ok())
        {
            Some(v) => v
                .trim()
                .parse::<u8>()
                .map_err(|_| format!("ansible_ssh_verbosity {v:?} is not a number from 0 to 3"))?
                .min(3),
            None => 0,
        },
    })
}

/// The `remote_user` keyword (the task's, else its play's), rendered in `scope`; `omit` and
/// an empty value are as if it were not there.
pub(super) fn remote_user_of(
    keyword: Option<&Value>,
    scope: &Arc<Scope>,
) -> Result<Option<String>, String> {
    let Some(keyword) = keyword else {
        return Ok(None);
    };
    let user = templar()
        .render(keyword, scope)
        .map_err(|e| format!("remote_user: {}", e.message))?;
    Ok(match user {
        Value::Null => None,
        user => Some(value_text(&user)).filter(|u| !u.is_empty() && u != crate::template::OMIT),
    })
}

impl PlayRun<'_> {
    /// One module call (or controller action) with `until`, `changed_when` and `failed_when`.
    pub(super) fn run_one(
        &self,
        host: &str,
        state: &HostState,
        task: &Task,
        scope: &Arc<Scope>,
    ) -> ItemResult {
        // Where the module runs: this host, or the one named by delegate_to (with its variables).
        let delegate = match &task.keywords.delegate_to {
            None => None,
            Some(d) => match templar().render_text(&value_text(d), scope) {
                // `delegate_to: "{{ x | default(omit) }}"` delegates nowhere.
                Ok(name) if name == host || name == crate::template::OMIT => None,
                Ok(name) => {
                    let delegate_scope = self.engine.hosts.scope_of(&name);
                    Some((name, delegate_scope))
                }
                Err(e) => return ItemResult::failed(format!("delegate_to: {}", e.message)),
            },
        };
        // The task sees the delegate's connection variables as `ansible_delegated_vars`.
        let delegated_scope;
        let scope = match &delegate {
            Some((to, _)) => {
                let mut vars = Vars::clone(&self.engine.hosts.get(to).inventory_vars());
                vars.entry("ansible_host")
                    .or_insert_with(|| to.clone().into());
                // Ansible names the task's own host here, not the delegate.
                vars.insert("inventory_hostname".into(), host.into());
                let mut layer = Vars::new();
                layer.insert("ansible_delegated_vars".into(), json!({ to.clone(): vars }));
                delegated_scope = scope.with_layer_of(Layer::data(Arc::new(layer)));
                &delegated_scope
            }
            None => scope,
        };
        let mut r = self.run_here_or_delegated(host, state, task, scope, delegate.as_ref());
        if let Some((to, delegate_scope)) = &delegate {
            r.result.insert(
                "_ansible_delegated_label".into(),
                delegate_label(to, delegate_scope).into(),
            );
            if task.keywords.delegate_facts == Some(true) {
                r.result
                    .insert(DELEGATED_FACTS_HOST.into(), Value::String(to.clone()));
            }
        }
        r
    }
}

/// The result's note that its facts belong to the host it was delegated to (`delegate_facts`).
pub(super) const DELEGATED_FACTS_HOST: &str = "_settle_delegated_facts_host";
