//! Fetching remote images and stylesheets (feature `html-fetch`), within size, count and
//! time limits, so they can travel inside the message.

use std::collections::HashMap;
use std::time::Duration;

use super::images::Fetched;
use crate::error::{Error, Result};

/// Limits on fetching remote images and stylesheets.
#[derive(Debug, Clone)]
#[must_use]
pub struct FetchLimits {
    /// The largest resource taken, in bytes; larger ones are left remote.
    pub max_bytes: usize,
    /// The most images, and the most stylesheets, fetched for one body.
    pub max_resources: usize,
    /// How long one fetch may take, connection included.
    pub timeout: Duration,
}

impl Default for FetchLimits {
    /// 2 MiB per resource, 32 resources, 10 seconds each.
    fn default() -> Self {
        FetchLimits {
            max_bytes: 2 << 20,
            max_resources: 32,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Fetches each URL; failures (status, size, time, type) leave the URL out, with a warning.
pub(crate) async fn fetch_all(
    urls: &[String],
    limits: &FetchLimits,
    wanted: fn(&str) -> bool,
) -> Result<HashMap<String, Fetched>> {
    let client = reqwest::Client::builder()
        .timeout(limits.timeout)
        .connect_timeout(limits.timeout)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| {
            Error::configuration("fetch_remote", format!("cannot build an HTTP client: {e}"))
        })?;
    let mut out = HashMap::new();
    for url in urls.iter().take(limits.max_resources) {
        if out.contains_key(url) {
            continue;
        }
        match fetch_one(&client, url, limits, wanted).await {
            Ok(f) => {
                out.insert(url.clone(), f);
            }
            Err(reason) => tracing::warn!(%url, %reason, "remote resource not embedded"),
        }
    }
    Ok(out)
}

async fn fetch_one(
    client: &reqwest::Client,
    url: &str,
    limits: &FetchLimits,
    wanted: fn(&str) -> bool,
) -> std::result::Result<Fetched, String> {
    let work = async {
        let mut response = client.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > limits.max_bytes as u64)
        {
            return Err(format!("larger than {} bytes", limits.max_bytes));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        if !wanted(&content_type) {
            return Err(format!("unexpected content type `{content_type}`"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if bytes.len() + chunk.len() > limits.max_bytes {
                return Err(format!("larger than {} bytes", limits.max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            content_type,
            bytes,
        })
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| format!("took longer than {:?}", limits.timeout))?
}

/// The remote resources of a body, fetched.
pub(crate) struct Remote {
    /// The fetched images, by URL.
    pub(crate) images: HashMap<String, Fetched>,
    /// The fetched stylesheets' texts, in document order; `None` when none was fetched.
    pub(crate) css: Option<String>,
}

/// Fetches the `http(s):` images and stylesheets `html` references (see [`fetch_all`]).
pub(crate) async fn fetch_remote(html: &str, limits: &FetchLimits) -> Result<Remote> {
    let remote = |u: &String| {
        let l = u.to_ascii_lowercase();
        l.starts_with("https://") || l.starts_with("http://")
    };
    let found = super::scan::scan(html);
    let images: Vec<String> = found.image_urls.into_iter().filter(remote).collect();
    let sheets: Vec<String> = found.stylesheets.into_iter().filter(remote).collect();
    let fetched_images = fetch_all(&images, limits, |t| t.starts_with("image/")).await?;
    let fetched_css = fetch_all(&sheets, limits, |t| t == "text/css").await?;
    let css: String = sheets
        .iter()
        .filter_map(|u| fetched_css.get(u))
        .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Remote {
        images: fetched_images,
        css: (!css.is_empty()).then_some(css),
    })
}
