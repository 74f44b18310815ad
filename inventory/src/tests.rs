use std::fs;

use serde_json::json;

use super::*;

fn inventory_from(files: &[(&str, &str)]) -> (tempfile::TempDir, Inventory) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let main = dir.path().join(files[0].0);
    let inventory = Inventory::load(&[main.to_str().unwrap()]).unwrap();
    (dir, inventory)
}

const INI: &str = "\
# comment
solo ansible_host=10.0.0.9

[web]
web[01:03].example.com ansible_user=deploy
[db]
db-[a:b] ansible_port=5432 flag=True name='two words'

[prod:children]
web
db

[prod:vars]
env=production
port=80
";

#[test]
fn ini_groups_children_and_ranges() {
    let (_d, inv) = inventory_from(&[("hosts", INI)]);
    assert_eq!(
        inv.group_hosts("web"),
        [
            "web01.example.com",
            "web02.example.com",
            "web03.example.com"
        ]
    );
    assert_eq!(inv.group_hosts("prod").len(), 5);
    assert_eq!(inv.group_hosts("ungrouped"), ["solo"]);
    assert_eq!(inv.select("all").unwrap().len(), 6);
}

#[test]
fn ini_inline_vars_and_group_vars_are_literals() {
    let (_d, inv) = inventory_from(&[("hosts", INI)]);
    let vars = inv.host_vars("db-a");
    assert_eq!(vars["ansible_port"], json!(5432));
    assert_eq!(vars["flag"], json!(true));
    assert_eq!(vars["name"], json!("two words"));
    // ansible-core 2.19 types [group:vars] values by literal evaluation too.
    assert_eq!(vars["port"], json!(80));
    assert_eq!(vars["env"], json!("production"));
}

#[test]
fn patterns_union_intersection_exclusion_glob_and_subscript() {
    let (_d, inv) = inventory_from(&[("hosts", INI)]);
    assert_eq!(inv.select("db:solo").unwrap(), ["db-a", "db-b", "solo"]);
    assert_eq!(inv.select("prod:&db").unwrap(), ["db-a", "db-b"]);
    assert_eq!(inv.select("prod:!web").unwrap(), ["db-a", "db-b"]);
    assert_eq!(inv.select("!web:prod").unwrap(), ["db-a", "db-b"]);
    assert_eq!(inv.select("web0*").unwrap().len(), 3);
    assert_eq!(inv.select("web[0]").unwrap(), ["web01.example.com"]);
    assert_eq!(
        inv.select("web[1:2]").unwrap(),
        ["web02.example.com", "web03.example.com"]
    );
    assert_eq!(inv.select("~db-.*").unwrap(), ["db-a", "db-b"]);
    assert_eq!(inv.select("nothing").unwrap(), Vec::<String>::new());
    assert_eq!(inv.select("db,solo").unwrap(), ["db-a", "db-b", "solo"]);
}

#[test]
fn implicit_localhost_is_not_in_all() {
    let (_d, inv) = inventory_from(&[("hosts", INI)]);
    assert_eq!(inv.select("localhost").unwrap(), ["localhost"]);
    assert!(
        !inv.select("all")
            .unwrap()
            .contains(&"localhost".to_string())
    );
    assert_eq!(
        inv.host_vars("localhost")["ansible_connection"],
        json!("local")
    );
}

#[test]
fn yaml_inventory_nesting() {
    let yaml = "\
all:
  vars: {greeting: hi}
  hosts:
    lone: {ansible_port: 2200}
  children:
    web:
      hosts:
        w[1:2]:
      vars: {tier: front}
      children:
        canary:
          hosts: {w1: {canary: yes}}
";
    let (_d, inv) = inventory_from(&[("inv.yml", yaml)]);
    assert_eq!(inv.select("web").unwrap(), ["w1", "w2"]);
    assert_eq!(inv.select("canary").unwrap(), ["w1"]);
    let vars = inv.host_vars("w1");
    assert_eq!(vars["tier"], json!("front"));
    assert_eq!(vars["canary"], json!(true));
    assert_eq!(vars["greeting"], json!("hi"));
    assert_eq!(inv.host_vars("lone")["ansible_port"], json!(2200));
}

#[test]
fn precedence_child_beats_parent_and_files_beat_inline_groups() {
    let (_d, inv) = inventory_from(&[
        (
            "hosts",
            "[parent:children]\nchild\n[child]\nh1 hostvar=inline\n[parent:vars]\nx=parent_inline\ny=parent_inline\n[child:vars]\nx=child_inline\n",
        ),
        ("group_vars/all.yml", "x: all_file\nz: all_file\n"),
        ("group_vars/parent.yml", "x: parent_file\n"),
        ("group_vars/child/main.yml", "x: child_file\n"),
        ("host_vars/h1.yml", "hostvar: file\n"),
    ]);
    let vars = inv.host_vars("h1");
    assert_eq!(vars["x"], json!("child_file"));
    // Inventory-file group vars rank below group_vars/all, even for a child group.
    assert_eq!(vars["y"], json!("parent_inline"));
    assert_eq!(vars["z"], json!("all_file"));
    assert_eq!(vars["hostvar"], json!("file"));
}

#[test]
fn playbook_group_vars_win_over_inventory_group_vars() {
    let (dir, mut inv) = inventory_from(&[
        ("inv/hosts", "[g]\nh\n"),
        ("inv/group_vars/g.yml", "a: inventory\nb: inventory\n"),
        ("play/group_vars/g.yml", "a: playbook\n"),
    ]);
    inv.add_playbook_vars_dir(&dir.path().join("play")).unwrap();
    let vars = inv.host_vars("h");
    assert_eq!(vars["a"], json!("playbook"));
    assert_eq!(vars["b"], json!("inventory"));
}

#[test]
fn comma_list_and_several_sources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, "[g]\na\n").unwrap();
    let inv = Inventory::load(&[path.to_str().unwrap(), "b,c,"]).unwrap();
    // Ansible lists `all` level by level from its children: `ungrouped` (b, c) before `g`.
    assert_eq!(inv.select("all").unwrap(), ["b", "c", "a"]);
}

#[test]
fn errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, "[g]\na\n[g:bogus]\n").unwrap();
    let err = Inventory::load(&[path.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("hosts:3: Section [g:bogus] has unknown type: bogus"),
        "{err}"
    );
}

#[test]
fn graph_and_list() {
    let (_d, inv) = inventory_from(&[("hosts", "lone\n[web]\nw1\n")]);
    assert_eq!(
        inv.to_graph("all"),
        "@all:\n  |--@ungrouped:\n  |  |--lone\n  |--@web:\n  |  |--w1\n"
    );
    let list = inv.to_list_json();
    assert_eq!(list["web"]["hosts"], json!(["w1"]));
    assert_eq!(list["all"]["children"], json!(["ungrouped", "web"]));
}

mod ansible;
mod plugins;

#[test]
fn toml_groups_hosts_children_and_typed_vars() {
    let (_d, inv) = inventory_from(&[(
        "hosts.toml",
        "[all.vars]\nwhen = 1979-05-27T07:32:00.5Z\n\n[web]\nchildren = [\"apache\"]\n\
         vars = { http_port = 8080 }\n\n[web.hosts]\n\"www[1:2]:2222\" = { x = 1.5 }\n\n\
         [apache.hosts.tomcat1]\nmyvar = [1, \"two\"]\n",
    )]);
    assert_eq!(inv.group_hosts("web"), ["www1", "www2", "tomcat1"]);
    let vars = inv.host_vars("www2");
    assert_eq!(vars["ansible_port"], json!(2222));
    assert_eq!(vars["x"], json!(1.5));
    assert_eq!(vars["http_port"], json!(8080));
    assert_eq!(vars["when"], json!("1979-05-27T07:32:00.500000+00:00"));
    assert_eq!(inv.host_vars("tomcat1")["myvar"], json!([1, "two"]));
}

#[test]
fn toml_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, text: &str| {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        Inventory::load(&[path.to_str().unwrap()])
            .unwrap_err()
            .to_string()
    };
    let error = load("broken.toml", "[web]\nh1\n");
    assert!(
        error.ends_with("broken.toml:2: TOML file is invalid: key with no value, expected `=`"),
        "{error}"
    );
    let error = load("vars.toml", "[web]\nhosts = {}\n\nvars = [1]\n");
    assert!(error.ends_with("vars.toml:4: Invalid \"vars\" entry for \"web\" group, requires a table, found an array instead."), "{error}");
    let error = load("host.toml", "[web.hosts]\na = {}\nb = 1\n");
    assert!(
        error.contains("host.toml:3: the variables of host \"b\""),
        "{error}"
    );
    assert!(load("empty.toml", "# nothing\n").ends_with("empty.toml:1: Parsed empty TOML file"));
}

#[test]
fn a_toml_looking_file_without_the_extension_is_not_toml() {
    // As Ansible: only `*.toml` is TOML; this is an INI file with a group named `web.hosts`.
    let (_d, inv) = inventory_from(&[("hosts", "[web.hosts]\nh1\n")]);
    assert_eq!(inv.group_hosts("web.hosts"), ["h1"]);
}

#[test]
fn yaml_host_names_written_as_numbers_are_refused_as_ansible_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let path = dir.path().join("inv.yml");
        fs::write(&path, text).unwrap();
        Inventory::load(&[path.to_str().unwrap()])
    };
    for text in [
        "all:\n  children:\n    kids:\n      hosts:\n        1234: {}\n",
        "all:\n  hosts: {web: {}, 1.5: {x: 1}}\n",
    ] {
        let error = load(text).unwrap_err().to_string();
        assert!(
            error.contains("must be a string. Enclose integers/floats in quotation marks."),
            "{error}"
        );
    }
    let error = load("all:\n  hosts:\n    ok:\n    1234:\n")
        .unwrap_err()
        .to_string();
    assert!(error.ends_with("inv.yml:4: Host pattern 1234 must be a string. Enclose integers/floats in quotation marks."), "{error}");
    for text in [
        "all:\n  hosts:\n    '1234': {}\n    \"1.5\":\n    web-1: {}\n",
        "all:\n  hosts: {'1234': {}, 10.0.0.1: {}, \"a: b\": {}}\n",
    ] {
        assert!(load(text).is_ok(), "{text}");
    }
}
