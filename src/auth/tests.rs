use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{TimeDelta, TimeZone, Utc};
use jsonwebtoken::Algorithm;

use super::token::{mint, mint_hmac, verify, Claims};
use super::*;

const SECRET: &str = "a-shared-secret-of-at-least-32-bytes!!";

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "consentry".into(),
        audience: "consentry".into(),
        algorithms: AcceptedAlgorithms::default(),
        hmac_secret: None,
        leeway: Duration::from_secs(30),
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn claims(role: &str) -> Claims {
    Claims {
        iss: "consentry".into(),
        aud: "consentry".into(),
        sub: Some("alice".into()),
        role: role.into(),
        iat: now().timestamp(),
        exp: now().timestamp() + 600,
        nbf: None,
        jti: "j".into(),
    }
}

fn err(result: Result<Principal, AuthError>) -> String {
    match result {
        Err(AuthError::Invalid(reason)) => reason,
        other => panic!("expected 401, got {other:?}"),
    }
}

#[test]
fn a_minted_token_verifies() {
    let keys = KeyRing::ephemeral().unwrap();
    let minted = mint(
        &keys,
        &settings(),
        Role::Subject,
        Some("alice".into()),
        TimeDelta::hours(1),
        now(),
    )
    .unwrap();
    let principal = verify(&minted.token, &keys, &settings(), now()).unwrap();
    assert_eq!(principal.role, Role::Subject);
    assert_eq!(principal.sub.as_deref(), Some("alice"));
    assert_eq!(principal.token_id, minted.claims.jti);
}

#[test]
fn expiry_follows_the_clock_with_leeway() {
    let keys = KeyRing::ephemeral().unwrap();
    let token = mint(
        &keys,
        &settings(),
        Role::Service,
        Some("svc".into()),
        TimeDelta::seconds(60),
        now(),
    )
    .unwrap()
    .token;
    assert!(verify(&token, &keys, &settings(), now() + TimeDelta::seconds(89)).is_ok());
    let reason = err(verify(
        &token,
        &keys,
        &settings(),
        now() + TimeDelta::seconds(91),
    ));
    assert!(reason.contains("expired"), "{reason}");
}

#[test]
fn not_before_in_the_future_is_refused() {
    let keys = KeyRing::ephemeral().unwrap();
    let mut c = claims("service");
    c.nbf = Some(now().timestamp() + 3600);
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.signing().kid.clone());
    let token = jsonwebtoken::encode(&header, &c, keys.signing().encoding_key()).unwrap();
    assert!(err(verify(&token, &keys, &settings(), now())).contains("not valid yet"));
}

#[test]
fn another_key_issuer_audience_or_role_is_refused() {
    let keys = KeyRing::ephemeral().unwrap();
    let other = KeyRing::ephemeral().unwrap();
    let foreign = mint(
        &other,
        &settings(),
        Role::Admin,
        Some("ops".into()),
        TimeDelta::hours(1),
        now(),
    )
    .unwrap()
    .token;
    assert!(err(verify(&foreign, &keys, &settings(), now())).contains("unknown"));

    // Same kid, other key: the signature must not verify.
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.signing().kid.clone());
    let forged =
        jsonwebtoken::encode(&header, &claims("admin"), other.signing().encoding_key()).unwrap();
    assert!(err(verify(&forged, &keys, &settings(), now())).contains("signature"));

    let mut wrong = settings();
    wrong.issuer = "someone-else".into();
    let token = mint(
        &keys,
        &wrong,
        Role::Admin,
        Some("ops".into()),
        TimeDelta::hours(1),
        now(),
    )
    .unwrap()
    .token;
    assert!(err(verify(&token, &keys, &settings(), now())).contains("issuer"));

    let mut wrong = settings();
    wrong.audience = "another-service".into();
    let token = mint(
        &keys,
        &wrong,
        Role::Admin,
        Some("ops".into()),
        TimeDelta::hours(1),
        now(),
    )
    .unwrap()
    .token;
    assert!(err(verify(&token, &keys, &settings(), now())).contains("audience"));

    let token =
        jsonwebtoken::encode(&header, &claims("superuser"), keys.signing().encoding_key()).unwrap();
    assert!(err(verify(&token, &keys, &settings(), now())).contains("unknown role"));

    let mut no_sub = claims("subject");
    no_sub.sub = None;
    let token = jsonwebtoken::encode(&header, &no_sub, keys.signing().encoding_key()).unwrap();
    assert!(err(verify(&token, &keys, &settings(), now())).contains("sub"));
}

#[test]
fn alg_none_and_garbage_are_refused() {
    let keys = KeyRing::ephemeral().unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("admin")).unwrap());
    for token in [
        format!("{header}.{body}."),
        format!("{header}.{body}"),
        "abc".into(),
        "a.b.c".into(),
        String::new(),
    ] {
        err(verify(&token, &keys, &settings(), now()));
    }
}

#[test]
fn hmac_only_when_accepted() {
    let keys = KeyRing::ephemeral().unwrap();
    let token = mint_hmac(Algorithm::HS256, SECRET, &claims("service")).unwrap();
    assert!(err(verify(&token, &keys, &settings(), now())).contains("not accepted"));

    let mut hmac = settings();
    hmac.algorithms = AcceptedAlgorithms::parse("EdDSA, HS256").unwrap();
    hmac.hmac_secret = Some(SECRET.into());
    assert_eq!(
        verify(&token, &keys, &hmac, now()).unwrap().role,
        Role::Service
    );
    let wrong_secret = mint_hmac(
        Algorithm::HS256,
        "another-secret-that-is-long-enough-yes",
        &claims("service"),
    )
    .unwrap();
    assert!(err(verify(&wrong_secret, &keys, &hmac, now())).contains("signature"));
}

#[test]
fn algorithm_lists_never_accept_none() {
    assert!(AcceptedAlgorithms::parse("none").is_err());
    assert!(AcceptedAlgorithms::parse("EdDSA,none").is_err());
    assert!(AcceptedAlgorithms::parse("RS256").is_err());
    assert!(AcceptedAlgorithms::parse(" , ").is_err());
    assert!(AcceptedAlgorithms::parse("HS256").unwrap().accepts_hmac());
}

#[test]
fn subject_access_table() {
    let who = |role, sub: Option<&str>| Principal {
        role,
        sub: sub.map(str::to_owned),
        token_id: "t".into(),
    };
    let staff = [Role::Service, Role::Admin];
    assert_eq!(
        who(Role::Service, None).subject_access(&staff, true, "bob"),
        SubjectAccess::Granted
    );
    assert_eq!(
        who(Role::Subject, Some("bob")).subject_access(&staff, true, "bob"),
        SubjectAccess::Granted
    );
    assert_eq!(
        who(Role::Subject, Some("alice")).subject_access(&staff, true, "bob"),
        SubjectAccess::Hidden
    );
    assert!(matches!(
        who(Role::Subject, Some("bob")).subject_access(&staff, false, "bob"),
        SubjectAccess::Denied(_)
    ));
    assert!(matches!(
        who(Role::Compliance, None).subject_access(&staff, true, "bob"),
        SubjectAccess::Denied(_)
    ));
    assert!(who(Role::Compliance, None).require(&staff).is_err());
    assert!(who(Role::Admin, None).require(&staff).is_ok());
}

#[test]
fn every_token_names_someone_in_the_id_alphabet() {
    let keys = KeyRing::ephemeral().unwrap();
    for role in Role::ALL {
        for sub in [None, Some(""), Some("svc\u{202E}"), Some("a b")] {
            let minted = mint(
                &keys,
                &settings(),
                role,
                sub.map(str::to_owned),
                TimeDelta::hours(1),
                now(),
            );
            assert!(minted.is_err(), "{role:?} {sub:?}");
        }
        let mut nameless = claims(role.as_str());
        nameless.sub = Some(String::new());
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.signing().kid.clone());
        let token =
            jsonwebtoken::encode(&header, &nameless, keys.signing().encoding_key()).unwrap();
        assert!(err(verify(&token, &keys, &settings(), now())).contains("sub"));
    }
}
