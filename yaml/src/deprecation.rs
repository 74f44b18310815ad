//! Ansible 2.19's `[DEPRECATION WARNING]`s, shared by every crate that finds one (the
//! configuration, the playbook parser, the engine): worded and laid out as ansible-core's
//! display prints them on standard error, each once per run, after a one-time hint on how to
//! turn them off, and none when `deprecation_warnings` is off.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use crate::{Kind, Location, Node};

/// Whether deprecation warnings are shown: `ANSIBLE_DEPRECATION_WARNINGS` (the configuration
/// file's `deprecation_warnings` is handed on as it), on unless a false word.
pub fn enabled() -> bool {
    std::env::var("ANSIBLE_DEPRECATION_WARNINGS").map_or(true, |v| !is_false_word(&v))
}

fn is_false_word(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off" | "n" | "f"
    )
}

/// One deprecation of ansible-core: `msg`, the version that removes the feature, where it is
/// (`Origin:` and the lines above it, a caret under the column) and what to do instead.
/// `enabled` overrides the setting (a task's `ansible_deprecation_warnings`).
pub fn deprecated(
    msg: &str,
    version: &str,
    origin: Option<&Location>,
    help: Option<&str>,
    enabled: Option<bool>,
) {
    // Ansible's event formatting: help text joins a one-line message when there is no
    // place to show; a message of several lines is followed by a blank line.
    let mut text = format!(
        "[DEPRECATION WARNING]: {msg} This feature will be removed from ansible-core version {version}."
    );
    match (origin, help) {
        (None, Some(help)) if !text.contains('\n') && !help.contains('\n') => {
            text.push(' ');
            text.push_str(help);
        }
        _ => {
            if let Some(at) = origin {
                text.push('\n');
                text.push_str(&source_excerpt(at).join("\n"));
            }
            if let Some(help) = help {
                text.push_str("\n\n");
                text.push_str(help);
            }
        }
    }
    if text.contains('\n') {
        text.push('\n');
    }
    show(&text, enabled);
}

/// A deprecation a plugin or module of Ansible's reports, shown as ansible-core 2.19 words it:
/// the message, then what is removed from where and when, from its deprecator (the plugin's
/// resolved name and type, or only a collection's name).
pub fn show_removal(
    msg: &str,
    version: Option<&str>,
    date: Option<&str>,
    resolved_name: Option<&str>,
    kind: Option<&str>,
    enabled: bool,
) {
    let removal = removal_sentence(version, date, resolved_name, kind);
    show(
        &format!("[DEPRECATION WARNING]: {}", join_sentences(msg, &removal)),
        Some(enabled),
    );
}

/// "This feature will be removed from module 'x' in collection 'a.b' version 1.0." as Ansible's
/// `get_deprecation_message_with_plugin_info` builds it.
fn removal_sentence(
    version: Option<&str>,
    date: Option<&str>,
    resolved_name: Option<&str>,
    kind: Option<&str>,
) -> String {
    let type_name = |kind: &str| match kind {
        "module" => "module".to_string(),
        other => format!("{other} plugin"),
    };
    let (collection, plugin) = match (resolved_name, kind) {
        (name, None) => (name.map(str::to_string), String::new()),
        (Some("ansible.builtin"), Some(kind)) => (
            Some("ansible.builtin".to_string()),
            format!("the {} API", type_name(kind)),
        ),
        (Some(name), Some(kind)) => {
            let parts: Vec<&str> = name.split('.').collect();
            let collection = (parts.len() > 2).then(|| parts[..2].join("."));
            let plugin = parts.last().copied().unwrap_or_default();
            (collection, format!("{} '{plugin}'", type_name(kind)))
        }
        (None, Some(_)) => (None, String::new()),
    };
    let plugin = match (&collection, plugin.is_empty()) {
        (Some(_), false) => format!("{plugin} in"),
        _ => plugin,
    };
    let from_collection = match collection.as_deref() {
        Some("ansible.builtin") => "ansible-core".to_string(),
        Some(c) => format!("collection '{c}'"),
        None => String::new(),
    };
    let when = match (collection.is_some(), date, version) {
        (false, _, _) => "in the future".to_string(),
        (true, Some(date), _) => format!("in a release after {date}"),
        (true, None, Some(version)) => format!("version {version}"),
        (true, None, None) => "in a future release".to_string(),
    };
    let from = match plugin.is_empty() && from_collection.is_empty() {
        true => "",
        false => "from",
    };
    let words: Vec<&str> = [
        "This feature will be removed",
        from,
        &plugin,
        &from_collection,
        &when,
    ]
    .into_iter()
    .filter(|w| !w.is_empty())
    .collect();
    format!("{}.", words.join(" "))
}

/// Two sentences as Ansible's `join_sentences` puts them together, each ended by a stop.
fn join_sentences(first: &str, second: &str) -> String {
    let end = |s: &str| {
        let s = s.trim();
        match s.chars().last() {
            Some('!' | '?' | '.') | None => s.to_string(),
            Some(_) => format!("{s}."),
        }
    };
    let (first, second) = (end(first), end(second));
    match (first.is_empty(), second.is_empty()) {
        (false, true) => first,
        (true, _) => second,
        (false, false) => format!("{first} {second}"),
    }
}

/// [`deprecated`] for a whole line of a file that is not YAML (an INI inventory): `Origin:`
/// names the line, and carets underline all of it, as Ansible shows such a place.
pub fn deprecated_at_line(
    msg: &str,
    version: &str,
    path: &std::path::Path,
    line: usize,
    help: &str,
) {
    let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut text = format!(
        "[DEPRECATION WARNING]: {msg} This feature will be removed from ansible-core version {version}.\nOrigin: {}:{line}",
        file.display()
    );
    if let Ok(source) = std::fs::read_to_string(&file) {
        let width = line.to_string().len();
        text.push('\n');
        for n in line.saturating_sub(2).max(1)..=line {
            if let Some(src) = source.lines().nth(n - 1) {
                text.push_str(&format!("\n{n:>width$} {src}"));
            }
        }
        let len = source
            .lines()
            .nth(line - 1)
            .map_or(0, |l| l.chars().count());
        text.push_str(&format!("\n{}{}", " ".repeat(width + 1), "^".repeat(len)));
    }
    text.push_str(&format!("\n\n{help}\n"));
    show(&text, None);
}

/// Whether Ansible takes `name` as a variable's name (`validate_variable_name`): a Python
/// identifier in ASCII, and not one of Jinja's own words.
pub fn valid_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            name,
            "true" | "false" | "none" | "True" | "False" | "None" | "not"
        )
}

/// Prints a deprecation already worded (`[DEPRECATION WARNING]: …`), once per run.
pub fn show(text: &str, enabled: Option<bool>) {
    if !enabled.unwrap_or_else(self::enabled) {
        return;
    }
    static SEEN: OnceLock<Mutex<(bool, HashSet<String>)>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let Ok(mut seen) = seen.lock() else {
        return;
    };
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("ANSIBLE_NOCOLOR").map_or(true, |v| is_false_word(&v));
    let paint = |t: &str| match colour {
        true => format!("\x1b[0;35m{t}\x1b[0m"),
        false => t.to_string(),
    };
    let mut err = std::io::stderr().lock();
    if !seen.0 {
        seen.0 = true;
        let hint = "[WARNING]: Deprecation warnings can be disabled by setting `deprecation_warnings=False` in ansible.cfg.";
        let _ = writeln!(err, "{}", paint(hint));
    }
    if seen.1.insert(text.to_string()) {
        let _ = writeln!(err, "{}", paint(text));
    }
}

/// Ansible's `Origin:` block for a place in a file: the path, line and column, then up to two
/// lines before it and the line itself, numbered, and a caret under the column. A source line
/// that may carry a secret (it names a password, a secret, a token or a vault) is replaced by
/// a note.
pub fn source_excerpt(at: &Location) -> Vec<String> {
    let file = std::path::absolute(&*at.file).unwrap_or_else(|_| at.file.to_path_buf());
    let mut lines = vec![format!(
        "Origin: {}:{}:{}",
        file.display(),
        at.line,
        at.column
    )];
    let Ok(text) = std::fs::read_to_string(&file) else {
        return lines;
    };
    let line = at.line as usize;
    let width = line.to_string().len();
    lines.push(String::new());
    for n in line.saturating_sub(2).max(1)..=line {
        if let Some(src) = text.lines().nth(n - 1) {
            let lower = src.to_ascii_lowercase();
            let src = if ["pass", "secret", "token", "vault"]
                .iter()
                .any(|w| lower.contains(w))
            {
                "(line not shown: it may hold a secret)"
            } else {
                src
            };
            // An empty line is its number alone, without the space after it (as Ansible).
            if src.is_empty() {
                lines.push(format!("{n:>width$}"));
            } else {
                lines.push(format!("{n:>width$} {src}"));
            }
        }
    }
    lines.push(format!(
        "{}^ column {}",
        " ".repeat(width + at.column as usize),
        at.column
    ));
    lines
}

/// Magic variables Ansible 2.19 deprecates, with what to use instead.
pub const DEPRECATED_VARIABLES: &[(&str, &str)] =
    &[("play_hosts", "Use `ansible_play_batch` instead.")];

/// Each text of a file that names a deprecated variable, and where it is.
type Named = Mutex<Vec<(String, Location)>>;

fn named() -> &'static Named {
    static NAMED: OnceLock<Named> = OnceLock::new();
    NAMED.get_or_init(Default::default)
}

/// Whether `text` names `name` as a variable: not as part of a longer name
/// (`ansible_play_hosts`) or as an attribute.
pub fn names_variable(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Notes the strings of a parsed file that name a deprecated variable, for the `Origin:` of
/// the deprecation when one is rendered (cheap: most files name none).
pub(crate) fn note_deprecated_names(text: &str, node: &Node, path: &std::path::Path) {
    if !DEPRECATED_VARIABLES
        .iter()
        .any(|(name, _)| text.contains(name))
    {
        return;
    }
    let file: std::sync::Arc<std::path::Path> = std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .into();
    fn walk(
        node: &Node,
        file: &std::sync::Arc<std::path::Path>,
        out: &mut Vec<(String, Location)>,
    ) {
        match &node.kind {
            Kind::Str(s)
                if DEPRECATED_VARIABLES
                    .iter()
                    .any(|(n, _)| names_variable(s, n)) =>
            {
                out.push((s.clone(), Location::new(file, node)));
            }
            Kind::Seq(items) => items.iter().for_each(|n| walk(n, file, out)),
            Kind::Map(map) => map.values().for_each(|n| walk(n, file, out)),
            _ => {}
        }
    }
    if let Ok(mut named) = named().lock() {
        walk(node, &file, &mut named);
    }
}

/// Ansible 2.19's deprecation of each deprecated variable a template (`source`) names, at the
/// place its text was written: of the places whose text holds it, the first at or after
/// `near` (the task; asked only when a name is found) in its file, else the first.
pub fn deprecated_variables_in(source: &str, near: impl Fn() -> Option<Location>) {
    for (name, help) in DEPRECATED_VARIABLES {
        if !source.contains(name) || !names_variable(source, name) {
            continue;
        }
        let near = near();
        let near = near.as_ref();
        let origin = named().lock().ok().and_then(|named| {
            let places: Vec<&Location> = named
                .iter()
                .filter(|(text, _)| text.contains(source.trim()))
                .map(|(_, at)| at)
                .collect();
            let near_file = near.map(|n| std::path::absolute(&*n.file).unwrap_or_default());
            let after = |at: &&&Location| {
                near.is_some_and(|n| near_file.as_deref() == Some(&*at.file) && at.line >= n.line)
            };
            places
                .iter()
                .filter(after)
                .min_by_key(|at| at.line)
                .or(places.first())
                .map(|at| (**at).clone())
        });
        deprecated(
            &format!("The `{name}` magic variable is deprecated."),
            "2.23",
            origin.as_ref(),
            Some(help),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_are_worded_as_ansible_words_them() {
        let said = |msg, version, date, name, kind| {
            join_sentences(msg, &removal_sentence(version, date, name, kind))
        };
        assert_eq!(
            said(
                "the olden way",
                Some("2.99"),
                None,
                Some("ansible.legacy.olden"),
                Some("module")
            ),
            "the olden way. This feature will be removed from module 'olden' in collection \
             'ansible.legacy' version 2.99."
        );
        assert_eq!(
            said(
                "a thing",
                Some("3.0.0"),
                None,
                Some("community.general"),
                None
            ),
            "a thing. This feature will be removed from collection 'community.general' version 3.0.0."
        );
        assert_eq!(
            said(
                "dated!",
                None,
                Some("2027-01-01"),
                Some("community.general"),
                None
            ),
            "dated! This feature will be removed from collection 'community.general' in a \
             release after 2027-01-01."
        );
        assert_eq!(
            said(
                "x",
                Some("2.23"),
                None,
                Some("ansible.builtin.apt"),
                Some("module")
            ),
            "x. This feature will be removed from module 'apt' in ansible-core version 2.23."
        );
        assert_eq!(
            said(
                "x",
                Some("2.23"),
                None,
                Some("ansible.builtin"),
                Some("lookup")
            ),
            "x. This feature will be removed from the lookup plugin API in ansible-core version 2.23."
        );
        assert_eq!(
            said("x", None, None, None, None),
            "x. This feature will be removed in the future."
        );
    }
}
