//! How to reach the database: [`PostgresOptions`] and its URL parameters, the schema name
//! check, and keeping passwords out of everything printed (`Debug`, error messages).

use std::fmt;
use std::time::Duration;

use crate::tasks::TaskError;
use crate::tasks::backend::DEFAULT_QUEUE;

/// The default schema.
const DEFAULT_SCHEMA: &str = "mailroom";

/// How to open a [`PostgresBackend`](super::PostgresBackend).
#[derive(Clone)]
pub struct PostgresOptions {
    /// The connection URL without mailroom's own parameters (may hold a password; never
    /// printed).
    pub(super) url: String,
    /// The schema holding mailroom's tables (created if missing).
    pub schema: String,
    /// The queue names tasks may be enqueued on.
    pub queues: Vec<String>,
    /// Connections in the pool (a worker uses one of them for `LISTEN`).
    pub max_connections: u32,
    /// Whether a worker's bookkeeping (claims, heartbeats, completions, rescues) waits for
    /// its commit to reach disk. Default `false`: those commits are asynchronous (about
    /// 5× the throughput where an fsync costs milliseconds). Enqueues are always durable.
    /// If the *database server* crashes, the last moments of bookkeeping may be lost: those
    /// tasks run again (at least once, as after a worker crash), possibly under the same
    /// attempt number. Worker crashes are unaffected.
    pub synchronous_worker_commits: bool,
    /// How long opening the backend waits for the database to accept a connection before it
    /// fails with the cause (default 10 s; URL parameter `connect_timeout=SECONDS`).
    pub connect_timeout: Duration,
}

/// The default of [`PostgresOptions::connect_timeout`].
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("queues", &self.queues)
            .field("max_connections", &self.max_connections)
            .field(
                "synchronous_worker_commits",
                &self.synchronous_worker_commits,
            )
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The URL with any password (in the user info or a `password=` parameter) replaced by
/// `***`.
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" { "***".into() } else { v };
                        (k.into_owned(), v.into_owned())
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// The passwords `url` holds (user info, raw and decoded, and `password=` parameters).
fn secrets(url: &str) -> Vec<String> {
    let Ok(u) = url::Url::parse(url) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(p) = u.password() {
        out.push(p.to_owned());
        if let Some(decoded) = percent_decode(p) {
            out.push(decoded);
        }
    }
    out.extend(
        u.query_pairs()
            .filter(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned()),
    );
    out.retain(|p| !p.is_empty());
    out
}

/// Percent-decodes `s` (a URL's user info), through the `url` crate's form decoder with
/// `+` kept as itself.
fn percent_decode(s: &str) -> Option<String> {
    let field = format!("p={}", s.replace('+', "%2B"));
    url::form_urlencoded::parse(field.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A storage error for a failure about the database at `url`: the cause's text joins the
/// message, and any password of `url` is masked in both; the cause is kept as the source
/// only when its debug form holds no password.
pub(super) fn connection_error(message: String, url: &str, cause: sqlx::Error) -> TaskError {
    let secrets = secrets(url);
    let mask = |text: String| {
        secrets
            .iter()
            .fold(text, |t, secret| t.replace(secret.as_str(), "***"))
    };
    let message = mask(format!("{message}: {cause}"));
    let debug = format!("{cause:?}");
    if secrets.iter().any(|p| debug.contains(p.as_str())) {
        TaskError::Storage {
            message,
            source: None,
        }
    } else {
        TaskError::storage(message, cause)
    }
}

pub(super) fn check_schema(schema: &str) -> Result<(), TaskError> {
    let mut chars = schema.chars();
    let ok_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !ok_start
        || schema.len() > 63
        || !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(TaskError::configuration(
            "schema",
            format!(
                "`{schema}` is not a usable schema name; use 1 to 63 of a-z, 0-9 and _, not starting with a digit"
            ),
        ));
    }
    Ok(())
}

impl PostgresOptions {
    /// Defaults for a connection URL (`postgres://user@host:port/db`): schema `mailroom`,
    /// queue `default`, 10 connections.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            queues: vec![DEFAULT_QUEUE.to_owned()],
            max_connections: 10,
            synchronous_worker_commits: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Sets how long opening waits for the database to accept a connection (see
    /// [`PostgresOptions::connect_timeout`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets whether worker bookkeeping commits wait for disk (see
    /// [`PostgresOptions::synchronous_worker_commits`]).
    pub fn synchronous_worker_commits(mut self, on: bool) -> Self {
        self.synchronous_worker_commits = on;
        self
    }

    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the known queues.
    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queues: I) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the pool size.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Parses `postgres://user[:password]@host[:port]/db[?schema=NAME][&queues=a,b]
    /// [&synchronous_worker_commits=true][&connect_timeout=SECONDS]` (also
    /// `postgresql://`); other parameters (e.g. `sslmode`) go to the driver.
    pub fn from_url(url: &str) -> Result<Self, TaskError> {
        let mut parsed = url::Url::parse(url).map_err(|e| {
            TaskError::configuration(
                "queue",
                format!("`{}` is not a postgres:// URL: {e}", redact(url)),
            )
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(TaskError::configuration(
                "queue",
                format!("`{}` is not a postgres:// URL", redact(url)),
            ));
        }
        let mut options = PostgresOptions::new("");
        let mut rest = Vec::new();
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "schema" => options.schema = v.into_owned(),
                "queues" => options.queues = crate::tasks::backend::queue_list(&v)?,
                "synchronous_worker_commits" => {
                    options.synchronous_worker_commits = match &*v {
                        "true" | "on" | "1" => true,
                        "false" | "off" | "0" => false,
                        other => {
                            return Err(TaskError::configuration(
                                "synchronous_worker_commits",
                                format!("is `{other}`; use true or false"),
                            ));
                        }
                    }
                }
                "connect_timeout" => {
                    let secs: u64 = v.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        TaskError::configuration(
                            "connect_timeout",
                            format!("is `{v}`; use a whole number of seconds, at least 1"),
                        )
                    })?;
                    options.connect_timeout = Duration::from_secs(secs);
                }
                _ => rest.push((k.into_owned(), v.into_owned())),
            }
        }
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
        options.url = parsed.to_string();
        check_schema(&options.schema)?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn url_parameters_are_mailrooms_or_the_drivers() {
        let o = PostgresOptions::from_url(
            "postgres://u:secret@db:5433/app?schema=jobs&queues=a,b&sslmode=disable",
        )
        .unwrap();
        assert_eq!(o.schema, "jobs");
        assert_eq!(o.queues, ["a", "b"]);
        assert_eq!(o.url, "postgres://u:secret@db:5433/app?sslmode=disable");
        let shown = format!("{o:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        let o = PostgresOptions::from_url("postgresql://u@db/app").unwrap();
        assert_eq!(o.schema, DEFAULT_SCHEMA);
        assert_eq!(o.url, "postgresql://u@db/app");
        assert!(!o.synchronous_worker_commits);
        let o = PostgresOptions::from_url("postgres://u@db/app?synchronous_worker_commits=true")
            .unwrap();
        assert!(o.synchronous_worker_commits);
        assert_eq!(o.url, "postgres://u@db/app");
        let e = PostgresOptions::from_url("postgres://u@db/app?synchronous_worker_commits=maybe")
            .unwrap_err();
        assert_eq!(e.field(), Some("synchronous_worker_commits"));
    }

    #[test]
    fn connect_timeout_is_a_url_parameter_in_seconds() {
        let o = PostgresOptions::from_url("postgres://u@db/app").unwrap();
        assert_eq!(o.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let o = PostgresOptions::from_url("postgres://u@db/app?connect_timeout=5&sslmode=disable")
            .unwrap();
        assert_eq!(o.connect_timeout, Duration::from_secs(5));
        assert_eq!(o.url, "postgres://u@db/app?sslmode=disable");
        for bad in ["0", "-1", "soon", "1.5", ""] {
            let e =
                PostgresOptions::from_url(&format!("postgres://u@db/app?connect_timeout={bad}"))
                    .unwrap_err();
            assert_eq!(e.field(), Some("connect_timeout"), "{bad}: {e}");
        }
        let o = PostgresOptions::new("postgres://u@db/app").connect_timeout(Duration::from_secs(2));
        assert_eq!(o.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn passwords_are_masked_in_user_info_and_parameters() {
        let url = "postgres://u:s3%63r3t@h/d?password=p4ss&sslmode=disable";
        let shown = redact(url);
        assert!(!shown.contains("s3") && !shown.contains("p4ss"), "{shown}");
        assert!(shown.contains("sslmode=disable"), "{shown}");
        let mut found = secrets(url);
        found.sort();
        assert_eq!(found, ["p4ss", "s3%63r3t", "s3cr3t"]);
        assert_eq!(percent_decode("a+b%2B%20").as_deref(), Some("a+b+ "));
    }

    #[test]
    fn bad_schema_names_are_refused() {
        for bad in ["", "1abc", "Upper", "a-b", "a\"b", &"x".repeat(64)] {
            let e =
                PostgresOptions::from_url(&format!("postgres://u@h/d?schema={bad}")).unwrap_err();
            assert_eq!(e.field(), Some("schema"), "{bad}: {e}");
        }
        assert!(PostgresOptions::from_url("sqlite:x.db").is_err());
        assert!(PostgresOptions::from_url("postgres://u@h/d?queues=").is_err());
    }
}
