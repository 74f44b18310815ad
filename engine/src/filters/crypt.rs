//! `password_hash`: SHA-512/SHA-256 crypt (`$6$`, `$5$`, Drepper's algorithm), MD5 crypt
//! (`$1$`) and bcrypt (`$2b$`, through the `bcrypt` crate), the strings `crypt(3)` and passlib
//! write, with 5000 implicit rounds for SHA crypt and a cost of 12 for bcrypt, as Ansible asks.

use minijinja::Error;
use sha2::Digest;

use super::err;

const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn b64_triplets(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(ITOA64[(w & 0x3f) as usize] as char);
        w >>= 6;
    }
}

fn sha_crypt<D: Digest + Clone>(
    password: &[u8],
    salt: &[u8],
    rounds: usize,
    tag: &str,
    custom_rounds: bool,
) -> String {
    let hash_len = <D as Digest>::output_size();
    let mut b = D::new();
    b.update(password);
    b.update(salt);
    b.update(password);
    let b = b.finalize();
    let mut a = D::new();
    a.update(password);
    a.update(salt);
    let mut n = password.len();
    while n > hash_len {
        a.update(&b);
        n -= hash_len;
    }
    a.update(&b[..n]);
    let mut n = password.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(&b);
        } else {
            a.update(password);
        }
        n >>= 1;
    }
    let a = a.finalize();
    let mut dp = D::new();
    for _ in 0..password.len() {
        dp.update(password);
    }
    let dp = dp.finalize();
    let p: Vec<u8> = (0..password.len()).map(|i| dp[i % hash_len]).collect();
    let mut ds = D::new();
    for _ in 0..(16 + a[0] as usize) {
        ds.update(salt);
    }
    let ds = ds.finalize();
    let s: Vec<u8> = (0..salt.len()).map(|i| ds[i % hash_len]).collect();
    let mut c = a.to_vec();
    for i in 0..rounds {
        let mut h = D::new();
        if i % 2 == 1 {
            h.update(&p);
        } else {
            h.update(&c);
        }
        if i % 3 != 0 {
            h.update(&s);
        }
        if i % 7 != 0 {
            h.update(&p);
        }
        if i % 2 == 1 {
            h.update(&c);
        } else {
            h.update(&p);
        }
        c = h.finalize().to_vec();
    }
    let mut out = String::new();
    if hash_len == 64 {
        let order: [(usize, usize, usize); 21] = [
            (0, 21, 42),
            (22, 43, 1),
            (44, 2, 23),
            (3, 24, 45),
            (25, 46, 4),
            (47, 5, 26),
            (6, 27, 48),
            (28, 49, 7),
            (50, 8, 29),
            (9, 30, 51),
            (31, 52, 10),
            (53, 11, 32),
            (12, 33, 54),
            (34, 55, 13),
            (56, 14, 35),
            (15, 36, 57),
            (37, 58, 16),
            (59, 17, 38),
            (18, 39, 60),
            (40, 61, 19),
            (62, 20, 41),
        ];
        for (x, y, z) in order {
            b64_triplets(&mut out, c[x], c[y], c[z], 4);
        }
        b64_triplets(&mut out, 0, 0, c[63], 2);
    } else {
        let order: [(usize, usize, usize); 10] = [
            (0, 10, 20),
            (21, 1, 11),
            (12, 22, 2),
            (3, 13, 23),
            (24, 4, 14),
            (15, 25, 5),
            (6, 16, 26),
            (27, 7, 17),
            (18, 28, 8),
            (9, 19, 29),
        ];
        for (x, y, z) in order {
            b64_triplets(&mut out, c[x], c[y], c[z], 4);
        }
        b64_triplets(&mut out, 0, c[31], c[30], 3);
    }
    let salt = String::from_utf8_lossy(salt);
    if custom_rounds {
        format!("${tag}$rounds={rounds}${salt}${out}")
    } else {
        format!("${tag}${salt}${out}")
    }
}

fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    let mut b = md5::Md5::new();
    b.update(password);
    b.update(salt);
    b.update(password);
    let b = b.finalize();
    let mut a = md5::Md5::new();
    a.update(password);
    a.update(b"$1$");
    a.update(salt);
    let mut n = password.len();
    while n > 0 {
        let take = n.min(16);
        a.update(&b[..take]);
        n -= take;
    }
    let mut n = password.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update([0u8]);
        } else {
            a.update(&password[..1]);
        }
        n >>= 1;
    }
    let mut c = a.finalize().to_vec();
    for i in 0..1000 {
        let mut h = md5::Md5::new();
        if i % 2 == 1 {
            h.update(password);
        } else {
            h.update(&c);
        }
        if i % 3 != 0 {
            h.update(salt);
        }
        if i % 7 != 0 {
            h.update(password);
        }
        if i % 2 == 1 {
            h.update(&c);
        } else {
            h.update(password);
        }
        c = h.finalize().to_vec();
    }
    let mut out = String::new();
    for (x, y, z) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        b64_triplets(&mut out, c[x], c[y], c[z], 4);
    }
    b64_triplets(&mut out, 0, 0, c[11], 2);
    format!("$1${}${out}", String::from_utf8_lossy(salt))
}

fn random_salt(size: usize) -> String {
    let mut rng = super::pyrandom::PyRandom::from_entropy();
    (0..size)
        .map(|_| ITOA64[rng.below(64) as usize] as char)
        .collect()
}

/// bcrypt's own base64 alphabet (not crypt's `ITOA64`).
const BCRYPT64: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// bcrypt (`$2b$`, or the `ident` asked for): a salt of 22 characters of bcrypt's alphabet (its
/// last one's unused bits cleared, as passlib and crypt(3) do), a cost of 4 to 31 (12 unless
/// given).
fn bcrypt_hash(
    password: &str,
    salt: Option<&str>,
    rounds: Option<usize>,
    ident: Option<&str>,
) -> Result<String, Error> {
    let version = match ident.unwrap_or("2b") {
        "2a" => bcrypt::Version::TwoA,
        "2x" => bcrypt::Version::TwoX,
        "2y" => bcrypt::Version::TwoY,
        "2b" => bcrypt::Version::TwoB,
        other => return Err(err(format!("invalid ident for bcrypt: {other:?}"))),
    };
    let cost = rounds.unwrap_or(12);
    if !(4..=31).contains(&cost) {
        return Err(err("Could not hash the secret."));
    }
    let salt = match salt {
        None => {
            let mut rng = super::pyrandom::PyRandom::from_entropy();
            std::array::from_fn(|_| rng.below(256) as u8)
        }
        Some(text) => {
            let digits: Option<Vec<u32>> = text
                .bytes()
                .map(|b| BCRYPT64.iter().position(|c| *c == b).map(|p| p as u32))
                .collect();
            let digits = digits
                .filter(|d| d.len() == 22)
                .ok_or_else(|| err("invalid salt for bcrypt: 22 characters of [./A-Za-z0-9]"))?;
            // 22 digits of 6 bits: 128 bits of salt and 4 unused.
            let mut bits: u128 = 0;
            for d in &digits[..21] {
                bits = (bits << 6) | u128::from(*d);
            }
            bits = (bits << 2) | u128::from(digits[21] >> 4);
            bits.to_be_bytes()
        }
    };
    // The crate takes at most 72 bytes of the password, as bcrypt does (passlib truncates too).
    let bytes = password.as_bytes();
    let hashed = bcrypt::hash_with_salt(&bytes[..bytes.len().min(72)], cost as u32, salt)
        .map_err(|e| err(format!("Could not hash the secret: {e}")))?;
    Ok(hashed.format_for_version(version))
}

/// Ansible's `password_hash(hashtype, salt, salt_size, rounds, ident)`.
pub(crate) fn password_hash(
    password: &str,
    hashtype: &str,
    salt: Option<&str>,
    salt_size: Option<usize>,
    rounds: Option<usize>,
    ident: Option<&str>,
) -> Result<String, Error> {
    let algo = match hashtype {
        "sha512" | "sha512_crypt" => "6",
        "sha256" | "sha256_crypt" => "5",
        "md5" | "md5_crypt" => "1",
        "blowfish" | "bcrypt" => return bcrypt_hash(password, salt, rounds, ident),
        other => {
            return Err(err(format!(
                "{other} is not in the list of supported passlib algorithms: md5, blowfish, sha256, sha512"
            )));
        }
    };
    let max_salt = if algo == "1" { 8 } else { 16 };
    let salt = match salt {
        Some(s) => {
            if !s.bytes().all(|b| ITOA64.contains(&b)) {
                return Err(err("invalid characters in salt"));
            }
            s.chars().take(max_salt).collect()
        }
        None => random_salt(salt_size.unwrap_or(max_salt).min(max_salt)),
    };
    // passlib refuses rounds outside the algorithm's range, and Ansible says so.
    if algo != "1" && rounds.is_some_and(|r| !(1000..=999_999_999).contains(&r)) {
        return Err(err("Could not hash the secret."));
    }
    let rounds_given = rounds.is_some_and(|r| r != 5000);
    let rounds = rounds.unwrap_or(5000);
    Ok(match algo {
        "6" => sha_crypt::<sha2::Sha512>(
            password.as_bytes(),
            salt.as_bytes(),
            rounds,
            "6",
            rounds_given,
        ),
        "5" => sha_crypt::<sha2::Sha256>(
            password.as_bytes(),
            salt.as_bytes(),
            rounds,
            "5",
            rounds_given,
        ),
        _ => md5_crypt(password.as_bytes(), salt.as_bytes()),
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn rounds_out_of_range_are_refused() {
        let e = password_hash("hey", "sha512", None, None, Some(1), None).unwrap_err();
        assert!(e.to_string().contains("Could not hash the secret"), "{e}");
    }

    #[test]
    fn matches_crypt3() {
        // python3 -c 'import crypt; print(crypt.crypt("hey", "$6$saltsalt$"))'
        assert_eq!(
            password_hash("hey", "sha512", Some("saltsalt"), None, None, None).unwrap(),
            "$6$saltsalt$WniIeM9CZWOsKgrF0UewkHh3c5iDe8wsfY2yDky8YhCJikf7lVRPJBMkvYGEl6Ud1MgbVt7NuMctpBFA5RTcD0"
        );
        assert_eq!(
            password_hash("hey", "sha256", Some("saltsalt"), None, None, None).unwrap(),
            SHA256
        );
        assert_eq!(
            password_hash("hey", "md5", Some("saltsalt"), None, None, None).unwrap(),
            MD5
        );
        assert_eq!(
            password_hash("hey", "sha512", Some("saltsalt"), None, Some(10000), None).unwrap(),
            SHA512_R
        );
        assert_eq!(
            password_hash("what in the WORLD is up?", "sha512", None, None, None, None)
                .unwrap()
                .len(),
            106
        );
        assert!(
            password_hash("hey", "msdcc", None, None, None, None)
                .unwrap_err()
                .to_string()
                .contains("msdcc is not in the list of supported passlib algorithms")
        );
    }

    #[test]
    fn bcrypt_matches_crypt3() {
        // python3 -c 'import crypt; print(crypt.crypt("secret", "$2b$12$abcdefghijklmnopqrstuu"))'
        let hash = |salt, rounds, ident| {
            password_hash("secret", "bcrypt", Some(salt), None, rounds, ident).unwrap()
        };
        assert_eq!(
            hash("abcdefghijklmnopqrstuu", None, None),
            "$2b$12$abcdefghijklmnopqrstuuT1Iwu6o8Wx7BoOyIMHfgVJq6JO/IJhW"
        );
        // The salt's unused bits are cleared ('v' reads as 'u'), as crypt(3) and passlib do.
        assert_eq!(
            hash("abcdefghijklmnopqrstuv", Some(4), None),
            "$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW"
        );
        assert_eq!(
            hash("abcdefghijklmnopqrstuu", Some(5), Some("2a")),
            "$2a$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a"
        );
        let random = password_hash("secret", "blowfish", None, None, Some(4), None).unwrap();
        assert!(
            random.starts_with("$2b$04$") && random.len() == 60,
            "{random}"
        );
        assert!(password_hash("secret", "bcrypt", Some("short"), None, None, None).is_err());
        assert!(password_hash("secret", "bcrypt", None, None, Some(3), None).is_err());
    }

    const SHA256: &str = "$5$saltsalt$OGlTw4JnmSjnIpltqLLdk2dbmwFhvwA4yiQKXsxzmeB";
    const MD5: &str = "$1$saltsalt$rkJtHJH8/E0hCqUGRlym./";
    const SHA512_R: &str = "$6$rounds=10000$saltsalt$3auwiZZyBDVhn8SaDrSdAM2Cz2KHG8T0T3t8Cd2kCL8TcY5EqquSQL2tPXc/pQNg2pTTGeMl3x9DpToNa10vo1";
}
