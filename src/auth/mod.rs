//! Who is calling and what they may do: JWT verification, roles, the extractor handlers
//! use, and the service's keys with their JWKS.

pub mod api;
pub mod keys;
pub mod token;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::SharedClock;
pub use keys::KeyRing;
pub use token::{AcceptedAlgorithms, JwtSettings, Principal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Compliance,
    Service,
    /// A customer; the token's `sub` is their subject id.
    Subject,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Compliance, Role::Service, Role::Subject];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Compliance => "compliance",
            Role::Service => "service",
            Role::Subject => "subject",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == input)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credentials: 401.
    #[error("{0}")]
    Invalid(String),
    /// Authenticated, but the role may not: 403.
    #[error("{0}")]
    Forbidden(String),
}

/// What verifying a request needs; shared by every worker.
pub struct Authenticator {
    pub keys: Arc<KeyRing>,
    pub settings: JwtSettings,
    pub clock: SharedClock,
    /// Tokens whose signature already verified: a service sends the same token
    /// thousands of times a second, and an Ed25519 check costs more than a decision.
    /// The time window is still checked on every request.
    verified: quick_cache::sync::Cache<String, token::VerifiedToken>,
}

impl Authenticator {
    pub fn new(keys: Arc<KeyRing>, settings: JwtSettings, clock: SharedClock) -> Self {
        Self {
            keys,
            settings,
            clock,
            verified: quick_cache::sync::Cache::new(10_000),
        }
    }

    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let now = self.clock.now();
        if let Some(verified) = self.verified.get(token) {
            verified.check_time(&self.settings, now)?;
            return Ok(verified.principal);
        }
        let verified = token::verify_signature(token, &self.keys, &self.settings)?;
        verified.check_time(&self.settings, now)?;
        self.verified.insert(token.to_owned(), verified.clone());
        Ok(verified.principal)
    }
}

impl Principal {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), AuthError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "the `{}` role may not do this (allowed: {})",
                self.role.as_str(),
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Whether the caller may reach this subject's data: one of `roles`, or the subject
    /// themself when `subject_may` is set. A customer asking for another id gets
    /// `Hidden`, which handlers answer only after doing the same lookup as for a real
    /// subject, so that body and timing match a subject that does not exist.
    pub fn subject_access(
        &self,
        roles: &[Role],
        subject_may: bool,
        subject_id: &str,
    ) -> SubjectAccess {
        if self.role == Role::Subject && subject_may {
            if self.sub.as_deref() == Some(subject_id) {
                SubjectAccess::Granted
            } else {
                SubjectAccess::Hidden
            }
        } else if roles.contains(&self.role) {
            SubjectAccess::Granted
        } else {
            let mut allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            if subject_may {
                allowed.push("the subject");
            }
            SubjectAccess::Denied(format!(
                "the `{}` role may not do this (allowed: {})",
                self.role.as_str(),
                allowed.join(", ")
            ))
        }
    }

    /// Who to record as the actor in the audit log.
    pub fn actor_id(&self) -> Option<&str> {
        self.sub.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAccess {
    Granted,
    Hidden,
    Denied(String),
}

impl SubjectAccess {
    /// 403 now for a role that may not; `Hidden` is resolved by the handler after its lookup.
    pub fn check_role(&self) -> Result<(), AuthError> {
        match self {
            SubjectAccess::Denied(reason) => Err(AuthError::Forbidden(reason.clone())),
            _ => Ok(()),
        }
    }

    pub fn is_hidden(&self) -> bool {
        matches!(self, SubjectAccess::Hidden)
    }
}

#[cfg(test)]
mod tests;
