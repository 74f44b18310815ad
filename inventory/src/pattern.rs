//! Host patterns, as in `hosts:` and `--limit`.
//!
//! A pattern is terms joined by `:` (or `,`): a plain term adds hosts, `&term` keeps only hosts
//! also in the term, `!term` removes the term's hosts. As in Ansible, all additions are applied
//! first, then intersections, then exclusions, whatever their order in the pattern.

use indexmap::IndexSet;

use crate::{Inventory, LOCALHOST};

#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("invalid host pattern {pattern:?}: {reason}")]
    Invalid { pattern: String, reason: String },
}

pub(crate) fn select(inventory: &Inventory, pattern: &str) -> Result<Vec<String>, PatternError> {
    let terms = split(pattern);
    let mut result: IndexSet<String> = IndexSet::new();
    let (mut ands, mut nots) = (Vec::new(), Vec::new());
    for term in &terms {
        if let Some(t) = term.strip_prefix('&') {
            ands.push(t);
        } else if let Some(t) = term.strip_prefix('!') {
            nots.push(t);
        } else {
            result.extend(matches(inventory, term)?);
        }
    }
    if terms
        .iter()
        .all(|t| t.starts_with('&') || t.starts_with('!'))
        && !terms.is_empty()
    {
        result.extend(inventory.hosts.keys().cloned());
    }
    for term in ands {
        let keep: IndexSet<String> = matches(inventory, term)?.into_iter().collect();
        result.retain(|h| keep.contains(h));
    }
    for term in nots {
        let drop: IndexSet<String> = matches(inventory, term)?.into_iter().collect();
        result.retain(|h| !drop.contains(h));
    }
    Ok(result.into_iter().collect())
}

/// Splits on `,` if there is one, else on `:` outside brackets (so `web[1:3]` stays whole).
fn split(pattern: &str) -> Vec<String> {
    let pattern = pattern.trim();
    if pattern.contains(',') {
        return pattern
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    terms.push(current);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The hosts one term names.
fn matches(inventory: &Inventory, term: &str) -> Result<Vec<String>, PatternError> {
    let invalid = |reason: &str| PatternError::Invalid {
        pattern: term.to_string(),
        reason: reason.to_string(),
    };
    let (name, subscript) = split_subscript(term).map_err(|r| invalid(&r))?;
    let mut hosts: IndexSet<String> = IndexSet::new();
    if name == "all" || name == "*" {
        hosts.extend(inventory.hosts.keys().cloned());
    } else if let Some(re) = name.strip_prefix('~') {
        let re = regex::Regex::new(re).map_err(|e| invalid(&e.to_string()))?;
        for g in inventory.groups.keys().filter(|g| re.is_match(g)) {
            hosts.extend(inventory.group_hosts(g));
        }
        hosts.extend(inventory.hosts.keys().filter(|h| re.is_match(h)).cloned());
    } else {
        let is_glob = name.contains(['*', '?', '[']);
        let glob = if is_glob {
            Some(glob::Pattern::new(name).map_err(|e| invalid(&e.to_string()))?)
        } else {
            None
        };
        let name_matches = |candidate: &str| match &glob {
            Some(g) => g.matches(candidate),
            None => candidate == name,
        };
        let mut group_matched = false;
        for g in inventory.groups.keys().filter(|g| name_matches(g)) {
            group_matched = true;
            hosts.extend(inventory.group_hosts(g));
        }
        if !group_matched || is_glob || name.contains('.') {
            hosts.extend(inventory.hosts.keys().filter(|h| name_matches(h)).cloned());
        }
        if hosts.is_empty() && (name == LOCALHOST || name == "127.0.0.1") {
            hosts.insert(name.to_string());
        }
    }
    let hosts: Vec<String> = hosts.into_iter().collect();
    Ok(match subscript {
        None => hosts,
        Some((start, end)) => {
            let len = hosts.len() as i64;
            let resolve = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) } as usize;
            let s = resolve(start);
            let e = match end {
                Some(e) => resolve(e).saturating_add(1).min(hosts.len()),
                None => s + 1,
            };
            hosts
                .get(s..e.max(s))
                .map(<[String]>::to_vec)
                .unwrap_or_default()
        }
    })
}

/// `web[0]` → (`web`, [0, 0]); `web[1:3]` → (`web`, [1, 3]); `web[-1]`; otherwise no subscript.
/// Ansible's subscripts are inclusive of the end.
/// `[start]` or `[start:end]`, inclusive.
type Subscript = (i64, Option<i64>);

fn split_subscript(term: &str) -> Result<(&str, Option<Subscript>), String> {
    let Some(open) = term.rfind('[') else {
        return Ok((term, None));
    };
    if !term.ends_with(']') {
        return Ok((term, None));
    }
    let inner = &term[open + 1..term.len() - 1];
    let numeric = |s: &str| {
        s.is_empty()
            || s.trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit())
    };
    let parts: Vec<&str> = inner.split(':').collect();
    if parts.len() > 2 || !parts.iter().all(|p| numeric(p)) || inner.is_empty() {
        return Ok((term, None));
    }
    let parse = |s: &str, default: i64| {
        if s.is_empty() {
            Ok(default)
        } else {
            s.parse::<i64>().map_err(|e| e.to_string())
        }
    };
    let start = parse(parts[0], 0)?;
    let end = match parts.get(1) {
        Some(e) => Some(parse(e, -1)?),
        None => None,
    };
    Ok((&term[..open], Some((start, end))))
}
