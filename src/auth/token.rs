//! Bearer tokens: what they claim, how they are minted and how they are checked.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::KeyRing;
use super::{AuthError, Role};

/// The algorithms an operator allows. `none` cannot be expressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedAlgorithms(Vec<Algorithm>);

impl AcceptedAlgorithms {
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut algorithms = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let algorithm = match name {
                "EdDSA" => Algorithm::EdDSA,
                "HS256" => Algorithm::HS256,
                "HS384" => Algorithm::HS384,
                "HS512" => Algorithm::HS512,
                other => anyhow::bail!(
                    "CONSENTRY_JWT_ALGORITHMS: `{other}` is not accepted (choose from EdDSA, HS256, HS384, HS512)"
                ),
            };
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
        if algorithms.is_empty() {
            anyhow::bail!("CONSENTRY_JWT_ALGORITHMS must name at least one algorithm");
        }
        Ok(Self(algorithms))
    }

    pub fn accepts(&self, algorithm: Algorithm) -> bool {
        self.0.contains(&algorithm)
    }

    pub fn accepts_hmac(&self) -> bool {
        self.0
            .iter()
            .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
    }
}

impl Default for AcceptedAlgorithms {
    fn default() -> Self {
        Self(vec![Algorithm::EdDSA])
    }
}

/// What tokens must carry and how they are checked.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub algorithms: AcceptedAlgorithms,
    pub hmac_secret: Option<String>,
    pub leeway: std::time::Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
}

/// Who is calling: a role, and for a customer their subject id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// The token's `sub`: the subject id for a customer, the caller's name otherwise.
    pub sub: Option<String>,
    pub token_id: String,
}

impl fmt::Display for Principal {
    // Never prints the subject id: principals end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.role.as_str())
    }
}

/// A freshly minted token and what it says.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub claims: Claims,
}

/// Signs a token with the ring's newest key.
pub fn mint(
    keys: &KeyRing,
    settings: &JwtSettings,
    role: Role,
    sub: Option<String>,
    ttl: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Minted, AuthError> {
    let sub = Some(check_sub(role, sub.as_deref())?);
    let claims = Claims {
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        sub,
        role: role.as_str().to_owned(),
        iat: now.timestamp(),
        exp: (now + ttl).timestamp(),
        nbf: None,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let signing = keys.signing();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(signing.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, signing.encoding_key())
        .map_err(|e| AuthError::Invalid(format!("cannot sign: {e}")))?;
    Ok(Minted { token, claims })
}

/// Signs arbitrary claims with the HMAC secret (for tests and HS-issuing gateways).
pub fn mint_hmac<T: Serialize>(
    algorithm: Algorithm,
    secret: &str,
    claims: &T,
) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| AuthError::Invalid(format!("cannot sign: {e}")))
}

/// A token whose signature, algorithm, issuer, audience and role have been checked;
/// its time window is checked on every use.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub principal: Principal,
    pub exp: i64,
    pub nbf: Option<i64>,
}

impl VerifiedToken {
    /// `exp` and `nbf` against the app's clock, with the configured leeway.
    pub fn check_time(&self, settings: &JwtSettings, now: DateTime<Utc>) -> Result<(), AuthError> {
        let leeway = i64::try_from(settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = now.timestamp();
        if self.exp.saturating_add(leeway) < now {
            return Err(AuthError::Invalid("the token has expired".into()));
        }
        if self.nbf.is_some_and(|nbf| nbf.saturating_sub(leeway) > now) {
            return Err(AuthError::Invalid("the token is not valid yet".into()));
        }
        Ok(())
    }
}

/// Checks signature, algorithm, issuer, audience, time and role; `now` comes from the
/// app's clock so that expiry is testable.
pub fn verify(
    token: &str,
    keys: &KeyRing,
    settings: &JwtSettings,
    now: DateTime<Utc>,
) -> Result<Principal, AuthError> {
    let verified = verify_signature(token, keys, settings)?;
    verified.check_time(settings, now)?;
    Ok(verified.principal)
}

/// Everything but the time window: the expensive part, done once per token.
pub fn verify_signature(
    token: &str,
    keys: &KeyRing,
    settings: &JwtSettings,
) -> Result<VerifiedToken, AuthError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| AuthError::Invalid("the bearer token is not a well-formed JWT".into()))?;
    if !settings.algorithms.accepts(header.alg) {
        return Err(AuthError::Invalid(format!(
            "tokens signed with {:?} are not accepted",
            header.alg
        )));
    }
    let hmac_key;
    let key: &DecodingKey = match header.alg {
        Algorithm::EdDSA => {
            let kid = header
                .kid
                .as_deref()
                .ok_or_else(|| AuthError::Invalid("the token has no `kid`".into()))?;
            &keys
                .verifying(kid)
                .ok_or_else(|| AuthError::Invalid("the token's key is unknown".into()))?
                .decoding
        }
        _ => {
            let secret = settings
                .hmac_secret
                .as_deref()
                .ok_or_else(|| AuthError::Invalid("no HMAC secret is configured".into()))?;
            hmac_key = DecodingKey::from_secret(secret.as_bytes());
            &hmac_key
        }
    };
    let mut validation = Validation::new(header.alg);
    // Time is checked below against the app's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims = HashSet::new();
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map_err(|e| AuthError::Invalid(describe(e.kind())))?
        .claims;

    let role = Role::parse(&claims.role)
        .ok_or_else(|| AuthError::Invalid(format!("unknown role `{}`", claims.role)))?;
    let sub = Some(check_sub(role, claims.sub.as_deref())?);
    Ok(VerifiedToken {
        principal: Principal {
            role,
            sub,
            token_id: claims.jti,
        },
        exp: claims.exp,
        nbf: claims.nbf,
    })
}

/// Every token names someone: the customer for the subject role, the calling service or
/// person otherwise, so that what it writes has an actor. Both follow the subject-id
/// alphabet, so a name cannot hide behind invisible or look-alike characters.
pub fn check_sub(role: Role, sub: Option<&str>) -> Result<String, AuthError> {
    let what = if role == Role::Subject {
        "the subject id"
    } else {
        "the caller's name"
    };
    let sub = sub.ok_or_else(|| AuthError::Invalid(format!("the token needs `sub`, {what}")))?;
    crate::identifier::check(sub)
        .map(|()| sub.to_owned())
        .map_err(|message| AuthError::Invalid(format!("`sub` ({what}) {message}")))
}

fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => "the token's signature does not verify".into(),
        K::InvalidIssuer => "the token's issuer is not accepted".into(),
        K::InvalidAudience => "the token's audience is not this service".into(),
        K::MissingRequiredClaim(claim) => format!("the token lacks `{claim}`"),
        K::InvalidAlgorithm => "the token's algorithm does not match its key".into(),
        K::Json(_) => "the token's claims are missing or malformed".into(),
        _ => "the bearer token is not valid".into(),
    }
}
