//! Amazon SES v2: `POST /v2/email/outbound-emails`, checked against what the SES v2
//! `SendEmail` API documents: `Destination.ToAddresses` (every envelope recipient, Bcc
//! included), `Content.Raw.Data` (the MIME, base64), `ConfigurationSetName`, `EmailTags`
//! (`Name`, `Value`), SigV4 headers (`Authorization`, `X-Amz-Date`,
//! `X-Amz-Security-Token`); answers `{"MessageId"}`, errors `{"message"}` with
//! `x-amzn-ErrorType`. The signature the server receives is checked by signing the
//! received request again.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use mailroom::Error;
use mailroom::transport::{SesTransport, Transport};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;

const ID: &str = "AKIDEXAMPLE";

async fn ses(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/email/outbound-emails"))
        .and(header("Content-Type", "application/json"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn transport(server: &MockServer, query: &str) -> SesTransport {
    SesTransport::from_url(&url(
        "ses",
        &format!("{ID}:{KEY}"),
        server,
        &format!("?region=eu-west-1{query}"),
    ))
    .unwrap()
}

/// The authorization the request should carry, signed again from what was received.
fn expected_authorization(request: &Request, token: Option<&str>) -> String {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let date = header("x-amz-date");
    let time = chrono::NaiveDateTime::parse_from_str(&date, "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(time.timestamp() as u64);
    let identity = Credentials::new(ID, KEY, token.map(str::to_owned), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("ses")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = header("host");
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/json"),
    ];
    let signable = SignableRequest::new(
        "POST",
        request.url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&request.body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions
        .headers()
        .find(|(k, _)| *k == "authorization")
        .unwrap()
        .1
        .to_owned()
}

#[tokio::test]
async fn the_raw_mime_goes_to_every_envelope_recipient_signed_with_sigv4() {
    let server =
        ses(ResponseTemplate::new(200).set_body_json(json!({"MessageId": "0102018f-ses-id"})))
            .await;
    let rendered = render(&alternative());
    let t = transport(
        &server,
        "&session_token=TOKEN-xyz&configuration_set=transactional&tag=campaign:herbst&tag=kind:order",
    );
    let delivery = t.send_rendered(&rendered).await.unwrap();
    assert_eq!(delivery.queue_id.as_deref(), Some("0102018f-ses-id"));
    let request = &server.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let data = base64::engine::general_purpose::STANDARD
        .decode(body["Content"]["Raw"]["Data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, rendered.bytes(), "the MIME byte for byte");
    assert_eq!(
        body,
        json!({
            "Destination": {"ToAddresses": ["jurgen@example.org", "ana@example.org", "hidden@example.org"]},
            "Content": {"Raw": {"Data": body["Content"]["Raw"]["Data"]}},
            "ConfigurationSetName": "transactional",
            "EmailTags": [{"Name": "campaign", "Value": "herbst"}, {"Name": "kind", "Value": "order"}],
        })
    );
    assert_eq!(
        request.headers.get("x-amz-security-token").unwrap(),
        "TOKEN-xyz"
    );
    let authorization = request
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ID}/")),
        "{authorization}"
    );
    assert!(
        authorization.contains("/eu-west-1/ses/aws4_request"),
        "{authorization}"
    );
    assert_eq!(
        authorization,
        expected_authorization(request, Some("TOKEN-xyz"))
    );
    assert!(!format!("{t:?}").contains(KEY) && !format!("{t:?}").contains("TOKEN-xyz"));
}

#[tokio::test]
async fn documented_errors_are_classified_with_the_ses_message() {
    let server = ses(ResponseTemplate::new(400)
        .insert_header("x-amzn-ErrorType", "MessageRejected:http://internal.amazon.com/coral/com.amazonaws.sesv2/")
        .set_body_json(json!({"message": "Email address is not verified. The following identities failed the check in region EU-WEST-1: zoe@example.com"})))
    .await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        err.is_permanent() && text.contains("not verified") && text.contains("MessageRejected"),
        "{text}"
    );
    assert!(!text.contains(KEY));
    let server = ses(ResponseTemplate::new(403)
        .insert_header("x-amzn-ErrorType", "SignatureDoesNotMatch")
        .set_body_json(json!({"message": "The request signature we calculated does not match the signature you provided."})))
    .await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("SignatureDoesNotMatch"),
        "{err}"
    );
    let server = ses(ResponseTemplate::new(429)
        .insert_header("x-amzn-ErrorType", "TooManyRequestsException")
        .insert_header("Retry-After", "5")
        .set_body_json(json!({"message": "Maximum sending rate exceeded."})))
    .await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    let Error::Transient(failure) = &err else {
        panic!("{err}")
    };
    assert_eq!(failure.retry_after, Some(Duration::from_secs(5)));
    let server =
        ses(ResponseTemplate::new(500).set_body_json(json!({"message": "internal failure"}))).await;
    assert!(
        transport(&server, "")
            .send_rendered(&render(&text_only()))
            .await
            .unwrap_err()
            .is_transient()
    );
    let server = ses(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).await;
    let err = transport(&server, "&timeout=300ms")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("timed out"),
        "{err}"
    );
}

#[test]
fn the_region_comes_from_the_host_or_the_query() {
    let t =
        mailroom::transport::from_url(&format!("ses://{ID}:{KEY}@email.us-west-2.amazonaws.com"))
            .unwrap();
    let debug = format!("{t:?}");
    assert!(
        debug.contains("us-west-2") && !debug.contains(KEY),
        "{debug}"
    );
    for (bad, field) in [
        (
            format!("ses://{ID}:{KEY}@ses.example.com"),
            "transport.region",
        ),
        (
            format!("ses://{ID}@email.us-west-2.amazonaws.com"),
            "transport.password",
        ),
        (
            format!("ses://{ID}:{KEY}@email.us-west-2.amazonaws.com?tag=oops"),
            "transport.tag",
        ),
    ] {
        let err = mailroom::transport::from_url(&bad).unwrap_err();
        assert_eq!(err.field(), Some(field), "{bad}: {err}");
        assert!(!err.to_string().contains(KEY), "{err}");
    }
}
