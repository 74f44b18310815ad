//! `tempfile`: a new, uniquely named file (mode 0600) or folder (0700), as Python's `mkstemp`
//! and `mkdtemp` make them. Always a change; like Ansible's module, it does not run in check
//! mode (the task is skipped).

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Map;

use crate::resource::parse_args;
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "tempfile",
    args: &["state", "path", "prefix", "suffix"],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    File,
    Directory,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    state: Kind,
    path: Option<PathBuf>,
    #[serde(default = "ansible_prefix")]
    prefix: String,
    #[serde(default)]
    suffix: String,
}

fn ansible_prefix() -> String {
    "ansible.".into()
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("tempfile", &request.args)?;
    for (what, part) in [("prefix", &args.prefix), ("suffix", &args.suffix)] {
        if part.contains('/') {
            return Err(ModuleError::Failed(format!(
                "{what} must be a valid file name component, got '{part}'"
            )));
        }
    }
    if request.check_mode {
        return Ok(Outcome {
            skipped: true,
            msg: Some("Remote module (ansible.legacy.tempfile) does not support check mode".into()),
            ..Outcome::default()
        });
    }
    let dir = args.path.clone().unwrap_or_else(std::env::temp_dir);
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&args.prefix)
        .suffix(&args.suffix)
        .rand_bytes(8);
    let fail = |e: std::io::Error| ModuleError::Failed(e.to_string());
    let path = match args.state {
        Kind::File => builder
            .tempfile_in(&dir)
            .map_err(fail)?
            .into_temp_path()
            .keep()
            .map_err(|e| fail(e.error))?,
        Kind::Directory => {
            let made = builder.tempdir_in(&dir).map_err(fail)?.keep();
            // mkdtemp's mode, which the umask cannot widen.
            crate::fsutil::chmod(&made, 0o700 & !crate::fsutil::umask())?;
            made
        }
    };
    let mut values = Map::new();
    values.insert("path".into(), path.display().to_string().into());
    // As Ansible's tempfile, the new path's state and attributes come back too.
    let state = if path.is_dir() { "directory" } else { "file" };
    values.insert("state".into(), state.into());
    crate::fsutil::attribute_values(&path, &mut values);
    Ok(Outcome {
        changed: true,
        values,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_and_folders_with_prefix_and_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let call = |state: &str| {
            let args = serde_json::json!({"path": dir.path(), "state": state, "suffix": ".x"});
            run(&Request::new("tempfile", args.as_object().unwrap().clone())).unwrap()
        };
        let f = call("file");
        assert!(f.changed);
        let path = PathBuf::from(f.values["path"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("ansible.") && name.ends_with(".x"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let d = PathBuf::from(call("directory").values["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
