//! The template engine lent to the inventory: `constructed` plugin files hold Jinja
//! (`compose`, `groups`, `keyed_groups`), and the inventory crate, which must not depend on
//! the engine, evaluates them through its `Evaluator` trait, implemented here.

use std::sync::Arc;

use serde_json::Value;

use crate::Vars;
use crate::template::{Scope, templar};

/// Evaluates `constructed` expressions against a host's variables, with every filter, test and
/// lookup a playbook has.
pub struct InventoryJinja;

fn scope(vars: &Vars) -> Arc<Scope> {
    Scope::new(vec![Arc::new(vars.clone())], None)
}

impl settle_inventory::Evaluator for InventoryJinja {
    fn expression(&self, expr: &str, vars: &Vars) -> Result<Value, String> {
        let template = Value::String(format!("{{{{ {expr} }}}}"));
        templar()
            .render(&template, &scope(vars))
            .map_err(|e| e.message)
    }

    fn conditional(&self, expr: &str, vars: &Vars) -> Result<bool, String> {
        templar()
            .condition(&Value::String(expr.to_string()), &scope(vars))
            .map_err(|e| e.message)
    }

    fn template(&self, text: &str, vars: &Vars) -> Result<Value, String> {
        templar()
            .render(&Value::String(text.to_string()), &scope(vars))
            .map_err(|e| e.message)
    }
}
