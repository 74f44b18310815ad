//! Host names as inventories write them: an optional `:port`, and ranges like `web[01:10]`,
//! `db-[a:f]` or `node[1:10:2]`, expanded as ansible-core 2.19 expands them.

/// More hosts than this from one name is a typo, not an inventory.
const MAX_HOSTS: usize = 1_000_000;

/// `web[1:3]:2222` → (`web1`, `web2`, `web3`), port 2222; Ansible's `_expand_hostpattern`.
pub(crate) fn expand_hostpattern(spec: &str) -> Result<(Vec<String>, Option<u64>), String> {
    let (pattern, port) = parse_address(spec).unwrap_or((spec, None));
    let names = if pattern.contains('[') {
        expand_ranges(pattern)?
    } else {
        vec![pattern.to_string()]
    };
    Ok((names, port))
}

/// Splits a `:port` off a host name, IPv4 or bracketed IPv6 address; `None` if the rest is not
/// a host (then Ansible keeps the whole text as the name).
pub fn parse_address(address: &str) -> Option<(&str, Option<u64>)> {
    let mut address = address;
    let mut port = None;
    // `[host]:port`, then `host:port` (applied in turn, as Ansible does).
    if let Some(inner) = address.strip_prefix('[')
        && let Some((host, p)) = inner.rsplit_once("]:")
        && !host.is_empty()
        && !p.is_empty()
        && p.bytes().all(|c| c.is_ascii_digit())
    {
        address = host;
        port = Some(p.parse().ok()?);
    }
    if let Some((host, p)) = address.rsplit_once(':')
        && !p.is_empty()
        && p.bytes().all(|c| c.is_ascii_digit())
        && plain_or_bracketed(host)
    {
        address = host;
        port = Some(p.parse().ok()?);
    }
    (is_ipv6(address) || is_hostname(address)).then_some((address, port))
}

/// No `:`, `[` or `]` outside complete `[...]` groups.
fn plain_or_bracketed(text: &str) -> bool {
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            ':' | ']' => return false,
            '[' => match rest.find(']') {
                Some(close) if !rest[1..close].contains('[') => rest = &rest[close + 1..],
                _ => return false,
            },
            c => rest = &rest[c.len_utf8()..],
        }
    }
    true
}

fn is_ipv6(text: &str) -> bool {
    text.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Labels of word characters, `-` and ranges, joined by dots, none ending in `-` or `_`.
fn is_hostname(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    if label.is_empty() || label.ends_with(['-', '_']) {
        return false;
    }
    let mut rest = label;
    let mut first = true;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            let Some(close) = rest.find(']') else {
                return false;
            };
            if !is_range(&rest[1..close]) {
                return false;
            }
            rest = &rest[close + 1..];
        } else if c.is_alphanumeric() || c == '_' || (c == '-' && !first) {
            rest = &rest[c.len_utf8()..];
        } else {
            return false;
        }
        first = false;
    }
    true
}

/// `a:z` (one letter each) or `1:10`, with an optional numeric `:step`.
fn is_range(inner: &str) -> bool {
    let parts: Vec<&str> = inner.split(':').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let letter = |s: &str| s.len() == 1 && s.bytes().all(|c| c.is_ascii_lowercase());
    (parts.len() == 2 || (parts.len() == 3 && digits(parts[2])))
        && ((digits(parts[0]) && digits(parts[1])) || (letter(parts[0]) && letter(parts[1])))
}

/// Every range in a name, expanded in order (`a[1:2]b[x:y]` → a1bx, a1by, a2bx, a2by).
fn expand_ranges(name: &str) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    let mut work = vec![name.to_string()];
    // Level by level keeps Ansible's order: each expansion replaces a name in place.
    while !work.is_empty() {
        let mut next = Vec::new();
        for item in work {
            if item.contains('[') {
                next.extend(expand_one(&item)?);
            } else {
                next.push(item);
            }
            if next.len() > MAX_HOSTS {
                return Err(format!(
                    "host range in '{name}' makes more than {MAX_HOSTS} hosts"
                ));
            }
        }
        if next.iter().all(|n| !n.contains('[')) {
            done = next;
            break;
        }
        work = next;
    }
    Ok(done)
}

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The first `[begin:end(:step)]` of a name, as Ansible's `expand_hostname_range` reads it.
fn expand_one(line: &str) -> Result<Vec<String>, String> {
    let replaced = line.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    let [head, nrange, tail] = parts[..] else {
        return Err(format!(
            "invalid host range in '{line}': a range is [begin:end] or [begin:end:step]"
        ));
    };
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("host range must be begin:end or begin:end:step".into());
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    let step = bounds.get(2).copied().unwrap_or("1");
    if end.is_empty() {
        return Err("host range must specify end value".into());
    }
    let width = if beg.len() > 1 && beg.starts_with('0') {
        if beg.len() != end.len() {
            return Err("host range must specify equal-length begin and end formats".into());
        }
        beg.len()
    } else {
        0
    };
    let mut items: Vec<String> = Vec::new();
    let alpha = match (LETTERS.find(beg), LETTERS.find(end)) {
        (Some(b), Some(e)) => {
            if b > e {
                return Err("host range must have begin <= end".into());
            }
            let step = python_int(step)?;
            // A zero step fails the slice, and Ansible then tries the range as numbers.
            (step != 0).then(|| {
                let letters: Vec<char> = LETTERS[b..=e].chars().collect();
                slice_step(&letters, step)
            })
        }
        _ => None,
    };
    match alpha {
        Some(letters) => items.extend(letters.into_iter().map(String::from)),
        None => {
            // Python's range(b, e + 1, s), in i128 so that no step past an i64 end overflows.
            let (b, e, s) = (python_int(beg)?, python_int(end)?, python_int(step)?);
            let (b, e, s) = (i128::from(b), i128::from(e), i128::from(s));
            if s == 0 {
                return Err("range() arg 3 must not be zero".into());
            }
            let mut i = b;
            while (s > 0 && i <= e) || (s < 0 && i > e + 1) {
                items.push(zfill(i, width));
                if items.len() > MAX_HOSTS {
                    return Err(format!(
                        "host range in '{line}' makes more than {MAX_HOSTS} hosts"
                    ));
                }
                i += s;
            }
        }
    }
    Ok(items
        .into_iter()
        .map(|item| format!("{head}{item}{tail}"))
        .collect())
}

/// `seq[::step]` for a positive or negative step.
fn slice_step(seq: &[char], step: i64) -> Vec<char> {
    if step > 0 {
        seq.iter().step_by(step as usize).copied().collect()
    } else {
        seq.iter()
            .rev()
            .step_by(step.unsigned_abs() as usize)
            .copied()
            .collect()
    }
}

/// Python's `int(text)`: optional sign, digits with single underscores, spaces around.
/// Whether an error of [`expand_hostpattern`] is one Python raises as a `ValueError` (a bound
/// that is not a number, a zero step) rather than Ansible's own error about the range.
pub(crate) fn is_value_error(message: &str) -> bool {
    message.starts_with("invalid literal for int()") || message.starts_with("range() arg 3")
}

fn python_int(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid literal for int() with base 10: '{text}'");
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return Err(bad());
    }
    let value: i64 = digits.replace('_', "").parse().map_err(|_| bad())?;
    Ok(if negative { -value } else { value })
}

fn zfill(i: i128, width: usize) -> String {
    if i < 0 {
        format!("-{:0>w$}", i.unsigned_abs(), w = width.saturating_sub(1))
    } else {
        format!("{i:0width$}")
    }
}
