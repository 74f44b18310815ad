//! Host patterns, as in `hosts:` and `--limit`, evaluated as ansible-core 2.19's
//! `InventoryManager` evaluates them.
//!
//! A pattern is terms joined by `,` (or, when there is no comma and the whole is not one host
//! address, by `:`): a plain term adds hosts, `&term` keeps only hosts also in the term,
//! `!term` removes the term's hosts. All additions are applied first, then intersections, then
//! exclusions, whatever their order. A term is `all`, a group or host name, a glob (`web*`,
//! `db?`, `[ab]*`), or `~regex` (matched from the start of the name), and a non-regex term may
//! end in a subscript: `[0]`, `[-1]`, `[1:3]` (inclusive), `[2:]`.

use indexmap::IndexSet;

use crate::Inventory;

/// A pattern or `--limit` Ansible refuses; the messages are ansible-core 2.19's.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("Invalid host list pattern: {0}")]
    Invalid(String),
    #[error("No hosts matched the subscripted pattern '{0}'")]
    Subscript(String),
    #[error("Unable to find limit file b'{0}'")]
    LimitFileMissing(String),
    #[error("Limit starting with \"@\" must be a file, not a directory: b'{0}'")]
    LimitFileIsDir(String),
    #[error("Specified inventory, host pattern and/or --limit leaves us with no hosts to target.")]
    NoHosts,
}

/// Names that mean the implicit `localhost` (Ansible's `C.LOCALHOST`).
const LOCALHOSTS: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

pub(crate) fn select(inventory: &Inventory, pattern: &str) -> Result<Vec<String>, PatternError> {
    evaluate(inventory, &split(pattern))
}

/// `--limit`: reads `@file` terms, checks every term, and fails as ansible-playbook does when
/// no host of the inventory is left (an inventory without hosts only warns in Ansible).
/// Returns the limit as one pattern, the file's lines joined by commas.
pub(crate) fn resolve_limit(inventory: &Inventory, limit: &str) -> Result<String, PatternError> {
    let mut terms: Vec<String> = Vec::new();
    for term in split(limit) {
        match term.strip_prefix('@') {
            Some(file) => terms.extend(file_terms(file)?),
            None => terms.push(term),
        }
    }
    let allowed: IndexSet<String> = evaluate(inventory, &terms)?.into_iter().collect();
    let all = evaluate(inventory, &["all".to_string()])?;
    if !all.is_empty() && !all.iter().any(|h| allowed.contains(h)) {
        return Err(PatternError::NoHosts);
    }
    Ok(terms.join(","))
}

/// The terms of a pattern or a `--limit` (its `@file` lines too) that match no host and no group
/// (an empty group is no mismatch, nor is `all`), each as Ansible's "Could not match supplied
/// host pattern, ignoring: X" warning names it (without `!`, `&` or a subscript).
pub(crate) fn unmatched_terms(inventory: &Inventory, limit: &str) -> Vec<String> {
    let mut terms = Vec::new();
    for term in split(limit) {
        match term.strip_prefix('@') {
            // A file that cannot be read is `resolve_limit`'s error to give.
            Some(file) => terms.extend(file_terms(file).unwrap_or_default()),
            None => terms.push(term),
        }
    }
    terms
        .iter()
        .map(|t| t.trim_start_matches(['!', '&']))
        .filter(|t| !t.is_empty() && !inventory.hosts.contains_key(*t))
        .map(|t| split_subscript(t).0)
        .filter(|expr| *expr != "all")
        .filter(|expr| enumerate(inventory, expr).is_ok_and(|hosts| hosts.is_empty()))
        .filter(|expr| {
            Matcher::new(expr).is_ok_and(|m| !inventory.groups.keys().any(|g| m.matches(g)))
        })
        .map(str::to_string)
        .collect()
}

/// The terms of a `--limit @file`: its lines, trimmed, empty ones left out.
fn file_terms(file: &str) -> Result<Vec<String>, PatternError> {
    let path = std::path::Path::new(file);
    if !path.exists() {
        return Err(PatternError::LimitFileMissing(file.to_string()));
    }
    if !path.is_file() {
        return Err(PatternError::LimitFileIsDir(file.to_string()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|_| PatternError::LimitFileMissing(file.to_string()))?;
    Ok(text
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Ansible's `split_host_pattern`.
fn split(pattern: &str) -> Vec<String> {
    let pieces: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if crate::hostname::parse_address(pattern).is_some() {
        vec![pattern.to_string()]
    } else {
        // Runs of anything but whitespace, ':' and brackets, or complete `[...]` groups.
        let mut out = Vec::new();
        let mut current = String::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            if c == '['
                && let Some(close) = rest.find(']')
            {
                current.push_str(&rest[..=close]);
                rest = &rest[close + 1..];
                continue;
            }
            if c.is_whitespace() || matches!(c, ':' | '[' | ']') {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            } else {
                current.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    };
    pieces
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Ansible's `_evaluate_patterns`: additions, then `&` intersections, then `!` exclusions.
fn evaluate(inventory: &Inventory, terms: &[String]) -> Result<Vec<String>, PatternError> {
    let mut regular: Vec<&str> = Vec::new();
    let mut ands: Vec<&str> = Vec::new();
    let mut nots: Vec<&str> = Vec::new();
    for term in terms.iter().filter(|t| !t.is_empty()) {
        if let Some(t) = term.strip_prefix('!') {
            nots.push(t);
        } else if let Some(t) = term.strip_prefix('&') {
            ands.push(t);
        } else {
            regular.push(term);
        }
    }
    if regular.is_empty() {
        regular.push("all");
    }
    let mut hosts: IndexSet<String> = IndexSet::new();
    for term in regular {
        if inventory.hosts.contains_key(term) {
            hosts.insert(term.to_string());
        } else {
            hosts.extend(match_one(inventory, term)?);
        }
    }
    for term in ands {
        let keep: IndexSet<String> = match_one(inventory, term)?.into_iter().collect();
        hosts.retain(|h| keep.contains(h));
    }
    for term in nots {
        let drop: IndexSet<String> = match_one(inventory, term)?.into_iter().collect();
        hosts.retain(|h| !drop.contains(h));
    }
    Ok(hosts.into_iter().collect())
}

/// One term (its `&`/`!` removed): the hosts it names, subscript applied.
fn match_one(inventory: &Inventory, term: &str) -> Result<Vec<String>, PatternError> {
    let (expr, subscript) = split_subscript(term);
    let hosts = enumerate(inventory, expr)?;
    if hosts.is_empty() {
        return Ok(hosts);
    }
    let Some((start, end)) = subscript else {
        return Ok(hosts);
    };
    let len = hosts.len() as i64;
    match end {
        // `[x:y]` with y > 0 (and `[x:]`, y = -1): Python's slice `hosts[x:y+1]`.
        Some(end) if end != 0 => {
            let end = if end == -1 { len - 1 } else { end };
            let (s, e) = (
                start.clamp(0, len) as usize,
                end.saturating_add(1).clamp(0, len) as usize,
            );
            Ok(hosts
                .get(s..e.max(s))
                .map(<[String]>::to_vec)
                .unwrap_or_default())
        }
        // `[x]`, and `[x:0]` (Ansible reads an end of 0 as none): one host.
        _ => {
            let index = if start < 0 { len + start } else { start };
            if !(0..len).contains(&index) {
                return Err(PatternError::Subscript(term.to_string()));
            }
            Ok(vec![hosts[index as usize].clone()])
        }
    }
}

type Subscript = (i64, Option<i64>);

/// `web[0]` → (`web`, (0, None)); `web[1:3]` → (`web`, (1, Some(3))); `web[2:]` → end -1.
/// Regexes take no subscript.
fn split_subscript(term: &str) -> (&str, Option<Subscript>) {
    if term.starts_with('~') || !term.ends_with(']') {
        return (term, None);
    }
    let Some(open) = term.rfind('[') else {
        return (term, None);
    };
    if open == 0 {
        return (term, None);
    }
    let inner = &term[open + 1..term.len() - 1];
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let single = inner.strip_prefix('-').unwrap_or(inner);
    let subscript = if digits(single) {
        inner.parse().ok().map(|i| (i, None))
    } else if let Some(sep) = inner.find([':', '-']) {
        let (start, end) = (&inner[..sep], &inner[sep + 1..]);
        if digits(start) && (end.is_empty() || digits(end)) {
            let end = if end.is_empty() {
                Some(-1)
            } else {
                end.parse().ok()
            };
            start.parse().ok().zip(end).map(|(s, e)| (s, Some(e)))
        } else {
            None
        }
    } else {
        None
    };
    match subscript {
        Some(s) => (&term[..open], Some(s)),
        None => (term, None),
    }
}

/// Ansible's `_enumerate_matches`: groups first (with all their hosts), then host names when
/// no group matched or the term is a glob, regex or has a dot. Repeats are kept (a subscript
/// counts them), as in Ansible.
fn enumerate(inventory: &Inventory, pattern: &str) -> Result<Vec<String>, PatternError> {
    let matcher = Matcher::new(pattern)?;
    let mut results: Vec<String> = Vec::new();
    let mut group_matched = false;
    for g in inventory.groups.keys().filter(|g| matcher.matches(g)) {
        group_matched = true;
        results.extend(inventory.group_hosts(g));
    }
    if !group_matched || pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']) {
        results.extend(
            inventory
                .hosts
                .keys()
                .filter(|h| matcher.matches(h))
                .cloned(),
        );
    }
    if results.is_empty() && LOCALHOSTS.contains(&pattern) {
        results.push(pattern.to_string());
    }
    Ok(results)
}

/// `~regex` (matched at the start, like Python's `re.match`) or a glob (`fnmatch`, whole name).
struct Matcher(regex::Regex);

impl Matcher {
    fn new(pattern: &str) -> Result<Self, PatternError> {
        let source = match pattern.strip_prefix('~') {
            Some(re) => format!("^(?:{re})"),
            None => format!("^(?s:{})$", fnmatch_translate(pattern)),
        };
        regex::Regex::new(&source)
            .map(Matcher)
            .map_err(|_| PatternError::Invalid(pattern.to_string()))
    }

    fn matches(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

/// Python's `fnmatch.translate`, for the regex crate: `*`, `?`, `[seq]`, `[!seq]`; an
/// unclosed `[` is a literal.
fn fnmatch_translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                out.push_str(".*");
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
            }
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if chars.get(j) == Some(&'!') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("\\[");
                    continue;
                }
                let stuff: Vec<char> = chars[i..j].to_vec();
                i = j + 1;
                let (negate, body) = match stuff.split_first() {
                    Some(('!', rest)) => (true, rest),
                    _ => (false, &stuff[..]),
                };
                if stuff.is_empty() {
                    out.push_str("[^\\s\\S]"); // never matches
                    continue;
                }
                if negate && body.is_empty() {
                    out.push('.');
                    continue;
                }
                out.push('[');
                if negate {
                    out.push('^');
                }
                for (k, ch) in body.iter().enumerate() {
                    if *ch == '-' && k > 0 && k + 1 < body.len() {
                        out.push('-');
                    } else {
                        out.push_str(&escape_class_char(*ch));
                    }
                }
                out.push(']');
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

fn escape_class_char(c: char) -> String {
    if c.is_ascii_punctuation() {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}
