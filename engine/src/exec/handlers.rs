//! Handlers: at each flush, the handlers notified on each host run in the order they are
//! defined, once per host, by name or by `listen`.

use std::collections::HashMap;

use serde_json::json;

use super::{PlayRun, StepOutcome};

impl PlayRun<'_> {
    /// Runs the handlers notified on these hosts, in the order they are defined.
    pub(super) fn flush_handlers(&self, batch: &[String]) -> Vec<(String, StepOutcome)> {
        let mut outcomes: HashMap<String, StepOutcome> =
            batch.iter().map(|h| (h.clone(), StepOutcome::Ok)).collect();
        let included = self
            .included_handlers
            .lock()
            .expect("handlers lock")
            .clone();
        for handler in self.play.handlers.iter().chain(included.iter()) {
            let mut names: Vec<String> = handler.listen.clone();
            if let Some(n) = &handler.name {
                names.push(n.clone());
                if let Some(role) = &handler.role {
                    names.push(format!("{} : {n}", role.name));
                }
            }
            let hosts: Vec<String> = {
                let mut notified = self.notified.lock().expect("notify lock");
                batch
                    .iter()
                    .filter(|h| outcomes.get(*h) == Some(&StepOutcome::Ok))
                    .filter(|h| {
                        let Some(set) = notified.get_mut(*h) else {
                            return false;
                        };
                        let hit = names.iter().any(|n| set.contains(n));
                        if hit && let Some(n) = &handler.name {
                            set.shift_remove(n);
                        }
                        hit
                    })
                    .cloned()
                    .collect()
            };
            if hosts.is_empty() {
                continue;
            }
            self.engine
                .out
                .banner(&format!("RUNNING HANDLER [{}]", handler.display_name()));
            self.engine.out.event(&json!({"event": "handler_start", "task": handler.display_name(), "location": handler.location.to_string()}));
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
