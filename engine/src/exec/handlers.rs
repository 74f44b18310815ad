//! Handlers: at each flush, the handlers notified on each host run in the order they are
//! defined, once per host, by name or by `listen`.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::{PlayRun, StepOutcome};
use crate::Unpoisoned;
use crate::hosts::HostState;
use crate::template::{Layer, Scope, is_template, templar};
use settle_playbooks::Task;

thread_local! {
    /// Whether this thread is running handlers: the tasks of a file a handler includes are
    /// handlers too (`RUNNING HANDLER` banners).
    static RUNNING_HANDLERS: Cell<bool> = const { Cell::new(false) };
}

/// Whether the tasks run now are handlers (see [`RUNNING_HANDLERS`]).
pub(super) fn running_handlers() -> bool {
    RUNNING_HANDLERS.with(Cell::get)
}

/// The banner word of a task run now: `RUNNING HANDLER` for a handler, else `TASK`.
pub(super) fn banner_word() -> &'static str {
    if running_handlers() {
        "RUNNING HANDLER"
    } else {
        "TASK"
    }
}

/// Runs `f` as handlers, then returns to what was running before.
fn as_handlers<T>(f: impl FnOnce() -> T) -> T {
    let before = RUNNING_HANDLERS.with(|r| r.replace(true));
    let out = f();
    RUNNING_HANDLERS.with(|r| r.set(before));
    out
}

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

    /// Every handler of the play: its own, then those of the roles `include_role` has read.
    fn all_handlers(&self) -> Vec<Task> {
        let included = self.included_handlers.lock().unpoisoned();
        self.play
            .handlers
            .iter()
            .chain(included.iter())
            .cloned()
            .collect()
    }

    /// What a handler's name is rendered with: the play's variables, its role's, the extra
    /// vars and the play's magic variables, but no host's (Ansible templates handler names
    /// once, without a host).
    fn handler_scope(&self, handler: &Task) -> Arc<Scope> {
        let hosts = &self.engine.hosts;
        let mut layers = vec![
            Layer::data(hosts.globals.read().unpoisoned().clone()),
            Layer::template(self.role_defaults.lock().unpoisoned().clone()),
        ];
        if let Some(role) = &handler.role {
            layers.push(Layer::template(role.defaults.clone()));
        }
        layers.push(Layer::template(self.play_vars.clone()));
        if let Some(vf) = self.play_hosts.first().and_then(|h| self.vars_files_of(h)) {
            layers.push(Layer::template(vf));
        }
        layers.push(Layer::template(self.role_vars.lock().unpoisoned().clone()));
        if let Some(role) = &handler.role {
            layers.push(Layer::template(role.vars.clone()));
            layers.push(Layer::template(role.params.clone()));
        }
        layers.push(Layer::template(hosts.extra_vars()));
        layers.push(Layer::data(self.play_magic()));
        Scope::of_layers(layers, Some(hosts.clone()))
    }

    /// The names a notification reaches a handler by (see [`Task::handler_names_by`]), a
    /// templated name rendered. `None` when the name does not render: the handler answers no
    /// name then, and (`warn`) Ansible's warning says so unless it listens to a topic.
    fn handler_names_rendered(&self, handler: &Task, warn: bool) -> Option<Vec<String>> {
        let names = handler.handler_names_by(false);
        if !names.iter().any(|n| is_template(n)) {
            return Some(names);
        }
        let scope = self.handler_scope(handler);
        let mut rendered = Vec::with_capacity(names.len());
        for name in names {
            match templar().render_text(&name, &scope) {
                Ok(text) => rendered.push(text),
                Err(e) => {
                    if warn && handler.listen.is_empty() {
                        self.engine.out.warning_once(&format!(
                            "Handler '{}' is unusable because it has no listen topics and the name could not be templated (host-specific variables are not supported in handler names). The error: {}",
                            handler.name.as_deref().unwrap_or_default(),
                            e.undefined_message().unwrap_or(e.message)
                        ));
                    }
                    return None;
                }
            }
        }
        Some(rendered)
    }

    /// A task's `TASK` title, a templated name rendered with the play's variables and the
    /// extra vars, as Ansible's strategy renders it (kept as written when it cannot be).
    pub(super) fn task_title(&self, task: &Task) -> String {
        let title = task.display_name();
        if !is_template(&title) {
            return title;
        }
        templar()
            .render_text(&title, &self.engine.play_scope(self.play))
            .unwrap_or(title)
    }

    /// A handler's `RUNNING HANDLER` title, a templated name rendered.
    fn handler_title(&self, handler: &Task) -> String {
        let title = handler.display_name();
        if !is_template(&title) {
            return title;
        }
        templar()
            .render_text(&title, &self.handler_scope(handler))
            .unwrap_or(title)
    }

    /// Whether a notification reaches a handler, searched as Ansible's
    /// `search_handlers_by_notification` does: by name, block by block from the last, each
    /// handler's name rendered as the search meets it; then by `listen` topic.
    fn notification_reaches(&self, handlers: &[Task], notification: &str) -> bool {
        let by_name = search_order(handlers).into_iter().any(|i| {
            self.handler_names_rendered(&handlers[i], true)
                .is_some_and(|names| names.iter().any(|n| n == notification))
        });
        by_name
            || handlers
                .iter()
                .any(|h| h.handler_names_by(true).iter().any(|n| n == notification))
    }

    /// `; did you mean "x"?` for the handler name closest to a notification that reaches none.
    fn closest_handler(&self, handlers: &[Task], name: &str) -> String {
        let names: Vec<String> = handlers
            .iter()
            .flat_map(|h| h.handler_names())
            .filter(|n| !is_template(n))
            .collect();
        names
            .iter()
            .map(|c| (strsim::jaro_winkler(name, c), c))
            .filter(|(s, _)| *s > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| format!("; did you mean {c:?}?"))
            .unwrap_or_default()
    }

    /// Checks, when a changed task notifies, that each notification reaches a handler: one
    /// that reaches none is an error that ends the run (the message, `Err`), or a warning
    /// when `error_on_missing_handler` is off.
    pub(super) fn check_notifications(&self, names: &[String]) -> Result<(), String> {
        let handlers = self.all_handlers();
        for name in names {
            if self.notification_reaches(&handlers, name) {
                continue;
            }
            let message = format!(
                "The requested handler '{name}' was not found in either the main handlers list nor in the listening handlers list{}",
                self.closest_handler(&handlers, name)
            );
            if crate::missing_handler_is_error() {
                return Err(message);
            }
            self.engine.out.warning_once(&message);
        }
        Ok(())
    }

    /// With `ANSIBLE_DEBUG` set, what Ansible's debug output says at a flush the play makes
    /// itself (after its tasks): whether each host has handlers to run. Tests grep for it.
    pub(super) fn debug_implicit_flush(&self, batch: &[String]) {
        if !std::env::var("ANSIBLE_DEBUG").is_ok_and(|v| crate::template::json_bool(&v.into())) {
            return;
        }
        let notified = self.notified.lock().unpoisoned();
        let pending = self.pending_handlers.lock().unpoisoned();
        for host in batch {
            let waiting = notified.get(host).is_some_and(|set| !set.is_empty())
                || pending.get(host).is_some_and(|set| !set.is_empty());
            let message = match waiting {
                true => format!("META: triggered running handlers for {host}"),
                false => format!("No handler notifications for {host}, skipping."),
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            self.engine
                .out
                .print(&format!("{:6} {now:.5}: {message}", std::process::id()));
        }
    }

    /// A changed task's notifications on a host, made outside a flush: saved for the next one,
    /// with -vv Ansible's `Notification for handler … has been saved.` for each that reaches a
    /// handler, once per result that carries them (each item of a loop that ran).
    pub(super) fn save_notifications(&self, host: &str, names: &[String], results: usize) {
        if self.engine.opts.verbosity >= 2 {
            let all = self.all_handlers();
            for _ in 0..results {
                for name in names {
                    if self.notification_reaches(&all, name) {
                        self.engine
                            .out
                            .print(&format!("Notification for handler {name} has been saved."));
                    }
                }
            }
        }
        let mut notified = self.notified.lock().unpoisoned();
        notified
            .entry(host.to_string())
            .or_default()
            .extend(names.iter().cloned());
    }

    /// Notifications made while handlers run (by a handler, or a task a handler includes):
    /// as in Ansible they notify the handlers at once, to run later in this flush or, for a
    /// handler already passed, in the next one.
    pub(super) fn notify_now(&self, host: &str, names: &[String]) {
        let all = self.all_handlers();
        let handlers: Vec<&Task> = all.iter().collect();
        let by_name = self.names_by_handler(&handlers);
        for name in names {
            self.notify_handlers(host, &handlers, &by_name, name);
        }
    }

    /// At a flush (the implicit one or `meta: flush_handlers`), the notifications a host has
    /// saved notify their handlers, in the order they were made, and are spent; with -vv
    /// Ansible's `NOTIFIED HANDLER … for host` for each handler not already notified.
    pub(super) fn notify_saved(&self, host: &str) {
        let Some(names) = self.notified.lock().unpoisoned().remove(host) else {
            return;
        };
        let all = self.all_handlers();
        let handlers: Vec<&Task> = all.iter().collect();
        let by_name = self.names_by_handler(&handlers);
        for name in &names {
            self.notify_handlers(host, &handlers, &by_name, name);
        }
    }

    /// Every handler's names, a templated name rendered; none for one that does not render.
    fn names_by_handler(&self, handlers: &[&Task]) -> Vec<Vec<String>> {
        handlers
            .iter()
            .map(|t| self.handler_names_rendered(t, false).unwrap_or_default())
            .collect()
    }

    /// Notifies the handlers `notification` reaches on `host` (Ansible's `notify_host`).
    fn notify_handlers(
        &self,
        host: &str,
        handlers: &[&Task],
        by_name: &[Vec<String>],
        notification: &str,
    ) {
        for index in reached_by(handlers, by_name, notification) {
            let new = self
                .pending_handlers
                .lock()
                .unpoisoned()
                .entry(host.to_string())
                .or_default()
                .insert(index);
            if new && self.engine.opts.verbosity >= 2 {
                let title = self.handler_title(handlers[index]);
                self.engine
                    .out
                    .print(&format!("NOTIFIED HANDLER {title} for {host}"));
            }
        }
    }

    /// Runs the handlers notified on these hosts: one pass in the order they are defined, as
    /// Ansible's handler iteration. A handler runs on the hosts it is notified on and is then
    /// no longer notified there; what a handler notifies that was defined before it stays
    /// notified until the next flush, and so do the handlers of a host that failed.
    pub(super) fn flush_handlers(&self, batch: &[String]) -> Vec<(String, StepOutcome)> {
        for host in batch {
            self.notify_saved(host);
        }
        let mut outcomes: HashMap<String, StepOutcome> =
            batch.iter().map(|h| (h.clone(), StepOutcome::Ok)).collect();
        let all = self.all_handlers();
        for (index, handler) in all.iter().enumerate() {
            let hosts: Vec<String> = {
                let mut pending = self.pending_handlers.lock().unpoisoned();
                batch
                    .iter()
                    .filter(|h| outcomes.get(*h) == Some(&StepOutcome::Ok))
                    .filter(|h| {
                        pending
                            .get_mut(*h)
                            .is_some_and(|set| set.shift_remove(&index))
                    })
                    .cloned()
                    .collect()
            };
            if hosts.is_empty() {
                continue;
            }
            if !self.run_handler(handler, &hosts, &mut outcomes) {
                return batch
                    .iter()
                    .map(|h| (h.clone(), StepOutcome::Ended))
                    .collect();
            }
        }
        batch
            .iter()
            .map(|h| (h.clone(), outcomes.remove(h).unwrap_or(StepOutcome::Ok)))
            .collect()
    }
}

impl PlayRun<'_> {
    /// Runs one handler on `hosts` under its `RUNNING HANDLER` banner, noting in `outcomes`
    /// the hosts that did not come through. `false` when the run was ended.
    fn run_handler(
        &self,
        handler: &Task,
        hosts: &[String],
        outcomes: &mut HashMap<String, StepOutcome>,
    ) -> bool {
        let title = self.handler_title(handler);
        let marker = self.engine.check_marker(&handler.keywords);
        self.engine.out.task_banner(
            &format!("RUNNING HANDLER [{title}]{marker}"),
            &handler.location,
            hosts,
        );
        self.engine.out.event(&json!({"event": "handler_start", "task": title, "location": handler.location.to_string()}));
        if handler.module == "meta"
            && handler.args.get("_raw_params").and_then(Value::as_str) == Some("flush_handlers")
        {
            self.engine.abort_run(
                "flush_handlers cannot be used as a handler",
                Some(&handler.location),
                1,
            );
            return false;
        }
        let results = match &handler.include {
            _ if handler.module == "meta" => self.run_meta(handler, hosts, &HashMap::new(), true),
            Some(include) => as_handlers(|| self.run_include(include, hosts, &HashMap::new())),
            None => self.run_task_on(handler, hosts, &HashMap::new(), true),
        };
        for (h, outcome) in results {
            // A failed handler is a counted failure from here on.
            let outcome = match outcome {
                StepOutcome::Ok => continue,
                StepOutcome::Failed { counted: false } => {
                    self.engine.count(&h, |s| s.failures += 1);
                    StepOutcome::Failed { counted: true }
                }
                StepOutcome::NotLoaded { .. } => StepOutcome::Failed { counted: true },
                other => other,
            };
            outcomes.insert(h, outcome);
        }
        true
    }
}

/// The handlers a notification reaches, in the order Ansible's
/// `search_handlers_by_notification` yields them: the first of that name the search meets
/// (block by block from the last, in order within a block), then those listening to it as a
/// topic, in the same order and one per handler name.
fn reached_by(handlers: &[&Task], by_name: &[Vec<String>], notification: &str) -> Vec<usize> {
    let order = search_order(handlers);
    let mut reached: Vec<usize> = order
        .iter()
        .copied()
        .find(|&i| by_name[i].iter().any(|n| n == notification))
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    for i in order {
        if !handlers[i]
            .handler_names_by(true)
            .iter()
            .any(|n| n == notification)
        {
            continue;
        }
        if let Some(name) = &handlers[i].name
            && !seen.insert(name.as_str())
        {
            continue;
        }
        if !reached.contains(&i) {
            reached.push(i);
        }
    }
    reached
}

/// The order Ansible searches handlers by name: block by block from the last (a role's
/// handlers are a block, the play's own another), in order within a block.
fn search_order<T: std::borrow::Borrow<Task>>(handlers: &[T]) -> Vec<usize> {
    let block = |i: usize| {
        let handler: &Task = handlers[i].borrow();
        handler.role.as_ref().map(|r| r.instance.as_str())
    };
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    for i in 0..handlers.len() {
        match blocks.last_mut() {
            Some(last) if block(last[0]) == block(i) => last.push(i),
            _ => blocks.push(vec![i]),
        }
    }
    blocks.into_iter().rev().flatten().collect()
}
