//! `apt_repository`: one `deb`/`deb-src` line in apt's one-line sources files
//! (`/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.list`), added, enabled or removed as
//! Ansible's module does it. Ansible reads every sources file into lines (`valid`, `enabled`,
//! source, comment) and writes a changed file back in that normalised form; settle keeps the
//! same model, so a file it writes reads exactly as Ansible's would. settle needs no python-apt:
//! `install_python_apt` is accepted and does nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Mode, Presence, boolean};
use crate::fsutil::{atomic_write, default_file_mode};
use crate::packages::update_cache;
use crate::resource::{ContentDiff, Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static SPEC: ModuleSpec = ModuleSpec {
    name: "apt_repository",
    args: &[
        "repo",
        "state",
        "mode",
        "update_cache",
        "update-cache",
        "update_cache_retries",
        "update_cache_retry_max_delay",
        "filename",
        "install_python_apt",
        "validate_certs",
        "codename",
    ],
    unsupported: &[],
    free_form: false,
};

const SOURCES_LIST: &str = "/etc/apt/sources.list";
const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
const SOURCE_TYPES: &[&str] = &["deb", "deb-src"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AptRepository {
    repo: String,
    #[serde(default)]
    state: Presence,
    mode: Option<Mode>,
    #[serde(
        default = "crate::args::yes",
        alias = "update-cache",
        deserialize_with = "boolean"
    )]
    update_cache: bool,
    #[serde(default = "five")]
    update_cache_retries: u32,
    #[serde(default = "twelve")]
    update_cache_retry_max_delay: u64,
    filename: Option<String>,
    /// Accepted for compatibility: settle reads and writes sources files itself.
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    #[allow(dead_code)]
    install_python_apt: bool,
    /// Accepted: only Launchpad lookups for `ppa:` lines fetch anything, and settle does none.
    #[serde(default = "crate::args::yes", deserialize_with = "boolean")]
    #[allow(dead_code)]
    validate_certs: bool,
    codename: Option<String>,
    #[serde(skip)]
    files: Vec<SourcesFile>,
}

fn five() -> u32 {
    5
}
fn twelve() -> u64 {
    12
}

/// One line as Ansible's `SourcesList._parse` reads it.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    valid: bool,
    enabled: bool,
    source: String,
    comment: String,
}

fn parse_line(line: &str) -> Line {
    let mut line = line.trim();
    let mut enabled = true;
    if let Some(rest) = line.strip_prefix('#') {
        enabled = false;
        line = rest;
    }
    let mut comment = String::new();
    if let Some(i) = line.find('#')
        && i > 0
    {
        comment = line[i + 1..].trim().to_string();
        line = &line[..i];
    }
    let mut source = line.trim().to_string();
    let chunks: Vec<&str> = source.split_whitespace().collect();
    let valid = chunks.first().is_some_and(|c| SOURCE_TYPES.contains(c));
    if valid {
        source = chunks.join(" ");
    }
    Line {
        valid,
        enabled,
        source,
        comment,
    }
}

/// The text Ansible writes for a file's lines (its `dump`).
fn dump(lines: &[Line]) -> String {
    let mut out = String::new();
    for line in lines {
        if !line.enabled {
            out.push_str("# ");
        }
        out.push_str(&line.source);
        if !line.comment.is_empty() {
            out.push_str(" # ");
            out.push_str(&line.comment);
        }
        out.push('\n');
    }
    out
}

/// Ansible's `_suggest_filename`: the repository's host and path, without scheme, options and
/// credentials, as a file name (`http://ppa.example.org/x y main` → `ppa_example_org_x.list`).
fn suggest_filename(source: &str) -> String {
    let Ok(options) = regex::Regex::new(r"\[[^\]]+\]") else {
        return String::new();
    };
    let Ok(scheme) = regex::Regex::new(r"\w+://") else {
        return String::new();
    };
    let line = options.replace_all(source, "");
    let line = scheme.replace_all(&line, "");
    let first = line
        .split_whitespace()
        .find(|p| !SOURCE_TYPES.contains(p))
        .unwrap_or("");
    let first = first.split_once('@').map_or(first, |(_, host)| host);
    let words: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    format!(
        "{}.list",
        words.split_whitespace().collect::<Vec<_>>().join("_")
    )
}

/// A sources file as read, and as it will be after the task.
#[derive(Debug)]
struct SourcesFile {
    /// Where it is written: the link's target when the file is a symlink, as Ansible writes.
    path: PathBuf,
    /// The path Ansible names it by (in `sources_added`/`sources_removed` and the diff).
    name: String,
    /// `None`: no such file yet.
    before_text: Option<String>,
    before: Vec<Line>,
    lines: Vec<Line>,
    /// A line was appended: the file takes `mode`.
    appended: bool,
}

impl SourcesFile {
    fn load(path: &Path) -> Result<SourcesFile, ModuleError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModuleError::io(format!("read {}", path.display()), e))?;
        let lines: Vec<Line> = text.lines().map(parse_line).collect();
        let target = match std::fs::read_link(path) {
            Ok(target) => path.parent().unwrap_or(Path::new("/")).join(target),
            Err(_) => path.to_path_buf(),
        };
        Ok(SourcesFile {
            path: target,
            name: path.display().to_string(),
            before_text: Some(text),
            before: lines.clone(),
            lines,
            appended: false,
        })
    }

    fn changed(&self) -> bool {
        dump(&self.before) != dump(&self.lines)
    }

    /// The file's text after the task; `None` when it is removed (no lines left).
    fn after_text(&self) -> Option<String> {
        (!self.lines.is_empty()).then(|| dump(&self.lines))
    }
}

fn read_sources() -> Result<Vec<SourcesFile>, ModuleError> {
    let mut files = Vec::new();
    if Path::new(SOURCES_LIST).is_file() {
        files.push(SourcesFile::load(Path::new(SOURCES_LIST))?);
    }
    let mut parts: Vec<PathBuf> = match std::fs::read_dir(SOURCES_DIR) {
        Ok(dir) => dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "list"))
            .collect(),
        Err(_) => Vec::new(),
    };
    parts.sort();
    for path in parts {
        files.push(SourcesFile::load(&path)?);
    }
    Ok(files)
}

/// The release's code name (`bookworm`), from `/etc/os-release`.
fn distro_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

impl AptRepository {
    /// A `ppa:owner/name` line as the `deb` line it stands for, and the file Ansible names
    /// for it.
    fn expand_ppa(&self) -> Result<(String, String), ModuleError> {
        let codename = self
            .codename
            .clone()
            .or_else(distro_codename)
            .ok_or_else(|| {
                ModuleError::Failed(
                    "apt_repository: cannot tell the release's code name; give `codename`".into(),
                )
            })?;
        let ppa = self.repo.split(':').nth(1).unwrap_or("");
        let owner = ppa.split('/').next().unwrap_or("");
        let name = ppa.split('/').nth(1).unwrap_or("ppa");
        let line =
            format!("deb https://ppa.launchpadcontent.net/{owner}/{name}/ubuntu {codename} main");
        let file = suggest_filename(&format!("{}_{codename}", self.repo));
        Ok((line, file))
    }

    /// The file a new line goes to: `filename` (with `.list`) or the one Ansible derives.
    fn target_file(&self, suggested: String) -> PathBuf {
        let name = match &self.filename {
            Some(f) => format!("{f}.list"),
            None => suggested,
        };
        if name.contains('/') {
            PathBuf::from(name)
        } else {
            Path::new(SOURCES_DIR).join(name)
        }
    }

    fn changed_files(&self) -> impl Iterator<Item = &SourcesFile> {
        self.files.iter().filter(|f| f.changed())
    }

    fn wanted_mode(&self, file: &SourcesFile) -> Result<u32, ModuleError> {
        let current = std::fs::metadata(&file.path)
            .ok()
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777);
        match (&self.mode, current) {
            (Some(mode), current) if file.appended => mode
                .resolve(current.unwrap_or(0), false)
                .map_err(|e| ModuleError::Args(format!("apt_repository: mode: {e}"))),
            (_, Some(current)) => Ok(current),
            (_, None) => Ok(default_file_mode()),
        }
    }

    fn write(&self) -> Result<(), ModuleError> {
        for file in self.changed_files() {
            match file.after_text() {
                Some(text) => {
                    if let Some(dir) = file.path.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            ModuleError::Failed(format!(
                                "Failed to create directory {}: {e}",
                                dir.display()
                            ))
                        })?;
                    }
                    let mode = self.wanted_mode(file)?;
                    atomic_write(&file.path, text.as_bytes(), mode, None, None)?;
                    crate::fsutil::chmod(&file.path, mode)?;
                }
                None => match std::fs::remove_file(&file.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(ModuleError::io(format!("remove {}", file.name), e));
                    }
                },
            }
        }
        Ok(())
    }

    /// Puts every changed file back as it was (after a failed cache update), as Ansible's
    /// `revert_sources_list` does.
    fn revert(&self) {
        for file in self.changed_files() {
            match &file.before_text {
                Some(text) => {
                    let mode = std::fs::metadata(&file.path)
                        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
                        .unwrap_or_else(|_| default_file_mode());
                    let _ = atomic_write(&file.path, text.as_bytes(), mode & 0o7777, None, None);
                }
                None => {
                    let _ = std::fs::remove_file(&file.path);
                }
            }
        }
    }
}

impl Resource for AptRepository {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.repo.is_empty() {
            return Err(ModuleError::Args(
                "Please set argument 'repo' to a non-empty value".into(),
            ));
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        self.files = read_sources()?;
        let ppa = self.repo.starts_with("ppa:");
        let (source, suggested) = if ppa {
            self.expand_ppa()?
        } else {
            let line = parse_line(&self.repo);
            if !line.valid || !line.enabled {
                let raw = self.repo.trim();
                let raw = raw.strip_prefix('#').unwrap_or(raw);
                let raw = match raw.find('#') {
                    Some(i) if i > 0 => &raw[..i],
                    _ => raw,
                };
                return Err(ModuleError::Failed(format!(
                    "Invalid repository string: {raw}"
                )));
            }
            let suggested = suggest_filename(&line.source);
            (line.source, suggested)
        };
        match self.state {
            Presence::Present => {
                let present = |l: &Line| l.valid && l.source == source;
                if ppa
                    && !self
                        .files
                        .iter()
                        .flat_map(|f| &f.lines)
                        .any(|l| present(l) && l.enabled)
                {
                    return Err(ModuleError::Failed(format!(
                        "apt_repository: settle does not add PPAs ({}): their signing key comes from \
                         Launchpad, which settle does not query. Add the key (deb822_repository's \
                         signed_by, or apt_key) and the line `{source}` instead.",
                        self.repo
                    )));
                }
                let mut found = false;
                for line in self.files.iter_mut().flat_map(|f| f.lines.iter_mut()) {
                    if present(line) {
                        line.enabled = true;
                        found = true;
                    }
                }
                if !found {
                    let path = self.target_file(suggested);
                    let at = match self
                        .files
                        .iter()
                        .position(|f| f.name == path.display().to_string())
                    {
                        Some(at) => at,
                        None => {
                            self.files.push(SourcesFile {
                                name: path.display().to_string(),
                                path,
                                before_text: None,
                                before: Vec::new(),
                                lines: Vec::new(),
                                appended: false,
                            });
                            self.files.len() - 1
                        }
                    };
                    let file = &mut self.files[at];
                    file.lines.push(Line {
                        valid: true,
                        enabled: true,
                        source: source.clone(),
                        comment: String::new(),
                    });
                    file.appended = true;
                }
            }
            Presence::Absent => {
                for file in &mut self.files {
                    file.lines
                        .retain(|l| !(l.valid && l.enabled && l.source == source));
                }
            }
        }
        let mut plan = Plan::default();
        for file in self.changed_files() {
            let after = file.after_text();
            plan.change(
                "content",
                file.before_text.as_ref().map(|_| file.name.clone()),
                after.as_ref().map(|_| file.name.clone()),
            );
            plan.content.push(ContentDiff {
                path: file.name.clone(),
                before: file.before_text.clone(),
                after,
                summary: None,
            });
        }
        Ok(plan)
    }

    fn apply(&mut self, _plan: &Plan) -> Result<(), ModuleError> {
        self.write()?;
        if self.update_cache
            && let Err(e) =
                update_cache(self.update_cache_retries, self.update_cache_retry_max_delay)
        {
            self.revert();
            return Err(ModuleError::Failed(format!(
                "Failed to update apt cache after {} retries: {e}",
                self.update_cache_retries
            )));
        }
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        let added: Vec<Value> = self
            .changed_files()
            .filter(|f| f.before.is_empty() && !f.lines.is_empty())
            .map(|f| f.name.clone().into())
            .collect();
        let removed: Vec<Value> = self
            .changed_files()
            .filter(|f| !f.before.is_empty() && f.lines.is_empty())
            .map(|f| f.name.clone().into())
            .collect();
        // Ansible's diff lists the files added or removed, with their whole text.
        let diff: Vec<Value> = self
            .changed_files()
            .filter(|f| f.before.is_empty() != f.lines.is_empty())
            .map(|f| {
                let before = (!f.before.is_empty()).then(|| dump(&f.before));
                let after = f.after_text();
                serde_json::json!({
                    "before": before.clone().unwrap_or_default(),
                    "after": after.clone().unwrap_or_default(),
                    "before_header": if before.is_some() { f.name.as_str() } else { "/dev/null" },
                    "after_header": if after.is_some() { f.name.as_str() } else { "/dev/null" },
                })
            })
            .collect();
        values.insert("repo".into(), self.repo.clone().into());
        values.insert("state".into(), self.state.word().into());
        values.insert("sources_added".into(), added.into());
        values.insert("sources_removed".into(), removed.into());
        values.insert("diff".into(), diff.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_ansible_reads_them() {
        let l = parse_line("#deb  http://x/debian   bookworm main # mirror");
        assert_eq!(
            l,
            Line {
                valid: true,
                enabled: false,
                source: "deb http://x/debian bookworm main".into(),
                comment: "mirror".into()
            }
        );
        assert_eq!(dump(&[l]), "# deb http://x/debian bookworm main # mirror\n");
        assert!(!parse_line("# a comment").valid);
        assert_eq!(dump(&[parse_line("")]), "\n");
    }

    #[test]
    fn file_names_derived_as_ansible_derives_them() {
        assert_eq!(
            suggest_filename(
                "deb [arch=amd64] https://user:pw@download.docker.com/linux/debian bookworm stable"
            ),
            "download_docker_com_linux_debian.list"
        );
        assert_eq!(
            suggest_filename("deb file:/srv/repo ./"),
            "file_srv_repo.list"
        );
        assert_eq!(
            suggest_filename("ppa:deadsnakes/ppa_jammy"),
            "ppa_deadsnakes_ppa_jammy.list"
        );
    }
}
