//! Expectations generated with ansible-core 2.19.14 (`ansible-inventory --list`/`--graph`,
//! `ansible --list-hosts`, `ansible-playbook --limit`) on the same inventories, checked in as
//! literals.

use std::fs;

use serde_json::json;

use super::super::*;

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Inventory, InventoryError>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let main = dir.path().join(files[0].0);
    let inventory = Inventory::load(&[main.to_str().unwrap()]);
    (dir, inventory)
}

fn ok(files: &[(&str, &str)]) -> (tempfile::TempDir, Inventory) {
    let (dir, inv) = load(files);
    (dir, inv.unwrap())
}

fn err(text: &str) -> String {
    let (_d, inv) = load(&[("hosts", text)]);
    let e = inv.unwrap_err().to_string();
    e.split_once("hosts:")
        .map_or(e.clone(), |(_, rest)| rest.to_string())
}

const TYPED: &str = r#"[g1]
h1 a=100 b=False c=[1,2] d="quoted" e=hello f=yes g=1.5 h=0644 i='x y' j={'k':1} k=None l=true m=0x1f n=1e3 o=-5 p=(1,2) q2=007 r=1_000 s="[1,2]" u='True' v=0b11 w=1. x2=a=b y2=#c
h2 z="{'k': 1}" z2='"a b"' z3=\'q\' z4="a\\b" z5=1#c

[g1:vars]
max_conn=100
debug=False
x=[1,2]
y="quoted"
z=hello
t=yes
fl=1.5
n=None
sq='single'
sp=a b c
d={"a": [1, 2]}
oct=0o17
e=
cm=8080 # comment
cs=hi # comment
tup=1,2
set={3}
ell=...
neg=- 3
cat='a' 'b'
"#;

#[test]
fn ini_values_are_typed_by_literal_evaluation() {
    let (_d, inv) = ok(&[("hosts", TYPED)]);
    let list = inv.to_list_json();
    let hostvars = &list["_meta"]["hostvars"];
    assert_eq!(
        hostvars["h1"],
        json!({"a": 100, "b": false, "c": [1, 2], "cat": "ab", "cm": 8080, "cs": "hi # comment",
            "d": "quoted", "debug": false, "e": "hello", "ell": "...", "f": "yes", "fl": 1.5,
            "g": 1.5, "h": "0644", "i": "x y", "j": "{k:1}", "k": null, "l": "true", "m": 31,
            "max_conn": 100, "n": 1000.0, "neg": -3, "o": -5, "oct": 15, "p": [1, 2],
            "q2": "007", "r": 1000, "s": [1, 2], "set": [3], "sp": "a b c", "sq": "single",
            "t": "yes", "tup": [1, 2], "u": true, "v": 3, "w": 1.0, "x": [1, 2], "x2": "a=b",
            "y": "quoted", "y2": "", "z": "hello"})
    );
    assert_eq!(
        hostvars["h2"],
        json!({"cat": "ab", "cm": 8080, "cs": "hi # comment", "d": {"a": [1, 2]},
            "debug": false, "e": "", "ell": "...", "fl": 1.5, "max_conn": 100, "n": null,
            "neg": -3, "oct": 15, "set": [3], "sp": "a b c", "sq": "single", "t": "yes",
            "tup": [1, 2], "x": [1, 2], "y": "quoted", "z": {"k": 1}, "z2": "a b", "z3": "q",
            "z4": "a\\b", "z5": 1})
    );
    // Floats stay floats when printed: `1e3` is 1000.0, as Python writes it.
    assert_eq!(hostvars["h1"]["n"].to_string(), "1000.0");
}

fn hosts_of(text: &str) -> Vec<String> {
    let (_d, inv) = ok(&[("hosts", text)]);
    inv.select("all").unwrap()
}

#[test]
fn host_ranges() {
    assert_eq!(hosts_of("web[01:03]\n"), ["web01", "web02", "web03"]);
    assert_eq!(hosts_of("db-[a:c]\n"), ["db-a", "db-b", "db-c"]);
    assert_eq!(hosts_of("x[1:10:2]\n"), ["x1", "x3", "x5", "x7", "x9"]);
    assert_eq!(hosts_of("y[01:10:3]z\n"), ["y01z", "y04z", "y07z", "y10z"]);
    assert_eq!(hosts_of("m[a:z:5]\n"), ["ma", "mf", "mk", "mp", "mu", "mz"]);
    assert_eq!(hosts_of("u[A:C]\n"), ["uA", "uB", "uC"]);
    assert_eq!(hosts_of("w[x:C]\n"), ["wx", "wy", "wz", "wA", "wB", "wC"]);
    assert_eq!(hosts_of("n[:3]\n"), ["n0", "n1", "n2", "n3"]);
    assert_eq!(hosts_of("a[1:2]b[a:b]\n"), ["a1ba", "a1bb", "a2ba", "a2bb"]);
    assert_eq!(hosts_of("q[3:1]\n"), Vec::<String>::new());
    assert_eq!(hosts_of("d[5:1:-2]\n"), ["d5", "d3"]);
    assert_eq!(hosts_of("g]x\n"), ["g]x"]);
    assert_eq!(hosts_of("fe80::1\n"), ["fe80::1"]);
    let (_d, inv) = ok(&[("hosts", "h[1:3]:2222\n[::1]:22\n")]);
    assert_eq!(inv.select("all").unwrap(), ["h1", "h2", "h3", "::1"]);
    assert_eq!(inv.host_vars("h2")["ansible_port"], json!(2222));
    assert_eq!(inv.host_vars("::1")["ansible_port"], json!(22));
}

#[test]
fn huge_host_ranges_are_errors_not_a_machine_out_of_memory() {
    // One range past a million hosts, and ranges that multiply past it: refused as soon as the
    // count passes it, never a machine out of memory.
    assert_eq!(
        err("[g]\nweb[0:99999999999]\n"),
        "2: host range in 'web[0:99999999999]' makes more than 1000000 hosts"
    );
    assert!(
        err("a[0:999]b[0:999]c[0:9]\n").contains("makes more than 1000000 hosts"),
        "{}",
        err("a[0:999]b[0:999]c[0:9]\n")
    );
}

#[test]
fn bad_host_names_are_errors_naming_file_and_line() {
    assert!(err("[g]\nok1\nweb[a:b\n").starts_with("3: invalid host range in 'web[a:b'"));
    assert_eq!(err("[g]\nv[Z:a]\n"), "2: host range must have begin <= end");
    assert_eq!(
        err("p[01:3]\n"),
        "1: host range must specify equal-length begin and end formats"
    );
    assert_eq!(
        err("r[1]\n"),
        "1: host range must be begin:end or begin:end:step"
    );
    assert_eq!(err("t[1:]\n"), "1: host range must specify end value");
    assert_eq!(err("z[1:3:0]\n"), "1: range() arg 3 must not be zero");
    assert_eq!(
        err("ab[aa:ab]\n"),
        "1: invalid literal for int() with base 10: 'aa'"
    );
    assert_eq!(
        err("[g]\nhost:\n"),
        "2: Invalid host pattern 'host:' supplied, ending in ':' is not allowed, this character \
         is reserved to provide a port."
    );
    assert_eq!(
        err("[g]\nhost a\n"),
        "2: Expected key=value host variable assignment, got: a"
    );
    assert_eq!(
        err("[a:children]\nb\n[b:vars]\nx=1\n"),
        "2: Section [a:children] includes undefined group 'b'."
    );
    assert_eq!(
        err("[a]\nh\n[x:vars]\nq=1\n"),
        "3: Section [x:vars] not valid for undefined group 'x'."
    );
}

#[test]
fn group_cycles_are_refused_with_ansibles_message() {
    assert_eq!(
        err("[a]\nh1\n[a:children]\na\n"),
        "4: can't add group to itself"
    );
    assert_eq!(
        err("[a]\nh1\n[a:children]\nb\n[b:children]\nc\n[c:children]\na\n"),
        "8: Adding group 'a' as child to 'c' creates a recursive dependency loop."
    );
    let (_d, inv) = load(&[(
        "inv.yml",
        "all:\n  children:\n    a:\n      hosts: {h1: }\n      children:\n        b:\n          children:\n            a:\n",
    )]);
    let e = inv.unwrap_err().to_string();
    assert!(
        e.ends_with("Adding group 'b' as child to 'a' creates a recursive dependency loop."),
        "{e}"
    );
}

/// 52 levels of diamonds: every level has two groups, both children of both groups above.
/// The number of paths doubles at each level; depth, precedence and host lists must not care.
#[test]
fn deep_diamond_is_instant() {
    let mut text = String::from("[g0a]\nh0\n[g0b]\nh0\n");
    for level in 1..52 {
        for side in ["a", "b"] {
            text.push_str(&format!(
                "[g{level}{side}]\nh{level}\n[g{prev}a:children]\ng{level}{side}\n[g{prev}b:children]\ng{level}{side}\n",
                prev = level - 1
            ));
        }
    }
    let (_d, inv) = ok(&[("hosts", &text)]);
    let groups = inv.host_groups("h51");
    assert_eq!(groups.len(), 1 + 52 * 2);
    assert_eq!(groups[0], "all");
    assert_eq!(groups[groups.len() - 1], "g51b");
    assert_eq!(inv.group_hosts("g0a").len(), 52);
    assert_eq!(inv.select("g0a[51]").unwrap(), ["h51"]);
    // The graph of such an inventory is astronomically long: it stops at a bound.
    let graph = inv.to_graph("all");
    assert_eq!(graph.lines().count(), GRAPH_MAX_LINES + 1);
    assert!(graph.ends_with("(graph cut at 200000 lines: use --list)\n"));
}

const PATTERNS: &str = "solo
10.0.0.5
[web]
web[01:03].example.com
[db]
db-[a:b]
[prod:children]
web
db
[stage]
web02.example.com
db-b
";

#[test]
fn patterns_as_ansible_list_hosts() {
    let (_d, inv) = ok(&[("hosts", PATTERNS)]);
    let cases: &[(&str, &str)] = &[
        (
            "all",
            "solo 10.0.0.5 web02.example.com db-b web01.example.com web03.example.com db-a",
        ),
        (
            "*",
            "solo 10.0.0.5 web02.example.com db-b web01.example.com web03.example.com db-a",
        ),
        (
            "web",
            "web01.example.com web02.example.com web03.example.com",
        ),
        (
            "web:db",
            "web01.example.com web02.example.com web03.example.com db-a db-b",
        ),
        (
            "web,db",
            "web01.example.com web02.example.com web03.example.com db-a db-b",
        ),
        ("prod:&db", "db-a db-b"),
        ("prod:!web", "db-a db-b"),
        ("!web:prod", "db-a db-b"),
        ("prod:&stage", "web02.example.com db-b"),
        (
            "!db",
            "solo 10.0.0.5 web02.example.com web01.example.com web03.example.com",
        ),
        ("&db", "db-b db-a"),
        (
            "web0*",
            "web01.example.com web02.example.com web03.example.com",
        ),
        (
            "*.example.com",
            "web01.example.com web02.example.com web03.example.com",
        ),
        ("db-?", "db-a db-b"),
        ("~db", "db-a db-b"),
        ("~web0[12]", "web01.example.com web02.example.com"),
        ("~b", ""),
        ("web[0]", "web01.example.com"),
        ("web[1:2]", "web02.example.com web03.example.com"),
        ("web[1:]", "web02.example.com web03.example.com"),
        ("web[-1]", "web03.example.com"),
        ("web[2:0]", "web03.example.com"),
        ("prod[3]", "db-a"),
        ("ungrouped", "solo 10.0.0.5"),
        ("solo", "solo"),
        ("10.0.0.5", "10.0.0.5"),
        ("db-b:solo", "db-b solo"),
        (
            "all:!ungrouped",
            "web02.example.com db-b web01.example.com web03.example.com db-a",
        ),
        ("web[0]:db[1]", "web01.example.com db-b"),
        (
            "[sw]*",
            "web01.example.com web02.example.com web03.example.com db-b solo",
        ),
        ("localhost", "localhost"),
        ("nothing", ""),
        ("all[5]", "web03.example.com"),
        ("prod:!stage:&web", "web01.example.com web03.example.com"),
        ("web[01:03].example.com", ""),
    ];
    for (pattern, expected) in cases {
        let got = inv.select(pattern).unwrap().join(" ");
        assert_eq!(&got, expected, "pattern {pattern}");
    }
    assert_eq!(
        inv.select("web[5]").unwrap_err().to_string(),
        "No hosts matched the subscripted pattern 'web[5]'"
    );
    assert_eq!(
        inv.select("~(").unwrap_err().to_string(),
        "Invalid host list pattern: ~("
    );
}

#[test]
fn limit_as_ansible_playbook() {
    let (dir, inv) = ok(&[
        ("hosts", "[web]\nw1\nw2\n[db]\nd1\n"),
        ("lf", "w2\n\n  d1  \n"),
    ]);
    let no_hosts =
        "Specified inventory, host pattern and/or --limit leaves us with no hosts to target.";
    for limit in ["nomatch", "web:&db", "ungrouped", "web[x]", "w[12]", "W1"] {
        assert_eq!(
            inv.resolve_limit(limit).unwrap_err().to_string(),
            no_hosts,
            "{limit}"
        );
    }
    assert_eq!(
        inv.resolve_limit("w1:~(").unwrap_err().to_string(),
        "Invalid host list pattern: ~("
    );
    assert_eq!(
        inv.resolve_limit("@missing").unwrap_err().to_string(),
        "Unable to find limit file b'missing'"
    );
    let d = dir.path().display();
    assert_eq!(
        inv.resolve_limit(&format!("@{d}")).unwrap_err().to_string(),
        format!("Limit starting with \"@\" must be a file, not a directory: b'{d}'")
    );
    let file_limit = inv.resolve_limit(&format!("@{d}/lf")).unwrap();
    assert_eq!(inv.select(&file_limit).unwrap(), ["w2", "d1"]);
    // `~[` is split into `~` (which matches everything), as Ansible splits it.
    assert_eq!(
        inv.select(&inv.resolve_limit("~[").unwrap()).unwrap(),
        ["w1", "w2", "d1"]
    );
    assert_eq!(inv.select("web[1-2]").unwrap(), ["w2"]);
    // An inventory without hosts only warns in Ansible.
    let empty = Inventory::empty();
    assert_eq!(empty.resolve_limit("anything").unwrap(), "anything");
}

#[test]
fn precedence_by_depth_priority_and_name() {
    let (_d, inv) = ok(&[
        (
            "hosts",
            "[top:children]\nmid\nzeta\n[mid:children]\nleaf\n[leaf]\nh1 hv=inline\n[zeta]\nh1\n\
             [alpha]\nh1\n[beta]\nh1\n[beta:vars]\nansible_group_priority=5\npr=beta_inline\n\
             [alpha:vars]\npr=alpha_inline\n[top:vars]\nt=top_inline\nd=top_inline\n\
             [leaf:vars]\nd=leaf_inline\n[all:vars]\nt=all_inline\na=all_inline\n",
        ),
        (
            "group_vars/top.yml",
            "d: top_file\ng: top_file\na: top_file\n",
        ),
        ("group_vars/mid.yml", "g: mid_file\n"),
        ("group_vars/zeta.yml", "g: zeta_file\nz: zeta_file\n"),
        ("group_vars/alpha.yml", "z: alpha_file\npr: alpha_file\n"),
        ("group_vars/beta.yml", "pr: beta_file\n"),
        (
            "group_vars/all.yml",
            "a: all_file\nt: all_file\nhv: all_file\n",
        ),
        ("host_vars/h1.yml", "hv: host_file\n"),
    ]);
    // ansible-inventory --host h1 (ansible_group_priority is not a variable there).
    assert_eq!(
        Value::Object(inv.host_vars("h1")),
        json!({"a": "top_file", "d": "top_file", "g": "zeta_file", "hv": "host_file",
            "pr": "beta_file", "t": "all_file", "z": "zeta_file"})
    );
}

#[test]
fn magic_vars_from_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("invdir")).unwrap();
    fs::write(d.join("invdir/a"), "[g]\nh1\n").unwrap();
    fs::write(d.join("invdir/b.ini"), "[g]\nh2\n[k]\nh1\n").unwrap();
    fs::write(d.join("f.ini"), "h3\n[z:children]\ng\n").unwrap();
    let sources = [
        d.join("invdir").display().to_string(),
        d.join("f.ini").display().to_string(),
        "c1,".to_string(),
    ];
    let inv = Inventory::load(&sources).unwrap();
    let d = d.display();
    let magic = |h: &str| Value::Object(inv.magic_vars(h));
    assert_eq!(
        magic("h1"),
        json!({"group_names": ["g", "k", "z"], "inventory_dir": format!("{d}/invdir"),
            "inventory_file": format!("{d}/invdir/a")})
    );
    assert_eq!(
        magic("h2"),
        json!({"group_names": ["g", "z"], "inventory_dir": format!("{d}/invdir"),
            "inventory_file": format!("{d}/invdir/b.ini")})
    );
    assert_eq!(
        magic("h3"),
        json!({"group_names": ["ungrouped"], "inventory_dir": d.to_string(),
            "inventory_file": format!("{d}/f.ini")})
    );
    assert_eq!(
        magic("c1"),
        json!({"group_names": ["ungrouped"], "inventory_dir": null, "inventory_file": "c1,"})
    );
    assert_eq!(
        Value::Object(inv.groups_var()),
        json!({"all": ["h3", "c1", "h1", "h2"], "ungrouped": ["h3", "c1"], "g": ["h1", "h2"],
            "k": ["h1"], "z": ["h1", "h2"]})
    );
}

#[test]
fn graph_shows_empty_ungrouped_and_shared_groups() {
    let (_d, inv) = ok(&[(
        "hosts",
        "[top:children]\nmid\nz\n[top]\nt1\n[mid:children]\nz\n[z]\nz1\n",
    )]);
    assert_eq!(
        inv.to_graph("all"),
        "@all:\n  |--@ungrouped:\n  |--@top:\n  |  |--@mid:\n  |  |  |--@z:\n  |  |  |  |--z1\n  |  |--@z:\n  |  |  |--z1\n  |  |--t1\n"
    );
}

#[test]
fn hostile_input_never_panics_or_recurses() {
    let deep = "[".repeat(100_000);
    let text = format!(
        "[g]\nh x={deep}\n[g:vars]\ny={deep}1{}\n",
        "]".repeat(100_000)
    );
    let (_d, inv) = ok(&[("hosts", &text)]);
    // Python refuses more than 200 nested brackets too: the value stays text.
    assert_eq!(inv.host_vars("h")["x"], json!(deep));
    for value in [
        "'\\x4",
        "b'\\u00e9'",
        "\"\\N{DASH}\"",
        "0x",
        "1e",
        "1_",
        "(",
        "{1:",
        "'''",
        "\u{e9}",
    ] {
        let _ = crate::pyliteral::parse_value(value);
    }
    assert!(load(&[("hosts", &"a[".repeat(10_000))]).1.is_err());
    assert!(load(&[("hosts", "a[0:99999999999]\n")]).1.is_err());
    // Steps and ends at the edge of i64: Python's range has no overflow, and neither do we.
    let huge = "a[9223372036854775806:9223372036854775807:9223372036854775807]\n";
    assert_eq!(hosts_of(huge), ["a9223372036854775806"]);
    assert_eq!(
        hosts_of("b[0:9223372036854775807:-1]\n"),
        Vec::<String>::new()
    );
    let (_d, inv) = ok(&[("hosts", "h1\nh2\n")]);
    assert_eq!(inv.select("all[1:9223372036854775807]").unwrap(), ["h2"]);
}

#[test]
fn complex_numbers_and_empty_sets_as_ansible_2_19_types_them() {
    use crate::pyliteral::parse_value;
    for (text, want) in [
        ("1j", json!("1j")),
        ("1+2j", json!("(1+2j)")),
        ("-1j", json!("(-0-1j)")),
        ("+1j", json!("1j")),
        ("1.5-2.5j", json!("(1.5-2.5j)")),
        ("-1+0j", json!("(-1+0j)")),
        ("1e20j", json!("1e+20j")),
        ("1e-5j", json!("1e-05j")),
        ("2.0j", json!("2j")),
        ("123456789012345678j", json!("1.2345678901234568e+17j")),
        ("set()", json!([])),
        ("set( )", json!([])),
        (
            "[..., 1j, set(), {1, 2}, b'x']",
            json!(["...", "1j", [], [1, 2], "x"]),
        ),
        // Not literals: the text as written.
        ("1j+2", json!("1j+2")),
        ("1+-2j", json!("1+-2j")),
        ("1+2", json!("1+2")),
        ("set(1)", json!("set(1)")),
        ("host-01.internal", json!("host-01.internal")),
    ] {
        assert_eq!(parse_value(text), want, "{text}");
    }
}
