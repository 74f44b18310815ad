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
/// stand; everything else, `a=b` words included, stays part of the command. The free-form text
/// keeps its newlines and spaces as written (a `shell: |` block runs as the script it is), as
/// Ansible 2.19's `split_args`/`join_args` keep them.
pub fn parse_kv(text: &str, raw: bool) -> Result<Vars, String> {
    let mut args = Vars::new();
    let mut free: Vec<String> = Vec::new();
    for token in split_args(text)? {
        let decoded = decode_escapes(&token);
        if !decoded.contains('=') {
            free.push(token);
            continue;
        }
        // The first `=` after the first character that is not escaped splits key from value.
        let bytes = decoded.as_bytes();
        let split = (1..bytes.len()).find(|&i| bytes[i] == b'=' && bytes[i - 1] != b'\\');
        let Some(pos) = split else {
            free.push(decoded.replace("\\=", "="));
            continue;
        };
        let key = &decoded[..pos];
        if raw && !RAW_MODULE_KEYS.contains(&key) {
            free.push(token);
        } else {
            let value = unquote(decoded[pos + 1..].trim());
            args.insert(key.trim().to_string(), Value::String(value.to_string()));
        }
    }
    if !free.is_empty() {
        args.insert("_raw_params".into(), Value::String(join_args(&free)));
    }
    Ok(args)
}

/// Words split on spaces and newlines, where quotes and Jinja blocks hold a word together; each
/// word keeps the spaces and the newline that followed it, so [`join_args`] gives the text back.
fn split_args(text: &str) -> Result<Vec<String>, String> {
    let mut params: Vec<String> = Vec::new();
    if text.is_empty() {
        return Ok(params);
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut quote: Option<char> = None;
    let (mut print_depth, mut block_depth, mut comment_depth) = (0usize, 0usize, 0usize);
    for (line_index, line) in lines.iter().enumerate() {
        let mut continuation = false;
        for (index, token) in line.split(' ').enumerate() {
            if token.is_empty() && index != 0 {
                last(&mut params).push(' ');
                continue;
            }
            if token == "\\" && quote.is_none() {
                continuation = true;
                continue;
            }
            let was_inside_quotes = quote.is_some();
            quote = quote_state(token, quote);
            let inside_quotes = quote.is_some();
            let in_block = print_depth + block_depth + comment_depth > 0;
            let mut appended = false;
            if inside_quotes && !was_inside_quotes && !in_block {
                params.push(token.to_string());
                appended = true;
            } else if in_block || inside_quotes || was_inside_quotes {
                let previous = last(&mut params);
                if index > 0 {
                    previous.push(' ');
                }
                previous.push_str(token);
                appended = true;
            }
            for (depth, open, close) in [
                (&mut print_depth, "{{", "}}"),
                (&mut block_depth, "{%", "%}"),
                (&mut comment_depth, "{#", "#}"),
            ] {
                let before = *depth;
                let (opened, closed) = (token.matches(open).count(), token.matches(close).count());
                *depth = (*depth + opened).saturating_sub(closed);
                if *depth != before && !appended {
                    params.push(token.to_string());
                    appended = true;
                }
            }
            let in_block = print_depth + block_depth + comment_depth > 0;
            if !in_block && !inside_quotes && !appended && !token.is_empty() {
                params.push(token.to_string());
            }
        }
        if lines.len() > 1 && line_index != lines.len() - 1 && !continuation {
            last(&mut params).push('\n');
        }
    }
    if print_depth + block_depth + comment_depth > 0 || quote.is_some() {
        return Err(format!(
            "failed at splitting arguments, either an unbalanced jinja2 block or quotes: {text}"
        ));
    }
    Ok(params)
}

/// The last word, made if there is none yet.
fn last(params: &mut Vec<String>) -> &mut String {
    if params.is_empty() {
        params.push(String::new());
    }
    let at = params.len() - 1;
    &mut params[at]
}

/// The quote still open after `token`, starting with `open`.
fn quote_state(token: &str, mut open: Option<char>) -> Option<char> {
    let mut previous = None;
    for c in token.chars() {
        if (c == '"' || c == '\'') && previous != Some('\\') {
            match open {
                Some(q) if q == c => open = None,
                Some(_) => {}
                None => open = Some(c),
            }
        }
        previous = Some(c);
    }
    open
}

/// Words joined back: a space between two words unless the first ended its line.
fn join_args(words: &[String]) -> String {
    let mut out = String::new();
    for word in words {
        if !(out.is_empty() || out.ends_with('\n')) {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Python's escape sequences (`\n`, `\t`, `\\`, `\"`, `\x41`, `\u00e9`, …) as Ansible decodes
/// them in `key=value` text; anything else stays as written.
fn decode_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let hex = |len: usize| {
            after
                .get(1..=len)
                .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
        };
        let (decoded, used) = match after.chars().next() {
            Some('\\') => (Some('\\'), 1),
            Some('\'') => (Some('\''), 1),
            Some('"') => (Some('"'), 1),
            Some('a') => (Some('\x07'), 1),
            Some('b') => (Some('\x08'), 1),
            Some('f') => (Some('\x0c'), 1),
            Some('n') => (Some('\n'), 1),
            Some('r') => (Some('\r'), 1),
            Some('t') => (Some('\t'), 1),
            Some('v') => (Some('\x0b'), 1),
            Some('x') => (hex(2), 3),
            Some('u') => (hex(4), 5),
            Some('U') => (hex(8), 9),
            _ => (None, 0),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Python's `unquote`: the outer quotes off a string that starts and ends with the same one.
fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    let quoted = bytes.len() > 1
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
        && bytes[bytes.len() - 2] != b'\\';
    if quoted {
        &value[1..value.len() - 1]
    } else {
        value
    }
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
        )
        .unwrap();
        assert_eq!(
            Value::Object(args),
            json!({"src": "a.txt", "dest": "/tmp/with space", "msg": "{{ a | default('x y') }}"})
        );
    }

    #[test]
    fn command_lines_keep_their_words() {
        let args = parse_kv("chdir=/tmp echo a=b 'c d' creates=/x", true).unwrap();
        assert_eq!(
            Value::Object(args),
            json!({"chdir": "/tmp", "creates": "/x", "_raw_params": "echo a=b 'c d'"})
        );
    }

    #[test]
    fn multi_line_shell_blocks_run_as_written() {
        let script = "set -e\nif [ -d /x ]; then\n    echo  'a  b'\nfi\n";
        let args = parse_kv(script, true).unwrap();
        assert_eq!(args["_raw_params"], json!(script));
        let args = parse_kv("creates=/x\necho a\n  b\n", true).unwrap();
        assert_eq!(args["creates"], json!("/x"));
        assert_eq!(args["_raw_params"], json!("echo a\n  b\n"));
    }

    #[test]
    fn escapes_and_unbalanced_quotes() {
        let args = parse_kv(r#"msg="a\nb" x=\'y"#, false).unwrap();
        assert_eq!(args["msg"], json!("a\nb"));
        assert_eq!(args["x"], json!("'y"));
        assert!(
            parse_kv("echo 'open", true)
                .unwrap_err()
                .contains("unbalanced")
        );
    }
}
