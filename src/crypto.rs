//! The hashing every room shares: SHA-256 digests (notices, the audit chain) and keyed
//! hashes (evidence addresses, audit pseudonyms) with secrets kept in the data folder.

use std::fmt::Write;
use std::path::Path;

use ring::digest::{digest, SHA256};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// A key or secret file that cannot be read, written or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

pub fn file_error(path: &Path, reason: impl ToString) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest(&SHA256, bytes).as_ref())
}

/// A fresh secret for a link or session: 32 random bytes, URL-safe base64 (43 chars).
pub fn random_token() -> Result<String, KeyError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Generate("no randomness".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Keyed hashes (HMAC-SHA-256) with a secret generated into the data folder on first
/// start (owner-only rights) or supplied by configuration: comparable, not reversible.
pub struct KeyedHasher {
    key: hmac::Key,
}

impl KeyedHasher {
    /// Uses `configured`, or the secret in `data_dir/file`, generating it if absent.
    pub fn load_or_generate(
        data_dir: &Path,
        file: &str,
        configured: Option<&str>,
    ) -> Result<Self, KeyError> {
        let secret = match configured {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                let path = data_dir.join(file);
                match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        if let Some(parent) = path.parent() {
                            crate::files::create_private_dir(parent)
                                .map_err(|e| file_error(parent, e))?;
                        }
                        let mut bytes = vec![0u8; 32];
                        SystemRandom::new()
                            .fill(&mut bytes)
                            .map_err(|_| KeyError::Generate("no randomness".into()))?;
                        crate::files::write_private_file(&path, &bytes)
                            .map_err(|e| file_error(&path, e))?;
                        bytes
                    }
                }
            }
        };
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    /// Hex HMAC-SHA-256 of `value`.
    pub fn hash(&self, value: &str) -> String {
        hex(hmac::sign(&self.key, value.as_bytes()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lower_case_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn a_keyed_hash_is_stable_for_its_secret_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = KeyedHasher::load_or_generate(dir.path(), "secrets/x.key", None).unwrap();
        let b = KeyedHasher::load_or_generate(dir.path(), "secrets/x.key", None).unwrap();
        assert_eq!(a.hash("v"), b.hash("v"));
        let c = KeyedHasher::load_or_generate(dir.path(), "secrets/x.key", Some("other")).unwrap();
        assert_ne!(a.hash("v"), c.hash("v"));
        assert_eq!(a.hash("v").len(), 64);
    }
}
