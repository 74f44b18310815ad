//! The version schemes of Ansible's `version` test: `strict` (distutils' StrictVersion),
//! `semver` (Semantic Versioning 2.0.0) and `pep440` (Python's packaging). `loose`, the
//! default, is `tests::compare_versions`.

use std::cmp::Ordering;

/// Compares two versions of a scheme, or says why one is not a version of it, in Ansible's words.
pub(crate) fn compare(scheme: &str, a: &str, b: &str) -> Result<Ordering, String> {
    match scheme {
        "strict" => Ok(strict(a)?.cmp(&strict(b)?)),
        "semver" | "semantic" => Ok(semver(a)?.cmp(&semver(b)?)),
        "pep440" => Ok(pep440(a)?.cmp(&pep440(b)?)),
        _ => Ok(super::tests::compare_versions(a, b)),
    }
}

/// `1.2`, `1.2.3`, `1.2a1`, `1.2.3b4`: the release (a missing patch is 0), then the pre-release,
/// which comes before the release itself.
fn strict(v: &str) -> Result<([u64; 3], (u8, u64)), String> {
    let bad = || format!("invalid version number '{v}'");
    let re = regex::Regex::new(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:([ab])(\d+))?$")
        .map_err(|e| e.to_string())?;
    let c = re.captures(v).ok_or_else(bad)?;
    let n = |i: usize| {
        c.get(i)
            .map_or(Ok(0), |m| m.as_str().parse::<u64>().map_err(|_| bad()))
    };
    let pre = match c.get(4).map(|m| m.as_str()) {
        Some("a") => (0, n(5)?),
        Some(_) => (1, n(5)?),
        None => (2, 0),
    };
    Ok(([n(1)?, n(2)?, n(3)?], pre))
}

/// One dot-separated pre-release identifier: numbers before words, numbers by value.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    Number(u64),
    Word(String),
}

/// `MAJOR.MINOR.PATCH[-pre][+build]`; build metadata is ignored, a pre-release comes first.
fn semver(v: &str) -> Result<([u64; 3], bool, Vec<Ident>), String> {
    let bad = || format!("invalid semantic version '{v}'");
    let re = regex::Regex::new(
        r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
    )
    .map_err(|e| e.to_string())?;
    let c = re.captures(v).ok_or_else(bad)?;
    let n = |i: usize| c[i].parse::<u64>().map_err(|_| bad());
    let pre: Vec<Ident> = c.get(4).map_or_else(Vec::new, |m| {
        m.as_str()
            .split('.')
            .map(|p| {
                p.parse()
                    .map_or_else(|_| Ident::Word(p.into()), Ident::Number)
            })
            .collect()
    });
    Ok(([n(1)?, n(2)?, n(3)?], pre.is_empty(), pre))
}

/// Release, pre-release (rank, number), post-release (-1: none), development release (rank,
/// number), in the order they are compared.
type Pep440 = (Vec<u64>, (i8, u64), i64, (i8, u64));

/// A PEP 440 version as packaging orders it: the release (trailing zeros do not count), then
/// pre-release (`a` < `b` < `rc`, none after them, but a bare `.devN` first of all), post-release,
/// development release (none last).
fn pep440(v: &str) -> Result<Pep440, String> {
    let bad = || format!("Invalid version: '{v}'");
    let re = regex::Regex::new(
        r"(?i)^\s*v?(?:\d+!)?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?(?:-(\d+)|[-_.]?(?:post|rev|r)[-_.]?(\d*))?(?:[-_.]?dev[-_.]?(\d*))?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*$",
    )
    .map_err(|e| e.to_string())?;
    let c = re.captures(v).ok_or_else(bad)?;
    let num = |i: usize| c.get(i).map(|m| m.as_str().parse::<u64>().unwrap_or(0));
    let mut release: Vec<u64> = c[1].split('.').map(|p| p.parse().unwrap_or(0)).collect();
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let post_given = c.get(4).is_some() || c.get(5).is_some();
    let dev = c.get(6).map(|_| num(6).unwrap_or(0));
    let pre = match c.get(2).map(|m| m.as_str().to_ascii_lowercase()) {
        Some(word) => {
            let rank = match word.as_str() {
                "a" | "alpha" => 0,
                "b" | "beta" => 1,
                _ => 2,
            };
            (rank, num(3).unwrap_or(0))
        }
        None if dev.is_some() && !post_given => (-1, 0),
        None => (3, 0),
    };
    let post = if post_given {
        num(4).or(num(5)).unwrap_or(0) as i64
    } else {
        -1
    };
    let dev = dev.map_or((1, 0), |n| (0, n));
    Ok((release, pre, post, dev))
}

#[cfg(test)]
mod unit {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn schemes_order_as_python_does() {
        assert_eq!(compare("pep440", "2.14.0rc1", "2.14.0"), Ok(Less));
        assert_eq!(compare("pep440", "1.0", "1.0.0"), Ok(Equal));
        assert_eq!(compare("pep440", "1.0.dev1", "1.0a1"), Ok(Less));
        assert_eq!(compare("pep440", "1.0.post1", "1.0"), Ok(Greater));
        assert_eq!(compare("semver", "1.2.3", "2.0.0"), Ok(Less));
        assert_eq!(
            compare("semver", "1.0.0-alpha.1", "1.0.0-alpha.beta"),
            Ok(Less)
        );
        assert_eq!(compare("semver", "1.0.0-rc.1", "1.0.0"), Ok(Less));
        assert!(compare("semver", "nope", "1.0.0").is_err());
        assert_eq!(compare("strict", "1.0", "1.0.0"), Ok(Equal));
        assert_eq!(compare("strict", "1.0a1", "1.0"), Ok(Less));
        assert!(compare("strict", "nope", "1.0").is_err());
    }
}
