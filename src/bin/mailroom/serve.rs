//! `mailroom serve`: the inbox, template previews and the queue pages in a browser.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::Args;
use mailroom::web::App;

use crate::exit;
use crate::input::TemplatesArg;

/// The environment variable that gives the auth token.
const TOKEN_ENV: &str = "MAILROOM_SERVE_TOKEN";

/// An auth token: never printed (Debug says `<redacted>`).
#[derive(Clone)]
pub(crate) struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err("the auth token is empty".to_owned());
        }
        Ok(Secret(s.to_owned()))
    }
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address and port to listen on; any address but loopback needs --auth-token.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8025")]
    listen: String,
    /// The outbox directory to show (what a `file:DIR` transport writes).
    #[arg(long, value_name = "DIR")]
    outbox: Option<PathBuf>,
    #[command(flatten)]
    templates: TemplatesArg,
    /// The queue to show and steer on /queue (sqlite:PATH or postgres://...).
    #[arg(
        long = "queue",
        env = "MAILROOM_QUEUE",
        value_name = "QUEUE_URL",
        hide_env_values = true
    )]
    queue: Option<String>,
    /// Token every request must carry (Authorization: Bearer TOKEN, or ?token=TOKEN once
    /// in a browser).
    #[arg(long = "auth-token", env = TOKEN_ENV, value_name = "TOKEN", hide_env_values = true)]
    auth_token: Option<Secret>,
}

/// Serves the UI until SIGTERM or Ctrl-C.
pub(crate) async fn run(args: ServeArgs) -> ExitCode {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(&args.listen).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            eprintln!(
                "mailroom: --listen {}: not an address and port: {e}",
                args.listen
            );
            return ExitCode::from(exit::USAGE);
        }
    };
    let Some(first) = addrs.first().copied() else {
        eprintln!("mailroom: --listen {}: resolves to no address", args.listen);
        return ExitCode::from(exit::USAGE);
    };
    let loopback = addrs.iter().all(|a| a.ip().is_loopback());
    if !loopback && args.auth_token.is_none() {
        eprintln!(
            "mailroom: --listen {}: a non-loopback address needs --auth-token (or {TOKEN_ENV})",
            args.listen
        );
        return ExitCode::from(exit::USAGE);
    }
    let mut app = App::new();
    if let Some(dir) = &args.outbox {
        app = app.outbox_dir(dir);
    }
    if let Some(dir) = args.templates.dir() {
        app = app.templates_dir(dir);
    }
    if let Some(url) = &args.queue {
        match crate::tasks::connect(url).await {
            Ok(ops) => app = app.queue(ops),
            Err(code) => return code,
        }
    }
    if let Some(Secret(token)) = args.auth_token {
        app = app.auth_token(token);
    }
    let router = match app.router().await {
        Ok(router) => router,
        Err(e) => return crate::fail(&e),
    };
    let listener = match tokio::net::TcpListener::bind(first).await {
        Ok(l) => l,
        Err(e) => return crate::fail(&mailroom::Error::io(format!("--listen {first}"), e)),
    };
    let bound = listener.local_addr().unwrap_or(first);
    crate::print_line(&format!("http://{bound}/"));
    tokio::select! {
        served = mailroom::web::serve(listener, router) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::fail(&mailroom::Error::io("serve", e)),
        },
        () = shutdown() => ExitCode::SUCCESS,
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
