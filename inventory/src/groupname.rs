//! Ansible's check of group names, `TRANSFORM_INVALID_GROUP_CHARS`
//! (`ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS`, ansible.cfg's `force_valid_group_names`): a group
//! name that could not be a variable name (its first character a digit or not a word character,
//! or any other character not a word character) is kept and warned of (`never`, the default),
//! kept silently (`ignore`), or has those characters replaced by `_` with a warning (`always`) or
//! without one (`silently`). Applied where Ansible's inventory plugins apply it: to the groups an
//! INI section, a YAML, TOML or script inventory declares (so an INI `[parent:children]` line
//! still names the group as written, and with `always` finds no group by that name, as in
//! Ansible).

use std::sync::{Mutex, OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    Never,
    Always,
    Ignore,
    Silently,
}

impl Transform {
    /// The setting's value as Ansible takes it; anything else is Ansible's options error.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).unwrap_or("") {
            "" | "never" => Ok(Self::Never),
            "always" => Ok(Self::Always),
            "ignore" => Ok(Self::Ignore),
            "silently" => Ok(Self::Silently),
            other => Err(format!(
                "Invalid value '{other}' for config 'TRANSFORM_INVALID_GROUP_CHARS'. Valid values \
                 are: always, never, ignore, silently"
            )),
        }
    }

    /// The setting in force (read from the environment once, where ansible.cfg's settings
    /// arrive too).
    pub fn configured() -> Result<Self, String> {
        static SETTING: OnceLock<Result<Transform, String>> = OnceLock::new();
        SETTING
            .get_or_init(|| {
                Self::parse(
                    std::env::var("ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS")
                        .ok()
                        .as_deref(),
                )
            })
            .clone()
    }

    /// The warning shown once when some group name was found invalid.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            Self::Never => Some(
                "Invalid characters were found in group names but not replaced, use -vvvv to \
                 see details",
            ),
            Self::Always => Some(
                "Invalid characters were found in group names and automatically replaced, use \
                 -vvvv to see details",
            ),
            Self::Ignore | Self::Silently => None,
        }
    }

    fn replaces(self) -> bool {
        matches!(self, Self::Always | Self::Silently)
    }
}

/// Whether the `i`th character of a name is one Ansible's `INVALID_VARIABLE_NAMES` finds: a
/// leading digit or non-word character, or any other non-word character.
fn invalid_at(i: usize, c: char) -> bool {
    !(c.is_alphanumeric() || c == '_') || (i == 0 && c.is_numeric())
}

/// The characters of `name` that Ansible's `INVALID_VARIABLE_NAMES` finds, each once, in order.
fn invalid_chars(name: &str) -> Vec<char> {
    let mut found: Vec<char> = Vec::new();
    for (i, c) in name.chars().enumerate() {
        if invalid_at(i, c) && !found.contains(&c) {
            found.push(c);
        }
    }
    found
}

/// `name` with each invalid character replaced by `_` (what `always` does, and what the
/// constructed plugin does whatever the setting).
pub(crate) fn replace_invalid(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| if invalid_at(i, c) { '_' } else { c })
        .collect()
}

/// A Python set of one-character strings, as Ansible's detail line shows it.
fn python_set(chars: &[char]) -> String {
    let items: Vec<String> = chars
        .iter()
        .map(|c| match c {
            '\'' => "\"'\"".to_string(),
            '\\' => "'\\\\'".to_string(),
            c => format!("'{c}'"),
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// Ansible's -vvvv lines about the invalid group names found so far, in this process (as
/// Ansible's display, which says a warning once).
static NOTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A declared group's name as the setting in force makes it; an invalid one is noted for
/// [`warning`].
pub(crate) fn declared(name: &str) -> String {
    let transform = Transform::configured().unwrap_or(Transform::Never);
    let mut details = Vec::new();
    let name = safe_group_name(name, transform, &mut details);
    if !details.is_empty() {
        let mut noted = NOTED.lock().unwrap_or_else(|e| e.into_inner());
        for line in details {
            if !noted.contains(&line) {
                noted.push(line);
            }
        }
    }
    name
}

/// Ansible's warning when a source declared a group name that could not be a variable name,
/// with its -vvvv details; `None` when there was none, or the setting (`ignore`, `silently`)
/// keeps quiet.
pub fn warning() -> Option<(&'static str, Vec<String>)> {
    let noted = NOTED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if noted.is_empty() {
        return None;
    }
    Some((Transform::configured().ok()?.warning()?, noted))
}

/// `name` as the setting makes it; a name found invalid adds Ansible's -vvvv detail line to
/// `details`.
fn safe_group_name(name: &str, transform: Transform, details: &mut Vec<String>) -> String {
    let bad = invalid_chars(name);
    if bad.is_empty() {
        return name.to_string();
    }
    let what = format!(
        "invalid character(s) \"{}\" in group name ({name})",
        python_set(&bad)
    );
    if transform.replaces() {
        let safe = replace_invalid(name);
        if transform == Transform::Always {
            details.push(format!("Replacing {what}"));
        }
        safe
    } else {
        if transform == Transform::Never {
            details.push(format!("Not replacing {what}"));
        }
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_or_replaced_as_the_setting_says() {
        let mut details = Vec::new();
        assert_eq!(
            safe_group_name("web", Transform::Always, &mut details),
            "web"
        );
        assert!(details.is_empty());
        assert_eq!(
            safe_group_name("local-", Transform::Never, &mut details),
            "local-"
        );
        assert_eq!(
            details,
            ["Not replacing invalid character(s) \"{'-'}\" in group name (local-)"]
        );
        details.clear();
        assert_eq!(
            safe_group_name("2a.b-c.", Transform::Always, &mut details),
            "_a_b_c_"
        );
        assert_eq!(
            details,
            ["Replacing invalid character(s) \"{'2', '.', '-'}\" in group name (2a.b-c.)"]
        );
        details.clear();
        assert_eq!(
            safe_group_name("a-b", Transform::Silently, &mut details),
            "a_b"
        );
        assert_eq!(
            safe_group_name("a-b", Transform::Ignore, &mut details),
            "a-b"
        );
        assert!(details.is_empty());
        assert_eq!(
            safe_group_name("grüße_1", Transform::Always, &mut details),
            "grüße_1"
        );
    }

    #[test]
    fn the_setting_takes_ansible_words_only() {
        assert_eq!(Transform::parse(None), Ok(Transform::Never));
        assert_eq!(Transform::parse(Some("silently")), Ok(Transform::Silently));
        assert_eq!(
            Transform::parse(Some("bogus")).unwrap_err(),
            "Invalid value 'bogus' for config 'TRANSFORM_INVALID_GROUP_CHARS'. Valid values \
             are: always, never, ignore, silently"
        );
    }
}
