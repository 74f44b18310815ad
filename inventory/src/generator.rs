//! Ansible's `generator` inventory plugin: a host for every combination of the `layers`' values,
//! named by the `hosts.name` template over that combination, and put in the groups its
//! `parents` name (templates too, each with `vars` and `parents` of its own, nested as written).
//!
//! ```yaml
//! plugin: ansible.builtin.generator
//! hosts:
//!   name: "{{ operation }}_{{ application }}_runner"
//!   parents:
//!     - name: "{{ operation }}_{{ application }}"
//!       parents: [{name: "{{ operation }}"}, {name: "{{ application }}"}]
//!       vars: {application: "{{ application }}"}
//! layers:
//!   operation: [build, launch]
//!   application: [web, api]
//! ```
//!
//! As in Ansible, only strings are templated, with the layers' values as the only variables;
//! a group variable that is a list or a mapping is kept as written, to be rendered when a play
//! reads it.

use std::path::Path;

use serde_json::Value;
use settle_yaml::Node;

use crate::{Evaluator, Inventory, InventoryError, Vars};

pub(crate) fn load(
    inventory: &mut Inventory,
    doc: &Node,
    path: &Path,
    evaluator: &dyn Evaluator,
) -> Result<(), InventoryError> {
    let config = doc.to_value();
    let bad = |key: &str, want: &str| InventoryError::Parse {
        path: path.into(),
        line: doc.get(key).map_or(doc.line, |n| n.line) as usize,
        message: format!("the generator plugin's option '{key}' must be {want}"),
    };
    let Some((hosts, host_name)) = config
        .get("hosts")
        .and_then(Value::as_object)
        .and_then(|hosts| Some((hosts, hosts.get("name")?)))
    else {
        return Err(bad("hosts", "a mapping with a `name`"));
    };
    let Some(Value::Object(layers)) = config.get("layers") else {
        return Err(bad("layers", "a mapping of lists"));
    };
    let generator = Generator { evaluator };
    let parents = parents_of(hosts);
    let layers: Vec<(&String, Vec<Value>)> = layers
        .iter()
        .map(|(name, values)| match values {
            Value::Array(values) => (name, values.clone()),
            one => (name, vec![one.clone()]),
        })
        .collect();
    for combination in product(&layers) {
        let name = generator.text(host_name, &combination)?;
        inventory.add_host(&name, "ungrouped", Vars::new());
        generator.add_parents(inventory, Child::Host(&name), &parents, &combination)?;
    }
    // As Ansible reconciles after each source: new groups under `all`, `ungrouped` updated.
    inventory.finish();
    Ok(())
}

struct Generator<'a> {
    evaluator: &'a dyn Evaluator,
}

/// What goes in a parent group: the generated host, or a group below.
#[derive(Clone, Copy)]
enum Child<'a> {
    Host(&'a str),
    Group(&'a str),
}

impl Generator<'_> {
    /// A value rendered with the layers' values: strings only, the rest as written.
    fn template(&self, value: &Value, vars: &Vars) -> Result<Value, InventoryError> {
        match value {
            Value::String(text) => self
                .evaluator
                .template(text, vars)
                .map_err(InventoryError::Other),
            other => Ok(other.clone()),
        }
    }

    /// A name rendered as text (empty when there is none).
    fn text(&self, value: &Value, vars: &Vars) -> Result<String, InventoryError> {
        Ok(match self.template(value, vars)? {
            Value::Null => String::new(),
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// Puts `child` in each of `parents`, creating them, setting their variables, and going up
    /// to their own parents.
    fn add_parents(
        &self,
        inventory: &mut Inventory,
        child: Child,
        parents: &[Value],
        vars: &Vars,
    ) -> Result<(), InventoryError> {
        for parent in parents {
            let declared = self.text(parent.get("name").unwrap_or(&Value::Null), vars)?;
            if declared.is_empty() {
                let (Child::Host(name) | Child::Group(name)) = child;
                return Err(InventoryError::Other(format!(
                    "Element {name} has a parent with no name."
                )));
            }
            let group = inventory.group_name(&declared);
            inventory.ensure_group(&group);
            if let Some(Value::Object(group_vars)) = parent.get("vars") {
                for (key, value) in group_vars {
                    let value = self.template(value, vars)?;
                    inventory.set_group_var(&group, key, value);
                }
            }
            match child {
                Child::Host(host) => inventory.add_host(host, &group, Vars::new()),
                Child::Group(below) => inventory
                    .add_child(&group, below)
                    .map_err(InventoryError::Other)?,
            }
            if let Value::Object(entry) = parent {
                self.add_parents(inventory, Child::Group(&group), &parents_of(entry), vars)?;
            }
        }
        Ok(())
    }
}

/// The `parents` list of a host or group entry.
fn parents_of(entry: &serde_json::Map<String, Value>) -> Vec<Value> {
    match entry.get("parents") {
        Some(Value::Array(parents)) => parents.clone(),
        _ => Vec::new(),
    }
}

/// Every combination of the layers' values, as Python's `itertools.product` gives them (the
/// last layer changing fastest), each as the variables it binds.
fn product(layers: &[(&String, Vec<Value>)]) -> Vec<Vars> {
    let mut combinations = vec![Vars::new()];
    for (name, values) in layers {
        combinations = combinations
            .into_iter()
            .flat_map(|vars| {
                values.iter().map(move |value| {
                    let mut vars = vars.clone();
                    vars.insert((*name).clone(), value.clone());
                    vars
                })
            })
            .collect();
    }
    combinations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_come_in_python_s_order() {
        let (a, b) = ("a".to_string(), "b".to_string());
        let layers = vec![
            (&a, vec![Value::from(1), Value::from(2)]),
            (&b, vec![Value::from("x"), Value::from("y")]),
        ];
        let seen: Vec<String> = product(&layers)
            .iter()
            .map(|v| format!("{}{}", v["a"], v["b"].as_str().unwrap()))
            .collect();
        assert_eq!(seen, ["1x", "1y", "2x", "2y"]);
    }
}
