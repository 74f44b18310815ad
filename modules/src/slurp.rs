//! `slurp`: a file's bytes, base64-encoded, as Ansible returns them. Changes nothing.

use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Map;

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "slurp",
    args: &["src", "path"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "path")]
    src: PathBuf,
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let mut args: Args = parse_args("slurp", &request.args)?;
    args.src = crate::fsutil::expand_path(&args.src);
    let source = args.src.display().to_string();
    let bytes = std::fs::read(&args.src).map_err(|e| {
        ModuleError::Failed(match e.raw_os_error() {
            Some(libc::ENOENT) => format!("File not found: {source}"),
            Some(libc::EACCES) => format!("File is not readable: {source}"),
            Some(libc::EISDIR) => format!("Source is a directory and must be a file: {source}"),
            // Ansible's message, its missing f-string included.
            _ => "Unable to slurp file: {source}".to_string(),
        })
    })?;
    let mut values = Map::new();
    values.insert(
        "content".into(),
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into(),
    );
    values.insert("source".into(), source.into());
    values.insert("encoding".into(), "base64".into());
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_content_and_ansible_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hi\n").unwrap();
        let call = |p: &std::path::Path| {
            let args = serde_json::json!({"src": p});
            run(&Request::new("slurp", args.as_object().unwrap().clone()))
        };
        let out = call(&path).unwrap();
        assert_eq!(out.values["content"], "aGkK");
        assert_eq!(out.values["encoding"], "base64");
        assert_eq!(
            call(dir.path()).unwrap_err().to_string(),
            format!(
                "Source is a directory and must be a file: {}",
                dir.path().display()
            )
        );
        assert!(
            call(&dir.path().join("no"))
                .unwrap_err()
                .to_string()
                .starts_with("File not found: ")
        );
    }
}
