//! Ansible action plugins of a playbook's `action_plugins/` folder that reach a real test host:
//! ansible-core's worker on the controller connects with Ansible's own ssh connection plugin,
//! given the address, port, user, key and ssh arguments settle would use.

mod common;

use common::hosts::test_hosts;

const WHOAMI_ACTION: &str = r#"from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        res = self._low_level_execute_command('echo "$(id -un)@$(hostname)"')
        result.update(changed=False, who=res['stdout'].strip(),
                      check=self._play_context.check_mode, connection=self._connection.transport)
        return result
"#;

#[test]
fn an_action_plugin_reaches_the_host_through_settles_connection_settings() {
    let Some(python) = common::ansible_core_python() else {
        return;
    };
    let hosts = test_hosts();
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write("action_plugins/whoami.py", WHOAMI_ACTION);
    s.write(
        "site.yml",
        &format!(
            "\
- hosts: {host}
  gather_facts: false
  tasks:
    - whoami:
      register: r
    - assert:
        that:
          - r.connection == 'ssh'
    - debug: var=r.who
    - debug: var=r.check
"
        ),
    );
    let hostname = hosts.ssh(host, "hostname").trim().to_string();
    for (args, check) in [(&[][..], false), (&["--check"][..], true)] {
        let mut all = vec!["site.yml", "-i", "inv"];
        all.extend_from_slice(args);
        let run = s.settle_with_env(&all, &[("SETTLE_ANSIBLE_PYTHON", &python)]);
        run.assert_code(0);
        assert!(
            run.stdout
                .contains(&format!("\"r.who\": \"root@{hostname}\"")),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!("\"r.check\": {check}")),
            "{}",
            run.stdout
        );
    }
}
