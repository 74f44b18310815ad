//! Path filters as Python's `os.path` and `ntpath` compute them: `basename`, `dirname`,
//! `expanduser`, `expandvars`, `realpath`, `relpath`, `normpath`, `path_join`, `commonpath`,
//! `splitext`, `win_basename`, `win_dirname`, `win_splitdrive`, `fileglob`.

use minijinja::value::{Rest, ValueKind};
use minijinja::{Environment, Error, Value};

use super::{err, items};

pub(crate) fn basename(p: &str) -> String {
    p.rsplit('/').next().unwrap_or("").to_string()
}

pub(crate) fn dirname(p: &str) -> String {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let head = &p[..i];
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

/// `posixpath.normpath`.
pub(crate) fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." if initial.is_empty() && (parts.is_empty() || parts.last() == Some(&"..")) => {
                parts.push("..")
            }
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = format!("{initial}{}", parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into())
}

fn abspath(p: &str) -> String {
    if p.starts_with('/') {
        normpath(p)
    } else {
        normpath(&format!("{}/{p}", cwd()))
    }
}

/// `os.path.realpath`: symlinks resolved as far as the path exists.
fn realpath(p: &str) -> String {
    let mut resolved = String::from("/");
    let mut pending: Vec<String> = abspath(p)
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            resolved = dirname(&resolved);
            if resolved.is_empty() {
                resolved = "/".into();
            }
            continue;
        }
        let candidate = if resolved == "/" {
            format!("/{comp}")
        } else {
            format!("{resolved}/{comp}")
        };
        match std::fs::read_link(&candidate) {
            Ok(target) if hops < 40 => {
                hops += 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved = "/".into();
                }
                for c in target
                    .split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .rev()
                {
                    pending.push(c.to_string());
                }
            }
            _ => resolved = candidate,
        }
    }
    resolved
}

fn relpath(path: &str, start: &str) -> Result<String, Error> {
    if path.is_empty() {
        return Err(err("no path specified"));
    }
    let a = abspath(path);
    let b = abspath(start);
    let pa: Vec<&str> = a.split('/').filter(|c| !c.is_empty()).collect();
    let pb: Vec<&str> = b.split('/').filter(|c| !c.is_empty()).collect();
    let common = pa.iter().zip(&pb).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; pb.len() - common];
    parts.extend(&pa[common..]);
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

fn path_join(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        if p.starts_with('/') {
            out = p.clone();
        } else if out.is_empty() || out.ends_with('/') {
            out.push_str(p);
        } else {
            out.push('/');
            out.push_str(p);
        }
    }
    out
}

fn splitext(p: &str) -> (String, String) {
    let name_start = p.rfind('/').map_or(0, |i| i + 1);
    let name = &p[name_start..];
    let first_non_dot = name.find(|c| c != '.');
    match (name.rfind('.'), first_non_dot) {
        (Some(dot), Some(nd)) if dot > nd => (
            p[..name_start + dot].to_string(),
            p[name_start + dot..].to_string(),
        ),
        _ => (p.to_string(), String::new()),
    }
}

fn expanduser(p: &str) -> String {
    let Some(rest) = p.strip_prefix('~') else {
        return p.to_string();
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let home = if user.is_empty() {
        std::env::var("HOME").ok()
    } else {
        home_of(user)
    };
    match home {
        Some(h) => {
            let h = if h.len() > 1 {
                h.trim_end_matches('/')
            } else {
                &h
            };
            format!("{h}{tail}")
        }
        None => p.to_string(),
    }
}

fn home_of(user: &str) -> Option<String> {
    let name = std::ffi::CString::new(user).ok()?;
    // SAFETY: getpwnam reads a NUL-terminated name; the returned record is copied at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_dir)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// `os.path.expandvars`: `$NAME` and `${NAME}`; unknown variables stay as written.
fn expandvars(p: &str) -> String {
    let re = regex::Regex::new(r"\$(\w+|\{[^}]*\})").ok();
    let Some(re) = re else { return p.to_string() };
    re.replace_all(p, |c: &regex::Captures| {
        let name = c[1].trim_start_matches('{').trim_end_matches('}');
        std::env::var(name).unwrap_or_else(|_| c[0].to_string())
    })
    .into_owned()
}

fn win_splitdrive(p: &str) -> (String, String) {
    let norm = p.replace('/', "\\");
    if norm.starts_with("\\\\") && !norm.starts_with("\\\\\\") {
        let rest = &norm[2..];
        if let Some(i) = rest.find('\\') {
            let after = &rest[i + 1..];
            let j = after.find('\\').map_or(after.len(), |j| j);
            if !after.is_empty() && j > 0 {
                let cut = 2 + i + 1 + j;
                return (p[..cut].to_string(), p[cut..].to_string());
            }
        }
        return (String::new(), p.to_string());
    }
    let bytes: Vec<char> = p.chars().collect();
    if bytes.len() >= 2 && bytes[1] == ':' {
        let cut = bytes[0].len_utf8() + 1;
        return (p[..cut].to_string(), p[cut..].to_string());
    }
    (String::new(), p.to_string())
}

fn win_split(p: &str) -> (String, String) {
    let (d, rest) = win_splitdrive(p);
    let i = rest.rfind(['\\', '/']).map_or(0, |i| i + 1);
    let (head, tail) = rest.split_at(i);
    let trimmed = head.trim_end_matches(['\\', '/']);
    let head = if trimmed.is_empty() { head } else { trimmed };
    (format!("{d}{head}"), tail.to_string())
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

pub(super) fn register(env: &mut Environment<'static>) {
    super::add_filter(env, "basename", |s: Value| basename(&text(&s)));
    super::add_filter(env, "dirname", |s: Value| dirname(&text(&s)));
    super::add_filter(env, "expanduser", |s: Value| expanduser(&text(&s)));
    super::add_filter(env, "expandvars", |s: Value| expandvars(&text(&s)));
    super::add_filter(env, "realpath", |s: Value| realpath(&text(&s)));
    super::add_filter(env, "normpath", |s: Value| normpath(&text(&s)));
    super::add_filter(env, "relpath", |s: Value, start: Option<String>| {
        relpath(&text(&s), start.as_deref().unwrap_or("."))
    });
    super::add_filter(env, "splitext", |s: Value| {
        let (a, b) = splitext(&text(&s));
        vec![a, b]
    });
    super::add_filter(
        env,
        "path_join",
        |v: Value, _rest: Rest<Value>| -> Result<String, Error> {
            match v.kind() {
                ValueKind::String => Ok(text(&v)),
                ValueKind::Seq | ValueKind::Iterable => {
                    Ok(path_join(&items(&v)?.iter().map(text).collect::<Vec<_>>()))
                }
                _ => Err(err(format!(
                    "|path_join expects string or sequence, got {} instead.",
                    super::data::type_name(&v)
                ))),
            }
        },
    );
    super::add_filter(env, "commonpath", |v: Value| -> Result<String, Error> {
        if v.kind() != ValueKind::Seq {
            return Err(err(format!(
                "|commonpath expects sequence, got {} instead.",
                super::data::type_name(&v)
            )));
        }
        let paths: Vec<String> = items(&v)?.iter().map(text).collect();
        let Some(first) = paths.first() else {
            return Err(err("commonpath() arg is an empty sequence"));
        };
        let abs = first.starts_with('/');
        if paths.iter().any(|p| p.starts_with('/') != abs) {
            return Err(err("Can't mix absolute and relative paths"));
        }
        let split: Vec<Vec<&str>> = paths
            .iter()
            .map(|p| {
                p.split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .collect()
            })
            .collect();
        let mut common: Vec<&str> = split[0].clone();
        for s in &split[1..] {
            let n = common.iter().zip(s).take_while(|(a, b)| a == b).count();
            common.truncate(n);
        }
        Ok(format!(
            "{}{}",
            if abs { "/" } else { "" },
            common.join("/")
        ))
    });
    super::add_filter(env, "win_basename", |s: Value| win_split(&text(&s)).1);
    super::add_filter(env, "win_dirname", |s: Value| win_split(&text(&s)).0);
    super::add_filter(env, "win_splitdrive", |s: Value| {
        let (a, b) = win_splitdrive(&text(&s));
        vec![a, b]
    });
    super::add_filter(env, "fileglob", |s: Value| -> Vec<String> {
        glob::glob(&text(&s))
            .map(|paths| {
                paths
                    .flatten()
                    .filter(|p| p.is_file())
                    .take(super::MAX_ITEMS)
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    });
}

#[cfg(test)]
mod unit {
    use super::super::testing::{render, truth};
    use super::*;

    #[test]
    fn posix_paths() {
        assert_eq!(dirname("/a/b/"), "/a/b");
        assert_eq!(dirname("/x"), "/");
        assert_eq!(dirname("x"), "");
        assert_eq!(normpath("//a/./b/../c/"), "//a/c");
        assert_eq!(normpath("../a/.."), "..");
        assert_eq!(normpath("///a"), "/a");
        assert_eq!(splitext(".bashrc"), (".bashrc".into(), "".into()));
        assert_eq!(splitext("a/b.tar.gz"), ("a/b.tar".into(), ".gz".into()));
        assert_eq!(relpath("/a/b/c", "/a/d").unwrap(), "../b/c");
        assert_eq!(realpath("/tmp/../etc/./"), "/etc");
        assert!(truth("'foo'|path_join == 'foo'"));
        assert!(truth("['foo', 'bar']|path_join == 'foo/bar'"));
        assert!(truth("['/etc', 'x', '/abs', 'y']|path_join == '/abs/y'"));
        assert!(render("{{ true|path_join }}").contains("expects string or sequence"));
        assert!(truth(
            "['/foo/bar/foobar','/foo/bar']|commonpath == '/foo/bar'"
        ));
        assert!(render("{{ '/foo/bar/foobar'|commonpath }}").contains("|commonpath expects"));
    }

    #[test]
    fn windows_paths() {
        assert!(truth("'C:\\\\Users\\\\x.txt'|win_basename == 'x.txt'"));
        assert!(truth("'C:\\\\Users\\\\x.txt'|win_dirname == 'C:\\\\Users'"));
        assert!(truth(
            "'C:\\\\Users\\\\x.txt'|win_splitdrive == ['C:', '\\\\Users\\\\x.txt']"
        ));
        assert!(truth(
            "'\\\\\\\\srv\\\\share\\\\f'|win_splitdrive == ['\\\\\\\\srv\\\\share', '\\\\f']"
        ));
    }
}
