//! `ping`: proves the host runs modules. Not ICMP.

use serde::Deserialize;
use serde_json::Map;

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "ping",
    args: &["data"],
    unsupported: &[],
    free_form: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default = "pong")]
    data: String,
}

fn pong() -> String {
    "pong".into()
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("ping", &request.args)?;
    if args.data == "crash" {
        // Ansible's ping raises; 2.19 reports a module's exception with this prefix.
        return Err(ModuleError::Failed(
            "Task failed: Module failed: boom".into(),
        ));
    }
    let mut values = Map::new();
    values.insert("ping".into(), args.data.into());
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}
