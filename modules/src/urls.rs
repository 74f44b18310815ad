//! HTTP requests for `get_url`, `uri` and `unarchive` from a URL, as Ansible's
//! `module_utils/urls.py` makes them: its redirect rules (`follow_redirects`), basic auth (sent
//! at once with `force_basic_auth`, else after a 401 that asks for it), `If-Modified-Since`, its
//! `User-agent`, the host's CA bundle (or only `ca_path`), and its `info` of the response
//! (`status`, `url`, `msg`, headers lower-cased).
//!
//! Redirects are followed here, not by the client, so the rules and `unredirected_headers` are
//! Ansible's and the final URL is known.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use ureq::http;

/// How redirects are followed (Ansible's `follow_redirects`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Follow {
    /// `none`/`no`: a redirect is the answer.
    Never,
    /// `safe`: only for GET and HEAD.
    Safe,
    /// `all`/`yes`/`urllib2`.
    All,
}

impl Follow {
    pub(crate) fn parse(word: &str) -> Result<Follow, String> {
        match word {
            "none" | "no" | "false" => Ok(Follow::Never),
            "safe" => Ok(Follow::Safe),
            "all" | "yes" | "true" | "urllib2" | "urllib" => Ok(Follow::All),
            other => Err(format!(
                "value of follow_redirects must be one of: all, no, none, safe, urllib2, yes, got: {other}"
            )),
        }
    }
}

/// What a request is made with: Ansible's `url_argument_spec` and friends.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub validate_certs: bool,
    pub ca_path: Option<PathBuf>,
    pub timeout: u64,
    pub use_proxy: bool,
    pub http_agent: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub force_basic_auth: bool,
    pub follow: Follow,
    pub headers: Vec<(String, String)>,
    pub unredirected_headers: Vec<String>,
    /// `If-Modified-Since` (unless `force`).
    pub last_modified: Option<SystemTime>,
    pub force: bool,
    /// Credentials from `$NETRC` or `~/.netrc` for a URL that names none.
    pub use_netrc: bool,
    /// A PEM certificate (chain) to authenticate with, and its key (or the key is in it).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// OpenSSL cipher names and keywords (see [`cipher_suites`]).
    pub ciphers: Vec<String>,
    /// HTTP over this Unix socket instead of TCP (the URL's host only names the site).
    pub unix_socket: Option<PathBuf>,
    /// Kerberos/Negotiate authentication: refused (see [`GSSAPI_UNAVAILABLE`]).
    pub use_gssapi: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            validate_certs: true,
            ca_path: None,
            timeout: 10,
            use_proxy: true,
            http_agent: "ansible-httpget".into(),
            username: None,
            password: None,
            force_basic_auth: false,
            follow: Follow::All,
            headers: Vec::new(),
            unredirected_headers: Vec::new(),
            last_modified: None,
            force: false,
            use_netrc: true,
            client_cert: None,
            client_key: None,
            ciphers: Vec::new(),
            unix_socket: None,
            use_gssapi: false,
        }
    }
}

/// What `use_gssapi: true` fails with: settle has no GSSAPI, as Ansible fails on a host whose
/// Python lacks the `gssapi` library (the same advice, in settle's words).
pub(crate) const GSSAPI_UNAVAILABLE: &str = "use_gssapi=True needs GSSAPI (Kerberos/SPNEGO) \
     authentication, which settle does not have (Ansible fails the same way when the host's \
     Python lacks the gssapi library, https://pypi.org/project/gssapi/). Authenticate with \
     url_username/url_password or client_cert/client_key instead.";

/// A response, as Ansible's `fetch_url` describes it in its `info`.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status, or -1 when no response came (connection, TLS, timeout).
    pub status: i64,
    /// The URL that answered (after redirects).
    pub url: String,
    /// `OK (N bytes)`, `HTTP Error 404: Not Found`, `Connection failure: …`.
    pub msg: String,
    /// Response headers, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Ansible's `info` dict: headers, then `url`, `status`, `msg`.
    pub(crate) fn info(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut info = serde_json::Map::new();
        for (k, v) in &self.headers {
            info.insert(k.clone(), v.clone().into());
        }
        info.insert("url".into(), self.url.clone().into());
        info.insert("status".into(), self.status.into());
        info.insert("msg".into(), self.msg.clone().into());
        info
    }

    fn failure(url: &str, msg: String) -> Reply {
        Reply {
            status: -1,
            url: url.to_string(),
            msg,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// Ansible's `mask_url`: the password of a `user:password@` URL shown as `********`.
pub(crate) fn mask_url(url: &str) -> String {
    match split_credentials(url) {
        (clean, Some((user, Some(_)))) => with_userinfo(&clean, &format!("{user}:********")),
        _ => url.to_string(),
    }
}

fn with_userinfo(url: &str, userinfo: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{userinfo}@{rest}"),
        None => url.to_string(),
    }
}

/// The URL without `user:password@`, and those credentials.
type Credentials = (String, Option<String>);

fn split_credentials(url: &str) -> (String, Option<Credentials>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let clean = format!("{scheme}://{host}{}", &rest[authority_end..]);
    let decode = |s: &str| percent_decode(s);
    let creds = match userinfo.split_once(':') {
        Some((u, p)) => (decode(u), Some(decode(p))),
        None => (decode(userinfo), None),
    };
    (clean, Some(creds))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host name of a URL, without port or brackets.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_string();
    }
    host.split(':').next().unwrap_or("").to_lowercase()
}

/// `(login, password)` for `host` from `$NETRC` or `~/.netrc` (its `machine` entry, else its
/// `default`), as Python's `netrc` finds them; both must be given for Ansible to use them.
fn netrc_login(host: &str) -> Option<(String, String)> {
    let path = std::env::var_os("NETRC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))?;
    netrc_entry(&std::fs::read_to_string(path).ok()?, host)
}

fn netrc_entry(text: &str, host: &str) -> Option<(String, String)> {
    let mut tokens = text.split_whitespace();
    let (mut found, mut default) = (None, None);
    let mut current: Option<(bool, Option<String>, Option<String>)> = None;
    let mut finish = |entry: Option<(bool, Option<String>, Option<String>)>| {
        if let Some((is_default, Some(login), Some(password))) = entry {
            if is_default {
                default.get_or_insert((login, password));
            } else {
                found.get_or_insert((login, password));
            }
        }
    };
    while let Some(token) = tokens.next() {
        match token {
            "machine" => {
                finish(current.take());
                let name = tokens.next().unwrap_or("");
                current = name
                    .eq_ignore_ascii_case(host)
                    .then_some((false, None, None));
            }
            "default" => {
                finish(current.take());
                current = Some((true, None, None));
            }
            "login" | "password" | "account" | "macdef" => {
                let value = tokens.next().map(str::to_string);
                if let Some(entry) = current.as_mut() {
                    match token {
                        "login" => entry.1 = value,
                        "password" => entry.2 = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    finish(current.take());
    found.or(default)
}

/// `Location` resolved against the URL it came from.
pub(crate) fn join_url(base: &str, location: &str) -> String {
    let location = location.replace(' ', "%20");
    if location.contains("://") {
        return location;
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return location;
    };
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = &rest[authority_end..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    if location.starts_with('?') {
        return format!("{origin}{path}{location}");
    }
    let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let folder = if folder.is_empty() { "/" } else { folder };
    format!("{origin}{folder}{location}")
}

/// An HTTP date (`If-Modified-Since`), as `email.utils.formatdate(usegmt=True)` writes it.
fn http_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::fsutil::civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1).clamp(0, 11) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The CA certificates a request trusts: only `ca_path` when given (as Ansible), else the
/// host's bundle.
fn root_certs(ca_path: Option<&PathBuf>) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let files: Vec<PathBuf> = match ca_path {
        Some(p) => vec![p.clone()],
        None => std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .into_iter()
            .chain(
                [
                    "/etc/ssl/certs/ca-certificates.crt",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                    "/etc/ssl/ca-bundle.pem",
                    "/etc/ssl/cert.pem",
                ]
                .map(PathBuf::from),
            )
            .filter(|p| p.is_file())
            .take(1)
            .collect(),
    };
    let mut certs = Vec::new();
    for file in files {
        let pem = std::fs::read(&file).map_err(|e| {
            format!(
                "Failed to read CA certificates from {}: {e}",
                file.display()
            )
        })?;
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(cert)) = item {
                certs.push(cert);
            }
        }
    }
    Ok(certs)
}

/// The cipher suites of settle's TLS library (rustls with *ring*), TLS 1.3's first. These have
/// no keywords: OpenSSL's cipher list leaves TLS 1.3 alone, and so does a `ciphers` that names
/// no TLS 1.3 suite.
fn known_suites() -> Vec<Suite> {
    use rustls::crypto::ring::cipher_suite as cs;
    const RSA: &[&str] = &["aRSA", "RSA"];
    const ECDSA: &[&str] = &["aECDSA", "ECDSA"];
    const GCM256: &[&str] = &["AES256", "AESGCM", "AES", "SHA384"];
    const GCM128: &[&str] = &["AES128", "AESGCM", "AES", "SHA256"];
    const CHACHA: &[&str] = &["CHACHA20", "SHA256"];
    vec![
        (
            "TLS_AES_256_GCM_SHA384",
            cs::TLS13_AES_256_GCM_SHA384,
            &[],
            &[],
        ),
        (
            "TLS_AES_128_GCM_SHA256",
            cs::TLS13_AES_128_GCM_SHA256,
            &[],
            &[],
        ),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            &[],
            &[],
        ),
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ECDSA,
            GCM256,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ECDSA,
            GCM128,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ECDSA,
            CHACHA,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            RSA,
            GCM256,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            RSA,
            GCM128,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            RSA,
            CHACHA,
        ),
    ]
}

/// OpenSSL's name, the suite, and the keywords that select it (with [`TLS12_KEYWORDS`]).
type Suite = (
    &'static str,
    rustls::SupportedCipherSuite,
    &'static [&'static str],
    &'static [&'static str],
);

/// Keywords every TLS 1.2 suite settle has answers to (all are ECDHE, AEAD, "HIGH").
const TLS12_KEYWORDS: &[&str] = &[
    "ALL", "DEFAULT", "HIGH", "ECDHE", "EECDH", "kECDHE", "kEECDH", "TLSv1.2",
];

/// The cipher suites an OpenSSL cipher list (Ansible's `ciphers`, joined with `:`) selects
/// among those settle's TLS library has, in its order. Names are OpenSSL's or IANA's; the
/// keywords `ALL`, `DEFAULT`, `HIGH`, `ECDHE`, `aRSA`, `aECDSA`, `AESGCM`, `AES128`, `AES256`,
/// `CHACHA20`, … and `A+B` (both), `!X` and `-X` (without), `+X` (last) work as in OpenSSL. A
/// cipher settle's TLS lacks (CBC, RSA key exchange, 3DES, …) is an error that names it;
/// excluding one is harmless. TLS 1.3 suites stay on unless the list names some.
pub(crate) fn cipher_suites(
    ciphers: &[String],
) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    let known = known_suites();
    let matches = |word: &str| -> Option<Vec<usize>> {
        let mut all: Option<Vec<usize>> = None;
        for part in word.split('+') {
            let hits: Vec<usize> = known
                .iter()
                .enumerate()
                .filter(|(i, (name, suite, auth, tags))| {
                    name.eq_ignore_ascii_case(part)
                        || format!("{:?}", suite.suite()).eq_ignore_ascii_case(part)
                        || auth.contains(&part)
                        || tags.contains(&part)
                        || (*i >= 3 && TLS12_KEYWORDS.contains(&part))
                })
                .map(|(i, _)| i)
                .collect();
            if hits.is_empty() {
                return None;
            }
            all = Some(match all {
                None => hits,
                Some(prev) => prev.into_iter().filter(|i| hits.contains(i)).collect(),
            });
        }
        all
    };
    let mut chosen: Vec<usize> = Vec::new();
    let mut banned: Vec<usize> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for word in ciphers
        .iter()
        .flat_map(|c| c.split([':', ',', ' ']))
        .filter(|w| !w.is_empty() && !w.starts_with('@'))
    {
        let (op, name) = match word.chars().next() {
            Some(c @ ('!' | '-' | '+')) if word.len() > 1 => (c, &word[1..]),
            _ => (' ', word),
        };
        let Some(hits) = matches(name) else {
            if op == ' ' || op == '+' {
                unknown.push(name.to_string());
            }
            continue;
        };
        match op {
            '!' => {
                chosen.retain(|i| !hits.contains(i));
                banned.extend(hits);
            }
            '-' => chosen.retain(|i| !hits.contains(i)),
            '+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    chosen.iter().partition(|i| hits.contains(i));
                chosen = kept.into_iter().chain(moved).collect();
            }
            _ => {
                for i in hits {
                    if !chosen.contains(&i) && !banned.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    if !unknown.is_empty() {
        let offered: Vec<&str> = known.iter().map(|(n, ..)| *n).collect();
        return Err(format!(
            "ciphers: {} not available in settle's TLS library (rustls), which has only these \
             suites (OpenSSL names): {}",
            unknown.join(", "),
            offered.join(", ")
        ));
    }
    let names_tls13 = chosen.iter().any(|i| *i < 3);
    if !names_tls13 {
        chosen.extend(0..3);
    }
    Ok(chosen.into_iter().map(|i| known[i].1).collect())
}

/// The client certificate (chain) and key of `client_cert`/`client_key`, checked to load and
/// to match each other.
fn client_identity(
    cert: &Path,
    key: Option<&Path>,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<ureq::tls::ClientCert, String> {
    use rustls::pki_types::pem::PemObject;
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| {
            format!(
                "Failed to read the client certificate file {}: {e}",
                p.display()
            )
        })
    };
    let cert_pem = read(cert)?;
    let key_path = key.unwrap_or(cert);
    let key_pem = match key {
        Some(k) => read(k)?,
        None => cert_pem.clone(),
    };
    let chain: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&cert_pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if chain.is_empty() {
        return Err(format!(
            "client_cert {}: no PEM certificate in it",
            cert.display()
        ));
    }
    let no_key = || {
        format!(
            "client_key {}: no unencrypted PEM private key in it{}",
            key_path.display(),
            if key.is_none() {
                " (give client_key, or put the key in client_cert's file)"
            } else {
                ""
            }
        )
    };
    let key_der =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| no_key())?;
    let ders = chain
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
        .collect();
    rustls::sign::CertifiedKey::from_der(ders, key_der, provider).map_err(|e| {
        format!(
            "client_cert {} and client_key {} cannot be used together: {e}",
            cert.display(),
            key_path.display()
        )
    })?;
    let key = ureq::tls::PrivateKey::from_pem(&key_pem).map_err(|_| no_key())?;
    Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
}

fn agent(options: &Options) -> Result<ureq::Agent, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !options.ciphers.is_empty() {
        provider.cipher_suites = cipher_suites(&options.ciphers)?;
    }
    let identity = match &options.client_cert {
        Some(cert) => Some(client_identity(
            cert,
            options.client_key.as_deref(),
            &provider,
        )?),
        None => None,
    };
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(provider))
        .client_cert(identity);
    if options.validate_certs {
        let certs = root_certs(options.ca_path.as_ref())?;
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
    } else {
        tls = tls.disable_verification(true);
    }
    let timeout = Some(crate::clock::whole_seconds(options.timeout.max(1)));
    let proxy = if options.use_proxy && options.unix_socket.is_none() {
        ureq::Proxy::try_from_env()
    } else {
        None
    };
    let config = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(proxy)
        .allow_non_standard_methods(true)
        .user_agent(options.http_agent.as_str())
        .timeout_connect(timeout)
        .timeout_per_read(timeout)
        .timeout_per_write(timeout)
        .build();
    Ok(match &options.unix_socket {
        Some(socket) => {
            use ureq::unversioned::transport::{Connector, RustlsConnector};
            let connector = unix::UnixConnector(socket.clone()).chain(RustlsConnector::default());
            ureq::Agent::with_parts(config, connector, unix::NoResolver)
        }
        None => config.new_agent(),
    })
}

/// HTTP over a Unix socket (Ansible's `UnixHTTPConnection`): ureq's transport on a
/// `UnixStream`, TLS on top for `https` URLs, and no name lookup.
mod unix {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    use ureq::Error;
    use ureq::config::Config;
    use ureq::http::Uri;
    use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
    use ureq::unversioned::transport::{
        Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
    };

    #[derive(Debug)]
    pub(super) struct UnixConnector(pub PathBuf);

    impl Connector<()> for UnixConnector {
        type Out = UnixTransport;

        fn connect(
            &self,
            details: &ConnectionDetails,
            _chained: Option<()>,
        ) -> Result<Option<UnixTransport>, Error> {
            let stream = UnixStream::connect(&self.0).map_err(|e| {
                Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("Invalid Socket File ({}): {e}", self.0.display()),
                ))
            })?;
            let config = details.config;
            Ok(Some(UnixTransport {
                stream,
                buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            }))
        }
    }

    #[derive(Debug)]
    pub(super) struct UnixTransport {
        stream: UnixStream,
        buffers: LazyBuffers,
    }

    fn timed_out(e: std::io::Error, timeout: NextTimeout) -> Error {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                Error::Timeout(timeout.reason)
            }
            _ => Error::Io(e),
        }
    }

    impl Transport for UnixTransport {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }

        fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
            let timeout = timeout.for_write();
            self.stream
                .set_write_timeout(timeout.not_zero().map(|t| *t))?;
            let output = &self.buffers.output()[..amount];
            self.stream
                .write_all(output)
                .map_err(|e| timed_out(e, timeout))
        }

        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
            let timeout = timeout.for_read();
            self.stream
                .set_read_timeout(timeout.not_zero().map(|t| *t))?;
            let input = self.buffers.input_append_buf();
            let amount = loop {
                match self.stream.read(input) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other.map_err(|e| timed_out(e, timeout))?,
                }
            };
            self.buffers.input_appended(amount);
            Ok(amount > 0)
        }

        fn is_open(&mut self) -> bool {
            // A pooled connection is not reused: each request opens the socket anew.
            false
        }
    }

    /// The URL's host is not looked up: the socket is the way there.
    #[derive(Debug)]
    pub(super) struct NoResolver;

    impl Resolver for NoResolver {
        fn resolve(
            &self,
            _uri: &Uri,
            _config: &Config,
            _timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, Error> {
            let mut addrs = self.empty();
            addrs.push(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
            Ok(addrs)
        }
    }
}

/// Python's `http.client.responses` reason phrase, for `HTTP Error 404: Not Found`.
fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The body of a GET of `url` with Ansible's defaults (an apt signing key for `apt_key` and
/// `deb822_repository`), or a message saying what went wrong.
pub(crate) fn get_bytes(url: &str, validate_certs: bool) -> Result<Vec<u8>, String> {
    let options = Options {
        validate_certs,
        ..Options::default()
    };
    let reply = fetch(&options, "GET", url, None);
    if reply.status == 200 {
        Ok(reply.body)
    } else {
        Err(format!("failed to fetch {}: {}", mask_url(url), reply.msg))
    }
}

/// Makes a request as Ansible's `fetch_url` does; never fails: a request that got no answer
/// has status -1 and says why in `msg`.
pub(crate) fn fetch(options: &Options, method: &str, url: &str, body: Option<Vec<u8>>) -> Reply {
    fetch_into(options, method, url, body, None)
}

/// [`fetch`], with a successful (2xx) answer's body written to `sink` as it arrives instead of
/// kept in [`Reply::body`] (a download of any size in bounded memory). Other answers' bodies
/// are kept as usual; a failure to write ends the request with status -1.
pub(crate) fn fetch_to(
    options: &Options,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    sink: &mut dyn Write,
) -> Reply {
    fetch_into(options, method, url, body, Some(sink))
}

fn fetch_into(
    options: &Options,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    mut sink: Option<&mut dyn Write>,
) -> Reply {
    let masked = mask_url(url);
    if options.use_gssapi {
        return Reply::failure(&masked, GSSAPI_UNAVAILABLE.into());
    }
    if let Some(path) = url.strip_prefix("file://") {
        return local_file(url, &percent_decode(path), sink);
    }
    let (clean, credentials) = split_credentials(url);
    let (mut username, mut password) = (options.username.clone(), options.password.clone());
    if username.is_none()
        && let Some((u, p)) = credentials
    {
        username = Some(u);
        password = p;
    }
    let mut send_auth = options.force_basic_auth;
    if username.is_none()
        && options.use_netrc
        && let Some((login, secret)) = netrc_login(&url_host(&clean))
    {
        (username, password) = (Some(login), Some(secret));
        send_auth = true;
    }
    let auth = username.as_ref().map(|u| {
        let pair = format!("{u}:{}", password.as_deref().unwrap_or(""));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    });
    let agent = match agent(options) {
        Ok(agent) => agent,
        Err(msg) => return Reply::failure(&masked, msg),
    };
    let mut headers: Vec<(String, String)> = options.headers.clone();
    if !options.force
        && let Some(time) = options.last_modified
    {
        headers.push(("If-Modified-Since".into(), http_date(time)));
    }
    let mut method = method.to_string();
    let mut body = body;
    let mut current = clean;
    let mut redirected = false;
    for _ in 0..=10 {
        let mut builder = http::Request::builder()
            .method(method.as_str())
            .uri(current.as_str());
        for (k, v) in &headers {
            let dropped = redirected
                && options
                    .unredirected_headers
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(k));
            if !dropped {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        if send_auth && let Some(auth) = &auth {
            builder = builder.header("Authorization", auth.as_str());
        }
        let request = match builder.body(body.clone().unwrap_or_default()) {
            Ok(r) => r,
            Err(e) => return Reply::failure(&masked, format!("Request failed: {e}")),
        };
        let response = match agent.run(request) {
            Ok(r) => r,
            Err(e) => return Reply::failure(&mask_url(&current), connection_failure(e)),
        };
        let status = response.status().as_u16();
        let response_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let header = |name: &str| {
            response_headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        // urllib's HTTPBasicAuthHandler: credentials go only after the server asks for them.
        if status == 401
            && !send_auth
            && auth.is_some()
            && header("www-authenticate").is_some_and(|h| h.to_ascii_lowercase().contains("basic"))
        {
            send_auth = true;
            continue;
        }
        let location = header("location");
        let is_redirect = matches!(status, 301 | 302 | 303 | 307 | 308) && location.is_some();
        let follows = match options.follow {
            Follow::Never => false,
            Follow::Safe => method == "GET" || method == "HEAD",
            Follow::All => true,
        };
        if is_redirect && follows {
            let next = join_url(&current, location.as_deref().unwrap_or(""));
            if !matches!(status, 307 | 308) {
                body = None;
                headers.retain(|(k, _)| {
                    !["content-length", "content-type", "transfer-encoding"]
                        .contains(&k.to_ascii_lowercase().as_str())
                });
                if (status == 303 || status == 302) && method != "HEAD"
                    || (status == 301 && method == "POST")
                {
                    method = "GET".into();
                }
            }
            current = next;
            redirected = true;
            continue;
        }
        let mut bytes = Vec::new();
        let mut reader = response.into_body().into_reader();
        let read = match sink.take() {
            Some(sink) if (200..300).contains(&status) => copy_body(&mut reader, sink),
            _ => reader.read_to_end(&mut bytes).map(|_| ()),
        };
        if let Err(e) = read {
            return Reply::failure(
                &mask_url(&current),
                format!("Connection failure: failed to read the response: {e}"),
            );
        }
        let msg = if (200..300).contains(&status) {
            format!(
                "OK ({} bytes)",
                header("content-length").unwrap_or_else(|| "unknown".into())
            )
        } else {
            format!("HTTP Error {status}: {}", reason(status))
        };
        return Reply {
            status: i64::from(status),
            url: mask_url(&current),
            msg,
            headers: response_headers,
            body: bytes,
        };
    }
    Reply::failure(
        &masked,
        "HTTP Error 310: The HTTP server returned a redirect error that would lead to an infinite loop."
            .into(),
    )
}

/// Moves a body into `sink` in pieces; an error names the side that failed.
fn copy_body(reader: &mut dyn Read, sink: &mut dyn Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return sink.flush();
        }
        sink.write_all(&buf[..n]).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot write the download: {e}"))
        })?;
    }
}

/// A `file://` URL, as urllib's file handler answers it (its bytes into `sink`, when given).
fn local_file(url: &str, path: &str, sink: Option<&mut dyn Write>) -> Reply {
    let read = match sink {
        Some(sink) => std::fs::File::open(path).and_then(|mut file| {
            let len = file.metadata()?.len();
            copy_body(&mut file, sink)?;
            Ok((Vec::new(), len))
        }),
        None => std::fs::read(path).map(|body| {
            let len = body.len() as u64;
            (body, len)
        }),
    };
    match read {
        Ok((body, len)) => Reply {
            status: 200,
            url: url.to_string(),
            msg: format!("OK ({len} bytes)"),
            headers: vec![("content-length".into(), len.to_string())],
            body,
        },
        Err(e) => Reply::failure(
            url,
            format!(
                "Request failed: <urlopen error [Errno {}] {}: '{path}'>",
                e.raw_os_error().unwrap_or(0),
                e.kind()
            ),
        ),
    }
}

fn connection_failure(e: ureq::Error) -> String {
    let text = e.to_string();
    match e {
        ureq::Error::Timeout(_) => "Connection failure: The read operation timed out".into(),
        _ if text.contains("certificate") => format!(
            "Request failed: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify \
             failed: {text}>"
        ),
        ureq::Error::Io(e) => format!("Request failed: <urlopen error {e}>"),
        other => format!("Connection failure: {other}"),
    }
}

/// The file name a response offers in `Content-Disposition` (without folders), as Ansible's
/// `get_response_filename`.
pub(crate) fn disposition_filename(reply: &Reply) -> Option<String> {
    let header = reply.header("content-disposition")?;
    let value = header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("filename")
            .then(|| v.trim().trim_matches('"').to_string())
    })?;
    let name = value.rsplit('/').next().unwrap_or("").to_string();
    (!name.is_empty()).then_some(name)
}

/// The last path segment of a URL, `index.html` for none (Ansible's `url_filename`).
pub(crate) fn url_filename(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() => percent_decode(name),
        _ => "index.html".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_resolved_against_the_url_they_came_from() {
        let base = "http://h:8/a/b?q=1";
        assert_eq!(join_url(base, "/c"), "http://h:8/c");
        assert_eq!(join_url(base, "c"), "http://h:8/a/c");
        assert_eq!(join_url(base, "https://x/y"), "https://x/y");
        assert_eq!(join_url(base, "//x/y"), "http://x/y");
    }

    #[test]
    fn credentials_in_a_url_are_split_off_and_masked() {
        let url = "https://bob:s%40cret@h/f";
        let (clean, creds) = split_credentials(url);
        assert_eq!(clean, "https://h/f");
        assert_eq!(creds, Some(("bob".into(), Some("s@cret".into()))));
        assert_eq!(mask_url(url), "https://bob:********@h/f");
    }

    #[test]
    fn file_names_come_from_the_url_path() {
        assert_eq!(url_filename("http://h/a/b.tgz?x=1"), "b.tgz");
        assert_eq!(url_filename("http://h/"), "index.html");
        assert_eq!(url_filename("http://h"), "index.html");
    }

    #[test]
    fn netrc_gives_the_machines_login_or_the_default() {
        let text = "machine repo.example login bob password pw\ndefault login anon password x\n";
        assert_eq!(
            netrc_entry(text, "repo.example"),
            Some(("bob".into(), "pw".into()))
        );
        assert_eq!(
            netrc_entry(text, "other"),
            Some(("anon".into(), "x".into()))
        );
        assert_eq!(netrc_entry("machine h login only\n", "h"), None);
        assert_eq!(url_host("https://u@Repo.example:8443/x"), "repo.example");
    }

    #[test]
    fn openssl_cipher_lists_select_rustls_suites() {
        let names = |list: &str| -> Vec<String> {
            cipher_suites(&[list.to_string()])
                .unwrap()
                .iter()
                .map(|s| format!("{:?}", s.suite()))
                .collect()
        };
        let one = names("ECDHE-RSA-AES128-GCM-SHA256");
        assert_eq!(one[0], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        // TLS 1.3 stays on when the list names none of its suites, as with OpenSSL.
        assert_eq!(one.len(), 4);
        assert_eq!(
            names("TLS_AES_256_GCM_SHA384"),
            ["TLS13_AES_256_GCM_SHA384"]
        );
        let high = names("HIGH:!aECDSA:!MD5:!RC4");
        assert!(high.iter().all(|n| !n.contains("ECDSA")), "{high:?}");
        assert_eq!(high.len(), 6);
        assert_eq!(names("ECDHE+AESGCM:-aRSA").len(), 5);
        let err = cipher_suites(&["AES256-SHA".into(), "HIGH".into()]).unwrap_err();
        assert!(err.contains("AES256-SHA not available"), "{err}");
    }

    #[test]
    fn dates_are_http_dates() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
