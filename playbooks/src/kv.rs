//! Ansible's `key=value` argument strings: `copy: src=a dest=b`, `command: chdir=/tmp ls -l`.

use serde_json::Value;

use crate::Vars;

/// Keys that the command-like modules take out of a free-form line; the rest is the command.
const RAW_MODULE_KEYS: [&str; 8] = [
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// Splits an argument string into `key=value` pairs and free-form text (`_raw_params`).
///
/// With `raw` (command, shell), only the keys those modules know are taken out, wherever they
/// stand; everything else, `a=b` words included, stays part of the command, as written.
pub fn parse_kv(text: &str, raw: bool) -> Vars {
    let mut args = Vars::new();
    let mut free: Vec<String> = Vec::new();
    for token in split_words(text) {
        let key_end = token.find('=');
        let pair = key_end.and_then(|i| {
            let key = &token[..i];
            let is_key =
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            (is_key && (!raw || RAW_MODULE_KEYS.contains(&key)))
                .then(|| (key.to_string(), unquote(&token[i + 1..])))
        });
        match pair {
            Some((key, value)) => {
                args.insert(key, Value::String(value));
            }
            None => free.push(token),
        }
    }
    if !free.is_empty() {
        args.insert("_raw_params".into(), Value::String(free.join(" ")));
    }
    args
}

/// Words separated by spaces, where quotes and `{{ … }}` keep spaces inside one word. Quotes are
/// kept, so free-form text reads as written.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut jinja_depth = 0usize;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match (quote, c) {
            (Some(q), _) if c == q && (i == 0 || chars[i - 1] != '\\') => quote = None,
            (None, '"' | '\'') if jinja_depth == 0 => quote = Some(c),
            (None, '{') if matches!(next, Some('{' | '%' | '#')) => jinja_depth += 1,
            (None, '}' | '%' | '#') if next == Some('}') && jinja_depth > 0 => {
                jinja_depth -= 1;
                current.push(c);
                current.push('}');
                i += 2;
                continue;
            }
            (None, c) if c.is_whitespace() && jinja_depth == 0 => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        current.push(c);
        i += 1;
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
        let inner = &value[1..value.len() - 1];
        return inner.replace(
            &format!("\\{}", bytes[0] as char),
            &(bytes[0] as char).to_string(),
        );
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_with_quotes_and_templates() {
        let args = parse_kv(
            "src=a.txt dest='/tmp/with space' msg={{ a | default('x y') }}",
            false,
        );
        assert_eq!(
            Value::Object(args),
            json!({"src": "a.txt", "dest": "/tmp/with space", "msg": "{{ a | default('x y') }}"})
        );
    }

    #[test]
    fn command_lines_keep_their_words() {
        let args = parse_kv("chdir=/tmp echo a=b 'c d' creates=/x", true);
        assert_eq!(
            Value::Object(args),
            json!({"chdir": "/tmp", "creates": "/x", "_raw_params": "echo a=b 'c d'"})
        );
    }
}
