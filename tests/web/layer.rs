//! `csp::CspLayer`: header values per route, a fresh nonce per response equal to the one
//! the handler saw, report-only beside enforced, override and exemption, on axum and on a
//! plain tower service.

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use mailroom::csp::{self, CspLayer, CspNonce, Policy};
use tower::{Layer as _, ServiceExt as _};

fn strict() -> Policy {
    Policy::new()
        .list("default-src", [csp::NONE])
        .list("script-src", [csp::NONCE])
        .list("style-src", [csp::NONCE])
}

fn watching() -> Policy {
    Policy::new()
        .list("require-trusted-types-for", ["'script'"])
        .list("script-src", [csp::NONCE, csp::STRICT_DYNAMIC])
        .list("report-uri", ["/csp-report"])
}

fn embed() -> Policy {
    Policy::new()
        .list("frame-ancestors", ["https://partner.example"])
        .list("script-src", [csp::NONCE])
}

/// Each handler answers with the nonce it was given.
async fn echo(nonce: CspNonce) -> String {
    nonce.as_str().to_owned()
}

fn app() -> Router {
    Router::new()
        .route("/", get(echo))
        .route("/other", get(echo))
        .route("/embed", get(echo).route_layer(CspLayer::new(embed())))
        .route("/legacy", get(echo).route_layer(CspLayer::exempt()))
        .route(
            "/own",
            get(|| async { ([(csp::HEADER, "default-src 'self'")], "own policy").into_response() }),
        )
        .nest(
            "/watch",
            Router::new()
                .route("/page", get(echo))
                .layer(CspLayer::report_only(
                    Policy::new().list("img-src", [csp::SELF]),
                )),
        )
        .layer(CspLayer::new(strict()).and_report_only(watching()))
}

struct Got {
    status: StatusCode,
    enforced: Option<String>,
    report_only: Option<String>,
    body: String,
}

async fn get_from(app: Router, uri: &str) -> Got {
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    read(response).await
}

async fn read(response: Response<Body>) -> Got {
    let header = |name: &str| {
        let all: Vec<_> = response.headers().get_all(name).iter().collect();
        assert!(all.len() <= 1, "{name} written {} times", all.len());
        all.first().map(|v| v.to_str().unwrap().to_owned())
    };
    let (enforced, report_only) = (header(csp::HEADER), header(csp::HEADER_REPORT_ONLY));
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Got {
        status,
        enforced,
        report_only,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[tokio::test]
async fn each_route_gets_its_policy_with_the_nonce_the_handler_saw() {
    let got = get_from(app(), "/").await;
    assert_eq!(got.status, StatusCode::OK);
    let n = &got.body;
    assert_eq!(
        got.enforced.as_deref(),
        Some(format!("default-src 'none'; script-src 'nonce-{n}'; style-src 'nonce-{n}'").as_str())
    );
    assert_eq!(
        got.report_only.as_deref(),
        Some(
            format!(
                "require-trusted-types-for 'script'; script-src 'nonce-{n}' 'strict-dynamic'; report-uri /csp-report"
            )
            .as_str()
        )
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(n).unwrap().len(),
        16,
        "128-bit nonce"
    );
}

#[tokio::test]
async fn the_nonce_is_fresh_for_every_response() {
    let mut seen = std::collections::HashSet::new();
    for uri in ["/", "/", "/other", "/", "/embed", "/embed"] {
        let got = get_from(app(), uri).await;
        assert!(
            got.enforced
                .as_deref()
                .unwrap()
                .contains(&format!("'nonce-{}'", got.body)),
            "{uri}: the header's nonce is not the handler's"
        );
        assert!(seen.insert(got.body.clone()), "{uri}: nonce reused");
    }
    // the same service, called again (not rebuilt), also makes a new one
    let service = app();
    let a = get_from(service.clone(), "/").await.body;
    let b = get_from(service, "/").await.body;
    assert_ne!(a, b);
}

#[tokio::test]
async fn an_inner_layer_overrides_both_outer_policies() {
    let got = get_from(app(), "/embed").await;
    let n = &got.body;
    assert_eq!(
        got.enforced.as_deref(),
        Some(format!("frame-ancestors https://partner.example; script-src 'nonce-{n}'").as_str())
    );
    assert_eq!(
        got.report_only, None,
        "the outer report-only policy leaked through"
    );
}

#[tokio::test]
async fn an_exempt_route_gets_no_policy_but_still_a_nonce() {
    let got = get_from(app(), "/legacy").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.enforced, None);
    assert_eq!(got.report_only, None);
    assert_eq!(URL_SAFE_NO_PAD.decode(&got.body).unwrap().len(), 16);
}

#[tokio::test]
async fn a_policy_the_handler_set_is_kept() {
    let got = get_from(app(), "/own").await;
    assert_eq!(got.enforced.as_deref(), Some("default-src 'self'"));
    assert!(
        got.report_only
            .unwrap()
            .starts_with("require-trusted-types-for")
    );
}

#[tokio::test]
async fn report_only_alone_on_a_nested_router() {
    let got = get_from(app(), "/watch/page").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.enforced, None,
        "a report-only layer replaces the outer enforced one"
    );
    assert_eq!(got.report_only.as_deref(), Some("img-src 'self'"));
}

#[tokio::test]
async fn a_policy_without_the_placeholder_is_written_as_is() {
    let app = Router::new().route("/", get(echo)).layer(CspLayer::new(
        Policy::new().list("default-src", [csp::SELF]),
    ));
    let got = get_from(app, "/").await;
    assert_eq!(got.enforced.as_deref(), Some("default-src 'self'"));
}

#[tokio::test]
async fn without_a_layer_the_extractor_answers_500() {
    let app = Router::new().route("/", get(echo));
    let got = get_from(app, "/").await;
    assert_eq!(got.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(got.body.contains("CspLayer"), "{}", got.body);
}

#[tokio::test]
async fn works_on_a_plain_tower_service() {
    // Not axum: a service over http types, with its own body type.
    let inner = tower::service_fn(|request: Request<String>| async move {
        let nonce = request.extensions().get::<CspNonce>().unwrap().clone();
        Ok::<_, std::convert::Infallible>(Response::new(nonce.to_string()))
    });
    let service = CspLayer::new(strict()).layer(inner);
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let response = service
            .clone()
            .oneshot(Request::new(String::new()))
            .await
            .unwrap();
        let header = response.headers()[csp::HEADER].to_str().unwrap().to_owned();
        let nonce = response.into_body();
        assert!(
            header.contains(&format!("script-src 'nonce-{nonce}'")),
            "{header}"
        );
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1]);
    // and as a layer of tower's ServiceBuilder, exemption nested in it
    let service = tower::ServiceBuilder::new()
        .layer(CspLayer::new(strict()))
        .layer(CspLayer::exempt())
        .service(tower::service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        }));
    let response = service.oneshot(Request::new(String::new())).await.unwrap();
    assert!(response.headers().get(csp::HEADER).is_none());
}
