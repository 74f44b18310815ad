//! Parse and plan a generated playbook of 5,000 tasks for 500 inventory hosts, and print how
//! long it took. Target: well under a second on the 2-core CI machine.
//!
//! `cargo bench --bench parse_plan` (add `-- --tasks N --hosts M` for other sizes).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use settle_engine::plan::{Plan, Selection};
use settle_inventory::Inventory;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_fixture(dir: &std::path::Path, tasks: usize, hosts: usize) {
    let mut inventory = String::new();
    for g in 0..10 {
        writeln!(inventory, "[group{g}]").unwrap();
        for h in (g..hosts).step_by(10) {
            writeln!(
                inventory,
                "host{h:04}.example.com ansible_host=127.0.0.{} ansible_port={}",
                h % 250 + 1,
                2200 + h
            )
            .unwrap();
        }
        writeln!(inventory, "[group{g}:vars]\ntier=t{g}\n").unwrap();
    }
    inventory.push_str("[all:children]\n");
    for g in 0..10 {
        writeln!(inventory, "group{g}").unwrap();
    }
    std::fs::write(dir.join("hosts"), inventory).unwrap();
    std::fs::create_dir_all(dir.join("group_vars")).unwrap();
    std::fs::write(
        dir.join("group_vars/all.yml"),
        "app: demo\nport: 8080\nusers: [a, b, c]\n",
    )
    .unwrap();
    let per_play = tasks / 5;
    let mut playbook = String::new();
    for p in 0..5 {
        write!(
            playbook,
            "- name: play {p}\n  hosts: group{p}:group{}\n  vars: {{play_index: {p}}}\n  tasks:\n",
            p + 5
        )
        .unwrap();
        for t in 0..per_play {
            match t % 5 {
                0 => write!(playbook, "    - name: dir {p}-{t}\n      file: {{path: '/srv/{{{{ app }}}}/{t}', state: directory, mode: '0755'}}\n      tags: [files]\n").unwrap(),
                1 => write!(playbook, "    - name: copy {p}-{t}\n      copy: {{dest: '/srv/{t}.conf', content: 'port={{{{ port }}}}'}}\n      notify: restart\n").unwrap(),
                2 => write!(playbook, "    - name: cmd {p}-{t}\n      command: echo {t} creates=/tmp/{t}\n      when: play_index is defined\n").unwrap(),
                3 => write!(playbook, "    - name: loop {p}-{t}\n      debug: msg={{{{ item }}}}\n      loop: '{{{{ users }}}}'\n").unwrap(),
                _ => write!(playbook, "    - block:\n        - name: inner {p}-{t}\n          file: path=/tmp/{t} state=touch\n      rescue:\n        - debug: msg=rescued\n").unwrap(),
            }
        }
        playbook.push_str("  handlers:\n    - name: restart\n      debug: msg=restart\n");
    }
    std::fs::write(dir.join("site.yml"), playbook).unwrap();
}

fn main() {
    let tasks = arg("--tasks", 5000);
    let hosts = arg("--hosts", 500);
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path(), tasks, hosts);
    let inventory_path = dir.path().join("hosts");
    let playbook_path = dir.path().join("site.yml");
    let mut best = Duration::MAX;
    let mut planned_steps = 0;
    let mut host_plans = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let mut inventory = Inventory::load(&[inventory_path.to_str().unwrap()]).unwrap();
        let playbook = settle_playbooks::load_playbook(&playbook_path).unwrap();
        inventory.add_playbook_vars_dir(dir.path()).unwrap();
        settle_engine::validate(std::slice::from_ref(&playbook)).unwrap();
        planned_steps = 0;
        host_plans = 0;
        let mut started = true;
        for play in &playbook.plays {
            let plan = Plan::for_play(play, &Selection::default(), &mut started);
            planned_steps += plan.graph.node_count();
            for host in inventory.select(&play.hosts).unwrap() {
                std::hint::black_box(inventory.host_vars(&host));
                host_plans += 1;
            }
        }
        best = best.min(start.elapsed());
    }
    println!(
        "parse+plan: {tasks} tasks, {hosts} hosts ({host_plans} host-plays, {planned_steps} plan steps): best of 5 = {:.1} ms",
        best.as_secs_f64() * 1000.0
    );
}
