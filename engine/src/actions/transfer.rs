//! File content between the controller and a host, in bounded pieces: `copy` and `template`
//! send what they write through [`copy_content`], `fetch` reads through [`download`].
//!
//! Small content (up to a piece) goes inline in the `copy` call, as it always has. Larger
//! content is hashed here in pieces and the `copy` call first carries only its SHA-1: when the
//! host's file already has it (a no-op re-run) nothing more moves; otherwise the bytes go up a
//! piece per call (`_put`) into a file staged beside the destination, and `copy` takes that
//! file. Either way neither side holds more than a piece or two of the file.

use std::io::{Read, Write};
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use settle_modules::transfer::{CHUNK, NEEDS_CONTENT};
use settle_modules::{Outcome, Request};

use super::{ActionContext, ActionResult, failed, module_call};
use crate::Vars;
use crate::connection::ConnectionError;

/// Where the new content of a `copy` comes from.
pub(super) enum Source<'a> {
    /// A controller file, read in pieces.
    File(&'a Path),
    /// Content made here (a rendered template, a decrypted vault file).
    Bytes(Vec<u8>),
}

impl Source<'_> {
    fn reader(&self) -> Result<Box<dyn Read + '_>, String> {
        match self {
            Source::File(path) => std::fs::File::open(path)
                .map(|f| Box::new(f) as Box<dyn Read>)
                .map_err(|e| format!("copy: could not read {}: {e}", path.display())),
            Source::Bytes(bytes) => Ok(Box::new(bytes.as_slice())),
        }
    }

    fn len(&self) -> Result<u64, String> {
        match self {
            Source::File(path) => std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| format!("copy: could not read {}: {e}", path.display())),
            Source::Bytes(bytes) => Ok(bytes.len() as u64),
        }
    }
}

/// Calls `copy` with `args` and the content of `source`: inline when it is small, else by
/// checksum first and, only when the host's file differs, by a staged upload.
pub(super) fn copy_content(
    ctx: &ActionContext,
    mut args: Vars,
    source: Source<'_>,
) -> Result<ActionResult, String> {
    if source.len()? <= CHUNK as u64 {
        let mut bytes = Vec::new();
        source
            .reader()?
            .read_to_end(&mut bytes)
            .map_err(|e| format!("copy: could not read the source: {e}"))?;
        args.insert(
            "_content_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        );
        return module_call(ctx, "copy", args);
    }
    let (sum, size) = sha1_of(source.reader()?)?;
    args.insert("_content_sha1".into(), sum.into());
    let mut asked = args.clone();
    asked.insert("_content_size".into(), size.into());
    let answer = module_call(ctx, "copy", asked)?;
    let needs_content =
        matches!(&answer, ActionResult::Done(result, _) if result.contains_key(NEEDS_CONTENT));
    if !needs_content {
        return Ok(answer);
    }
    let near = args.get("dest").map(crate::value_text).unwrap_or_default();
    let staged = match upload(ctx, source.reader()?, &near)? {
        Ok(staged) => staged,
        Err(stopped) => return Ok(stopped),
    };
    args.insert("_content_file".into(), staged.into());
    module_call(ctx, "copy", args)
}

/// Gives a module that needs a controller file whole on the host (`unarchive`) its bytes:
/// inline (`_content_base64`) when they fit a piece, else uploaded a piece per call to a file
/// staged in the host's temporary folder (`_content_file`, which the module removes). Answers
/// the result that stopped an upload, if one did.
pub(super) fn attach_file(
    ctx: &ActionContext,
    args: &mut Vars,
    source: Source<'_>,
) -> Result<Option<ActionResult>, String> {
    if source.len()? <= CHUNK as u64 {
        let mut bytes = Vec::new();
        source
            .reader()?
            .read_to_end(&mut bytes)
            .map_err(|e| format!("could not read the source: {e}"))?;
        args.insert(
            "_content_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        );
        return Ok(None);
    }
    match upload(ctx, source.reader()?, "")? {
        Ok(staged) => {
            args.insert("_content_file".into(), staged.into());
            Ok(None)
        }
        Err(stopped) => Ok(Some(stopped)),
    }
}

/// SHA-1 and size of what `reader` gives, read in pieces.
fn sha1_of(mut reader: impl Read) -> Result<(String, u64), String> {
    use sha1::Digest as _;
    let mut hasher = sha1::Sha1::new();
    let size = std::io::copy(&mut reader, &mut hasher)
        .map_err(|e| format!("copy: could not read the source: {e}"))?;
    Ok((hex(&hasher.finalize()), size))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One internal call (`_put`, `_get`) on the task's connection, never in check mode.
fn raw_call(ctx: &ActionContext, module: &str, args: Vars) -> Result<Outcome, Box<ActionResult>> {
    let mut request = Request::new(module, args);
    request.environment = ctx.environment.clone();
    match (ctx.run_module)(&request) {
        Ok(outcome) if outcome.failed => Err(Box::new(failed(
            outcome.msg.unwrap_or_else(|| format!("{module} failed")),
        ))),
        Ok(outcome) => Ok(outcome),
        Err(ConnectionError::Unreachable(msg)) => Err(Box::new(ActionResult::Unreachable(msg))),
        Err(ConnectionError::Failed(msg)) => Err(Box::new(failed(msg))),
    }
}

/// Sends what `reader` gives to a file staged on the host near `near`, a piece per call;
/// answers the staged file's path, or the result that stopped it.
fn upload(
    ctx: &ActionContext,
    mut reader: impl Read,
    near: &str,
) -> Result<Result<String, ActionResult>, String> {
    let mut piece = vec![0u8; CHUNK];
    let mut staged: Option<String> = None;
    let mut offset = 0u64;
    loop {
        let n = read_piece(&mut reader, &mut piece)
            .map_err(|e| format!("copy: could not read the source: {e}"))?;
        if n == 0 && staged.is_some() {
            break;
        }
        let mut args = Vars::new();
        match &staged {
            Some(path) => args.insert("path".into(), path.clone().into()),
            None => args.insert("near".into(), near.into()),
        };
        args.insert("offset".into(), offset.into());
        args.insert(
            "data".into(),
            base64::engine::general_purpose::STANDARD
                .encode(&piece[..n])
                .into(),
        );
        let outcome = match raw_call(ctx, "_put", args) {
            Ok(outcome) => outcome,
            Err(stopped) => return Ok(Err(*stopped)),
        };
        staged = outcome
            .values
            .get("path")
            .and_then(Value::as_str)
            .map(str::to_string);
        offset += n as u64;
        if n < CHUNK {
            break;
        }
    }
    staged
        .map(Ok)
        .ok_or_else(|| "copy: the host did not say where it staged the upload".to_string())
}

/// Fills `buf` as far as the reader goes: a short piece only at the end.
fn read_piece(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// What a download came to: the bytes went into the writer, with these digests.
pub(super) struct Downloaded {
    pub sha1: String,
    pub md5: String,
}

/// Reads the host's file `src` a piece per call (`_get`) into `out`, hashing on the way.
pub(super) fn download(
    ctx: &ActionContext,
    src: &str,
    out: &mut impl Write,
) -> Result<Result<Downloaded, ActionResult>, String> {
    use sha1::Digest as _;
    let (mut sha1, mut md5) = (sha1::Sha1::new(), md5::Md5::new());
    let mut offset = 0u64;
    loop {
        let mut args = Vars::new();
        args.insert("src".into(), src.into());
        args.insert("offset".into(), offset.into());
        args.insert("length".into(), CHUNK.into());
        let outcome = match raw_call(ctx, "_get", args) {
            Ok(outcome) => outcome,
            Err(stopped) => return Ok(Err(*stopped)),
        };
        let data = base64::engine::general_purpose::STANDARD
            .decode(
                outcome
                    .values
                    .get("data")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .map_err(|e| format!("fetch: the host sent content that is not base64: {e}"))?;
        out.write_all(&data)
            .map_err(|e| format!("fetch: could not write: {e}"))?;
        sha1.update(&data);
        md5.update(&data);
        offset += data.len() as u64;
        let eof = outcome.values.get("eof").and_then(Value::as_bool);
        if eof != Some(false) || data.is_empty() {
            break;
        }
    }
    Ok(Ok(Downloaded {
        sha1: hex(&sha1.finalize()),
        md5: hex(&md5.finalize()),
    }))
}

/// A controller file's digest, read in pieces; none when it cannot be read.
pub(super) fn file_digest<D: sha1::Digest + Write>(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = D::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_is_filled_before_the_next_starts() {
        // A reader that gives three bytes at a time still yields whole pieces.
        struct Trickle(Vec<u8>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let mut reader = Trickle((0..10).collect());
        let mut buf = [0u8; 4];
        assert_eq!(read_piece(&mut reader, &mut buf).unwrap(), 4);
        assert_eq!(buf, [0, 1, 2, 3]);
        assert_eq!(read_piece(&mut reader, &mut buf).unwrap(), 4);
        assert_eq!(read_piece(&mut reader, &mut buf).unwrap(), 2);
        assert_eq!(read_piece(&mut reader, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_source_is_hashed_in_pieces() {
        let (sum, size) = sha1_of(&b"test"[..]).unwrap();
        assert_eq!(sum, "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3");
        assert_eq!(size, 4);
    }
}
