//! `getent`: entries of a name service database (`passwd`, `group`, `hosts`, `services`, …),
//! read with the host's `getent` and returned as Ansible returns them:
//! `ansible_facts: {getent_<database>: {first field: [other fields], …}}`. Changes nothing.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{boolean, text};
use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request, bin_path, process};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "getent",
    args: &["database", "key", "service", "split", "fail_key"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(deserialize_with = "text")]
    database: Option<String>,
    #[serde(default, deserialize_with = "text")]
    key: Option<String>,
    #[serde(default, deserialize_with = "text")]
    service: Option<String>,
    #[serde(default, deserialize_with = "text")]
    split: Option<String>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    fail_key: bool,
}

/// Python's `str.split(sep)`: on runs of whitespace (ends trimmed) without a separator.
fn split_record<'a>(line: &'a str, sep: Option<&str>) -> Vec<&'a str> {
    match sep {
        Some(sep) => line.split(sep).collect(),
        None => line.split_whitespace().collect(),
    }
}

/// The `getent_<database>` fact: each record under its first field; a key seen again holds a
/// list of all its records, as Ansible 2.11 and later keep them.
fn records(out: &str, sep: Option<&str>) -> Map<String, Value> {
    let mut tree = Map::new();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for line in out.lines() {
        let record = split_record(line, sep);
        let Some((first, rest)) = record.split_first() else {
            continue;
        };
        let rest = Value::from(rest.to_vec());
        match seen.get_mut(*first) {
            Some(count) => {
                if let Some(slot) = tree.get_mut(*first) {
                    if *count == 1 {
                        *slot = Value::Array(vec![slot.take()]);
                    }
                    if let Value::Array(items) = slot {
                        items.push(rest);
                    }
                }
                *count += 1;
            }
            None => {
                tree.insert(first.to_string(), rest);
                seen.insert(first.to_string(), 1);
            }
        }
    }
    tree
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("getent", &request.args)?;
    let Some(database) = args.database else {
        return Err(ModuleError::Args(
            "missing required arguments: database".into(),
        ));
    };
    if args.split.as_deref() == Some("") {
        return Err(ModuleError::Failed("empty separator".into()));
    }
    let getent = bin_path::required("getent")?;
    let mut argv = vec![getent, database.clone()];
    argv.extend(args.key.clone());
    if let Some(service) = &args.service {
        argv.extend(["-s".to_string(), service.clone()]);
    }
    let split = match args.split {
        None if ["passwd", "shadow", "group", "gshadow"].contains(&database.as_str()) => {
            Some(":".to_string())
        }
        other => other,
    };
    let ran = process::run(&argv, &[])?;
    let fact = format!("getent_{database}");
    let facts = |tree: Map<String, Value>| {
        let mut facts = Map::new();
        facts.insert(fact.clone(), Value::Object(tree));
        let mut values = Map::new();
        values.insert("ansible_facts".into(), Value::Object(facts));
        values
    };
    let msg = match ran.rc {
        0 => {
            return Ok(Outcome {
                values: facts(records(&ran.stdout, split.as_deref())),
                ..Outcome::default()
            });
        }
        1 => "Missing arguments, or database unknown.",
        2 => {
            let msg = "One or more supplied key could not be found in the database.";
            if !args.fail_key {
                let mut tree = Map::new();
                tree.insert(args.key.unwrap_or_else(|| "None".into()), Value::Null);
                let mut values = facts(tree);
                values.insert("msg".into(), msg.into());
                return Ok(Outcome {
                    values,
                    ..Outcome::default()
                });
            }
            msg
        }
        3 => "Enumeration not supported on this database.",
        _ => "Unexpected failure!",
    };
    Err(ModuleError::Failed(msg.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_first_field_with_duplicates_listed() {
        let tree = records("root:x:0:0\nbin:x:1:1\nroot:y:0:0\nroot:z:0:0\n", Some(":"));
        assert_eq!(tree["bin"], serde_json::json!(["x", "1", "1"]));
        assert_eq!(
            tree["root"],
            serde_json::json!([["x", "0", "0"], ["y", "0", "0"], ["z", "0", "0"]])
        );
        let hosts = records("127.0.0.1       localhost  lh\n", None);
        assert_eq!(hosts["127.0.0.1"], serde_json::json!(["localhost", "lh"]));
    }

    #[test]
    fn missing_keys_fail_unless_told_not_to() {
        let call = |extra: serde_json::Value| {
            let mut args = serde_json::json!({"database": "passwd", "key": "no-such-user-here"});
            if let (Some(a), Some(e)) = (args.as_object_mut(), extra.as_object()) {
                a.extend(e.clone());
            }
            run(&Request::new("getent", args.as_object().unwrap().clone()))
        };
        assert_eq!(
            call(serde_json::json!({})).unwrap_err().to_string(),
            "One or more supplied key could not be found in the database."
        );
        let out = call(serde_json::json!({"fail_key": false})).unwrap();
        assert_eq!(
            out.values["ansible_facts"]["getent_passwd"]["no-such-user-here"],
            Value::Null
        );
        let root = run(&Request::new(
            "getent",
            serde_json::json!({"database": "passwd", "key": "root"})
                .as_object()
                .unwrap()
                .clone(),
        ))
        .unwrap();
        assert_eq!(
            root.values["ansible_facts"]["getent_passwd"]["root"][1],
            "0"
        );
    }
}
