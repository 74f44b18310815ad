//! `fetch`: the host half, a look at the file to be fetched. The controller compares the
//! checksum with its own copy and, only when they differ, asks `slurp` for the bytes; so a
//! second run moves nothing. Runs as the become user, so it reads what that user may read.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Map;

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "fetch",
    args: &[
        "src",
        "dest",
        "flat",
        "fail_on_missing",
        "validate_checksum",
    ],
    unsupported: &[],
    free_form: false,
};

/// What reaches the host: only the file's path (the rest is the controller's business).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    src: PathBuf,
}

/// Answers `source` (the path with `~` expanded), `exists`, `isdir`, `readable` and, for a
/// readable file, its SHA-1 `checksum`; `error` when the path cannot even be looked at.
pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("fetch", &request.args)?;
    let path = crate::fsutil::expand_path(&args.src);
    let mut values = Map::new();
    values.insert("source".into(), path.display().to_string().into());
    // fetch follows links, as Ansible's.
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            values.insert("exists".into(), false.into());
        }
        Err(e) => {
            values.insert("exists".into(), true.into());
            values.insert("error".into(), strerror(&e).into());
        }
        Ok(meta) => {
            values.insert("exists".into(), true.into());
            values.insert("isdir".into(), meta.is_dir().into());
            let readable = !meta.is_dir() && std::fs::File::open(&path).is_ok();
            values.insert("readable".into(), readable.into());
            if readable {
                let sum = crate::stat::checksum(&path, "sha1")?;
                values.insert("checksum".into(), sum.into());
            }
        }
    }
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

/// The C library's words for an error, as Python's `OSError.strerror` gives them.
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(path: &std::path::Path) -> Map<String, serde_json::Value> {
        let args = serde_json::json!({"src": path});
        let out = crate::run(&Request::new("fetch", args.as_object().unwrap().clone()));
        assert!(!out.failed, "{out:?}");
        out.values
    }

    #[test]
    fn says_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "test").unwrap();
        let v = call(&file);
        assert_eq!(v["checksum"], "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3");
        assert_eq!(v["source"], file.display().to_string());
        assert_eq!(call(dir.path())["isdir"], true);
        assert_eq!(call(&dir.path().join("nope"))["exists"], false);
    }
}
