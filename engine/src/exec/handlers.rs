//! Handlers: at each flush, the handlers notified on each host run in the order they are
//! defined, once per host, by name or by `listen`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{PlayRun, StepOutcome};
use crate::hosts::HostState;
use crate::template::{is_template, templar};
use settle_playbooks::Task;

impl PlayRun<'_> {
    /// What a changed task notifies on a host: its `notify` names, each rendered when it is a
    /// template (a template may give a list of names). A name that does not render is kept as
    /// written, to be reported as a handler no one answers.
    pub(super) fn notify_names(&self, task: &Task, state: &HostState) -> Vec<String> {
        if !task.keywords.notify.iter().any(|n| is_template(n)) {
            return task.keywords.notify.clone();
        }
        let scope = self.scope(state, task, &[]);
        let mut names = Vec::new();
        for name in &task.keywords.notify {
            match is_template(name).then(|| templar().render(&Value::String(name.clone()), &scope))
            {
                Some(Ok(Value::Array(list))) => names.extend(list.iter().map(crate::value_text)),
                Some(Ok(v)) => names.push(crate::value_text(&v)),
                _ => names.push(name.clone()),
            }
        }
        names
    }

    /// A handler's `RUNNING HANDLER` title, a templated name rendered for the first host.
    fn handler_title(&self, handler: &Task, host: &str) -> String {
        let title = handler.display_name();
        if !is_template(&title) {
            return title;
        }
        let scope = self.fact_scope(&self.engine.hosts.get(host));
        templar().render_text(&title, &scope).unwrap_or(title)
    }

    /// A handler's names on a host (see [`Task::handler_names_by`]), a templated name rendered
    /// with the play's variables for that host.
    fn handler_names_on(&self, handler: &Task, listen: bool, state: &HostState) -> Vec<String> {
        let names = handler.handler_names_by(listen);
        if listen || !names.iter().any(|n| is_template(n)) {
            return names;
        }
        let scope = self.fact_scope(state);
        names
            .into_iter()
            .map(|n| templar().render_text(&n, &scope).unwrap_or(n))
            .collect()
    }

    /// Runs the handlers notified on these hosts, in the order they are defined.
    pub(super) fn flush_handlers(&self, batch: &[String]) -> Vec<(String, StepOutcome)> {
        let mut outcomes: HashMap<String, StepOutcome> =
            batch.iter().map(|h| (h.clone(), StepOutcome::Ok)).collect();
        let included = self
            .included_handlers
            .lock()
            .expect("handlers lock")
            .clone();
        let handlers: Vec<&Task> = self.play.handlers.iter().chain(included.iter()).collect();
        // Per host, every handler's names (a templated name rendered for that host).
        let mut names: HashMap<&String, Vec<Vec<String>>> = HashMap::new();
        for (index, handler) in handlers.iter().enumerate() {
            let hosts: Vec<String> = {
                let notified = self.notified.lock().expect("notify lock");
                batch
                    .iter()
                    .filter(|h| outcomes.get(*h) == Some(&StepOutcome::Ok))
                    .filter(|h| {
                        let Some(set) = notified.get(*h) else {
                            return false;
                        };
                        let by_name = names.entry(h).or_insert_with(|| {
                            let state = self.engine.hosts.get(h);
                            handlers
                                .iter()
                                .map(|t| self.handler_names_on(t, false, &state))
                                .collect()
                        });
                        answers(&handlers, index, by_name, set)
                    })
                    .cloned()
                    .collect()
            };
            if hosts.is_empty() {
                continue;
            }
            let title = self.handler_title(handler, &hosts[0]);
            self.engine
                .out
                .banner(&format!("RUNNING HANDLER [{title}]"));
            self.engine.out.event(&json!({"event": "handler_start", "task": title, "location": handler.location.to_string()}));
            let results = match &handler.include {
                Some(include) => self.run_include(include, &hosts, &HashMap::new()),
                None => self.run_task_on(handler, &hosts, &HashMap::new(), true),
            };
            for (h, outcome) in results {
                if let StepOutcome::Failed { .. } = outcome {
                    self.engine.count(&h, |s| s.failures += 1);
                    outcomes.insert(h, StepOutcome::Failed { counted: true });
                } else if outcome != StepOutcome::Ok {
                    outcomes.insert(h, outcome);
                }
            }
        }
        // Topics no handler listens to are dropped once the flush is done.
        let mut notified = self.notified.lock().expect("notify lock");
        for h in batch {
            if outcomes.get(h) == Some(&StepOutcome::Ok) {
                notified.remove(h);
            }
        }
        batch
            .iter()
            .map(|h| (h.clone(), outcomes.remove(h).unwrap_or(StepOutcome::Ok)))
            .collect()
    }
}

/// Whether a host's notifications reach handler `index`: a topic it listens to, or a name of
/// it that no other handler takes first. As in Ansible, the handlers are searched by name
/// block by block from the last (a role's handlers are a block, the play's own another), and
/// within a block the first of that name wins.
fn answers(
    handlers: &[&Task],
    index: usize,
    by_name: &[Vec<String>],
    notified: &indexmap::IndexSet<String>,
) -> bool {
    let block = |i: usize| handlers[i].role.as_ref().map(|r| r.instance.as_str());
    let chosen = |n: &String| {
        let last = (0..handlers.len())
            .rev()
            .find(|&i| by_name[i].contains(n))?;
        (0..=last)
            .rev()
            .take_while(|&i| block(i) == block(last))
            .filter(|&i| by_name[i].contains(n))
            .last()
    };
    handlers[index]
        .handler_names_by(true)
        .iter()
        .any(|n| notified.contains(n))
        || by_name[index]
            .iter()
            .any(|n| notified.contains(n) && chosen(n) == Some(index))
}
