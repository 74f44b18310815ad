//! `script`'s controller half: find the script as Ansible finds a `files/` source (the role's
//! `files/`, the play's folder), decrypt it if vaulted, and send its bytes to the host, where
//! the modules crate places, runs and removes it.

use base64::Engine as _;
use serde_json::Value;

use super::{ActionContext, ActionResult, decrypt_source, failed, find_file, module_call};
use super::{rendered_args, value_text};

pub(super) fn script(ctx: &ActionContext) -> Result<ActionResult, String> {
    let mut args = rendered_args(ctx, &[])?;
    let given = |key: &str| args.get(key).filter(|v| !v.is_null()).map(value_text);
    let (raw, cmd) = (given("_raw_params"), given("cmd"));
    let line = match settle_modules::script::command_line(raw.as_deref(), cmd.as_deref()) {
        Ok(line) => line,
        Err(msg) => return Ok(failed(msg)),
    };
    let name = match settle_modules::script::script_path(&line) {
        Ok(name) => name,
        Err(msg) => return Ok(failed(msg)),
    };
    let path = match find_file(ctx, "files", &name) {
        Ok(path) => path,
        Err(msg) => return Ok(failed(msg)),
    };
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("script: could not read {}: {e}", path.display()))?;
    let bytes = decrypt_source(&args, &path, bytes)?;
    args.remove("decrypt");
    args.remove("cmd");
    args.insert("_raw_params".into(), Value::String(line));
    args.insert(
        "_content_base64".into(),
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into(),
    );
    module_call(ctx, "script", args)
}
