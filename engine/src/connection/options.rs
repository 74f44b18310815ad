//! The options of Ansible's `ssh` and `local` connection plugins, as ansible-core 2.19 documents
//! them (`ansible-doc -t connection -j ssh local`): the variables, then the environment
//! variables, that set each one, and its default. The `config` lookup reads them
//! (`lookup('config', 'ssh_transfer_method', plugin_type='connection', plugin_name='ssh')`);
//! ansible.cfg's keys reach it as these environment variables (settle hands the file's
//! settings on so).

/// One option of a connection plugin.
#[derive(Debug)]
pub struct ConnectionOption {
    pub plugin: &'static str,
    pub name: &'static str,
    /// Later entries win, as in Ansible's config manager.
    pub vars: &'static [&'static str],
    pub env: &'static [&'static str],
    /// The documented default, as JSON.
    pub default: &'static str,
    /// The documented type (`bool`, `int`, `string`, `list`, ...).
    pub kind: &'static str,
}

impl ConnectionOption {
    /// The documented default.
    pub fn default_value(&self) -> serde_json::Value {
        serde_json::from_str(self.default).unwrap_or(serde_json::Value::Null)
    }

    /// A value from the environment (text), as the option's type.
    pub fn typed(&self, text: &str) -> serde_json::Value {
        use serde_json::Value;
        match self.kind {
            "bool" | "boolean" => Value::Bool(matches!(
                text.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on" | "y" | "t"
            )),
            "int" | "integer" => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(text.to_string())),
            "list" => Value::Array(
                text.split(',')
                    .map(|s| Value::String(s.trim().to_string()))
                    .filter(|v| v.as_str() != Some(""))
                    .collect(),
            ),
            _ => Value::String(text.to_string()),
        }
    }
}

/// Whether `plugin` (short or `ansible.builtin.`/`ansible.legacy.` name) is one whose options
/// this table holds.
pub fn documented(plugin: &str) -> Option<&'static str> {
    let short = plugin
        .strip_prefix("ansible.builtin.")
        .or_else(|| plugin.strip_prefix("ansible.legacy."))
        .unwrap_or(plugin);
    OPTIONS.iter().find(|o| o.plugin == short).map(|o| o.plugin)
}

/// The option `name` of the connection plugin `plugin`.
pub fn find(plugin: &str, name: &str) -> Option<&'static ConnectionOption> {
    let plugin = documented(plugin)?;
    OPTIONS
        .iter()
        .find(|o| o.plugin == plugin && o.name == name)
}

#[rustfmt::skip]
pub static OPTIONS: &[ConnectionOption] = &[
    ConnectionOption { plugin: "local", name: "become_strip_preamble", vars: &["ansible_local_become_strip_preamble"], env: &[], default: "true", kind: "bool" },
    ConnectionOption { plugin: "local", name: "become_success_timeout", vars: &["ansible_local_become_success_timeout"], env: &[], default: "10", kind: "int" },
    ConnectionOption { plugin: "local", name: "pipelining", vars: &["ansible_pipelining"], env: &["ANSIBLE_PIPELINING"], default: "false", kind: "boolean" },
    ConnectionOption { plugin: "ssh", name: "control_path", vars: &["ansible_control_path"], env: &["ANSIBLE_SSH_CONTROL_PATH"], default: "null", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "control_path_dir", vars: &["ansible_control_path_dir"], env: &["ANSIBLE_SSH_CONTROL_PATH_DIR"], default: "\"~/.ansible/cp\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "host", vars: &["inventory_hostname", "ansible_host", "ansible_ssh_host", "delegated_vars['ansible_host']", "delegated_vars['ansible_ssh_host']"], env: &[], default: "\"inventory_hostname\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "host_key_checking", vars: &["ansible_host_key_checking", "ansible_ssh_host_key_checking"], env: &["ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_HOST_KEY_CHECKING"], default: "true", kind: "boolean" },
    ConnectionOption { plugin: "ssh", name: "password", vars: &["ansible_password", "ansible_ssh_pass", "ansible_ssh_password"], env: &[], default: "null", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "password_mechanism", vars: &["ansible_ssh_password_mechanism"], env: &["ANSIBLE_SSH_PASSWORD_MECHANISM"], default: "\"ssh_askpass\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "pipelining", vars: &["ansible_pipelining", "ansible_ssh_pipelining"], env: &["ANSIBLE_PIPELINING", "ANSIBLE_SSH_PIPELINING"], default: "false", kind: "boolean" },
    ConnectionOption { plugin: "ssh", name: "pkcs11_provider", vars: &["ansible_ssh_pkcs11_provider"], env: &["ANSIBLE_PKCS11_PROVIDER"], default: "\"\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "port", vars: &["ansible_port", "ansible_ssh_port"], env: &["ANSIBLE_REMOTE_PORT"], default: "null", kind: "int" },
    ConnectionOption { plugin: "ssh", name: "private_key", vars: &["ansible_private_key", "ansible_ssh_private_key"], env: &["ANSIBLE_PRIVATE_KEY"], default: "null", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "private_key_file", vars: &["ansible_private_key_file", "ansible_ssh_private_key_file"], env: &["ANSIBLE_PRIVATE_KEY_FILE"], default: "null", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "private_key_passphrase", vars: &["ansible_private_key_passphrase", "ansible_ssh_private_key_passphrase"], env: &["ANSIBLE_PRIVATE_KEY_PASSPHRASE"], default: "null", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "reconnection_retries", vars: &["ansible_ssh_retries"], env: &["ANSIBLE_SSH_RETRIES"], default: "0", kind: "integer" },
    ConnectionOption { plugin: "ssh", name: "remote_user", vars: &["ansible_user", "ansible_ssh_user"], env: &["ANSIBLE_REMOTE_USER"], default: "null", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "scp_executable", vars: &["ansible_scp_executable"], env: &["ANSIBLE_SCP_EXECUTABLE"], default: "\"scp\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "scp_extra_args", vars: &["ansible_scp_extra_args"], env: &["ANSIBLE_SCP_EXTRA_ARGS"], default: "\"\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "sftp_batch_mode", vars: &["ansible_sftp_batch_mode"], env: &["ANSIBLE_SFTP_BATCH_MODE"], default: "true", kind: "bool" },
    ConnectionOption { plugin: "ssh", name: "sftp_executable", vars: &["ansible_sftp_executable"], env: &["ANSIBLE_SFTP_EXECUTABLE"], default: "\"sftp\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "sftp_extra_args", vars: &["ansible_sftp_extra_args"], env: &["ANSIBLE_SFTP_EXTRA_ARGS"], default: "\"\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "ssh_args", vars: &["ansible_ssh_args"], env: &["ANSIBLE_SSH_ARGS"], default: "\"-C -o ControlMaster=auto -o ControlPersist=60s\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "ssh_common_args", vars: &["ansible_ssh_common_args"], env: &["ANSIBLE_SSH_COMMON_ARGS"], default: "\"\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "ssh_executable", vars: &["ansible_ssh_executable"], env: &["ANSIBLE_SSH_EXECUTABLE"], default: "\"ssh\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "ssh_extra_args", vars: &["ansible_ssh_extra_args"], env: &["ANSIBLE_SSH_EXTRA_ARGS"], default: "\"\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "ssh_transfer_method", vars: &["ansible_ssh_transfer_method"], env: &["ANSIBLE_SSH_TRANSFER_METHOD"], default: "\"smart\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "sshpass_prompt", vars: &["ansible_sshpass_prompt"], env: &["ANSIBLE_SSHPASS_PROMPT"], default: "\"\"", kind: "string" },
    ConnectionOption { plugin: "ssh", name: "timeout", vars: &["ansible_ssh_timeout"], env: &["ANSIBLE_TIMEOUT", "ANSIBLE_SSH_TIMEOUT"], default: "10", kind: "integer" },
    ConnectionOption { plugin: "ssh", name: "use_tty", vars: &["ansible_ssh_use_tty"], env: &["ANSIBLE_SSH_USETTY"], default: "true", kind: "bool" },
    ConnectionOption { plugin: "ssh", name: "verbosity", vars: &["ansible_ssh_verbosity"], env: &["ANSIBLE_SSH_VERBOSITY"], default: "0", kind: "int" },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_options_are_ansibles() {
        let transfer = find("ssh", "ssh_transfer_method").unwrap();
        assert_eq!(transfer.vars, &["ansible_ssh_transfer_method"]);
        assert_eq!(transfer.env, &["ANSIBLE_SSH_TRANSFER_METHOD"]);
        assert_eq!(transfer.default_value(), serde_json::json!("smart"));
        assert!(find("ansible.builtin.ssh", "ssh_common_args").is_some());
        assert!(find("ssh", "nope").is_none());
        assert!(find("paramiko_ssh", "port").is_none());
    }

    #[test]
    fn local_options_are_typed() {
        let timeout = find("local", "become_success_timeout").unwrap();
        assert_eq!(timeout.default_value(), serde_json::json!(10));
        assert_eq!(timeout.typed("5"), serde_json::json!(5));
        let pipelining = find("local", "pipelining").unwrap();
        assert_eq!(pipelining.typed("yes"), serde_json::json!(true));
    }
}
