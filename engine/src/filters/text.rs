//! Filters on text: the regular expressions with Python's `re` manners (`regex_replace`
//! templates, `regex_search` groups, `regex_findall` groups, `regex_escape`), base64, hashes,
//! `password_hash`, `to_uuid`, `quote`, `comment`, `urlsplit`, `urldecode`.

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, Value};
use settle_modules::pyre::{Flags, Pattern, Replacement};
use sha1::Digest;

use super::err;

fn hash_hex<D: Digest>(data: &[u8]) -> String {
    D::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hash_with(data: &str, algorithm: &str) -> Result<String, Error> {
    Ok(match algorithm {
        "sha1" => hash_hex::<sha1::Sha1>(data.as_bytes()),
        "md5" => hash_hex::<md5::Md5>(data.as_bytes()),
        "sha224" => hash_hex::<sha2::Sha224>(data.as_bytes()),
        "sha256" => hash_hex::<sha2::Sha256>(data.as_bytes()),
        "sha384" => hash_hex::<sha2::Sha384>(data.as_bytes()),
        "sha512" => hash_hex::<sha2::Sha512>(data.as_bytes()),
        other => return Err(err(format!("unsupported hash type {other}"))),
    })
}

/// Python's `shlex.quote`.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// A Python pattern (`re.compile` with `re.I`/`re.M`), backreferences and lookaround included.
fn regex(pattern: &str, ignorecase: bool, multiline: bool) -> Result<Pattern, Error> {
    let flags = Flags {
        ignorecase,
        multiline,
        dotall: false,
    };
    Pattern::compile(pattern, flags).map_err(|e| err(format!("invalid regular expression: {e}")))
}

fn flags(kw: &Kwargs) -> Result<(bool, bool), Error> {
    Ok((
        kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
        kw.get::<Option<bool>>("multiline")?.unwrap_or(false),
    ))
}

/// Python's `re.subn`.
fn python_sub(re: &Pattern, rep: &str, s: &str, count: usize) -> Result<(String, usize), Error> {
    let replacement = Replacement::parse(rep, re).map_err(err)?;
    replacement.subn(re, s, count).map_err(err)
}

/// Python's `re.escape` (3.7+): only the characters special in a pattern.
fn python_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\x0B\x0C".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Jinja's `url_quote`: UTF-8 percent-encoding keeping `A-Za-z0-9_.-~` (and `/` outside a
/// query string, where a space is `+`).
fn url_quote(v: &Value, for_qs: bool) -> String {
    let text = match v.as_str() {
        Some(s) => s.to_string(),
        None => crate::template::python_repr(v, true),
    };
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || (!for_qs && b == b'/') {
            out.push(b as char);
        } else if for_qs && b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Jinja's `urlencode`: a string (or any non-iterable) quoted; a dict, or a list of pairs,
/// as a query string.
fn urlencode(v: Value) -> Result<String, Error> {
    let pairs: Vec<(Value, Value)> = match v.kind() {
        ValueKind::Map => v
            .try_iter()?
            .map(|k| {
                let item = v.get_item(&k).unwrap_or_default();
                (k, item)
            })
            .collect(),
        ValueKind::Seq | ValueKind::Iterable => {
            let mut pairs = Vec::new();
            for item in v.try_iter()? {
                let parts: Vec<Value> = item
                    .try_iter()
                    .map_err(|_| super::err("cannot unpack non-iterable object"))?
                    .collect();
                let [k, val] = <[Value; 2]>::try_from(parts).map_err(|p| {
                    super::err(format!(
                        "too many values to unpack (expected 2, got {})",
                        p.len()
                    ))
                })?;
                pairs.push((k, val));
            }
            pairs
        }
        _ => return Ok(url_quote(&v, false)),
    };
    Ok(pairs
        .iter()
        .map(|(k, val)| format!("{}={}", url_quote(k, true), url_quote(val, true)))
        .collect::<Vec<_>>()
        .join("&"))
}

fn text_of(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None if v.is_none() => "None".into(),
        None => v.to_string(),
    }
}

fn comment(text: &str, style: &str, kw: &Kwargs) -> Result<String, Error> {
    let (beginning, decoration, end) = match style {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => {
            return Err(err(format!(
                "Invalid style '{other}'. Available styles: plain, erlang, c, cblock, xml"
            )));
        }
    };
    let deco_kw: Option<String> = kw.get("decoration")?;
    let prepostfix = deco_kw.clone().unwrap_or_else(|| decoration.to_string());
    let newline: String = kw
        .get::<Option<String>>("newline")?
        .unwrap_or_else(|| "\n".into());
    let beginning: String = kw
        .get::<Option<String>>("beginning")?
        .unwrap_or_else(|| beginning.into());
    let prefix: String = kw
        .get::<Option<String>>("prefix")?
        .unwrap_or_else(|| prepostfix.trim_end().to_string());
    let prefix_count: usize = kw
        .get::<Option<usize>>("prefix_count")?
        .unwrap_or(1)
        .min(10_000);
    let postfix: String = kw
        .get::<Option<String>>("postfix")?
        .unwrap_or_else(|| prepostfix.trim_end().to_string());
    let postfix_count: usize = kw
        .get::<Option<usize>>("postfix_count")?
        .unwrap_or(1)
        .min(10_000);
    let end: String = kw
        .get::<Option<String>>("end")?
        .unwrap_or_else(|| end.into());
    let decoration = deco_kw.unwrap_or_else(|| decoration.to_string());

    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let unit = if prefix != newline {
            format!("{prefix}{newline}")
        } else {
            newline.clone()
        };
        out.push_str(&unit.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    );
    out.push_str(&body.replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    ));
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}

/// Python's `urllib.parse.urlsplit`, as the dict Ansible's `urlsplit` returns.
fn urlsplit(url: &str) -> Vec<(&'static str, Value)> {
    let mut rest = url;
    let mut scheme = "";
    if let Some(i) = rest.find(':') {
        let cand = &rest[..i];
        if cand.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            scheme = cand;
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find(['/', '?', '#']).unwrap_or(r.len());
        netloc = &r[..end];
        rest = &r[end..];
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, hostport) = match netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, netloc),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Value::from(a), Value::from(b)),
            None => (Value::from(u), Value::from(())),
        },
        None => (Value::from(()), Value::from(())),
    };
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (r, None),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let hostname = if host.is_empty() {
        Value::from(())
    } else {
        Value::from(host.to_lowercase())
    };
    let port = port
        .filter(|p| !p.is_empty())
        .and_then(|p| p.parse::<u16>().ok())
        .map(Value::from)
        .unwrap_or(Value::from(()));
    vec![
        ("fragment", Value::from(fragment)),
        ("hostname", hostname),
        ("netloc", Value::from(netloc)),
        ("password", password),
        ("path", Value::from(path)),
        ("port", port),
        ("query", Value::from(query)),
        ("scheme", Value::from(scheme.to_lowercase())),
        ("username", username),
    ]
}

/// Python's `urllib.parse.unquote_plus`.
fn unquote_plus(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn to_uuid(name: &str, namespace: &str) -> Result<String, Error> {
    let hex: String = namespace
        .trim()
        .trim_start_matches("urn:")
        .trim_start_matches("uuid:")
        .trim_matches(['{', '}'])
        .replace('-', "");
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(format!(
            "Invalid value '{namespace}' for 'namespace': badly formed hexadecimal UUID string"
        )));
    }
    let mut ns = [0u8; 16];
    for (i, byte) in ns.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or(0);
    }
    let mut h = sha1::Sha1::new();
    h.update(ns);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    ))
}

fn b64_engine(urlsafe: bool) -> base64::engine::GeneralPurpose {
    if urlsafe {
        base64::engine::general_purpose::URL_SAFE
    } else {
        base64::engine::general_purpose::STANDARD
    }
}

fn encode_text(s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(s.as_bytes().to_vec()),
        "utf-16-le" | "utf-16le" => Ok(s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()),
        "utf-16-be" | "utf-16be" => Ok(s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()),
        "latin-1" | "latin1" | "iso-8859-1" => s
            .chars()
            .map(|c| u8::try_from(c as u32).map_err(|_| err("character not in latin-1")))
            .collect(),
        "ascii" => s
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    Ok(c as u8)
                } else {
                    Err(err("character not in ascii"))
                }
            })
            .collect(),
        other => Err(err(format!("unknown encoding: {other}"))),
    }
}

fn decode_bytes(b: &[u8], encoding: &str) -> Result<String, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" | "ascii" => Ok(String::from_utf8_lossy(b).into_owned()),
        "utf-16-le" | "utf-16le" | "utf-16-be" | "utf-16be" => {
            let le = encoding.to_ascii_lowercase().contains("le");
            let units: Vec<u16> = b
                .chunks(2)
                .map(|c| {
                    let pair = [c[0], c.get(1).copied().unwrap_or(0)];
                    if le {
                        u16::from_le_bytes(pair)
                    } else {
                        u16::from_be_bytes(pair)
                    }
                })
                .collect();
            Ok(String::from_utf16_lossy(&units))
        }
        "latin-1" | "latin1" | "iso-8859-1" => Ok(b.iter().map(|&c| c as char).collect()),
        other => Err(err(format!("unknown encoding: {other}"))),
    }
}

pub(super) fn register(env: &mut Environment<'static>) {
    super::add_filter(
        env,
        "b64encode",
        |s: Value, kw: Kwargs| -> Result<String, Error> {
            let encoding = kw
                .get::<Option<String>>("encoding")?
                .unwrap_or_else(|| "utf-8".into());
            let urlsafe = kw.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
            Ok(b64_engine(urlsafe).encode(encode_text(&text_of(&s), &encoding)?))
        },
    );
    super::add_filter(
        env,
        "b64decode",
        |s: Value, kw: Kwargs| -> Result<String, Error> {
            let encoding = kw
                .get::<Option<String>>("encoding")?
                .unwrap_or_else(|| "utf-8".into());
            let urlsafe = kw.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
            let text = text_of(&s);
            let bytes = b64_engine(urlsafe)
                .decode(text.trim())
                .map_err(|e| err(format!("b64decode: {e}")))?;
            decode_bytes(&bytes, &encoding)
        },
    );
    super::add_filter(
        env,
        "regex_replace",
        |s: Value,
         pattern: String,
         replacement: Option<String>,
         kw: Kwargs|
         -> Result<String, Error> {
            let (ic, ml) = flags(&kw)?;
            let re = regex(&pattern, ic, ml)?;
            let count = kw.get::<Option<usize>>("count")?.unwrap_or(0);
            let mandatory = kw.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
            let value = text_of(&s);
            let (out, subs) = python_sub(&re, &replacement.unwrap_or_default(), &value, count)?;
            if mandatory != 0 && mandatory != subs {
                return Err(err(format!(
                    "'{pattern}' should match {mandatory} times, but matches {subs} times in '{value}'"
                )));
            }
            Ok(out)
        },
    );
    super::add_filter(
        env,
        "regex_search",
        |s: Value, pattern: String, groups: Rest<String>, kw: Kwargs| -> Result<Value, Error> {
            let mut wanted = Vec::new();
            for g in groups.iter() {
                if let Some(name) = g.strip_prefix("\\g") {
                    let name = name
                        .strip_prefix('<')
                        .and_then(|n| n.strip_suffix('>'))
                        .ok_or_else(|| err("Unknown argument"))?;
                    wanted.push(name.to_string());
                } else if let Some(n) = g.strip_prefix('\\') {
                    let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
                    if digits.is_empty() {
                        return Err(err("Unknown argument"));
                    }
                    wanted.push(digits);
                } else {
                    return Err(err("Unknown argument"));
                }
            }
            let (ic, ml) = flags(&kw)?;
            let re = regex(&pattern, ic, ml)?;
            let value = text_of(&s);
            let Some(caps) = re.captures(&value).map_err(err)? else {
                return Ok(Value::from(()));
            };
            if wanted.is_empty() {
                return Ok(Value::from(caps.get(0).unwrap_or("")));
            }
            let mut out = Vec::new();
            for g in wanted {
                let m = match g.parse::<usize>() {
                    Ok(i) if i < re.captures_len() => caps.get(i),
                    Ok(i) => return Err(err(format!("no such group: {i}"))),
                    Err(_) if re.group_index(&g).is_some() => caps.name(&g),
                    Err(_) => return Err(err(format!("no such group: {g}"))),
                };
                out.push(m.map_or(Value::from(()), Value::from));
            }
            Ok(Value::from(out))
        },
    );
    super::add_filter(
        env,
        "regex_findall",
        |s: Value, pattern: String, kw: Kwargs| -> Result<Value, Error> {
            let (ic, ml) = flags(&kw)?;
            let re = regex(&pattern, ic, ml)?;
            let value = text_of(&s);
            let groups = re.captures_len() - 1;
            let mut out = Vec::new();
            for caps in re.captures_all(&value, 0).map_err(err)? {
                let g = |i: usize| Value::from(caps.get(i).unwrap_or(""));
                out.push(match groups {
                    0 => g(0),
                    1 => g(1),
                    n => Value::from((1..=n).map(g).collect::<Vec<_>>()),
                });
            }
            Ok(Value::from(out))
        },
    );
    super::add_filter(
        env,
        "regex_escape",
        |s: Value, kw: Kwargs| -> Result<String, Error> {
            let re_type = kw
                .get::<Option<String>>("re_type")?
                .unwrap_or_else(|| "python".into());
            let s = text_of(&s);
            let special = match re_type.as_str() {
                "python" => return Ok(python_escape(&s)),
                "posix_basic" => "].[^$*\\",
                // Ansible's own filter has never escaped for it.
                "posix_extended" => {
                    return Err(err("Regex type (posix_extended) not yet implemented"));
                }
                other => return Err(err(format!("Invalid regex type ({other})"))),
            };
            Ok(s.chars()
                .flat_map(|c| {
                    if special.contains(c) {
                        vec!['\\', c]
                    } else {
                        vec![c]
                    }
                })
                .collect())
        },
    );
    super::add_filter(env, "hash", |s: Value, algorithm: Option<String>| {
        hash_with(&text_of(&s), algorithm.as_deref().unwrap_or("sha1"))
    });
    super::add_filter(env, "checksum", |s: Value| hash_with(&text_of(&s), "sha1"));
    super::add_filter(env, "md5", |s: Value| hash_with(&text_of(&s), "md5"));
    super::add_filter(env, "sha1", |s: Value| hash_with(&text_of(&s), "sha1"));
    super::add_filter(
        env,
        "password_hash",
        |password: Value,
         hashtype: Option<String>,
         salt: Option<Value>,
         kw: Kwargs|
         -> Result<String, Error> {
            let hashtype = match hashtype {
                Some(h) => h,
                None => kw
                    .get::<Option<String>>("hashtype")?
                    .unwrap_or_else(|| "sha512".into()),
            };
            let salt = match salt {
                Some(s) => Some(s),
                None => kw.get::<Option<Value>>("salt")?,
            }
            .filter(|s| !s.is_none());
            let salt_size = match kw.get::<Option<Value>>("salt_size")? {
                Some(v) if v.is_none() => None,
                Some(v) => Some(
                    v.as_usize()
                        .filter(|_| v.is_integer())
                        .ok_or_else(|| err("salt_size must be an integer"))?,
                ),
                None => None,
            };
            let rounds = match kw.get::<Option<Value>>("rounds")? {
                Some(v) if v.is_none() => None,
                Some(v) => Some(
                    v.as_usize()
                        .ok_or_else(|| err("rounds must be an integer"))?,
                ),
                None => None,
            };
            let ident = kw.get::<Option<Value>>("ident")?.filter(|i| !i.is_none());
            super::crypt::password_hash(
                &text_of(&password),
                &hashtype,
                salt.map(|s| text_of(&s)).as_deref(),
                salt_size,
                rounds,
                ident.map(|i| text_of(&i)).as_deref(),
            )
        },
    );
    super::add_filter(
        env,
        "to_uuid",
        |s: Value, namespace: Option<Value>, kw: Kwargs| -> Result<String, Error> {
            let namespace = match namespace {
                Some(n) => Some(n),
                None => kw.get::<Option<Value>>("namespace")?,
            };
            let ns = match namespace {
                None => "361E6D51-FAEC-444A-9079-341386DA8E2E".to_string(),
                Some(n) if n.kind() == ValueKind::String => n.as_str().unwrap_or("").to_string(),
                Some(n) => {
                    return Err(err(format!(
                        "Invalid value '{n}' for 'namespace': not a UUID string"
                    )));
                }
            };
            to_uuid(&text_of(&s), &ns)
        },
    );
    super::add_filter(env, "quote", |s: Value| {
        if s.is_none() {
            return "''".to_string();
        }
        shell_quote(&text_of(&s))
    });
    super::add_filter(
        env,
        "comment",
        |text: Value, style: Option<String>, kw: Kwargs| -> Result<String, Error> {
            let style = match style {
                Some(s) => s,
                None => kw
                    .get::<Option<String>>("style")?
                    .unwrap_or_else(|| "plain".into()),
            };
            comment(&text_of(&text), &style, &kw)
        },
    );
    super::add_filter(
        env,
        "urlsplit",
        |url: Value, query: Option<String>| -> Result<Value, Error> {
            let parts = urlsplit(&text_of(&url));
            match query.filter(|q| !q.is_empty()) {
                None => Ok(super::map_value(parts)),
                Some(q) => parts
                    .into_iter()
                    .find(|(k, _)| *k == q)
                    .map(|(_, v)| v)
                    .ok_or_else(|| err(format!("urlsplit: unknown URL component: {q}"))),
            }
        },
    );
    super::add_filter(env, "urldecode", |s: Value| unquote_plus(&text_of(&s)));
    super::add_filter(env, "urlencode", urlencode);
}

#[cfg(test)]
mod unit {
    use super::super::testing::{render, truth};
    use super::*;

    #[test]
    fn urlencode_as_jinja() {
        assert!(truth("()|urlencode == ''"));
        assert!(truth(
            "{'foo': 'bar', 'baz': 'buz'}|urlencode == 'foo=bar&baz=buz'"
        ));
        assert!(truth("[['a b', 'c/d']]|urlencode == 'a+b=c%2Fd'"));
        assert_eq!(render("{{ 'a b/é'|urlencode }}"), "a%20b/%C3%A9");
        assert!(render("{{ [1]|urlencode }}").starts_with("ERROR"));
    }

    #[test]
    fn replacement_templates_are_pythons() {
        assert_eq!(
            render(r"{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\\1') }}"),
            "able"
        );
        assert_eq!(
            render(r"{{ 'foobar' | regex_replace('(?P<x>o+)', '[\\g<x>|\\g<1>]') }}"),
            "f[oo|oo]bar"
        );
        assert_eq!(
            render(r"{{ 'a.b' | regex_replace('\\.', '\\\\') }}"),
            r"a\b"
        );
        assert_eq!(render(r"{{ 'a$b' | regex_replace('\\$', '$1') }}"), "a$1b");
        assert_eq!(
            render("{{ 'hElLo there'|regex_replace('hello', 'hi', ignorecase=True) }}"),
            "hi there"
        );
        assert_eq!(
            render("{{ 'foo=bar=baz'|regex_replace('=', ':', count=1) }}"),
            "foo:bar=baz"
        );
        assert_eq!(
            render("{{ 'foo=bar=baz'|regex_replace('=', ':', mandatory_count=2) }}"),
            "foo:bar:baz"
        );
        assert!(
            render("{{ 'foo=bar=baz'|regex_replace('=', ':', mandatory_count=1) }}")
                .contains(" times, but matches ")
        );
        assert_eq!(
            render("{{ 'ab\ncd'|regex_replace('^c', 'X', multiline=True) }}"),
            "ab\nXd"
        );
        assert_eq!(
            render(r"{{ 'abc'|regex_replace('(b)', '\\-\\1') }}"),
            r"a\-bc"
        );
    }

    #[test]
    fn backreferences_and_lookaround_in_patterns() {
        assert_eq!(
            render(r"{{ 'aa bb cd' | regex_replace('(\\w)\\1', '<\\1>') }}"),
            "<a> <b> cd"
        );
        assert!(truth(
            r"'foobar foobaz' | regex_findall('foo(?!bar)\\w+') == ['foobaz']"
        ));
        assert!(truth(r"'abab' | regex_search('(ab)\\1') == 'abab'"));
        assert!(truth(r"'xyx' is search('(?<=y)x')"));
    }

    #[test]
    fn search_findall_escape() {
        assert!(truth(
            "'hello' | regex_search('HELLO', ignorecase=false) is none"
        ));
        assert!(truth(
            "'hello' | regex_search('HELLO', ignorecase=true) == 'hello'"
        ));
        assert!(truth(
            "'hello\\nworld' | regex_search('^world', multiline=true) == 'world'"
        ));
        assert!(truth("'hello\\nworld' | regex_search('^world') is none"));
        assert!(truth(
            r"'goodbye' | regex_search('(?P<first>good)(?P<second>bye)', '\\g<second>', '\\g<first>') == ['bye', 'good']"
        ));
        assert!(truth(
            r"'goodbye' | regex_search('(good)(bye)', '\\2', '\\1') == ['bye', 'good']"
        ));
        assert!(
            render("{{ 'hello' | regex_search('hello', 'unknown') }}").contains("Unknown argument")
        );
        assert!(truth(
            "'hEllo there heLlo haha HELLO there'|regex_findall('h.... ', ignorecase=True)|length == 3"
        ));
        assert!(truth(
            "'a=1 b=2'|regex_findall('(\\\\w)=(\\\\d)') == [['a', '1'], ['b', '2']]"
        ));
        assert!(truth(
            "'a=1 b=2'|regex_findall('\\\\w=(\\\\d)') == ['1', '2']"
        ));
        assert_eq!(
            render("{{ 'a.b-c d/e:f' | regex_escape }}"),
            r"a\.b\-c\ d/e:f"
        );
        assert_eq!(
            render("{{ ']]^' | regex_escape(re_type='posix_basic') }}"),
            r"\]\]\^"
        );
        assert!(
            render("{{ ']]^' | regex_escape(re_type='haha') }}")
                .contains("Invalid regex type (haha)")
        );
        assert!(
            render("{{ ']]^' | regex_escape(re_type='posix_extended') }}")
                .contains("Regex type (posix_extended) not yet implemented")
        );
    }

    #[test]
    fn encodings_and_hashes() {
        assert!(truth(
            "'Ansible - くらとみ\\n' | b64encode == 'QW5zaWJsZSAtIOOBj+OCieOBqOOBvwo='"
        ));
        assert!(truth(
            "'Ansible - くらとみ\\n' | b64encode(encoding='utf-16-le') == 'QQBuAHMAaQBiAGwAZQAgAC0AIABPMIkwaDB/MAoA'"
        ));
        assert!(truth(
            "'QQBuAHMAaQBiAGwAZQAgAC0AIABPMIkwaDB/MAoA' | b64decode(encoding='utf-16-le') == 'Ansible - くらとみ\\n'"
        ));
        assert!(truth(
            "'https://www.python.org/example-1' | b64encode(urlsafe=True) == 'aHR0cHM6Ly93d3cucHl0aG9uLm9yZy9leGFtcGxlLTE='"
        ));
        assert!(truth(
            "'café' | hash('sha1') == 'f424452a9673918c6f09b0cdd35b20be8e6ae7d7'"
        ));
        assert!(
            render("{{ 'x' | hash('unsupported_hash_type') }}").contains("unsupported hash type")
        );
        assert!(truth(
            "'monkeys'|to_uuid == '0d03a178-da0f-5b51-934e-cda9c76578c3'"
        ));
        assert!(render("{{ 'hey'|to_uuid(namespace=22) }}").contains("Invalid value"));
        assert_eq!(render("{{ none | quote }}"), "''");
        assert_eq!(shell_quote("a b'c"), "'a b'\"'\"'c'");
    }

    #[test]
    fn comments() {
        assert!(truth("'boo!'|comment == '#\\n# boo!\\n#'"));
        assert!(truth(
            "'boo!'|comment(decoration='-- ') == '--\\n-- boo!\\n--'"
        ));
        assert!(truth(
            "'boo!'|comment(style='cblock') == '/*\\n *\\n * boo!\\n *\\n */'"
        ));
        assert!(truth("'boo!'|comment(decoration='') == 'boo!\\n'"));
        assert!(truth(
            "'boo!'|comment(prefix='\\n', prefix_count=3) == '\\n\\n\\n# boo!\\n#'"
        ));
        assert!(render("{{ 'boo'|comment(style='invalid') }}").contains("Invalid style"));
    }

    #[test]
    fn urls() {
        let u = "'http://user:pw@www.Acme.com:9000/dir/index.html?query=term#fragment'";
        assert!(truth(&format!(
            "{u}|urlsplit('hostname') == 'www.acme.com'"
        )));
        assert!(truth(&format!("{u}|urlsplit('port') == 9000")));
        assert!(truth(&format!("{u}|urlsplit('path') == '/dir/index.html'")));
        assert!(truth(&format!("{u}|urlsplit('query') == 'query=term'")));
        assert!(truth(&format!("{u}|urlsplit('fragment') == 'fragment'")));
        assert!(truth(&format!("{u}|urlsplit('username') == 'user'")));
        assert!(truth(&format!(
            "({u}|urlsplit).netloc == 'user:pw@www.Acme.com:9000'"
        )));
        assert!(truth("'a%20b+c'|urldecode == 'a b c'"));
    }
}
