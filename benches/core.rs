//! Criterion benchmarks of the three stages every run goes through, so regressions show:
//! parsing a playbook, rendering templates, and planning a play.
//!
//! `cargo bench --bench core`

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use settle_engine::plan::{Plan, Selection};
use settle_engine::template::{Scope, templar};

fn playbook_text(tasks: usize) -> String {
    let mut text = String::from("- hosts: all\n  vars: {app: demo, port: 8080}\n  tasks:\n");
    for t in 0..tasks {
        match t % 4 {
            0 => write!(text, "    - name: dir {t}\n      file: {{path: '/srv/{{{{ app }}}}/{t}', state: directory, mode: '0755'}}\n").unwrap(),
            1 => write!(text, "    - name: copy {t}\n      copy: {{dest: '/srv/{t}.conf', content: 'port={{{{ port }}}}'}}\n      when: port > 0\n").unwrap(),
            2 => write!(text, "    - name: loop {t}\n      debug: msg={{{{ item }}}}\n      loop: [a, b, c]\n").unwrap(),
            _ => write!(text, "    - block:\n        - command: echo {t} creates=/tmp/{t}\n      rescue:\n        - debug: msg=rescued\n").unwrap(),
        }
    }
    text
}

fn parse(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.yml");
    std::fs::write(&path, playbook_text(1000)).unwrap();
    c.bench_function("parse a 1000-task playbook", |b| {
        b.iter(|| black_box(settle_playbooks::load_playbook(&path).unwrap()))
    });
}

fn plan(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.yml");
    std::fs::write(&path, playbook_text(1000)).unwrap();
    let playbook = settle_playbooks::load_playbook(&path).unwrap();
    c.bench_function("plan a 1000-task play", |b| {
        b.iter(|| {
            let mut started = true;
            black_box(Plan::for_play(
                &playbook.plays[0],
                &Selection::default(),
                &mut started,
            ))
        })
    });
}

fn templates(c: &mut Criterion) {
    let vars = serde_json::json!({
        "app": "demo", "port": 8080, "users": ["alice", "bob", "carol"],
        "settings": {"a": 1, "b": 2}, "derived": "{{ app | upper }}-{{ port }}"
    });
    let scope = Scope::new(vec![Arc::new(vars.as_object().unwrap().clone())], None);
    let expression = serde_json::json!(
        "{{ users | map('upper') | join(',') }} {{ derived }} {{ settings | dict2items | length }}"
    );
    c.bench_function("render a string with filters and a lazy variable", |b| {
        b.iter(|| black_box(templar().render(&expression, &scope).unwrap()))
    });
    let file = "[server]\nport = {{ port }}\n{% for u in users %}\n{{ u }} = /home/{{ u }}\n{% endfor %}\n";
    c.bench_function("render a template file", |b| {
        b.iter(|| black_box(templar().render_file("t.j2", file, &scope).unwrap()))
    });
    let condition = serde_json::json!("port > 80 and 'bob' in users and app is defined");
    c.bench_function("evaluate a condition", |b| {
        b.iter(|| black_box(templar().condition(&condition, &scope).unwrap()))
    });
}

criterion_group!(benches, parse, plan, templates);
criterion_main!(benches);
