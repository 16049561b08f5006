//! The service's Ed25519 signing keys: generated into the data folder on first start
//! (owner-only rights) or supplied by configuration; several may verify at once so that
//! keys can rotate, the newest signs.

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use utoipa::ToSchema;

pub const KEYS_DIR: &str = "keys";

use crate::crypto::file_error;
pub use crate::crypto::KeyError;

/// One Ed25519 key pair.
pub struct SigningKey {
    pub kid: String,
    public: Vec<u8>,
    encoding: EncodingKey,
}

impl SigningKey {
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| format!("not a PKCS#8 Ed25519 private key ({e})"))?;
        let public = pair.public_key().as_ref().to_vec();
        Ok(Self {
            kid: thumbprint(&public),
            public,
            encoding: EncodingKey::from_ed_der(der),
        })
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// A key whose private half is not a key: signing with it fails (tests of what
    /// callers do when signing fails).
    #[cfg(test)]
    pub fn unusable() -> Self {
        Self {
            kid: "unusable".into(),
            public: Vec::new(),
            encoding: EncodingKey::from_ed_der(b"not a key"),
        }
    }
}

/// A key that verifies.
pub struct VerifyingKey {
    pub kid: String,
    pub public: Vec<u8>,
    pub decoding: DecodingKey,
}

/// The keys in use: the newest signs, all verify.
pub struct KeyRing {
    signing: SigningKey,
    verifying: Vec<VerifyingKey>,
}

/// A public key in JWK form (RFC 8037).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "OKP")]
    pub kty: &'static str,
    #[schema(example = "Ed25519")]
    pub crv: &'static str,
    /// The public key, base64url without padding.
    pub x: String,
    /// RFC 7638 thumbprint of the key.
    pub kid: String,
    #[schema(example = "EdDSA")]
    pub alg: &'static str,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub usage: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl KeyRing {
    /// Loads the keys under `data_dir/keys`, generating the first one if there is none.
    /// A configured key file, if given, signs; the folder's keys still verify.
    pub fn load_or_generate(
        data_dir: &Path,
        configured: Option<&Path>,
        now: DateTime<Utc>,
    ) -> Result<Self, KeyError> {
        let dir = data_dir.join(KEYS_DIR);
        let mut files = key_files(&dir)?;
        if files.is_empty() && configured.is_none() {
            files.push(generate_key_file(&dir, now)?);
        }
        let mut keys = files
            .iter()
            .map(|path| read_key(path))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(path) = configured {
            keys.push(read_key(path)?);
        }
        let signing = keys
            .pop()
            .ok_or_else(|| KeyError::Generate("no key".into()))?;
        let mut verifying: Vec<VerifyingKey> = keys.iter().map(verifying_key).collect();
        verifying.push(verifying_key(&signing));
        verifying.dedup_by(|a, b| a.kid == b.kid);
        Ok(Self { signing, verifying })
    }

    /// A ring with a fresh key held only in memory (tests, tools).
    pub fn ephemeral() -> Result<Self, KeyError> {
        let der = generate_pkcs8()?;
        let signing = SigningKey::from_pkcs8(&der).map_err(KeyError::Generate)?;
        let verifying = vec![verifying_key(&signing)];
        Ok(Self { signing, verifying })
    }

    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verifying(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.iter().find(|k| k.kid == kid)
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .verifying
                .iter()
                .rev()
                .map(|k| Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    x: URL_SAFE_NO_PAD.encode(&k.public),
                    kid: k.kid.clone(),
                    alg: "EdDSA",
                    usage: "sig",
                })
                .collect(),
        }
    }
}

/// Writes a new key into `data_dir/keys`; it signs from the next start on, and the older
/// keys keep verifying what they signed.
pub fn rotate(data_dir: &Path, now: DateTime<Utc>) -> Result<String, KeyError> {
    let path = generate_key_file(&data_dir.join(KEYS_DIR), now)?;
    Ok(read_key(&path)?.kid)
}

fn verifying_key(key: &SigningKey) -> VerifyingKey {
    VerifyingKey {
        kid: key.kid.clone(),
        public: key.public.clone(),
        decoding: DecodingKey::from_ed_der(&key.public),
    }
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key.
fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

fn key_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_error(dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "p8"))
        .collect();
    // Names start with the creation time, so the newest sorts last.
    files.sort();
    Ok(files)
}

fn read_key(path: &Path) -> Result<SigningKey, KeyError> {
    let bytes = fs::read(path).map_err(|e| file_error(path, e))?;
    let der = pem_to_der(&bytes).unwrap_or(bytes);
    SigningKey::from_pkcs8(&der).map_err(|e| file_error(path, e))
}

/// PEM `PRIVATE KEY` → DER; `None` when the bytes are not PEM.
fn pem_to_der(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body = text
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)?
        .split("-----END PRIVATE KEY-----")
        .next()?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|e| KeyError::Generate(e.to_string()))
}

fn generate_key_file(dir: &Path, now: DateTime<Utc>) -> Result<PathBuf, KeyError> {
    create_private_dir(dir)?;
    let der = generate_pkcs8()?;
    let kid = SigningKey::from_pkcs8(&der)
        .map_err(KeyError::Generate)?
        .kid;
    let path = dir.join(format!(
        "ed25519-{}-{}.p8",
        now.format("%Y%m%dT%H%M%S%6fZ"),
        &kid[..12]
    ));
    write_private_file(&path, &der)?;
    Ok(path)
}

/// Creates a folder only its owner can enter.
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    crate::files::create_private_dir(dir).map_err(|e| file_error(dir, e))
}

/// Writes a secret file readable by its owner only (0600), never replacing one.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    crate::files::write_private_file(path, bytes).map_err(|e| file_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_owner_only_rights_then_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let first = KeyRing::load_or_generate(dir.path(), None, now).unwrap();
        let again = KeyRing::load_or_generate(dir.path(), None, now).unwrap();
        assert_eq!(first.signing().kid, again.signing().kid);
        let files = key_files(&dir.path().join(KEYS_DIR)).unwrap();
        assert_eq!(files.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&files[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rotation_signs_with_the_new_key_and_verifies_with_both() {
        let dir = tempfile::tempdir().unwrap();
        let start = Utc::now();
        let old = KeyRing::load_or_generate(dir.path(), None, start)
            .unwrap()
            .signing()
            .kid
            .clone();
        let new = rotate(dir.path(), start + chrono::TimeDelta::seconds(1)).unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), None, start).unwrap();
        assert_eq!(ring.signing().kid, new);
        assert!(ring.verifying(&old).is_some());
        assert_eq!(ring.jwks().keys.len(), 2);
        assert_eq!(ring.jwks().keys[0].kid, new);
    }

    #[test]
    fn a_configured_pem_key_signs() {
        let dir = tempfile::tempdir().unwrap();
        let der = generate_pkcs8().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        let path = dir.path().join("signing.pem");
        fs::write(&path, pem).unwrap();
        let ring = KeyRing::load_or_generate(dir.path(), Some(&path), Utc::now()).unwrap();
        assert_eq!(
            ring.signing().kid,
            SigningKey::from_pkcs8(&der).unwrap().kid
        );
        assert!(key_files(&dir.path().join(KEYS_DIR)).unwrap().is_empty());
        fs::write(&path, "not a key").unwrap();
        let err = KeyRing::load_or_generate(dir.path(), Some(&path), Utc::now())
            .err()
            .unwrap();
        assert!(err.to_string().contains("signing.pem"));
    }

    #[test]
    fn thumbprint_matches_rfc_8037_example() {
        // RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
