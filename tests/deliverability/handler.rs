//! The ready one-click unsubscribe endpoint (`deliverability::unsubscribe_router`) under a
//! real HTTP client, against a real SQLite suppression list: RFC 8058's POST records the
//! opt-out and a second one is idempotent; a GET records nothing and shows a form; forged,
//! expired and other-recipient tokens are refused; every answer carries the strict policy.

use chrono::{Duration, Utc};
use mailroom::deliverability::{
    Reason, Scope, SuppressionStore, TokenKey, Unsubscribe, unsubscribe_router,
};

const BASE: &str = "https://example.com/unsubscribe";

async fn start(store: SuppressionStore, unsubscribe: Unsubscribe) -> String {
    let app = axum::Router::new().nest("/unsubscribe", unsubscribe_router(unsubscribe, store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/unsubscribe")
}

/// The path part of a link made under [`BASE`], on the local server.
fn local(server: &str, link: &str) -> String {
    format!("{server}{}", link.strip_prefix(BASE).unwrap())
}

async fn one_click(url: &str) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    let csp = response
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        response.status().as_u16(),
        csp,
        response.text().await.unwrap(),
    )
}

#[tokio::test]
async fn a_one_click_post_records_the_opt_out_once_and_a_get_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("queue.db").display());
    let store = SuppressionStore::connect(&queue).await.unwrap();
    let key = TokenKey::new(vec![7u8; 32]).unwrap();
    let unsubscribe = Unsubscribe::new(key.clone(), BASE).unwrap();
    let server = start(store.clone(), unsubscribe.clone()).await;
    let now = Utc::now();
    let link = unsubscribe
        .link("Ann@Example.ORG", "news.example.com", now)
        .unwrap();
    let url = local(&server, &link);

    // A person (or a link scanner) following the link: a form, nothing recorded.
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\">") && html.contains("news.example.com"),
        "{html}"
    );
    assert!(
        store.list().await.unwrap().is_empty(),
        "a GET unsubscribed someone"
    );

    // The receiver's one-click POST.
    let (status, csp, _) = one_click(&url).await;
    assert_eq!(status, 200);
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].address, "Ann@example.org");
    assert_eq!(listed[0].scope, Scope::List("news.example.com".to_owned()));
    assert_eq!(listed[0].reason, Reason::Unsubscribe);
    let suppressed = store
        .suppressed(&["Ann@example.org".to_owned()], Some("news.example.com"))
        .await
        .unwrap();
    assert_eq!(suppressed, ["Ann@example.org"]);

    // Again: idempotent.
    let (status, _, _) = one_click(&url).await;
    assert_eq!(status, 200);
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn refused_tokens_answer_400_and_record_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("queue.db").display());
    let store = SuppressionStore::connect(&queue).await.unwrap();
    let unsubscribe = Unsubscribe::new(TokenKey::new(vec![7u8; 32]).unwrap(), BASE).unwrap();
    let server = start(store.clone(), unsubscribe.clone()).await;
    let now = Utc::now();
    // Made with another secret, expired, or cut short.
    let other = Unsubscribe::new(TokenKey::new(vec![8u8; 32]).unwrap(), BASE).unwrap();
    let forged = other.link("ann@example.org", "news", now).unwrap();
    let expired = unsubscribe
        .clone()
        .validity(Duration::seconds(1))
        .link("ann@example.org", "news", now - Duration::days(1))
        .unwrap();
    let good = unsubscribe.link("ann@example.org", "news", now).unwrap();
    let truncated = &good[..good.len() - 3];
    for link in [forged.as_str(), expired.as_str(), truncated] {
        let url = local(&server, link);
        let (status, csp, body) = one_click(&url).await;
        assert_eq!(status, 400, "{link}: {body}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(reqwest::get(&url).await.unwrap().status().as_u16(), 400);
    }
    assert!(store.list().await.unwrap().is_empty());
}
