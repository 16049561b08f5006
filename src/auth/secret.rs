//! Keyed hashes (HMAC-SHA-256) with a secret generated into the data folder on first
//! start (owner-only rights) or supplied by configuration: comparable, not reversible.

use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::keys::{create_private_dir, write_private_file, KeyError};

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
                            create_private_dir(parent)?;
                        }
                        let mut bytes = vec![0u8; 32];
                        SystemRandom::new()
                            .fill(&mut bytes)
                            .map_err(|_| KeyError::Generate("no randomness".into()))?;
                        write_private_file(&path, &bytes)?;
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
        hmac::sign(&self.key, value.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
