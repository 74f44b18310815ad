//! Asking for a password: on the terminal without echo, or, when there is no terminal (a CI
//! job piping it in), one line of standard input, as Ansible's getpass falls back to.

use std::io::BufRead;

/// The password typed (or piped) after `prompt`, without its line end.
pub fn secret(prompt: &str) -> std::io::Result<String> {
    match rpassword::prompt_password(prompt) {
        Ok(text) => Ok(text),
        // No controlling terminal (ENXIO) or none that opens: read standard input instead.
        Err(e) if std::fs::File::open("/dev/tty").is_err() => {
            eprint!("{prompt}");
            let mut line = String::new();
            let read = std::io::stdin().lock().read_line(&mut line)?;
            eprintln!();
            if read == 0 {
                return Err(std::io::Error::new(
                    e.kind(),
                    "no terminal to ask on, and nothing on standard input",
                ));
            }
            Ok(line.trim_end_matches(['\n', '\r']).to_string())
        }
        Err(e) => Err(e),
    }
}
