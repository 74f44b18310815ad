//! Python's `random.Random`: the Mersenne Twister seeded as CPython seeds it, so
//! `random(seed=…)` and `shuffle(seed=…)` give the numbers Ansible gives for the same seed.

use minijinja::Value;
use minijinja::value::ValueKind;
use sha2::Digest;

pub(crate) struct PyRandom {
    mt: [u32; 624],
    index: usize,
}

impl PyRandom {
    fn init_genrand(s: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = s;
        for i in 1..624 {
            mt[i] = 1812433253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        PyRandom { mt, index: 624 }
    }

    fn init_by_array(key: &[u32]) -> Self {
        let mut r = Self::init_genrand(19650218);
        let mt = &mut r.mt;
        let (mut i, mut j) = (1usize, 0usize);
        let len = key.len().max(1);
        for _ in 0..624.max(len) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1664525))
                .wrapping_add(key.get(j).copied().unwrap_or(0))
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
            if j >= len {
                j = 0;
            }
        }
        for _ in 0..623 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1566083941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        r
    }

    /// `Random(seed)` for an int or a str seed (other values seed with their text).
    pub(crate) fn from_seed(seed: &Value) -> Self {
        let bytes_be: Vec<u8> = match seed.kind() {
            ValueKind::Number if seed.is_integer() => {
                let n = i128::try_from(seed.clone()).unwrap_or(0).unsigned_abs();
                n.to_be_bytes().to_vec()
            }
            ValueKind::Bool => vec![u8::from(seed.is_true())],
            _ => {
                let text = match seed.as_str() {
                    Some(s) => s.to_string(),
                    None => seed.to_string(),
                };
                let mut b = text.as_bytes().to_vec();
                b.extend_from_slice(&sha2::Sha512::digest(text.as_bytes()));
                b
            }
        };
        let mut le: Vec<u8> = bytes_be.into_iter().rev().collect();
        while !le.len().is_multiple_of(4) {
            le.push(0);
        }
        let mut key: Vec<u32> = le
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        while key.len() > 1 && key.last() == Some(&0) {
            key.pop();
        }
        if key.is_empty() {
            key.push(0);
        }
        Self::init_by_array(&key)
    }

    /// An unseeded generator (Ansible uses `SystemRandom`: any good seed will do).
    pub(crate) fn from_entropy() -> Self {
        let mut seed = [0u8; 32];
        let ok = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
            .is_ok();
        if !ok {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            seed[..16].copy_from_slice(&nanos.to_le_bytes());
        }
        let key: Vec<u32> = seed
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Self::init_by_array(&key)
    }

    fn genrand(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn getrandbits(&mut self, k: u32) -> u64 {
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.genrand() >> (32 - k));
        }
        let low = u64::from(self.genrand());
        let high = u64::from(self.genrand() >> (64 - k.min(64)));
        low | (high << 32)
    }

    /// `_randbelow(n)`: a number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.shuffle`.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn same_numbers_as_cpython() {
        // python3 -c 'import random; r = random.Random(1337); print([r.randrange(0, 60) for _ in range(5)])'
        let mut r = PyRandom::from_seed(&Value::from(1337));
        let got: Vec<u64> = (0..5).map(|_| r.below(60)).collect();
        assert_eq!(
            got,
            vec![PY_INT[0], PY_INT[1], PY_INT[2], PY_INT[3], PY_INT[4]]
        );
        // python3 -c 'import random; r = random.Random("web1"); print([r.randrange(0, 60) for _ in range(5)])'
        let mut r = PyRandom::from_seed(&Value::from("web1"));
        let got: Vec<u64> = (0..5).map(|_| r.below(60)).collect();
        assert_eq!(got, PY_STR.to_vec());
        // python3 -c 'import random; r = random.Random(42); l = list(range(10)); r.shuffle(l); print(l)'
        let mut r = PyRandom::from_seed(&Value::from(42));
        let mut l: Vec<u32> = (0..10).collect();
        r.shuffle(&mut l);
        assert_eq!(l, PY_SHUFFLE.to_vec());
    }

    const PY_INT: [u64; 5] = [39, 59, 34, 45, 23];
    const PY_STR: [u64; 5] = [52, 20, 16, 49, 21];
    const PY_SHUFFLE: [u32; 10] = [7, 3, 2, 8, 5, 6, 9, 4, 0, 1];

    #[test]
    fn wide_numbers_as_cpython() {
        let mut r = PyRandom::from_seed(&Value::from((1u64 << 40) + 5));
        assert_eq!(r.below(1 << 40), 64105765088);
        assert_eq!(r.below(1 << 40), 102613415019);
    }
}
