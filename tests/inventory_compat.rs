//! `settle inventory --list`/`--graph` print what ansible-inventory 2.19 prints for the same
//! sources, byte for byte: INI, YAML, TOML, an executable script, `constructed` plugin files and a
//! folder mixing them. Skipped (with a note) when the real ansible-inventory is not installed
//! (tests/compat/install puts it in the compat cache; scripts/test runs it first).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Standard output of one run, failing the test when the command fails.
fn stdout_of(mut cmd: Command, dir: &Path) -> String {
    let out = cmd
        .current_dir(dir)
        .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
        .env_remove("ANSIBLE_INVENTORY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes the files (a name ending in `*` is made executable) and compares each view.
fn compare(files: &[(&str, &str)], sources: &[&str], views: &[&[&str]]) {
    compare_with(files, sources, views, &[]);
}

/// [`compare`], with these environment variables set for both commands.
fn compare_with(files: &[(&str, &str)], sources: &[&str], views: &[&[&str]], env: &[(&str, &str)]) {
    let Some(real) = common::ansible_tool("ansible-inventory") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let (name, executable) = match name.strip_suffix('*') {
            Some(n) => (n, true),
            None => (*name, false),
        };
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        if executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    for view in views {
        let mut args: Vec<&str> = Vec::new();
        for source in sources {
            args.extend(["-i", source]);
        }
        args.extend(view.iter());
        let mut ours = Command::new(env!("CARGO_BIN_EXE_settle"));
        ours.arg("inventory").args(&args).envs(env.iter().copied());
        let mut theirs = Command::new(&real);
        theirs.args(&args).envs(env.iter().copied());
        assert_eq!(
            stdout_of(ours, dir.path()),
            stdout_of(theirs, dir.path()),
            "ansible-inventory {}",
            args.join(" ")
        );
    }
}

const VIEWS: &[&[&str]] = &[
    &["--list"],
    &["--list", "--export"],
    &["--graph"],
    &["--graph", "--vars"],
];

#[test]
fn ini_with_ungrouped_and_typed_values() {
    compare(
        &[(
            "hosts",
            "loner x=1\n[web]\nw1 a=True b=[1,2] c='s' d=1j\nw2\n[db]\nd1 é=\"ü\"\n[empty]\n\
             [db:vars]\nport=5432\n[all:vars]\ny=set()\n[prod:children]\nweb\n",
        )],
        &["hosts"],
        VIEWS,
    );
}

#[test]
fn yaml_with_empty_groups_and_group_vars() {
    compare(
        &[
            (
                "inv.yml",
                "all:\n  children:\n    kids:\n      hosts:\n        a: {x: 1}\n        b:\n      \
                 vars: {v: true}\n    cousins:\n      children:\n        redheads:\n          \
                 hosts:\n  hosts:\n    top:\n",
            ),
            ("group_vars/kids.yml", "gv: 1\n"),
            ("host_vars/a.yml", "hv: 2\n"),
        ],
        &["inv.yml"],
        VIEWS,
    );
}

#[test]
fn script_constructed_and_a_folder_mixing_sources() {
    compare(
        &[
            (
                "inv/01-script.sh*",
                "#!/bin/sh\necho '{\"web\": {\"hosts\": [\"w1\", \"w2\"], \"vars\": {\"role\": \"web\"}}, \
                 \"_meta\": {\"hostvars\": {\"w1\": {\"zone\": \"eu-1\", \"tags\": {\"env\": \"prod\"}}}}}'\n",
            ),
            ("inv/02-static.ini", "[db]\nd1 zone=us-2\n"),
            (
                "inv/03-constructed.yml",
                "plugin: ansible.builtin.constructed\nstrict: false\ncompose:\n  upper_zone: zone | upper\n\
                 groups:\n  europe: zone is defined and zone.startswith('eu')\n\
                 keyed_groups:\n  - key: zone\n    prefix: zone\n  - key: tags\n    parent_group: tagged\n",
            ),
            ("inv/04-other.yml", "plugin: some.collection.unknown\n"),
        ],
        &["inv"],
        VIEWS,
    );
}

#[test]
fn generator_plugin_files_make_hosts_and_nested_groups_from_layers() {
    compare(
        &[(
            "generator.yml",
            "plugin: ansible.builtin.generator\nhosts:\n  name: \"{{ op }}_{{ app }}_{{ env }}_runner\"\n\
             \x20 parents:\n    - name: \"{{ op }}_{{ app }}\"\n      parents:\n\
             \x20       - name: \"{{ op }}\"\n        - name: \"{{ app }}\"\n\
             \x20         vars: {app: \"{{ app }}\", later: [\"{{ play_var }}\"], n: 3}\n\
             \x20   - name: runner\nlayers:\n  op: [build, launch]\n  env: [dev, prod]\n  app: [web, api]\n",
        )],
        &["generator.yml"],
        VIEWS,
    );
}

#[test]
fn host_lists_take_ports_and_with_advanced_host_list_ranges() {
    let list = "web1:2222,[::1]:22,[::2],db[1:3],x[a:c]:2200,local[1:],";
    compare(&[], &[list], VIEWS);
    compare_with(
        &[],
        &[list],
        VIEWS,
        &[("ANSIBLE_INVENTORY_ENABLED", "advanced_host_list")],
    );
}

#[test]
fn toml_as_the_toml_plugin_reads_it() {
    // Ansible's documented examples, with what else TOML has: dotted and inline tables, host
    // ranges and ports, typed values, a folder mixing TOML with INI and group_vars.
    compare(
        &[
            (
                "inv/hosts.toml",
                "[all.vars]\nhas_java = false\nday = 1979-05-27\nat = 07:32:00.25\nbig = 1e300\n\
                 mixed = [1, \"two\", { three = 3.0 }]\n\n\
                 [web]\nchildren = [\n    \"apache\",\n    \"nginx\"\n]\nvars = { http_port = 8080, myvar = 23 }\n\n\
                 [web.hosts]\nhost1 = {}\nhost2 = { ansible_port = 222 }\n\"www[01:03].example.com\" = { x = 1 }\n\
                 \"h5:2222\" = { ansible_host = \"127.0.0.1\" }\n\n\
                 [apache.hosts.tomcat1]\n[apache.hosts.tomcat2]\nmyvar = 34\n\n\
                 [nginx.hosts]\njenkins1 = {}\n\n[nginx.vars]\nhas_java = true\n\n\
                 [ungrouped.hosts]\nlone = { ansible_host = \"127.0.0.1\", ansible_port = 44 }\n\n\
                 [g1.hosts]\nhost4 = {}\n[g2.hosts]\nhost4 = {}\n[empty]\n",
            ),
            ("inv/more.ini", "[g1]\nhost5\n[web:children]\ng1\n"),
            ("inv/group_vars/nginx.yml", "from_group_vars: 1\n"),
        ],
        &["inv"],
        VIEWS,
    );
}

#[test]
fn toml_dates_are_shown_as_ansible_shows_them_in_json() {
    // Python's datetimes print with a space and serialise with a `T`; settle keeps the JSON
    // form (the one `to_json` and `--list` show), so `--graph --vars` is not compared here.
    compare(
        &[(
            "dates.toml",
            "[all.vars]\nwhen = 1979-05-27T07:32:00Z\nlocal = 1979-05-27T07:32:00.999999\n\
             off = 1979-05-27T00:32:00-07:30\nday = 1979-05-27\nat = 07:32:00\n\
             [web.hosts.h1]\n",
        )],
        &["dates.toml"],
        &[&["--list"], &["--list", "--export"]],
    );
}

#[test]
fn a_source_that_cannot_be_read_is_a_warning_and_the_rest_is_shown() {
    // ansible-inventory warns and shows the rest, with what a failed file gave before its
    // error; `1234:` is an integer, which Ansible refuses as a host name (its inventory_yaml
    // target).
    compare(
        &[
            ("inv/a.ini", "[web]\nw1\n"),
            (
                "inv/b.yml",
                "all:\n  children:\n    kids:\n      hosts:\n        1234: {}\n",
            ),
            ("inv/c.yml", "all:\n  hosts:\n    '1234':\n"),
            ("inv/d.toml", "[db.hosts]\nd1 = {}\n[db]\nvars = 1\n"),
        ],
        &["inv"],
        &[&["--list"], &["--graph"]],
    );
}

#[test]
fn ansible_cfg_can_make_an_unreadable_source_fatal() {
    // `[inventory] any_unparsed_is_failed` (or unparsed_is_failed, when nothing could be read)
    // turns the warning into an error: the same exit code and no listing, as ansible-inventory.
    let Some(real) = common::ansible_tool("ansible-inventory") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inv")).unwrap();
    std::fs::write(dir.path().join("inv/a.ini"), "[web]\nw1\n").unwrap();
    std::fs::write(dir.path().join("inv/b.yml"), "all: [broken\n").unwrap();
    let code = |program: &Path, pre: &[&str], cfg: &str, sources: &[&str]| {
        std::fs::write(dir.path().join("ansible.cfg"), cfg).unwrap();
        let mut cmd = Command::new(program);
        cmd.args(pre);
        for source in sources {
            cmd.args(["-i", source]);
        }
        let out = cmd
            .arg("--list")
            .current_dir(dir.path())
            .env_remove("ANSIBLE_INVENTORY")
            .env_remove("ANSIBLE_CONFIG")
            .output()
            .unwrap();
        (out.status.code(), out.stdout.is_empty())
    };
    let ours = Path::new(env!("CARGO_BIN_EXE_settle"));
    for (cfg, sources) in [
        ("[inventory]\nany_unparsed_is_failed = true\n", &["inv"][..]),
        (
            "[inventory]\nany_unparsed_is_failed = false\n",
            &["inv"][..],
        ),
        (
            "[inventory]\nunparsed_is_failed = true\n",
            &["inv/b.yml"][..],
        ),
        (
            "[inventory]\nunparsed_is_failed = false\n",
            &["inv/b.yml"][..],
        ),
    ] {
        assert_eq!(
            code(ours, &["inventory"], cfg, sources),
            code(&real, &[], cfg, sources),
            "{cfg}"
        );
    }
}

#[test]
fn yaml_and_toml_views_nest_and_flatten_groups_as_ansible_inventory_does() {
    // A host in several groups (its variables only where it is first met), a group reached on
    // two paths (a diamond), ungrouped hosts, group variables with --export. Group variables
    // are scalars here: PyYAML writes a list or mapping shared by several hosts as one anchor
    // (`&id001`) and aliases, which settle does not copy.
    compare(
        &[(
            "hosts",
            "loner x=1 l='[1, \"two\"]'\n[web]\nw1 a=True m='{\"k\": \"v\", \"n\": 2}'\nw2 s='a\"b'\n\
             [db]\nd1\nw1\n[db:vars]\nport=5432\n[prod:children]\nweb\ndb\n\
             [eu:children]\ndb\n[all:vars]\ny=1.5\nz='tab\there'\n",
        )],
        &["hosts"],
        &[
            &["--list", "--yaml"],
            &["--list", "--yaml", "--export"],
            &["--list", "--toml"],
            &["--list", "--toml", "--export"],
            &["--host", "w1", "--yaml"],
            &["--host", "w1", "--toml"],
            &["--list", "--toml", "--limit", "web"],
        ],
    );
}

#[test]
fn a_group_cycle_is_a_warning_and_the_run_goes_on_without_its_source_as_in_ansible() {
    // A group that is its own child, and two groups each the other's: as every Ansible command,
    // settle refuses such a source with a warning and goes on with the others, for a run as
    // for `settle inventory`.
    let files: &[(&str, &str)] = &[
        ("self.ini", "[a:children]\na\n[a]\nh1\n"),
        ("pair.ini", "[a:children]\nb\n[b:children]\na\n[a]\nh2\n"),
        ("good.ini", "[web]\nw1 ansible_connection=local\n"),
    ];
    let sources = &["self.ini", "pair.ini", "good.ini"];
    compare(files, sources, &[&["--graph"], &["--list"]]);

    let Some(real) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: msg=ran\n",
    )
    .unwrap();
    let run = |program: &Path| {
        let mut cmd = Command::new(program);
        for source in sources {
            cmd.args(["-i", source]);
        }
        let out = cmd
            .arg("site.yml")
            .current_dir(dir.path())
            .env_remove("ANSIBLE_INVENTORY")
            .env_remove("ANSIBLE_CONFIG")
            .env("ANSIBLE_NOCOLOR", "1")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ours, theirs) = (run(Path::new(env!("CARGO_BIN_EXE_settle"))), run(&real));
    assert_eq!(ours.0, theirs.0, "exit codes:\n{ours:?}\n{theirs:?}");
    for (code, stdout, stderr) in [&ours, &theirs] {
        assert_eq!(*code, Some(0), "{stdout}\n{stderr}");
        assert!(stdout.contains("ok: [w1]"), "{stdout}");
        assert!(
            !stdout.contains("[h1]") && !stdout.contains("[h2]"),
            "{stdout}"
        );
        for words in [
            "can't add group to itself",
            "creates a recursive dependency loop.",
            "Unable to parse",
        ] {
            assert!(stderr.contains(words), "{words}:\n{stderr}");
        }
    }
}

#[test]
fn no_inventory_or_an_empty_one_is_warned_of_as_ansible_playbook_warns() {
    // Only the implicit localhost: both notes on standard error, line for line, unless
    // ansible.cfg turns them off.
    let Some(real) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.ini"), "[web]\n").unwrap();
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: msg=ran\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("quiet.cfg"),
        "[defaults]\nlocalhost_warning = False\n[inventory]\ninventory_unparsed_warning = False\n",
    )
    .unwrap();
    let run = |program: &Path, args: &[&str], config: Option<&str>| {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg("site.yml")
            .current_dir(dir.path())
            .env_remove("ANSIBLE_INVENTORY")
            .env_remove("SETTLE_INVENTORY")
            .env_remove("ANSIBLE_CONFIG")
            .env("ANSIBLE_NOCOLOR", "1");
        if let Some(config) = config {
            cmd.env("ANSIBLE_CONFIG", dir.path().join(config));
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let settle = Path::new(env!("CARGO_BIN_EXE_settle"));
    for args in [&[][..], &["-i", "empty.ini"], &["-i", "missing.ini"]] {
        let theirs = run(&real, args, None);
        assert!(theirs.contains("provided hosts list is empty"), "{theirs}");
        assert_eq!(run(settle, args, None), theirs, "{args:?}");
        assert_eq!(
            run(settle, args, Some("quiet.cfg")),
            run(&real, args, Some("quiet.cfg"))
        );
    }
}

#[test]
fn group_names_that_are_not_variable_names_are_kept_or_replaced_as_ansible_does() {
    // TRANSFORM_INVALID_GROUP_CHARS in each of its four words, from the environment and from
    // ansible.cfg's force_valid_group_names: the same warning (or none) and the same groups, in
    // INI and YAML inventories; a word Ansible does not know is its options error.
    let Some(real) = common::ansible_tool("ansible-playbook") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.ini"),
        "[web-servers]\nw1 ansible_connection=local\n[2fast]\nw1\nw2 ansible_connection=local\n[2fast:vars]\nspeed=2\n",
    )
    .unwrap();
    // An INI `:children` line names the group as written: with `always` there is no such group
    // any more, and the file cannot be read.
    std::fs::write(
        dir.path().join("children.ini"),
        "[web-servers]\nw1 ansible_connection=local\n[2fast:children]\nweb-servers\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hosts.yml"),
        "all:\n  children:\n    db.main:\n      hosts:\n        d1: {ansible_connection: local}\n      children:\n        db-replicas:\n          hosts:\n            d2: {ansible_connection: local}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: {msg: \"{{ group_names }} {{ groups | dict2items | map(attribute='key') | sort }} {{ speed | default('-') }}\"}\n",
    )
    .unwrap();
    let settle = Path::new(env!("CARGO_BIN_EXE_settle"));
    let run = |program: &Path, inventory: &str, setting: Option<&str>, from_file: bool| {
        let mut cmd = Command::new(program);
        cmd.args(["-f", "1", "-i", inventory, "site.yml"])
            .current_dir(dir.path())
            .env_remove("ANSIBLE_CONFIG")
            .env_remove("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS")
            .env("ANSIBLE_NOCOLOR", "1");
        match (setting, from_file) {
            (Some(word), true) => {
                let cfg = dir.path().join(format!("{word}.cfg"));
                std::fs::write(
                    &cfg,
                    format!("[defaults]\nforce_valid_group_names = {word}\n"),
                )
                .unwrap();
                cmd.env("ANSIBLE_CONFIG", cfg);
            }
            (Some(word), false) => {
                cmd.env("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS", word);
            }
            (None, _) => {}
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for inventory in ["hosts.ini", "hosts.yml"] {
        for setting in [
            None,
            Some("never"),
            Some("always"),
            Some("ignore"),
            Some("silently"),
        ] {
            for from_file in [false, true] {
                let theirs = run(&real, inventory, setting, from_file);
                assert_eq!(theirs.0, Some(0), "{inventory} {setting:?}: {theirs:?}");
                assert_eq!(
                    run(settle, inventory, setting, from_file),
                    theirs,
                    "{inventory} {setting:?} from ansible.cfg: {from_file}"
                );
            }
        }
    }
    let theirs = run(&real, "children.ini", Some("always"), false);
    let ours = run(settle, "children.ini", Some("always"), false);
    assert_eq!((&ours.0, &ours.1), (&theirs.0, &theirs.1));
    for words in [
        "[WARNING]: Invalid characters were found in group names and automatically replaced",
        "Section [_fast:children] includes undefined group 'web-servers'.",
        "[WARNING]: No inventory was parsed, only implicit localhost is available",
    ] {
        assert!(theirs.2.contains(words), "{}", theirs.2);
        assert!(ours.2.contains(words), "{}", ours.2);
    }
    assert_eq!(ours.2.lines().next(), theirs.2.lines().next());
    let theirs = run(&real, "hosts.ini", Some("bogus"), false);
    let ours = run(settle, "hosts.ini", Some("bogus"), false);
    assert_eq!((ours.0, theirs.0), (Some(5), Some(5)));
    assert!(
        ours.2.contains(
            "Invalid value 'bogus' for config 'TRANSFORM_INVALID_GROUP_CHARS'. Valid values are: \
             always, never, ignore, silently"
        ),
        "{}",
        ours.2
    );
}
