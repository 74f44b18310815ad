//! `fetch`'s controller half: ask the host what the file is (the modules crate's `fetch`),
//! compare its checksum with the copy kept here, and only when they differ read it (`slurp`)
//! and write it to `dest/<inventory_hostname>/<src>` (or `dest` itself, `flat`).
//!
//! Check mode skips the task, as Ansible's fetch does ("not (yet) supported"), although its
//! documentation claims full support: its own tests pin the skip.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::transfer::{download, file_digest};
use super::{ActionContext, ActionResult, failed, module_call, render, rendered_args, value_text};
use crate::template::json_bool;

pub(super) fn fetch(ctx: &ActionContext) -> Result<ActionResult, String> {
    if ctx.check_mode {
        return Ok(done(json!({
            "changed": false,
            "skipped": true,
            "msg": "check mode not (yet) supported for this module",
        })));
    }
    let args = rendered_args(ctx, &[])?;
    let flag = |key: &str, default: bool| {
        args.get(key)
            .filter(|v| !v.is_null())
            .map_or(default, json_bool)
    };
    let (flat, fail_on_missing, validate) = (
        flag("flat", false),
        flag("fail_on_missing", true),
        flag("validate_checksum", true),
    );
    // Ansible's checks, in its order: the last that applies is the message.
    let (src, dest) = (args.get("src"), args.get("dest"));
    let mut msg = "";
    if !src.is_some_and(Value::is_string) {
        msg = "Invalid type supplied for source option, it must be a string";
    }
    if !dest.is_some_and(Value::is_string) {
        msg = "Invalid type supplied for dest option, it must be a string";
    }
    if src.is_none_or(Value::is_null) || dest.is_none_or(Value::is_null) {
        msg = "src and dest are required";
    }
    let (Some(Value::String(src)), Some(Value::String(dest)), "") = (src, dest, msg) else {
        return Ok(failed(msg));
    };

    let mut look = Map::new();
    look.insert("src".into(), src.clone().into());
    let found = match module_call(ctx, "fetch", look)? {
        ActionResult::Done(found, _) if !found.get("failed").is_some_and(json_bool) => found,
        other => return Ok(other),
    };
    let source = found.get("source").map(value_text).unwrap_or(src.clone());
    let is = |key: &str| found.get(key).is_some_and(json_bool);
    let missing = |msg: String, ignored: String| {
        let mut result =
            json!({"changed": false, "msg": if fail_on_missing { msg } else { ignored }});
        if fail_on_missing {
            result["failed"] = true.into();
        } else {
            result["file"] = source.clone().into();
        }
        Ok(done(result))
    };
    if !is("exists") {
        let msg = "the remote file does not exist, not transferring, ignored";
        return missing(msg.into(), msg.into());
    }
    if let Some(error) = found.get("error").map(value_text) {
        // Ansible words this by the way it happened to look (stat without become, slurp with
        // it); settle says both: what it means, and the system's reason.
        let msg = if error == "Permission denied" {
            format!("File is not readable: {source} ({error})")
        } else {
            format!("Failed to get information on remote file ({source}): {error}")
        };
        return missing(msg.clone(), format!("{msg}, ignored"));
    }
    if is("isdir") {
        let msg = "remote file is a directory, fetch cannot work on directories";
        return missing(msg.into(), format!("{msg}, not transferring, ignored"));
    }
    if !is("readable") {
        let msg = format!("File is not readable: {source}");
        return missing(msg.clone(), msg);
    }
    let remote_checksum = found.get("checksum").map(value_text).unwrap_or_default();

    let dest = match local_dest(ctx, dest, &source, flat)? {
        Ok(dest) => dest,
        Err(msg) => return Ok(failed(msg)),
    };
    let shown = dest.display().to_string();
    // The copy kept here is hashed in pieces, never read whole.
    let local = dest
        .is_file()
        .then(|| file_digest::<sha1::Sha1>(&dest))
        .flatten();
    if local.as_ref() == Some(&remote_checksum) {
        return Ok(done(json!({
            "changed": false,
            "md5sum": file_digest::<md5::Md5>(&dest),
            "file": source,
            "dest": shown,
            "checksum": remote_checksum,
        })));
    }
    // The bytes come a piece at a time into a temporary file beside `dest`, renamed over it
    // once all are there: never half-written, never whole in memory.
    let mut temporary = match Temporary::beside(&dest) {
        Ok(t) => t,
        Err(e) => return Ok(failed(format!("Failed to fetch the file. {shown}: {e}"))),
    };
    let got = match download(ctx, &source, &mut temporary.file)? {
        Ok(got) => got,
        Err(ActionResult::Done(result, _)) => {
            let msg = result.get("msg").map(value_text).unwrap_or_default();
            return missing(msg.clone(), msg);
        }
        Err(other) => return Ok(other),
    };
    temporary
        .finish(&dest)
        .map_err(|e| format!("Failed to fetch the file. {shown}: {e}"))?;
    let (checksum, md5sum) = (got.sha1, got.md5);
    if validate && checksum != remote_checksum {
        // The file changed between the look and the read.
        return Ok(done(json!({
            "changed": false,
            "failed": true,
            "msg": "checksum mismatch",
            "md5sum": md5sum,
            "file": source,
            "dest": shown,
            "remote_md5sum": null,
            "checksum": checksum,
            "remote_checksum": remote_checksum,
        })));
    }
    Ok(done(json!({
        "changed": true,
        "md5sum": md5sum,
        "dest": shown,
        "remote_md5sum": null,
        "checksum": checksum,
        "remote_checksum": remote_checksum,
    })))
}

/// Where the file goes here: `dest/<inventory_hostname>/<source>`, or with `flat` `dest` itself
/// (`dest/` gets the source's file name). A relative `dest` is the play folder's.
fn local_dest(
    ctx: &ActionContext,
    dest: &str,
    source: &str,
    flat: bool,
) -> Result<Result<PathBuf, String>, String> {
    let dest = if flat {
        if Path::new(dest).is_dir() && !dest.ends_with('/') {
            return Ok(Err("dest is an existing directory, use a trailing slash if you want to fetch src into that directory".into()));
        }
        let mut dest = dest.to_string();
        if dest.ends_with('/') {
            let base = source.rsplit('/').next().unwrap_or(source);
            dest = format!("{dest}{base}");
            if Path::new(&dest).is_dir() {
                return Ok(Err(format!(
                    "calculated dest '{dest}' is an existing directory, use another path that does not point to an existing directory"
                )));
            }
        }
        if dest.starts_with('/') {
            dest
        } else {
            in_play_dir(ctx, &dest)
        }
    } else {
        let host = value_text(&render(
            ctx,
            &Value::String("{{ inventory_hostname }}".into()),
        )?);
        format!("{}/{host}/{source}", in_play_dir(ctx, dest))
    };
    Ok(Ok(PathBuf::from(normalize(&dest))))
}

/// Ansible's `path_dwim`: `~` is the controller user's home, a relative path the play folder's.
fn in_play_dir(ctx: &ActionContext, path: &str) -> String {
    if (path == "~" || path.starts_with("~/"))
        && let Ok(home) = std::env::var("HOME")
    {
        return format!("{home}{}", &path[1..]);
    }
    if path.starts_with('/') {
        return path.to_string();
    }
    ctx.play_dir.join(path).display().to_string()
}

/// Python's `os.path.normpath`: `.`, `..` and repeated slashes folded, without looking at the
/// disk, so `../x` in a source cannot climb out of `dest`'s host folder.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A file being fetched: a temporary name beside `dest`, removed unless it is finished.
struct Temporary {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    finished: bool,
}

impl Temporary {
    fn beside(dest: &Path) -> std::io::Result<Temporary> {
        let folder = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder)?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        // Hosts fetch in parallel threads, maybe to one flat `dest`: each its own temporary name.
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = folder.join(format!(".{name}.settle-{}-{n}", std::process::id()));
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        Ok(Temporary {
            path,
            file,
            finished: false,
        })
    }

    /// Writes out what is buffered and renames the file over `dest`.
    fn finish(mut self, dest: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        self.file.flush()?;
        std::fs::rename(&self.path, dest)?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn done(result: Value) -> ActionResult {
    ActionResult::Done(
        result.as_object().cloned().unwrap_or_default(),
        settle_modules::Plan::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn paths_fold_as_python_normpath() {
        assert_eq!(normalize("out/host//root/x"), "out/host/root/x");
        assert_eq!(
            normalize("/o/localhost/../injection/here.txt"),
            "/o/injection/here.txt"
        );
        assert_eq!(normalize("/../a/./b/"), "/a/b");
        assert_eq!(normalize("../a"), "../a");
    }
}
