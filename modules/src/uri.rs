//! `uri`: one HTTP request, answered with Ansible's result (status, headers with `_` for `-`,
//! `content`, `json`, `redirected`, …) and failed when the status is not one of `status_code`.
//!
//! A request is not a state of the host, so it reports no change, except that a `dest` it
//! writes is a file (written through [`Copy`], changed when its content or attributes differ).
//! Ansible's `uri` does not support check mode: there it is skipped, as Ansible skips it.

use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, boolean, text};
use crate::copy::{Copy, FileAttrs};
use crate::resource::{Resource, parse_args};
use crate::urls::{self, Follow, Options};
use crate::{ModuleError, ModuleSpec, Outcome, Request};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "uri",
    args: &[
        "url",
        "method",
        "body",
        "body_format",
        "headers",
        "status_code",
        "return_content",
        "dest",
        "creates",
        "removes",
        "follow_redirects",
        "timeout",
        "validate_certs",
        "ca_path",
        "url_username",
        "user",
        "url_password",
        "password",
        "force_basic_auth",
        "force",
        "use_proxy",
        "http_agent",
        "unredirected_headers",
        "decompress",
        "use_netrc",
        "unix_socket",
        "ciphers",
        "client_cert",
        "client_key",
        "use_gssapi",
        "owner",
        "group",
        "mode",
        "unsafe_writes",
        "attributes",
        "attr",
        "seuser",
        "serole",
        "setype",
        "selevel",
        "src",
        "remote_src",
        "_content_base64",
    ],
    unsupported: &[],
    free_form: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "text")]
    url: Option<String>,
    #[serde(default, deserialize_with = "text")]
    method: Option<String>,
    body: Option<Value>,
    #[serde(default, deserialize_with = "text")]
    body_format: Option<String>,
    headers: Option<Map<String, Value>>,
    status_code: Option<Value>,
    #[serde(default, deserialize_with = "boolean")]
    return_content: bool,
    dest: Option<PathBuf>,
    creates: Option<PathBuf>,
    removes: Option<PathBuf>,
    #[serde(default, deserialize_with = "text")]
    follow_redirects: Option<String>,
    timeout: Option<u64>,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    validate_certs: bool,
    ca_path: Option<PathBuf>,
    #[serde(default, alias = "user", deserialize_with = "text")]
    url_username: Option<String>,
    #[serde(default, alias = "password", deserialize_with = "text")]
    url_password: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    force_basic_auth: bool,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    use_proxy: bool,
    #[serde(default, deserialize_with = "text")]
    http_agent: Option<String>,
    #[serde(default)]
    unredirected_headers: Vec<String>,
    /// settle asks for no compression, so what arrives is what is meant either way.
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    #[allow(dead_code)]
    decompress: bool,
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    use_netrc: bool,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    #[serde(default)]
    ciphers: Vec<String>,
    unix_socket: Option<PathBuf>,
    #[serde(default, deserialize_with = "boolean")]
    use_gssapi: bool,
    #[serde(default, deserialize_with = "text")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "text")]
    group: Option<String>,
    mode: Option<Mode>,
    #[serde(default, deserialize_with = "boolean")]
    unsafe_writes: bool,
    #[serde(default, alias = "attr", deserialize_with = "text")]
    attributes: Option<String>,
    /// The body from a file: on this host with `remote_src`, else sent by the engine as
    /// `_content_base64`.
    src: Option<PathBuf>,
    /// Read by the engine.
    #[serde(default, deserialize_with = "boolean")]
    #[allow(dead_code)]
    remote_src: bool,
    #[serde(rename = "_content_base64")]
    content_base64: Option<String>,
}

/// `status_code: 200`, `[200, 201]` or `"200,201"`.
fn status_codes(value: Option<&Value>) -> Result<Vec<i64>, ModuleError> {
    let bad = |v: &Value| ModuleError::Args(format!("uri: status_code: {v} is not a number"));
    let one = |v: &Value| -> Result<Vec<i64>, ModuleError> {
        match v {
            Value::Number(n) => n.as_i64().map(|n| vec![n]).ok_or_else(|| bad(v)),
            Value::String(s) => s
                .split(',')
                .map(|p| p.trim().parse::<i64>().map_err(|_| bad(v)))
                .collect(),
            _ => Err(bad(v)),
        }
    };
    match value {
        None | Some(Value::Null) => Ok(vec![200]),
        Some(Value::Array(items)) => {
            let mut codes = Vec::new();
            for item in items {
                codes.extend(one(item)?);
            }
            Ok(codes)
        }
        Some(v) => one(v),
    }
}

/// Python's `json.dumps` with its defaults: `", "` and `": "` between items, non-ASCII as
/// `\uXXXX`.
pub(crate) fn python_json(value: &Value) -> String {
    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    walk(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    string(k, out);
                    out.push_str(": ");
                    walk(item, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}

/// Python's `urllib.parse.quote_plus`.
fn quote_plus(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// Ansible's `form_urlencoded`: a dict or list of pairs, a list value repeating its key.
fn form_urlencoded(body: &Value) -> Result<String, ModuleError> {
    let pairs: Vec<(String, &Value)> = match body {
        Value::String(s) => return Ok(s.clone()),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(pair) if pair.len() == 2 => Ok((value_text(&pair[0]), &pair[1])),
                _ => Err(ModuleError::Failed(
                    "failed to parse body as form_urlencoded: expected a list of pairs".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => return Ok(value_text(other)),
    };
    let mut parts = Vec::new();
    for (key, value) in pairs {
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for v in values.into_iter().filter(|v| !v.is_null()) {
            parts.push(format!(
                "{}={}",
                quote_plus(&key),
                quote_plus(&value_text(v))
            ));
        }
    }
    Ok(parts.join("&"))
}

/// Cookies the response sets, as Ansible's `info['cookies']` and `cookies_string`.
fn cookies(headers: &[(String, String)]) -> (Map<String, Value>, String) {
    let mut map = Map::new();
    for (_, v) in headers.iter().filter(|(k, _)| k == "set-cookie") {
        let pair = v.split(';').next().unwrap_or("");
        if let Some((name, value)) = pair.split_once('=') {
            map.insert(name.trim().into(), value.trim().into());
        }
    }
    let text = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("; ");
    (map, text)
}

/// A temporary file for a download meant for `dest`: in `dest` when it is a folder, else in
/// its folder, else in the system's temporary folder. Removed when dropped.
fn stage_beside(dest: &std::path::Path) -> Result<tempfile::NamedTempFile, ModuleError> {
    let folder = if dest.is_dir() {
        dest.to_path_buf()
    } else {
        dest.parent()
            .filter(|f| !f.as_os_str().is_empty() && f.is_dir())
            .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf)
    };
    tempfile::Builder::new()
        .prefix(".settle-uri.")
        .tempfile_in(&folder)
        .map_err(|e| {
            ModuleError::io(
                format!("create a temporary file in {}", folder.display()),
                e,
            )
        })
}

pub(crate) fn run(request: &Request) -> Result<Outcome, ModuleError> {
    let args: Args = parse_args("uri", &request.args)?;
    let url = args
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ModuleError::Args("missing required arguments: url".into()))?;
    // The engine skips uri in check mode as Ansible's action does; a call that still gets
    // here is answered as Ansible's module would.
    if request.check_mode {
        return Ok(Outcome {
            skipped: true,
            msg: Some("remote module (ansible.legacy.uri) does not support check mode".into()),
            ..Outcome::default()
        });
    }
    let method = args.method.clone().unwrap_or_else(|| "GET".into());
    let method = method.to_uppercase();
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ModuleError::Failed(
            "Parameter 'method' needs to be a single word in uppercase, like GET or POST.".into(),
        ));
    }
    if args.use_gssapi {
        return Err(ModuleError::Failed(urls::GSSAPI_UNAVAILABLE.into()));
    }
    let codes = status_codes(args.status_code.as_ref())?;
    let mut headers: Vec<(String, String)> = args
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    let has_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    let format = args
        .body_format
        .clone()
        .unwrap_or_else(|| "raw".into())
        .to_lowercase();
    let given_body = args.body.as_ref().is_some_and(|b| !b.is_null());
    if given_body && (args.src.is_some() || args.content_base64.is_some()) {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: body|src".into(),
        ));
    }
    let file_body = if let Some(encoded) = &args.content_base64 {
        use base64::Engine as _;
        Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| ModuleError::Args(format!("uri: _content_base64: {e}")))?,
        )
    } else if let Some(src) = &args.src {
        let src = crate::fsutil::expand_path(src);
        Some(std::fs::read(&src).map_err(|_| {
            ModuleError::Failed(format!("Unable to open source file {}", src.display()))
        })?)
    } else {
        None
    };
    let body: Option<Vec<u8>> = match (&args.body, format.as_str()) {
        _ if file_body.is_some() => file_body,
        (None | Some(Value::Null), _) => None,
        (Some(body), "json") => {
            if !has_type {
                headers.push(("Content-Type".into(), "application/json".into()));
            }
            Some(match body {
                Value::String(s) => s.clone().into_bytes(),
                other => python_json(other).into_bytes(),
            })
        }
        (Some(body), "form-urlencoded") => {
            if !has_type {
                headers.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            Some(form_urlencoded(body)?.into_bytes())
        }
        (Some(body), "raw") => Some(value_text(body).into_bytes()),
        (Some(_), "form-multipart") => {
            return Err(ModuleError::Args(
                "uri: body_format form-multipart is not supported by settle yet".into(),
            ));
        }
        (Some(_), other) => {
            return Err(ModuleError::Args(format!(
                "value of body_format must be one of: form-urlencoded, json, raw, form-multipart, got: {other}"
            )));
        }
    };
    if let Some(creates) = &args.creates
        && creates.exists()
    {
        let mut values = Map::new();
        values.insert(
            "stdout".into(),
            format!("skipped, since '{}' exists", creates.display()).into(),
        );
        return Ok(Outcome {
            values,
            ..Outcome::default()
        });
    }
    if let Some(removes) = &args.removes
        && !removes.exists()
    {
        let mut values = Map::new();
        values.insert(
            "stdout".into(),
            format!("skipped, since '{}' does not exist", removes.display()).into(),
        );
        return Ok(Outcome {
            values,
            ..Outcome::default()
        });
    }
    let follow = Follow::parse(args.follow_redirects.as_deref().unwrap_or("safe"))
        .map_err(ModuleError::Args)?;
    let dest = args.dest.as_deref().map(crate::fsutil::expand_path);
    let options = Options {
        validate_certs: args.validate_certs,
        ca_path: args.ca_path.clone(),
        timeout: args.timeout.unwrap_or(30),
        use_proxy: args.use_proxy,
        http_agent: args
            .http_agent
            .clone()
            .unwrap_or_else(|| "ansible-httpget".into()),
        username: args.url_username.clone(),
        password: args.url_password.clone(),
        force_basic_auth: args.force_basic_auth,
        follow,
        headers,
        unredirected_headers: args.unredirected_headers.clone(),
        last_modified: dest
            .as_ref()
            .filter(|d| d.is_file())
            .and_then(|d| std::fs::metadata(d).ok())
            .and_then(|m| m.modified().ok()),
        force: args.force,
        use_netrc: args.use_netrc,
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        ciphers: args.ciphers.clone(),
        unix_socket: args.unix_socket.clone(),
        use_gssapi: args.use_gssapi,
    };
    // With a `dest`, a successful answer's body goes to a temporary file beside it as it
    // arrives (as Ansible's module streams it there), never whole into memory.
    let staged = match &dest {
        Some(dest) => Some(stage_beside(dest)?),
        None => None,
    };
    let started = Instant::now();
    let reply = match &staged {
        Some(file) => {
            let opened = file
                .reopen()
                .map_err(|e| ModuleError::io(format!("open {}", file.path().display()), e))?;
            let mut sink = std::io::BufWriter::new(opened);
            urls::fetch_to(&options, &method, &url, body, &mut sink)
        }
        None => urls::fetch(&options, &method, &url, body),
    };
    let elapsed = started.elapsed().as_secs();
    let streamed = staged
        .as_ref()
        .filter(|_| (200..300).contains(&reply.status));

    let masked = urls::mask_url(&url);
    let mut values = Map::new();
    values.insert("redirected".into(), (reply.url != masked).into());
    for (k, v) in reply.info() {
        values.insert(k.replace('-', "_").to_lowercase(), v);
    }
    if reply.status != -1 {
        let (jar, text) = cookies(&reply.headers);
        values.insert("cookies".into(), jar.into());
        values.insert("cookies_string".into(), text.into());
    }
    values.insert("elapsed".into(), elapsed.into());
    if let Some(location) = reply.header("location") {
        values.insert("location".into(), urls::join_url(&masked, location).into());
    }
    let content_type = reply
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let sub_type = mime.split_once('/').map_or("", |(_, s)| s);
    let sub_type = sub_type.split_once('+').map_or(sub_type, |(_, s)| s);
    let maybe_json = matches!(sub_type, "json" | "javascript");
    let mut changed = false;
    let mut plan = crate::Plan::default();
    if let Some(dest) = &dest
        && reply.status != -1
    {
        let mut path = dest.clone();
        if path.is_dir() {
            path = path.join(urls::disposition_filename(&reply).unwrap_or("index.html".into()));
        }
        if codes.contains(&reply.status) && reply.status != 304 {
            let attrs = FileAttrs {
                owner: args.owner.clone(),
                group: args.group.clone(),
                mode: args.mode.clone(),
                backup: false,
                validate: None,
                unsafe_writes: args.unsafe_writes,
                attributes: args.attributes.clone(),
            };
            let mut copy = match streamed {
                Some(file) => Copy::of_file(path.clone(), file.path().to_path_buf(), attrs),
                None => Copy::of_content(path.clone(), reply.body.clone(), attrs),
            };
            plan = copy.check(request.diff)?;
            if !plan.is_empty() {
                copy.apply(&plan)?;
                changed = true;
            }
        }
        values.insert("path".into(), path.display().to_string().into());
    }
    let shows_content = maybe_json || args.return_content || !codes.contains(&reply.status);
    let content = match streamed {
        // Only what is shown is read back: JSON, `return_content`, or an unexpected status.
        Some(file) if shows_content => {
            let bytes = std::fs::read(file.path())
                .map_err(|e| ModuleError::io(format!("read {}", file.path().display()), e))?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => shows_content.then(|| String::from_utf8_lossy(&reply.body).into_owned()),
    };
    if maybe_json
        && let Some(text) = &content
        && let Ok(json) = serde_json::from_str::<Value>(text)
    {
        values.insert("json".into(), json);
    }
    let msg = values
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    values.remove("msg");
    if args.return_content
        && let Some(text) = &content
    {
        values.insert("content".into(), text.clone().into());
    }
    if !codes.contains(&reply.status) {
        let listed = codes
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ModuleError::FailedWith {
            msg: format!("Status code was {} and not [{listed}]: {msg}", reply.status),
            values,
        });
    }
    Ok(Outcome {
        changed,
        plan,
        msg: Some(msg),
        values,
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_written_as_python_writes_them() {
        let body = serde_json::json!({"a": [1, "é"], "b": null});
        assert_eq!(python_json(&body), r#"{"a": [1, "\u00e9"], "b": null}"#);
    }

    #[test]
    fn form_bodies_repeat_keys_for_lists() {
        let body = serde_json::json!({"q": "a b", "x": ["1", "2"]});
        assert_eq!(form_urlencoded(&body).unwrap(), "q=a+b&x=1&x=2");
    }

    #[test]
    fn status_codes_come_as_numbers_lists_or_text() {
        assert_eq!(status_codes(None).unwrap(), vec![200]);
        let v = serde_json::json!([200, "201"]);
        assert_eq!(status_codes(Some(&v)).unwrap(), vec![200, 201]);
        let v = serde_json::json!("200, 204");
        assert_eq!(status_codes(Some(&v)).unwrap(), vec![200, 204]);
    }
}
