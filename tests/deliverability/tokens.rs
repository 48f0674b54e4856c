//! Unsubscribe tokens: what is refused, and why.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use mailroom::deliverability::{TokenError, TokenKey};

fn key() -> TokenKey {
    TokenKey::new(b"0123456789abcdef0123456789abcdef-test".to_vec()).unwrap()
}

#[test]
fn a_token_reads_back_its_recipient_list_and_expiry_and_is_url_safe() {
    let expires = Utc::now() + Duration::days(30);
    let token = key()
        .issue("Ann <ann@EXAMPLE.org>", "news", expires)
        .unwrap();
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
    let claims = key().verify(&token, Utc::now()).unwrap();
    assert_eq!(claims.recipient, "ann@example.org");
    assert_eq!(claims.list, "news");
    assert_eq!(claims.expires.timestamp(), expires.timestamp());
    assert_eq!(
        key()
            .verify_for(&token, "ann@Example.ORG", "news", Utc::now())
            .unwrap(),
        claims
    );
}

#[test]
fn forged_tokens_are_refused() {
    let expires = Utc::now() + Duration::days(30);
    let token = key().issue("ann@example.org", "news", expires).unwrap();
    // Made with another secret.
    let other = TokenKey::new(vec![7u8; 32]).unwrap();
    let forged = other.issue("ann@example.org", "news", expires).unwrap();
    assert_eq!(key().verify(&forged, Utc::now()), Err(TokenError::Forged));
    // Every single flipped bit of a real token.
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for i in 0..bytes.len() {
        let mut altered = bytes.clone();
        altered[i] ^= 0x01;
        let altered = URL_SAFE_NO_PAD.encode(altered);
        assert!(
            key().verify(&altered, Utc::now()).is_err(),
            "flipping byte {i} was accepted"
        );
    }
    // The payload rewritten to name someone else, the tag kept.
    let victim = key().issue("bob@example.org", "news", expires).unwrap();
    let victim = URL_SAFE_NO_PAD.decode(victim).unwrap();
    let mut spliced = victim[..victim.len() - 32].to_vec();
    spliced.extend_from_slice(&bytes[bytes.len() - 32..]);
    assert_eq!(
        key().verify(&URL_SAFE_NO_PAD.encode(spliced), Utc::now()),
        Err(TokenError::Forged)
    );
}

#[test]
fn expired_tokens_are_refused() {
    let now = Utc::now();
    let token = key()
        .issue("ann@example.org", "news", now + Duration::hours(1))
        .unwrap();
    assert!(key().verify(&token, now).is_ok());
    assert_eq!(
        key().verify(&token, now + Duration::hours(1)),
        Err(TokenError::Expired)
    );
    let old = key()
        .issue("ann@example.org", "news", now - Duration::seconds(1))
        .unwrap();
    assert_eq!(key().verify(&old, now), Err(TokenError::Expired));
}

#[test]
fn a_token_for_another_recipient_or_list_is_refused() {
    let token = key()
        .issue("ann@example.org", "news", Utc::now() + Duration::days(1))
        .unwrap();
    for (recipient, list) in [
        ("bob@example.org", "news"),
        ("Ann@example.org", "news"),
        ("ann@example.org", "offers"),
    ] {
        assert_eq!(
            key().verify_for(&token, recipient, list, Utc::now()),
            Err(TokenError::OtherRecipient),
            "{recipient} {list}"
        );
    }
}

#[test]
fn truncated_and_garbled_tokens_are_refused() {
    let token = key()
        .issue("ann@example.org", "news", Utc::now() + Duration::days(1))
        .unwrap();
    for len in 0..token.len() {
        let cut = &token[..len];
        assert!(
            key().verify(cut, Utc::now()).is_err(),
            "a token cut to {len} characters was accepted"
        );
    }
    for garbage in ["", "!!!!", "a b", "AAAA"] {
        assert_eq!(
            key().verify(garbage, Utc::now()),
            Err(TokenError::Malformed),
            "{garbage:?}"
        );
    }
}

#[test]
fn short_secrets_are_configuration_errors_and_never_printed() {
    let err = TokenKey::new(b"short".to_vec()).unwrap_err();
    assert_eq!(err.field(), Some("unsubscribe_secret"));
    let key = TokenKey::new(b"a-very-secret-value-0123456789abcdef".to_vec()).unwrap();
    assert!(!format!("{key:?}").contains("very-secret"));
}
