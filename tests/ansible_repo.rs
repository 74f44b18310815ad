//! An Ansible repository laid out as users lay them out runs under settle unchanged, with the
//! same recap and the same files as under the real ansible-playbook 2.19: `ansible.cfg`
//! naming the inventory, the roles path and the vault password file; an inventory folder
//! with an INI file and an inventory script, `group_vars/` (one of them a folder with a
//! vaulted file) and `host_vars/`; roles with defaults, vars, handlers, templates and a
//! dependency, and one installed by `ansible-galaxy` from a `requirements.yml` into
//! `~/.ansible/roles`; `site.yml` importing one playbook per tier. Everything runs on the
//! local connection, each tool in its own copy with its own home folder.
//! Skipped (with a note) when the real Ansible is not installed (tests/compat/install).

use std::collections::BTreeMap;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SECRET: &str = "hunter2-from-vault";

const FILES: &[(&str, &str)] = &[
    (
        "ansible.cfg",
        "[defaults]\ninventory = inventory\nroles_path = vendor/roles:~/.ansible/roles\n\
         vault_password_file = .vault_pass\nretry_files_enabled = False\n\
         interpreter_python = /usr/bin/python3\n",
    ),
    (".vault_pass", "s3cret-pass\n"),
    (
        "inventory/hosts.ini",
        "[web]\nweb1\nweb2 http_port=8081\n\n[db]\ndb1\n\n[prod:children]\nweb\ndb\n\n\
         [all:vars]\nansible_connection=local\n",
    ),
    (
        "inventory/group_vars/all/main.yml",
        "out: \"{{ playbook_dir }}/out/{{ inventory_hostname }}\"\nadmin_email: ops@example.com\n\
         db_password: \"{{ vault_db_password }}\"\n",
    ),
    // Encrypted with the real ansible-vault before the runs.
    (
        "inventory/group_vars/all/vault.yml",
        "vault_db_password: hunter2-from-vault\n",
    ),
    (
        "inventory/group_vars/web.yml",
        "motd_banner: Welcome to the web tier\n",
    ),
    ("inventory/host_vars/db1.yml", "db_port: 5433\n"),
    // Run as Ansible runs an executable inventory file: `--list`, with `_meta.hostvars`.
    (
        "inventory/zz-dynamic.py*",
        "#!/usr/bin/env python3\nimport json, sys\n\
         if sys.argv[1:] == ['--list']:\n    print(json.dumps({'db': {'hosts': ['db1'], 'vars': {'backup_hour': 3}},\n\
         \x20                     '_meta': {'hostvars': {'db1': {'datacenter': 'eu-1'}}}}))\n\
         else:\n    print('{}')\n",
    ),
    // The role the galaxy installs, packed by the test.
    (
        "galaxy/ntp/tasks/main.yml",
        "- name: Configure time from the galaxy role\n  copy:\n    content: \"server pool.ntp.org\\n# {{ datacenter }}, backups at {{ backup_hour }}\\n\"\n    dest: \"{{ out }}/etc/ntp.conf\"\n    mode: \"0644\"\n",
    ),
    (
        "galaxy/ntp/meta/main.yml",
        "galaxy_info: {author: ops, description: time, license: MIT, min_ansible_version: '2.9'}\ndependencies: []\n",
    ),
    (
        "vendor/roles/common/defaults/main.yml",
        "motd_banner: Welcome\npackages_wanted: [curl, vim]\n",
    ),
    (
        "vendor/roles/common/tasks/main.yml",
        "- name: Make the host's folder\n  file:\n    path: \"{{ out }}/etc\"\n    state: directory\n    mode: \"0755\"\n\n\
         - name: Write the message of the day\n  template:\n    src: motd.j2\n    dest: \"{{ out }}/etc/motd\"\n    mode: \"0644\"\n  notify: note motd\n\n\
         - name: List the packages wanted\n  lineinfile:\n    path: \"{{ out }}/etc/packages\"\n    line: \"{{ item }}\"\n    create: true\n    mode: \"0644\"\n  loop: \"{{ packages_wanted }}\"\n",
    ),
    (
        "vendor/roles/common/templates/motd.j2",
        "{{ motd_banner }} ({{ inventory_hostname }})\n{% for g in group_names %}\nmember of {{ g }}\n{% endfor %}\nContact: {{ admin_email }}\n",
    ),
    (
        "vendor/roles/common/handlers/main.yml",
        "- name: note motd\n  copy:\n    content: \"motd changed on {{ inventory_hostname }}\\n\"\n    dest: \"{{ out }}/motd.changed\"\n    mode: \"0644\"\n",
    ),
    (
        "vendor/roles/web/meta/main.yml",
        "dependencies:\n  - role: common\n",
    ),
    (
        "vendor/roles/web/defaults/main.yml",
        "http_port: 80\nserver_name: \"{{ inventory_hostname }}.example.com\"\n",
    ),
    (
        "vendor/roles/web/tasks/main.yml",
        "- name: Configure the web server\n  template:\n    src: site.conf.j2\n    dest: \"{{ out }}/etc/site.conf\"\n    mode: \"0640\"\n  notify: reload web\n\n\
         - name: Skip what is not for this host\n  debug:\n    msg: \"only on web2\"\n  when: inventory_hostname == 'web2'\n",
    ),
    (
        "vendor/roles/web/templates/site.conf.j2",
        "server {\n    listen {{ http_port }};\n    server_name {{ server_name }};\n}\n",
    ),
    (
        "vendor/roles/web/handlers/main.yml",
        "- name: reload web\n  copy:\n    content: \"reloaded for port {{ http_port }}\\n\"\n    dest: \"{{ out }}/web.reloaded\"\n    mode: \"0644\"\n",
    ),
    ("vendor/roles/db/vars/main.yml", "db_name: app\n"),
    (
        "vendor/roles/db/tasks/main.yml",
        "- name: Write the database settings\n  copy:\n    content: |\n      name={{ db_name }}\n      port={{ db_port | default(5432) }}\n      password={{ db_password }}\n    dest: \"{{ out }}/etc/db.conf\"\n    mode: \"0600\"\n  no_log: true\n",
    ),
    (
        "site.yml",
        "- import_playbook: playbooks/webservers.yml\n- import_playbook: playbooks/dbservers.yml\n",
    ),
    (
        "playbooks/webservers.yml",
        "- name: Web servers\n  hosts: web\n  roles:\n    - web\n",
    ),
    (
        "playbooks/dbservers.yml",
        "- name: Database servers\n  hosts: db\n  roles:\n    - common\n    - role: db\n    - acme.ntp\n  tasks:\n\
         \x20   - name: Record the facts we use\n      copy:\n        content: \"{{ ansible_facts['system'] }}\\n\"\n        dest: \"{{ out }}/system\"\n        mode: \"0644\"\n",
    ),
];

/// Writes the repository into `dir`, its vault file encrypted by the real ansible-vault,
/// and installs its galaxy role with the real ansible-galaxy into `dir/home`, the home
/// folder its runs get.
fn write_repo(dir: &Path, bin: &Path) {
    for (name, text) in FILES {
        let (name, executable) = match name.strip_suffix('*') {
            Some(name) => (name, true),
            None => (*name, false),
        };
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        if executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let packed = Command::new("tar")
        .arg("-czf")
        .arg(dir.join("ntp.tar.gz"))
        .arg("-C")
        .arg(dir.join("galaxy"))
        .arg("ntp")
        .status()
        .unwrap();
    assert!(packed.success());
    std::fs::write(
        dir.join("requirements.yml"),
        format!(
            "- src: file://{}/ntp.tar.gz\n  name: acme.ntp\n",
            dir.display()
        ),
    )
    .unwrap();
    let installed = tool(bin.join("ansible-galaxy"), dir)
        .args(["install", "-r", "requirements.yml", "-p"])
        .arg(dir.join("home/.ansible/roles"))
        .output()
        .unwrap();
    assert!(installed.status.success(), "{installed:?}");
    assert!(
        dir.join("home/.ansible/roles/acme.ntp/tasks/main.yml")
            .is_file()
    );
    std::fs::set_permissions(
        dir.join(".vault_pass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = tool(bin.join("ansible-vault"), dir)
        .args(["encrypt", "inventory/group_vars/all/vault.yml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let vaulted = std::fs::read_to_string(dir.join("inventory/group_vars/all/vault.yml")).unwrap();
    assert!(vaulted.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
}

/// A command run in the repository with none of the caller's Ansible settings: only the
/// repository's ansible.cfg speaks.
fn tool(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("HOME", dir.join("home"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("ANSIBLE_") || name.starts_with("SETTLE_INVENTORY") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs a playbook tool and returns its output, which must be a success.
fn converge(mut cmd: Command, args: &[&str]) -> String {
    let out = cmd.args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `PLAY RECAP` lines of a run's output (settle's `-v` summary after them left out).
fn recap(output: &str) -> String {
    let start = output
        .find("PLAY RECAP")
        .unwrap_or_else(|| panic!("no recap in\n{output}"));
    output[start..]
        .lines()
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every file the runs made, by relative path: its mode and content.
fn files(dir: &Path) -> BTreeMap<String, (u32, String)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.join("playbooks/out")];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                pending.push(path.clone());
                found.insert(
                    format!("{name}/"),
                    (meta.permissions().mode() & 0o7777, String::new()),
                );
            } else {
                let content = std::fs::read_to_string(&path).unwrap();
                found.insert(name, (meta.permissions().mode() & 0o7777, content));
            }
        }
    }
    found
}

#[test]
fn ansible_repository_runs_unchanged_with_the_same_recap_and_files() {
    let Some(bin) =
        common::ansible_tool("ansible-playbook").and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return;
    };
    let theirs = tempfile::tempdir().unwrap();
    let ours = tempfile::tempdir().unwrap();
    write_repo(theirs.path(), &bin);
    write_repo(ours.path(), &bin);

    let ansible = || tool(bin.join("ansible-playbook"), theirs.path());
    let settle = || tool(env!("CARGO_BIN_EXE_settle"), ours.path());
    let first_theirs = converge(ansible(), &["site.yml"]);
    let first_ours = converge(settle(), &["site.yml"]);
    assert_eq!(recap(&first_ours), recap(&first_theirs), "{first_ours}");
    assert!(first_ours.contains("changed=7"), "{first_ours}");
    assert_eq!(files(ours.path()), files(theirs.path()));
    let db = &files(ours.path())["playbooks/out/db1/etc/db.conf"];
    assert_eq!(
        db,
        &(0o600, format!("name=app\nport=5433\npassword={SECRET}\n"))
    );

    // Converged: a dry run predicts nothing and passes the drift gate, a second run changes
    // nothing, as Ansible's second run.
    let dry = converge(settle(), &["site.yml", "--check", "--fail-on-change"]);
    assert!(!dry.contains("changed=1"), "{dry}");
    let second_theirs = converge(ansible(), &["site.yml"]);
    let second_ours = converge(settle(), &["site.yml", "-v"]);
    assert_eq!(recap(&second_ours), recap(&second_theirs), "{second_ours}");
    assert_eq!(files(ours.path()), files(theirs.path()));

    // The vaulted value reached the file and nothing else, even with -v.
    for output in [&first_ours, &dry, &second_ours] {
        assert!(!output.contains(SECRET), "{output}");
    }
}

#[test]
fn a_role_in_the_default_roles_path_is_found_without_any_setting() {
    // Where `ansible-galaxy install` puts roles when nothing says otherwise.
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("home/.ansible/roles/acme.hello/tasks");
    std::fs::create_dir_all(&role).unwrap();
    std::fs::write(
        role.join("main.yml"),
        "- copy: {content: \"hello\\n\", dest: \"{{ playbook_dir }}/hello\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("play.yml"),
        "- hosts: localhost\n  gather_facts: false\n  roles: [acme.hello]\n",
    )
    .unwrap();
    let out = tool(env!("CARGO_BIN_EXE_settle"), dir.path())
        .env_remove("SETTLE_ROLES_PATH")
        .arg("play.yml")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello")).unwrap(),
        "hello\n"
    );
}
