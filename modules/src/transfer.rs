//! File content moving between the controller and this host in bounded pieces, so a file of
//! any size costs the agent (and the controller) no more memory than a piece or two.
//!
//! Two internal calls, never named in a playbook:
//! - `_put` appends one piece to an upload staged on this host (the first piece makes the file,
//!   beside the file it is meant for when that folder exists); `copy` then takes the staged file
//!   as its content (`_content_file`) and removes it.
//! - `_get` reads one piece of a file at an offset, for `fetch`.
//!
//! Pieces travel base64-encoded in the agent's JSON lines, one piece per call.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Map;

use crate::resource::parse_args;
use crate::{ModuleError, Outcome, Request};

/// The most bytes one piece carries: small next to the 64 MB a transfer may cost, large
/// enough that the calls' round trips do not dominate.
pub const CHUNK: usize = 1 << 20;

/// What `copy` answers when the content differs and the engine has sent only its checksum
/// (`_content_sha1`): the engine then uploads the bytes and calls again. Never shown to people.
pub const NEEDS_CONTENT: &str = "_settle_needs_content";

/// The name every staged upload starts with: the only files `copy` removes after use.
pub(crate) const STAGED_PREFIX: &str = ".settle-upload.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Put {
    /// The staged file to append to; none for the first piece.
    path: Option<PathBuf>,
    /// The file the upload is meant for: the staged file goes in its folder when there is one.
    near: Option<PathBuf>,
    /// Where this piece starts: the staged file must be exactly this long.
    #[serde(default)]
    offset: u64,
    /// The piece, base64.
    data: String,
}

/// Appends a piece to a staged upload; answers the staged file's `path` and `size`.
pub(crate) fn put(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Put = parse_args("_put", &request.args)?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(args.data.as_bytes())
        .map_err(|e| ModuleError::Args(format!("_put: the piece is not base64: {e}")))?;
    if data.len() > CHUNK {
        return Err(ModuleError::Args(format!(
            "_put: a piece of {} bytes is larger than {CHUNK}",
            data.len()
        )));
    }
    let path = match args.path {
        Some(path) => {
            if !is_staged(&path) {
                return Err(ModuleError::Args(format!(
                    "_put: {} is not a staged upload",
                    path.display()
                )));
            }
            path
        }
        None => stage(args.near.as_deref())?,
    };
    let context = || format!("upload to {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| ModuleError::io(context(), e))?;
    let size = file
        .seek(SeekFrom::End(0))
        .map_err(|e| ModuleError::io(context(), e))?;
    if size != args.offset {
        return Err(ModuleError::Failed(format!(
            "upload to {}: a piece for offset {} came when {size} bytes were there",
            path.display(),
            args.offset
        )));
    }
    file.write_all(&data)
        .map_err(|e| ModuleError::io(context(), e))?;
    let mut values = Map::new();
    values.insert("path".into(), path.display().to_string().into());
    values.insert("size".into(), (size + data.len() as u64).into());
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

/// The staged uploads this agent made: when the connection ends, the ones no `copy` took (a
/// run killed half-way through an upload) are removed, so none is left beside its target.
static STAGED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes the staged uploads that are still there (`copy` removes the ones it takes).
pub fn remove_staged_leftovers() {
    let staged = std::mem::take(&mut *STAGED.lock().unwrap_or_else(|e| e.into_inner()));
    for path in staged {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether `path` names a staged upload (by its file name).
pub(crate) fn is_staged(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(STAGED_PREFIX))
}

/// A new, empty staged file readable only by this user: in the folder of `near` (or in `near`,
/// a folder), so the final rename stays on one file system, else in the temporary folder.
fn stage(near: Option<&Path>) -> Result<PathBuf, ModuleError> {
    let near = near.map(crate::fsutil::expand_path);
    let folders = near
        .iter()
        .flat_map(|n| [Some(n.clone()), n.parent().map(Path::to_path_buf)])
        .flatten()
        .filter(|f| !f.as_os_str().is_empty() && f.is_dir())
        .chain([std::env::temp_dir()]);
    let mut last = None;
    for folder in folders {
        match tempfile::Builder::new()
            .prefix(STAGED_PREFIX)
            .tempfile_in(&folder)
        {
            Ok(file) => {
                let path = file
                    .keep()
                    .map(|(_, path)| path)
                    .map_err(|e| ModuleError::io("upload", e.error))?;
                STAGED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(path.clone());
                return Ok(path);
            }
            Err(e) => last = Some((folder, e)),
        }
    }
    Err(match last {
        Some((folder, e)) => ModuleError::io(format!("upload into {}", folder.display()), e),
        None => ModuleError::Failed("upload: no folder to stage it in".into()),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Get {
    src: PathBuf,
    #[serde(default)]
    offset: u64,
    length: Option<usize>,
}

/// Reads up to `length` bytes (at most a [`CHUNK`]) of `src` from `offset`; answers them as
/// base64 `data`, and `eof` when the file ends within them.
pub(crate) fn get(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Get = parse_args("_get", &request.args)?;
    let src = crate::fsutil::expand_path(&args.src);
    let context = || format!("read {}", src.display());
    let mut file = std::fs::File::open(&src).map_err(|e| ModuleError::io(context(), e))?;
    file.seek(SeekFrom::Start(args.offset))
        .map_err(|e| ModuleError::io(context(), e))?;
    let length = args.length.unwrap_or(CHUNK).min(CHUNK);
    let mut data = Vec::with_capacity(length);
    Read::by_ref(&mut file)
        .take(length as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| ModuleError::io(context(), e))?;
    // One byte more than asked for says whether the file goes on.
    let eof = data.len() <= length;
    data.truncate(length);
    let mut values = Map::new();
    values.insert(
        "data".into(),
        base64::engine::general_purpose::STANDARD
            .encode(&data)
            .into(),
    );
    values.insert("eof".into(), eof.into());
    Ok(Outcome {
        values,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn call(module: &str, args: Value) -> Outcome {
        let Value::Object(args) = args else {
            panic!("arguments are an object")
        };
        crate::run(&Request::new(module, args))
    }

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    #[test]
    fn pieces_put_in_order_make_the_file_beside_its_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.bin");
        let first = call("_put", json!({"near": dest, "data": b64(b"hello ")}));
        assert!(!first.failed, "{first:?}");
        let path = first.values["path"].as_str().unwrap().to_string();
        assert_eq!(Path::new(&path).parent(), Some(dir.path()));
        assert!(is_staged(Path::new(&path)));
        let second = call(
            "_put",
            json!({"path": path, "offset": 6, "data": b64(b"world")}),
        );
        assert_eq!(second.values["size"], 11);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    }

    #[test]
    fn a_piece_out_of_order_or_to_another_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = call("_put", json!({"near": dir.path(), "data": b64(b"abc")}));
        let path = first.values["path"].as_str().unwrap().to_string();
        let skipped = call(
            "_put",
            json!({"path": path, "offset": 10, "data": b64(b"x")}),
        );
        assert!(skipped.failed);
        assert!(skipped.msg.unwrap().contains("offset 10"));
        let other = dir.path().join("victim");
        std::fs::write(&other, "keep").unwrap();
        let refused = call("_put", json!({"path": other, "data": b64(b"x")}));
        assert!(refused.failed);
        assert_eq!(std::fs::read(&other).unwrap(), b"keep");
    }

    #[test]
    fn pieces_read_back_the_whole_file_and_say_where_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f");
        let content: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        std::fs::write(&src, &content).unwrap();
        let mut got = Vec::new();
        let mut pieces = 0;
        loop {
            let out = call(
                "_get",
                json!({"src": src, "offset": got.len(), "length": 300}),
            );
            assert!(!out.failed, "{out:?}");
            let data = base64::engine::general_purpose::STANDARD
                .decode(out.values["data"].as_str().unwrap())
                .unwrap();
            got.extend(data);
            pieces += 1;
            if out.values["eof"] == true {
                break;
            }
        }
        assert_eq!(got, content);
        assert_eq!(pieces, 4);
        // A file that ends exactly at a piece's end says so with that piece.
        let out = call("_get", json!({"src": src, "offset": 700, "length": 300}));
        assert_eq!(out.values["eof"], true);
    }

    #[test]
    fn a_piece_is_never_larger_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f");
        std::fs::write(&src, vec![7u8; CHUNK + 10]).unwrap();
        let out = call("_get", json!({"src": src, "length": CHUNK * 4}));
        let data = base64::engine::general_purpose::STANDARD
            .decode(out.values["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data.len(), CHUNK);
        assert_eq!(out.values["eof"], false);
        let big = b64(&vec![0u8; CHUNK + 1]);
        assert!(call("_put", json!({"near": dir.path(), "data": big})).failed);
    }
}
