//! Low-level cache keys: Django's `prefix:version:key`, made safe for every store.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::util::push_hex;

/// The longest key handed to a store verbatim, in bytes (memcached's limit).
pub const MAX_KEY_LEN: usize = 250;

/// A user-supplied key function: `(key, prefix, version)` to the full key.
pub(crate) type KeyFn = Arc<dyn Fn(&str, &str, i64) -> String + Send + Sync>;

/// Django's default key function: `prefix:version:key`.
pub(crate) fn default_key(key: &str, prefix: &str, version: i64) -> String {
    let mut full = String::with_capacity(prefix.len() + key.len() + 8);
    push_default_head(&mut full, prefix, version);
    full.push_str(key);
    full
}

/// Appends `prefix:version:`, the part of a default key before the key itself.
pub(crate) fn push_default_head(full: &mut String, prefix: &str, version: i64) {
    full.push_str(prefix);
    full.push(':');
    if version < 0 {
        full.push('-');
    }
    crate::util::push_decimal(full, version.unsigned_abs());
    full.push(':');
}

/// Returns `key` unchanged when every store can hold it, and otherwise its digest.
///
/// A key is kept when it is at most [`MAX_KEY_LEN`] bytes, has no ASCII space or control
/// character and does not start with `#`. Any other key becomes `#` followed by the hex SHA-256
/// of the key: short, safe everywhere, and distinct for distinct keys. Since no verbatim key
/// starts with `#`, a verbatim key can never equal the digest form of another key.
pub(crate) fn store_safe(key: String) -> String {
    let verbatim = key.len() <= MAX_KEY_LEN && !key.starts_with('#') && !has_space_or_control(&key);
    if verbatim {
        return key;
    }
    let digest = Sha256::digest(key.as_bytes());
    let mut hashed = String::with_capacity(1 + 2 * digest.len());
    hashed.push('#');
    push_hex(&mut hashed, &digest);
    hashed
}

/// Whether `key` has an ASCII space or control character. A fold over every byte, without an
/// early exit, lets the compiler check many bytes at once; keys are short and nearly always
/// clean, so an early exit would rarely pay.
fn has_space_or_control(key: &str) -> bool {
    key.bytes()
        .fold(false, |found, byte| found | (byte <= b' ') | (byte == 0x7f))
}

/// The key of one of this crate's own records (a lock, a tag's invalidation time) that belongs
/// to `key`: `#`, the `kind`, `:`, then `key` itself when every store can hold the result, or
/// else `#` and its hex SHA-256.
///
/// No key the application can write equals one of these: a verbatim key never starts with `#`
/// and a digest ([`store_safe`]) is `#` and 64 hex digits, with no `:`. So a user key such as
/// `k|lock` can never read or delete the lock of `k`.
pub(crate) fn internal_key(kind: &str, key: &str) -> String {
    let mut internal = String::with_capacity(2 + kind.len() + key.len().min(65));
    internal.push('#');
    internal.push_str(kind);
    internal.push(':');
    let verbatim = internal.len() + key.len() <= MAX_KEY_LEN
        && !key.bytes().any(|byte| byte <= b' ' || byte == 0x7f);
    if verbatim {
        internal.push_str(key);
    } else {
        internal.push('#');
        push_hex(&mut internal, &Sha256::digest(key.as_bytes()));
    }
    internal
}

/// The digest that stands for a request value (a header a page varies on, its `Authorization`)
/// in keys and stored pages, so that the value itself never reaches a store or a log.
pub(crate) type ValueDigest = [u8; 32];

/// Makes [`ValueDigest`]s: HMAC-SHA-256 under the cache's key secret, or SHA-256 without one.
///
/// With a secret, a digest cannot be computed, or a guess about a value checked, by someone who
/// reads the store but does not know the secret.
#[derive(Clone, Default)]
pub(crate) struct Digester {
    /// The HMAC state with the secret already absorbed: cloned for each digest.
    keyed: Option<Hmac<Sha256>>,
}

impl Digester {
    /// A digester keyed with `secret`; an empty secret is none.
    pub(crate) fn new(secret: &[u8]) -> Digester {
        Digester {
            keyed: (!secret.is_empty())
                .then(|| Hmac::<Sha256>::new_from_slice(secret).ok())
                .flatten(),
        }
    }

    /// Whether a secret keys the digests.
    pub(crate) fn is_keyed(&self) -> bool {
        self.keyed.is_some()
    }

    /// The digest of `value`.
    pub(crate) fn digest(&self, value: &[u8]) -> ValueDigest {
        match &self.keyed {
            Some(keyed) => {
                let mut mac = keyed.clone();
                mac.update(value);
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(value).into(),
        }
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret is never shown.
        f.write_str(if self.is_keyed() {
            "HMAC-SHA-256 (secret set)"
        } else {
            "SHA-256"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_by_the_secret() {
        let plain = Digester::default();
        let keyed = Digester::new(b"one secret");
        let value = b"Bearer token";
        assert_eq!(plain.digest(value), <[u8; 32]>::from(Sha256::digest(value)));
        assert_ne!(keyed.digest(value), plain.digest(value));
        assert_ne!(keyed.digest(value), Digester::new(b"another").digest(value));
        assert_eq!(
            keyed.digest(value),
            Digester::new(b"one secret").digest(value)
        );
        assert_ne!(keyed.digest(value), keyed.digest(b"Bearer token2"));
        assert!(!Digester::new(b"").is_keyed());
        assert!(!format!("{keyed:?}").contains("one secret"));
    }

    #[test]
    fn default_key_is_prefix_version_key() {
        assert_eq!(default_key("k", "", 1), ":1:k");
        assert_eq!(default_key("k", "site", -3), "site:-3:k");
    }

    #[test]
    fn internal_keys_never_equal_application_keys() {
        assert_eq!(internal_key("lock", ":1:k"), "#lock::1:k");
        let long = internal_key("lock", &"k".repeat(MAX_KEY_LEN));
        assert!(
            long.starts_with("#lock:#") && long.len() == 7 + 64,
            "{long}"
        );
        assert!(internal_key("tag", "a b").starts_with("#tag:#"));
        for application in [":1:k|lock", "#lock::1:k", "lock::1:k"] {
            let stored = store_safe(application.to_owned());
            assert_ne!(stored, internal_key("lock", ":1:k"), "{application}");
        }
    }

    #[test]
    fn ordinary_keys_are_kept() {
        for key in [":1:k", "p:1:Iñtërnâtiônàlizætiøn", ":1:a/b?c=d"] {
            assert_eq!(store_safe(key.to_owned()), key);
        }
        let longest = format!(":1:{}", "a".repeat(MAX_KEY_LEN - 3));
        assert_eq!(store_safe(longest.clone()), longest);
    }

    #[test]
    fn unsafe_keys_are_hashed_distinctly() {
        let cases = [
            ":1:key with spaces".to_owned(),
            ":1:tab\there".to_owned(),
            ":1:nul\0".to_owned(),
            ":1:del\x7f".to_owned(),
            // Deep inside a long key, and its last byte.
            format!(":1:{} {}", "a".repeat(40), "b".repeat(40)),
            format!(":1:{}\n", "c".repeat(100)),
            format!(":1:{}", "a".repeat(MAX_KEY_LEN)),
            format!(":1:{}清", "a".repeat(MAX_KEY_LEN - 5)),
            "#already-looks-hashed".to_owned(),
        ];
        let hashed: Vec<String> = cases.iter().cloned().map(store_safe).collect();
        for (original, safe) in cases.iter().zip(&hashed) {
            assert_ne!(original, safe);
            assert!(safe.starts_with('#'));
            assert_eq!(safe.len(), 65);
            assert!(safe.bytes().skip(1).all(|b| b.is_ascii_hexdigit()));
        }
        let mut unique = hashed.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), hashed.len());
        // The digest form of a key is itself hashed again, never taken as that key.
        assert_ne!(store_safe(hashed[0].clone()), hashed[0]);
    }
}
