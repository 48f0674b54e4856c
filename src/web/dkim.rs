//! The DKIM verification result of a signed message, on mail-auth.
//!
//! Keys come from DNS (the system's resolver), or from records given to
//! [`App::dkim_txt_record`](super::App::dkim_txt_record) first — a local setup whose
//! selector is not published yet, and the tests. A lookup that does not answer within a
//! few seconds shows as a temporary error instead of holding the page.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use serde::Serialize;

/// How long a page waits for DNS.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(4);

/// One signature's result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DkimRow {
    pub(crate) domain: String,
    pub(crate) selector: String,
    /// `pass`, `fail`, `neutral`, `permerror`, `temperror` or `none`.
    pub(crate) result: &'static str,
    /// Why, when not `pass`.
    pub(crate) detail: String,
}

/// TXT records known without DNS, keyed by name (with and without the trailing dot).
#[derive(Default)]
struct Preloaded(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for Preloaded {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _valid_until: std::time::Instant) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, value);
    }
}

/// Verifies DKIM signatures.
#[derive(Clone)]
pub(crate) struct Verifier {
    resolver: Option<Arc<MessageAuthenticator>>,
    preloaded: Arc<Preloaded>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier on the system's resolver, knowing `records` (`(name, TXT value)`) already.
    pub(crate) fn new(records: &[(String, String)]) -> crate::Result<Verifier> {
        let preloaded = Preloaded::default();
        {
            let mut map = preloaded
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (name, value) in records {
                let key = DomainKey::parse(value.as_bytes()).map_err(|e| {
                    crate::Error::configuration("dkim record", format!("{name}: {e}"))
                })?;
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let txt = Txt::from(key);
                map.insert(format!("{name}.").into(), txt.clone());
                map.insert(name.into(), txt);
            }
        }
        let resolver = match MessageAuthenticator::new_system_conf() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "no system resolver; DKIM keys only from given records");
                None
            }
        };
        Ok(Verifier {
            resolver: resolver.map(Arc::new),
            preloaded: Arc::new(preloaded),
        })
    }

    /// The result of each `DKIM-Signature` of `bytes`; empty when the message is unsigned.
    pub(crate) async fn verify(&self, bytes: &[u8]) -> Vec<DkimRow> {
        let Some(message) = AuthenticatedMessage::parse(bytes) else {
            return Vec::new();
        };
        if message.dkim_headers.is_empty() {
            return Vec::new();
        }
        let unverified = |detail: &str| {
            message
                .dkim_headers
                .iter()
                .map(|h| DkimRow {
                    domain: h.header.d.clone(),
                    selector: h.header.s.clone(),
                    result: "temperror",
                    detail: detail.to_owned(),
                })
                .collect()
        };
        let Some(resolver) = &self.resolver else {
            return unverified("no DNS resolver");
        };
        let params = Parameters::new(&message).with_txt_cache(&*self.preloaded);
        let outputs = match tokio::time::timeout(LOOKUP_TIMEOUT, resolver.verify_dkim(params)).await
        {
            Ok(outputs) => outputs,
            Err(_) => return unverified("DNS did not answer in time"),
        };
        outputs
            .iter()
            .map(|o| {
                let (result, detail) = match o.result() {
                    DkimResult::Pass => ("pass", String::new()),
                    DkimResult::Neutral(e) => ("neutral", e.to_string()),
                    DkimResult::Fail(e) => ("fail", e.to_string()),
                    DkimResult::PermError(e) => ("permerror", e.to_string()),
                    DkimResult::TempError(e) => ("temperror", e.to_string()),
                    DkimResult::None => ("none", String::new()),
                };
                DkimRow {
                    domain: o.signature().map(|s| s.d.clone()).unwrap_or_default(),
                    selector: o.signature().map(|s| s.s.clone()).unwrap_or_default(),
                    result,
                    detail,
                }
            })
            .collect()
    }
}
