//! Fetching a small file by URL on the host (an apt signing key for `apt_key` and
//! `deb822_repository`). `http://` is spoken directly (HTTP/1.0, redirects followed);
//! `https://` goes through the host's `curl` or `wget` when it has one, since settle carries no
//! TLS stack on the host, and is refused by name otherwise.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MAX_BYTES: usize = 16 * 1024 * 1024;
const MAX_REDIRECTS: usize = 5;

/// The body of `url`, or a message saying what went wrong.
pub(crate) fn fetch(url: &str, validate_certs: bool) -> Result<Vec<u8>, String> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        if url.starts_with("https://") {
            return fetch_with_tool(&url, validate_certs);
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!(
                "unsupported URL scheme in {url:?} (http and https only)"
            ));
        };
        match get(rest)? {
            Answer::Body(body) => return Ok(body),
            Answer::Redirect(to) => {
                url = if to.starts_with("http://") || to.starts_with("https://") {
                    to
                } else {
                    let host = rest.split('/').next().unwrap_or("");
                    format!("http://{host}/{}", to.trim_start_matches('/'))
                };
            }
        }
    }
    Err(format!("too many redirects fetching {url}"))
}

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

fn get(rest: &str) -> Result<Answer, String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let address = if authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let host = authority;
    let stream = TcpStream::connect(&address).map_err(|e| format!("connect to {address}: {e}"))?;
    let timeout = Some(Duration::from_secs(30));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    let mut stream = stream;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: settle\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {address}: {e}"))?;
    let mut reply = Vec::new();
    stream
        .take(MAX_BYTES as u64 + 65536)
        .read_to_end(&mut reply)
        .map_err(|e| format!("read from {address}: {e}"))?;
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer from {address}"))?;
    let head = String::from_utf8_lossy(&reply[..end]).into_owned();
    let body = reply[end + 4..].to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad HTTP status line {status_line:?}"))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    match status {
        200 => {
            if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
                return Err("chunked HTTP answer to an HTTP/1.0 request".into());
            }
            Ok(Answer::Body(body))
        }
        301 | 302 | 303 | 307 | 308 => header("location")
            .map(Answer::Redirect)
            .ok_or_else(|| format!("HTTP Error {status}: redirect without Location")),
        _ => Err(format!(
            "HTTP Error {status}: {}",
            status_line.splitn(3, ' ').nth(2).unwrap_or("")
        )),
    }
}

fn fetch_with_tool(url: &str, validate_certs: bool) -> Result<Vec<u8>, String> {
    let curl = crate::bin_path::find("curl").map(|p| p.display().to_string());
    let wget = crate::bin_path::find("wget").map(|p| p.display().to_string());
    let argv: Vec<String> = match (curl, wget) {
        (Some(curl), _) => {
            let mut a = vec![curl, "-fsSL".into(), "--max-time".into(), "60".into()];
            if !validate_certs {
                a.push("-k".into());
            }
            a.push(url.into());
            a
        }
        (None, Some(wget)) => {
            let mut a = vec![wget, "-q".into(), "-O-".into(), "--timeout=60".into()];
            if !validate_certs {
                a.push("--no-check-certificate".into());
            }
            a.push(url.into());
            a
        }
        (None, None) => {
            return Err(format!(
                "settle fetches https URLs on the host with curl or wget, and this host has \
                 neither; install one, or fetch {url} with get_url and give its path"
            ));
        }
    };
    let output = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", argv[0]))?;
    if !output.status.success() {
        return Err(format!(
            "{} {url}: {}",
            argv[0],
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}
