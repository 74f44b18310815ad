//! Property test: whatever is encrypted decrypts to the same bytes with the same secret, and
//! not with another.

use proptest::prelude::*;
use settle_vault::{VaultSecret, decrypt_with, encrypt};

proptest! {
    // Each case derives keys with PBKDF2 (10 000 rounds) twice or three times.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn encrypted_text_decrypts_to_the_plaintext(
        plaintext in prop::collection::vec(any::<u8>(), 0..300),
        password in prop::collection::vec(any::<u8>(), 1..40),
        id in prop::sample::select(vec!["default", "prod", "dev-2"]),
    ) {
        let secret = VaultSecret::new(id, password.clone());
        let text = encrypt(&plaintext, &secret).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (plain, used) = decrypt_with(&text, &[secret])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(plain, plaintext);
        prop_assert_eq!(used, id);
        let mut other = password;
        other.push(b'!');
        prop_assert!(decrypt_with(&text, &[VaultSecret::new(id, other)]).is_err());
    }
}
