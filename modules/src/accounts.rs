//! `user` and `group`: local accounts, read from /etc/passwd, /etc/group and /etc/shadow, and
//! changed with the host's own useradd/usermod/userdel and groupadd/groupmod/groupdel.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args::{Presence, boolean, optional_boolean, text};
use crate::fsutil;
use crate::process::run_ok;
use crate::resource::{Plan, Resource};
use crate::{ModuleError, ModuleSpec};

pub(crate) static USER_SPEC: ModuleSpec = ModuleSpec {
    name: "user",
    args: &[
        "name",
        "user",
        "state",
        "uid",
        "group",
        "groups",
        "append",
        "system",
        "shell",
        "home",
        "create_home",
        "createhome",
        "comment",
        "password",
        "password_lock",
        "expires",
        "remove",
        "force",
        "non_unique",
        "update_password",
        "move_home",
        "generate_ssh_key",
        "ssh_key_bits",
        "ssh_key_comment",
        "ssh_key_file",
        "ssh_key_type",
        "ssh_key_passphrase",
        "skeleton",
        "umask",
        "password_expire_max",
        "password_expire_min",
        "password_expire_warn",
        "password_expire_account_disable",
        "uid_min",
        "uid_max",
        "local",
        "seuser",
        "login_class",
        "hidden",
        "authorization",
        "profile",
        "role",
    ],
    unsupported: &[],
    free_form: false,
};

pub(crate) static GROUP_SPEC: ModuleSpec = ModuleSpec {
    name: "group",
    args: &[
        "name",
        "gid",
        "system",
        "state",
        "non_unique",
        "force",
        "local",
        "gid_min",
        "gid_max",
    ],
    unsupported: &[],
    free_form: false,
};

/// One line of /etc/passwd.
#[derive(Debug, Clone)]
pub(crate) struct Passwd {
    pub uid: u32,
    pub gid: u32,
    pub comment: String,
    pub home: String,
    pub shell: String,
}

/// One line of /etc/group.
#[derive(Debug, Clone)]
pub(crate) struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

pub(crate) fn passwd(name: &str) -> Option<Passwd> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[0] == name).then(|| Passwd {
            uid: f[2].parse().unwrap_or(0),
            gid: f[3].parse().unwrap_or(0),
            comment: f[4].into(),
            home: f[5].into(),
            shell: f[6].into(),
        })
    })
}

pub(crate) fn groups() -> Vec<GroupEntry> {
    std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().unwrap_or(0),
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// One line of /etc/shadow. An empty number field is `None`.
#[derive(Debug, Default)]
struct Shadow {
    hash: String,
    min: Option<i64>,
    max: Option<i64>,
    warn: Option<i64>,
    inactive: Option<i64>,
    /// Account expiry, in days since 1970.
    expire: Option<i64>,
}

fn shadow(name: &str) -> Option<Shadow> {
    let text = std::fs::read_to_string("/etc/shadow").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 8 && f[0] == name).then(|| Shadow {
            hash: f[1].to_string(),
            min: f[3].parse().ok(),
            max: f[4].parse().ok(),
            warn: f[5].parse().ok(),
            inactive: f[6].parse().ok(),
            expire: f[7].parse().ok(),
        })
    })
}

/// A group given by name or number → its gid, if it exists.
fn resolve_group(group: &str) -> Result<u32, ModuleError> {
    let all = groups();
    let found = match group.parse::<u32>() {
        Ok(gid) => all.iter().find(|g| g.gid == gid),
        Err(_) => all.iter().find(|g| g.name == group),
    };
    found
        .map(|g| g.gid)
        .ok_or_else(|| ModuleError::Failed(format!("Group {group} does not exist")))
}

fn group_name_of(gid: u32) -> String {
    groups()
        .into_iter()
        .find(|g| g.gid == gid)
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string())
}

/// `groups: [a, b]` or `groups: "a,b"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum GroupList {
    List(Vec<String>),
    Text(String),
}

impl GroupList {
    fn names(&self) -> Vec<String> {
        let raw: Vec<String> = match self {
            GroupList::List(l) => l.clone(),
            GroupList::Text(t) => t.split(',').map(str::to_string).collect(),
        };
        raw.into_iter()
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct User {
    #[serde(alias = "user")]
    name: String,
    #[serde(default)]
    state: Presence,
    #[serde(default, deserialize_with = "text")]
    uid: Option<String>,
    #[serde(default, deserialize_with = "text")]
    group: Option<String>,
    groups: Option<GroupList>,
    #[serde(default, deserialize_with = "boolean")]
    append: bool,
    #[serde(default, deserialize_with = "boolean")]
    system: bool,
    shell: Option<String>,
    home: Option<String>,
    #[serde(
        default = "crate::args::yes",
        alias = "createhome",
        deserialize_with = "boolean"
    )]
    create_home: bool,
    comment: Option<String>,
    password: Option<String>,
    #[serde(default, deserialize_with = "optional_boolean")]
    password_lock: Option<bool>,
    expires: Option<f64>,
    #[serde(default, deserialize_with = "boolean")]
    remove: bool,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    #[serde(default, deserialize_with = "boolean")]
    non_unique: bool,
    #[serde(default = "always")]
    update_password: String,
    #[serde(default, deserialize_with = "boolean")]
    move_home: bool,
    skeleton: Option<String>,
    #[serde(default, deserialize_with = "text")]
    umask: Option<String>,
    uid_min: Option<u32>,
    uid_max: Option<u32>,
    password_expire_max: Option<i64>,
    password_expire_min: Option<i64>,
    password_expire_warn: Option<i64>,
    password_expire_account_disable: Option<i64>,
    #[serde(default, deserialize_with = "boolean")]
    generate_ssh_key: bool,
    #[serde(default)]
    ssh_key_bits: u32,
    #[serde(default = "rsa")]
    ssh_key_type: String,
    ssh_key_file: Option<String>,
    ssh_key_comment: Option<String>,
    ssh_key_passphrase: Option<String>,
    /// Local accounts only, with libuser's luseradd/lusermod/luserdel (Ansible's `local`).
    #[serde(default, deserialize_with = "boolean")]
    local: bool,
    /// useradd's `-Z` (the SELinux user) for a new account, as Ansible passes it.
    #[serde(default, deserialize_with = "text")]
    seuser: Option<String>,
    /// Arguments of Ansible's user module for other systems (BSD login classes, macOS hidden
    /// users, Solaris profiles, authorizations and roles): its Linux class never reads them.
    #[serde(default, rename = "login_class", deserialize_with = "text")]
    _login_class: Option<String>,
    #[serde(default, rename = "hidden", deserialize_with = "optional_boolean")]
    _hidden: Option<bool>,
    #[serde(default, rename = "authorization", deserialize_with = "text")]
    _authorization: Option<String>,
    #[serde(default, rename = "profile", deserialize_with = "text")]
    _profile: Option<String>,
    #[serde(default, rename = "role", deserialize_with = "text")]
    _role: Option<String>,
    #[serde(skip)]
    existed: bool,
}

/// The command for an account change: shadow-utils' (`useradd`), or libuser's (`luseradd`)
/// with `local`.
fn tool(local: bool, name: &str) -> String {
    if local {
        format!("l{name}")
    } else {
        name.to_string()
    }
}

fn rsa() -> String {
    "rsa".into()
}

/// `chage`'s flag for each password ageing argument, with the /etc/shadow field it sets.
const AGEING: [(&str, &str); 3] = [
    ("password_expire_min", "-m"),
    ("password_expire_max", "-M"),
    ("password_expire_warn", "-W"),
];

fn always() -> String {
    "always".into()
}

/// Days since 1970-01-01 → YYYY-MM-DD, for `usermod -e`.
fn date_of_days(days: i64) -> String {
    let (y, m, d) = fsutil::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

const HIDDEN: &str = "(hidden)";

impl User {
    fn wanted_expiry_days(&self) -> Option<Option<i64>> {
        self.expires.map(|e| {
            if e < 0.0 {
                None
            } else {
                Some((e / 86_400.0).floor() as i64)
            }
        })
    }

    fn ageing(&self, field: &str) -> Option<i64> {
        match field {
            "password_expire_min" => self.password_expire_min,
            "password_expire_max" => self.password_expire_max,
            "password_expire_warn" => self.password_expire_warn,
            _ => None,
        }
    }

    /// The home folder the user has, or will have once created (useradd's default).
    fn home_dir(&self) -> String {
        passwd(&self.name)
            .map(|p| p.home)
            .or_else(|| self.home.clone())
            .unwrap_or_else(|| format!("/home/{}", self.name))
    }

    /// The private key file of `generate_ssh_key`: `ssh_key_file`, relative to the home folder,
    /// by default `.ssh/id_<type>`.
    fn ssh_key_path(&self) -> std::path::PathBuf {
        let file = self
            .ssh_key_file
            .clone()
            .unwrap_or_else(|| format!(".ssh/id_{}", self.ssh_key_type));
        std::path::Path::new(&self.home_dir()).join(file)
    }

    /// Runs ssh-keygen for `generate_ssh_key` (the folder made 0700, both files given to the
    /// user), as Ansible's user module does.
    fn generate_key(&self) -> Result<(), ModuleError> {
        let key = self.ssh_key_path();
        let public = format!("{}.pub", key.display());
        let owner = passwd(&self.name)
            .ok_or_else(|| ModuleError::Failed(format!("user {} does not exist", self.name)))?;
        let chown = |path: &std::path::Path| {
            std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
                .map_err(|e| ModuleError::io(format!("chown {}", path.display()), e))
        };
        if let Some(dir) = key.parent()
            && !dir.exists()
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|e| ModuleError::io(format!("Failed to create {}", dir.display()), e))?;
            chown(dir)?;
        }
        // `force`: ssh-keygen asks before overwriting the private key; the public one goes first.
        for path in [key.as_path(), std::path::Path::new(&public)] {
            if path.exists() {
                std::fs::remove_file(path)
                    .map_err(|e| ModuleError::io(format!("remove {}", path.display()), e))?;
            }
        }
        let comment = self.ssh_key_comment.clone().unwrap_or_else(default_comment);
        let mut argv: Vec<String> =
            vec!["ssh-keygen".into(), "-t".into(), self.ssh_key_type.clone()];
        if self.ssh_key_bits > 0 {
            argv.extend(["-b".into(), self.ssh_key_bits.to_string()]);
        }
        argv.extend(["-C".into(), comment, "-f".into(), key.display().to_string()]);
        match &self.ssh_key_passphrase {
            None => {
                argv.extend(["-N".into(), String::new()]);
                run_ok(&argv, &[])?;
            }
            // Answered at ssh-keygen's prompts on a terminal of its own, as Ansible does: never
            // on a command line, where `ps` would show it.
            Some(passphrase) => self.keygen_with_passphrase(&argv, passphrase)?,
        }
        chown(&key)?;
        chown(std::path::Path::new(&public))
    }

    /// ssh-keygen asking for the passphrase twice, answered under a pseudo-terminal.
    fn keygen_with_passphrase(&self, argv: &[String], passphrase: &str) -> Result<(), ModuleError> {
        use crate::expect::{Answer, Prompt, converse};
        use crate::pyre::{Flags, Pattern};
        let mut prompts = Vec::new();
        for question in ["Enter passphrase", "Enter same passphrase again"] {
            prompts.push(Prompt {
                question: question.into(),
                pattern: Pattern::compile(question, Flags::default())
                    .map_err(ModuleError::Failed)?,
                answer: Answer::Always(passphrase.into()),
            });
        }
        let env = [("LC_ALL".to_string(), "C".to_string())];
        // Ansible gives ssh-keygen 900 seconds.
        let talk = converse(argv, None, &env, &mut prompts, false, Some(900), None)
            .map_err(|e| ModuleError::io("run ssh-keygen", e))?;
        match talk.rc {
            Some(0) => Ok(()),
            rc => Err(ModuleError::Failed(format!(
                "ssh-keygen failed (rc={}): {}",
                rc.map_or("killed".into(), |rc| rc.to_string()),
                talk.output.trim()
            ))),
        }
    }

    fn supplementary(&self) -> Vec<String> {
        let name = &self.name;
        groups()
            .into_iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.name)
            .collect()
    }
}

impl Resource for User {
    fn validate(&self) -> Result<(), ModuleError> {
        if let Some(uid) = &self.uid {
            uid.parse::<u32>().map_err(|_| {
                ModuleError::Args(format!("user: argument \"uid\": {uid:?} is not a number"))
            })?;
        }
        if self.non_unique && self.uid.is_none() {
            return Err(ModuleError::Args("user: non_unique needs uid".into()));
        }
        if !matches!(self.update_password.as_str(), "always" | "on_create") {
            return Err(ModuleError::Args(
                "user: update_password must be always or on_create".into(),
            ));
        }
        if self.local {
            for (name, given) in [
                ("umask", self.umask.is_some()),
                ("uid_min", self.uid_min.is_some()),
                ("uid_max", self.uid_max.is_some()),
            ] {
                if given {
                    return Err(ModuleError::Failed(format!(
                        "'{name}' can not be used with 'local'"
                    )));
                }
            }
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        let current = passwd(&self.name);
        self.existed = current.is_some();
        let Some(current) = current else {
            if self.state == Presence::Present {
                plan.change("state", Some("absent".into()), Some("present".into()));
                if let Some(g) = &self.group {
                    resolve_group(g)?;
                }
                for (field, _) in AGEING {
                    if let Some(want) = self.ageing(field) {
                        plan.change(field, None, Some(want.to_string()));
                    }
                }
                self.plan_ssh_key(&mut plan);
            }
            return Ok(plan);
        };
        if self.state == Presence::Absent {
            plan.change("state", Some("present".into()), Some("absent".into()));
            return Ok(plan);
        }
        if let Some(uid) = &self.uid {
            let want: u32 = uid
                .parse()
                .map_err(|_| ModuleError::Args(format!("user: uid {uid:?} is not a number")))?;
            if want != current.uid {
                plan.change("uid", Some(current.uid.to_string()), Some(want.to_string()));
            }
        }
        if let Some(group) = &self.group {
            let gid = resolve_group(group)?;
            if gid != current.gid {
                plan.change(
                    "group",
                    Some(group_name_of(current.gid)),
                    Some(group_name_of(gid)),
                );
            }
        }
        if let Some(list) = &self.groups {
            let wanted = list.names();
            for g in &wanted {
                resolve_group(g)?;
            }
            let mut have = self.supplementary();
            have.sort();
            let primary = group_name_of(current.gid);
            let mut target: Vec<String> = if self.append {
                let mut t = have.clone();
                t.extend(wanted.iter().filter(|g| **g != primary).cloned());
                t
            } else {
                wanted.iter().filter(|g| **g != primary).cloned().collect()
            };
            target.sort();
            target.dedup();
            if target != have {
                plan.change("groups", Some(have.join(",")), Some(target.join(",")));
            }
        }
        for (field, want, have) in [
            ("shell", &self.shell, &current.shell),
            ("home", &self.home, &current.home),
            ("comment", &self.comment, &current.comment),
        ] {
            if let Some(want) = want
                && want != have
            {
                plan.change(field, Some(have.clone()), Some(want.clone()));
            }
        }
        let Shadow {
            hash,
            expire: expiry,
            ..
        } = shadow(&self.name).unwrap_or_default();
        if let Some(password) = &self.password
            && self.update_password == "always"
            && hash.trim_start_matches('!') != password
        {
            plan.change("password", Some(HIDDEN.into()), Some(HIDDEN.into()));
        }
        if let Some(lock) = self.password_lock {
            let locked = hash.starts_with('!');
            if lock != locked {
                plan.change(
                    "password_lock",
                    Some(locked.to_string()),
                    Some(lock.to_string()),
                );
            }
        }
        if let Some(want) = self.wanted_expiry_days() {
            let have = expiry.filter(|d| *d >= 0);
            if want != have {
                let show = |d: Option<i64>| d.map(date_of_days).unwrap_or_else(|| "never".into());
                plan.change("expires", Some(show(have)), Some(show(want)));
            }
        }
        let ageing = shadow(&self.name).unwrap_or_default();
        for (field, have) in [
            ("password_expire_min", ageing.min),
            ("password_expire_max", ageing.max),
            ("password_expire_warn", ageing.warn),
            ("password_expire_account_disable", ageing.inactive),
        ] {
            let want = match field {
                "password_expire_account_disable" => self.password_expire_account_disable,
                _ => self.ageing(field),
            };
            if let Some(want) = want
                && Some(want) != have
            {
                let show = |d: Option<i64>| d.map_or_else(|| "none".into(), |d| d.to_string());
                plan.change(field, Some(show(have)), Some(want.to_string()));
            }
        }
        self.plan_ssh_key(&mut plan);
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let name = self.name.clone();
        if plan.has("state") {
            if self.state == Presence::Absent {
                let mut argv = vec![tool(self.local, "userdel")];
                if self.force && !self.local {
                    argv.push("-f".into());
                }
                if self.remove {
                    argv.push("-r".into());
                }
                argv.push(name);
                run_ok(&argv, &[])?;
                return Ok(());
            }
            return self.create(plan);
        }
        self.modify(plan)
    }

    fn values(&self, values: &mut Map<String, Value>) {
        // The keys Ansible's user module returns, which depend on what it did: a removal
        // says `force` and `remove`, a creation `system` and `create_home`, a modification
        // `append` and `move_home`; a present user its passwd fields, and `groups` when asked.
        values.insert("name".into(), self.name.clone().into());
        values.insert("state".into(), self.state.word().into());
        match (self.state == Presence::Present, self.existed) {
            (false, true) => {
                values.insert("force".into(), self.force.into());
                values.insert("remove".into(), self.remove.into());
            }
            (false, false) => {}
            (true, false) => {
                values.insert("system".into(), self.system.into());
                values.insert("create_home".into(), self.create_home.into());
            }
            (true, true) => {
                values.insert("append".into(), self.append.into());
                values.insert("move_home".into(), self.move_home.into());
            }
        }
        if self.state == Presence::Present
            && let Some(p) = passwd(&self.name)
        {
            values.insert("uid".into(), p.uid.into());
            values.insert("group".into(), p.gid.into());
            values.insert("home".into(), p.home.into());
            values.insert("shell".into(), p.shell.into());
            values.insert("comment".into(), p.comment.into());
            if let Some(groups) = &self.groups {
                values.insert("groups".into(), groups.names().join(",").into());
            }
        }
        if self.password.is_some() {
            values.insert("password".into(), "NOT_LOGGING_PASSWORD".into());
        }
        if self.generate_ssh_key && self.state == Presence::Present {
            let key = self.ssh_key_path();
            let fingerprint = if key.exists() {
                crate::process::run(&["ssh-keygen", "-l", "-f", &key.display().to_string()], &[])
                    .map(|r| r.stdout.trim().to_string())
                    .unwrap_or_default()
            } else {
                format!("SSH Key file {} does not exist", key.display())
            };
            values.insert("ssh_fingerprint".into(), fingerprint.into());
            let public = std::fs::read_to_string(format!("{}.pub", key.display()))
                .ok()
                .map(|k| k.trim().to_string());
            values.insert("ssh_key_file".into(), key.display().to_string().into());
            values.insert("ssh_public_key".into(), public.into());
        }
    }
}

impl User {
    /// `generate_ssh_key`: a key is made when neither its private nor its public file exists,
    /// or always with `force` (Ansible's rule: an existing file is never replaced without it).
    fn plan_ssh_key(&self, plan: &mut Plan) {
        if !self.generate_ssh_key {
            return;
        }
        let key = self.ssh_key_path();
        let public = std::path::PathBuf::from(format!("{}.pub", key.display()));
        let exists = key.exists() || public.exists();
        if !exists || self.force {
            plan.change(
                "ssh_key",
                exists.then(|| key.display().to_string()),
                Some(key.display().to_string()),
            );
        }
    }

    /// `chage` for the password ageing arguments that differ.
    fn chage(&self, plan: &Plan) -> Result<(), ModuleError> {
        let mut args: Vec<String> = vec!["chage".into()];
        for (field, flag) in AGEING {
            if let Some(change) = plan.changes.iter().find(|c| c.field == field) {
                args.extend([flag.into(), change.after.clone().unwrap_or_default()]);
            }
        }
        if args.len() > 1 {
            args.push(self.name.clone());
            run_ok(&args, &[])?;
        }
        Ok(())
    }
}

impl User {
    /// useradd (luseradd with `local`, which takes groups and expiry separately, as Ansible's
    /// `create_user_useradd` does).
    fn create(&self, plan: &Plan) -> Result<(), ModuleError> {
        let name = self.name.clone();
        let local = self.local;
        let mut args: Vec<String> = vec![tool(local, "useradd")];
        if let Some(uid) = &self.uid {
            args.extend(["-u".into(), uid.clone()]);
            if self.non_unique {
                args.push("-o".into());
            }
        }
        if let Some(seuser) = &self.seuser {
            args.extend(["-Z".into(), seuser.clone()]);
        }
        if let Some(g) = &self.group {
            args.extend(["-g".into(), g.clone()]);
        } else if local && groups().iter().any(|g| g.name == name) {
            // luseradd would make the user's own group and fail on the one that exists.
            args.push("-n".into());
        }
        let wanted_groups = self.groups.as_ref().map(GroupList::names);
        if let Some(names) = wanted_groups.as_ref().filter(|n| !n.is_empty() && !local) {
            args.extend(["-G".into(), names.join(",")]);
        }
        for (flag, value) in [
            ("-s", &self.shell),
            ("-d", &self.home),
            ("-c", &self.comment),
        ] {
            if let Some(v) = value {
                args.extend([flag.into(), v.clone()]);
            }
        }
        if let Some(Some(days)) = self.wanted_expiry_days().filter(|_| !local) {
            args.extend(["-e".into(), date_of_days(days)]);
        }
        if let Some(days) = self.password_expire_account_disable {
            args.extend(["-f".into(), days.to_string()]);
        }
        if let Some(password) = &self.password {
            args.extend(["-p".into(), password.clone()]);
        }
        if self.system {
            args.push("-r".into());
        }
        if self.create_home {
            if !local {
                args.push("-m".into());
            }
            if let Some(skeleton) = &self.skeleton {
                args.extend(["-k".into(), skeleton.clone()]);
            }
            if let Some(umask) = &self.umask {
                args.extend(["-K".into(), format!("UMASK={umask}")]);
            }
        } else {
            args.push("-M".into());
        }
        for (key, value) in [("UID_MIN", self.uid_min), ("UID_MAX", self.uid_max)] {
            if let Some(value) = value {
                args.extend(["-K".into(), format!("{key}={value}")]);
            }
        }
        args.push(name.clone());
        run_ok(&args, &[])?;
        if local {
            if let Some(days) = self.wanted_expiry_days() {
                let days = days.map_or_else(|| "-1".to_string(), |d| d.to_string());
                run_ok(&["lchage", "-E", &days, &name], &[])?;
            }
            for group in wanted_groups.unwrap_or_default() {
                run_ok(&["lgroupmod", "-M", &name, &group], &[])?;
            }
        }
        if self.password_lock == Some(true) {
            run_ok(&[tool(local, "usermod").as_str(), "-L", &name], &[])?;
        }
        self.chage(plan)?;
        if plan.has("ssh_key") {
            self.generate_key()?;
        }
        Ok(())
    }

    /// usermod (lusermod with `local`, groups through lgroupmod and expiry through lchage) for
    /// what `check` found different.
    fn modify(&self, plan: &Plan) -> Result<(), ModuleError> {
        let name = self.name.clone();
        let local = self.local;
        let mut args: Vec<String> = vec![tool(local, "usermod")];
        let mut later: Vec<Vec<String>> = Vec::new();
        for change in &plan.changes {
            let after = change.after.clone().unwrap_or_default();
            match change.field.as_str() {
                "uid" => {
                    args.extend(["-u".into(), after]);
                    if self.non_unique {
                        args.push("-o".into());
                    }
                }
                "group" => args.extend(["-g".into(), self.group.clone().unwrap_or_default()]),
                "groups" if local => {
                    let before: Vec<&str> = change
                        .before
                        .as_deref()
                        .unwrap_or("")
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .collect();
                    let after: Vec<&str> = after.split(',').filter(|g| !g.is_empty()).collect();
                    for group in after.iter().filter(|g| !before.contains(g)) {
                        later.push(vec![
                            "lgroupmod".into(),
                            "-M".into(),
                            name.clone(),
                            (*group).into(),
                        ]);
                    }
                    for group in before.iter().filter(|g| !after.contains(g)) {
                        later.push(vec![
                            "lgroupmod".into(),
                            "-m".into(),
                            name.clone(),
                            (*group).into(),
                        ]);
                    }
                }
                "groups" => args.extend(["-G".into(), after]),
                "shell" => args.extend(["-s".into(), after]),
                "home" => {
                    args.extend(["-d".into(), after]);
                    if self.move_home {
                        args.push("-m".into());
                    }
                }
                "comment" => args.extend(["-c".into(), after]),
                "password" => args.extend(["-p".into(), self.password.clone().unwrap_or_default()]),
                "password_lock" => args.push(if self.password_lock == Some(true) {
                    "-L".into()
                } else {
                    "-U".into()
                }),
                "expires" if local => {
                    let days = self.wanted_expiry_days().flatten();
                    let days = days.map_or_else(|| "-1".to_string(), |d| d.to_string());
                    later.push(vec!["lchage".into(), "-E".into(), days, name.clone()]);
                }
                "expires" => args.extend([
                    "-e".into(),
                    match self.wanted_expiry_days().flatten() {
                        Some(days) => date_of_days(days),
                        None => String::new(),
                    },
                ]),
                "password_expire_account_disable" => args.extend(["-f".into(), after]),
                _ => {}
            }
        }
        if args.len() > 1 {
            args.push(name);
            run_ok(&args, &[])?;
        }
        for argv in later {
            run_ok(&argv, &[])?;
        }
        self.chage(plan)?;
        if plan.has("ssh_key") {
            self.generate_key()?;
        }
        Ok(())
    }
}

/// Ansible's default key comment: `ansible-generated on <the host's name>`.
fn default_comment() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("ansible-generated on {}", host.trim())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    name: String,
    #[serde(default, deserialize_with = "text")]
    gid: Option<String>,
    #[serde(default, deserialize_with = "boolean")]
    system: bool,
    #[serde(default)]
    state: Presence,
    #[serde(default, deserialize_with = "boolean")]
    non_unique: bool,
    #[serde(default, deserialize_with = "boolean")]
    force: bool,
    /// Local groups only, with libuser's lgroupadd/lgroupmod/lgroupdel (Ansible's `local`).
    #[serde(default, deserialize_with = "boolean")]
    local: bool,
    /// groupadd's `-K GID_MIN=…`/`-K GID_MAX=…` for a new group's number.
    gid_min: Option<u32>,
    gid_max: Option<u32>,
}

impl Resource for Group {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.local {
            for (name, given) in [
                ("gid_min", self.gid_min.is_some()),
                ("gid_max", self.gid_max.is_some()),
            ] {
                if given {
                    return Err(ModuleError::Failed(format!(
                        "'{name}' can not be used with 'local'"
                    )));
                }
            }
        }
        Ok(())
    }

    fn check(&mut self, _want_diff: bool) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        // With `local`, a gid another local group has is refused, as Ansible's
        // `_local_check_gid_exists` does (libuser would not).
        if let Some(gid) = self.gid.as_deref().and_then(|g| g.parse::<u32>().ok())
            && self.local
            && self.state == Presence::Present
            && let Some(other) = groups()
                .into_iter()
                .find(|g| g.gid == gid && g.name != self.name)
        {
            return Err(ModuleError::Failed(format!(
                "GID '{gid}' already exists with group '{}'",
                other.name
            )));
        }
        let current = groups().into_iter().find(|g| g.name == self.name);
        match (current, self.state) {
            (None, Presence::Present) => {
                plan.change("state", Some("absent".into()), Some("present".into()))
            }
            (Some(_), Presence::Absent) => {
                plan.change("state", Some("present".into()), Some("absent".into()))
            }
            (Some(g), Presence::Present) => {
                if let Some(gid) = &self.gid {
                    let want: u32 = gid.parse().map_err(|_| {
                        ModuleError::Args(format!("group: gid {gid:?} is not a number"))
                    })?;
                    if want != g.gid {
                        plan.change("gid", Some(g.gid.to_string()), Some(want.to_string()));
                    }
                }
            }
            (None, Presence::Absent) => {}
        }
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<(), ModuleError> {
        let name = self.name.clone();
        if plan.has("state") && self.state == Presence::Absent {
            let mut argv = vec![tool(self.local, "groupdel")];
            if self.force && !self.local {
                argv.push("-f".into());
            }
            argv.push(name);
            run_ok(&argv, &[])?;
            return Ok(());
        }
        let verb = if plan.has("state") {
            "groupadd"
        } else {
            "groupmod"
        };
        let mut args: Vec<String> = vec![tool(self.local, verb)];
        if let Some(gid) = &self.gid {
            args.extend(["-g".into(), gid.clone()]);
            if self.non_unique {
                args.push("-o".into());
            }
        }
        if self.system && plan.has("state") {
            args.push("-r".into());
        }
        if plan.has("state") {
            for (key, value) in [("GID_MIN", self.gid_min), ("GID_MAX", self.gid_max)] {
                if let Some(value) = value {
                    args.extend(["-K".into(), format!("{key}={value}")]);
                }
            }
        }
        args.push(name);
        run_ok(&args, &[])?;
        Ok(())
    }

    fn values(&self, values: &mut Map<String, Value>) {
        values.insert("name".into(), self.name.clone().into());
        values.insert("state".into(), self.state.word().into());
        if let Some(g) = groups().into_iter().find(|g| g.name == self.name) {
            values.insert("gid".into(), g.gid.into());
        }
        values.insert("system".into(), self.system.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates() {
        assert_eq!(date_of_days(0), "1970-01-01");
        assert_eq!(date_of_days(20_000), "2024-10-04");
    }
}
