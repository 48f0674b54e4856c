//! AWS Signature Version 4 for SES requests, on the `aws-sigv4` crate.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::endpoint::Secret;
use crate::error::{DeliveryFailure, Error, Result};

/// The keys a request is signed with.
#[derive(Debug, Clone)]
pub(crate) struct AwsKeys {
    pub(crate) access_key_id: Secret,
    pub(crate) secret: Secret,
    pub(crate) session_token: Option<Secret>,
}

/// The headers that sign a request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` with a session token) for `service` in `region` at `time`.
/// `headers` are the request's own, `host` among them.
pub(crate) fn signature_headers(
    keys: &AwsKeys,
    region: &str,
    service: &str,
    time: SystemTime,
    request: (&str, &str, &[(&str, &str)], &[u8]),
) -> Result<Vec<(String, String)>> {
    let (method, url, headers, body) = request;
    let identity: Identity = Credentials::new(
        keys.access_key_id.expose(),
        keys.secret.expose(),
        keys.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "mailroom-url",
    )
    .into();
    let failed = |e: &dyn std::fmt::Display| {
        Error::Permanent(DeliveryFailure::local(format!(
            "ses: cannot sign the request: {e}"
        )))
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn keys(token: Option<&str>) -> AwsKeys {
        AwsKeys {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
        }
    }

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        &headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
    }

    /// `get-vanilla` from AWS's published SigV4 test suite.
    #[test]
    fn the_get_vanilla_vector() {
        let headers = signature_headers(
            &keys(None),
            "us-east-1",
            "service",
            suite_time(),
            (
                "GET",
                "https://example.amazonaws.com/",
                &[("host", "example.amazonaws.com")],
                b"",
            ),
        )
        .unwrap();
        assert_eq!(
            authorization(&headers),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "x-amz-date" && v == "20150830T123600Z")
        );
    }

    /// A session token is sent and signed.
    #[test]
    fn a_session_token_is_signed() {
        let headers = signature_headers(
            &keys(Some("TOKEN")),
            "eu-west-1",
            "ses",
            suite_time(),
            (
                "POST",
                "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails",
                &[
                    ("host", "email.eu-west-1.amazonaws.com"),
                    ("content-type", "application/json"),
                ],
                b"{}",
            ),
        )
        .unwrap();
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "x-amz-security-token" && v == "TOKEN")
        );
        let auth = authorization(&headers);
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/ses/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
    }
}
