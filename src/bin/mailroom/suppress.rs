//! `mailroom suppress add|remove|list` and `mailroom bounces ingest`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mailroom::Error;
use mailroom::deliverability::{
    Reason, Scope, SoftBouncePolicy, SuppressionStore, parse_report, split_mbox,
};

use crate::queue::QueueArg;

#[derive(Debug, Args)]
pub(crate) struct SuppressArgs {
    #[command(subcommand)]
    command: SuppressCommand,
}

#[derive(Debug, Subcommand)]
enum SuppressCommand {
    /// Suppress addresses (prints each and whether it is new).
    Add(ChangeArgs),
    /// Lift suppressions (prints each and whether there was one).
    Remove(ChangeArgs),
    /// Print the suppression list, oldest first.
    List(ListArgs),
}

#[derive(Debug, Args)]
struct ChangeArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// Why: unsubscribe, hard-bounce, soft-bounces, complaint or manual.
    #[arg(long, default_value = "manual")]
    reason: String,
    /// The list id the suppression is for (every list when omitted).
    #[arg(long, value_name = "LIST")]
    scope: Option<String>,
    /// Where it came from, kept with it.
    #[arg(long, default_value = "mailroom suppress")]
    source: String,
    /// The addresses.
    #[arg(required = true)]
    addresses: Vec<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// Print `{"suppressions": [{"address", "scope", "reason", "source", "created_at"}…]}`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BouncesArgs {
    #[command(subcommand)]
    command: BouncesCommand,
}

#[derive(Debug, Subcommand)]
enum BouncesCommand {
    /// Read DSNs, ARF complaints and mbox files; suppress hard bounces and complaints.
    Ingest(IngestArgs),
}

#[derive(Debug, Args)]
struct IngestArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// Soft bounces within --soft-window that suppress an address.
    #[arg(long, default_value_t = 3, value_name = "N")]
    soft_threshold: u32,
    /// The soft-bounce window, in days.
    #[arg(long, default_value_t = 7, value_name = "DAYS")]
    soft_window: i64,
    /// Messages (.eml) or mbox files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub(crate) async fn suppress(args: SuppressArgs) -> ExitCode {
    match args.command {
        SuppressCommand::Add(a) => change(a, true).await,
        SuppressCommand::Remove(a) => change(a, false).await,
        SuppressCommand::List(a) => list(a).await,
    }
}

async fn change(args: ChangeArgs, add: bool) -> ExitCode {
    let reason: Reason = match args.reason.parse() {
        Ok(r) => r,
        Err(e) => return crate::fail(&e),
    };
    // Every address is checked before anything is stored.
    for (i, address) in args.addresses.iter().enumerate() {
        if let Err(e) = mailroom::deliverability::normalize_address(address) {
            return crate::fail(&rename(e, &format!("ADDRESS[{i}]")));
        }
    }
    let store = match SuppressionStore::connect(&args.queue.url).await {
        Ok(s) => s,
        Err(e) => return crate::fail(&e),
    };
    let scope = Scope::from_option(args.scope.as_deref());
    let mut out = String::new();
    for address in &args.addresses {
        let changed = if add {
            store.add(address, &scope, reason, &args.source).await
        } else {
            store.remove(address, &scope).await
        };
        let normalised = mailroom::deliverability::normalize_address(address)
            .unwrap_or_else(|_| address.clone());
        match changed {
            Ok(changed) => {
                let what = match (add, changed) {
                    (true, true) => "added",
                    (true, false) => "already suppressed",
                    (false, true) => "removed",
                    (false, false) => "not suppressed",
                };
                out.push_str(&format!("{normalised} {scope} {what}\n"));
            }
            Err(e) => {
                crate::print_text(&out);
                return crate::fail(&e);
            }
        }
    }
    crate::print_text(&out);
    ExitCode::SUCCESS
}

fn rename(e: Error, field: &str) -> Error {
    match e {
        Error::InvalidAddress { reason, .. } => Error::InvalidAddress {
            field: field.to_owned(),
            reason,
        },
        other => other,
    }
}

async fn list(args: ListArgs) -> ExitCode {
    let store = match SuppressionStore::connect(&args.queue.url).await {
        Ok(s) => s,
        Err(e) => return crate::fail(&e),
    };
    let list = match store.list().await {
        Ok(l) => l,
        Err(e) => return crate::fail(&e),
    };
    if args.json {
        crate::print_line(&serde_json::json!({ "suppressions": list }).to_string());
    } else {
        let mut out = String::new();
        for s in &list {
            out.push_str(&format!(
                "{} {} {} {} {}\n",
                s.address,
                s.scope,
                s.reason,
                s.created_at.to_rfc3339(),
                s.source
            ));
        }
        crate::print_text(&out);
    }
    ExitCode::SUCCESS
}

pub(crate) async fn bounces(args: BouncesArgs) -> ExitCode {
    let BouncesCommand::Ingest(args) = args.command;
    if args.soft_threshold == 0 || args.soft_window <= 0 {
        return crate::fail(&Error::configuration(
            "soft_threshold",
            "--soft-threshold and --soft-window must be at least 1",
        ));
    }
    let policy = SoftBouncePolicy {
        threshold: args.soft_threshold,
        window: chrono::Duration::days(args.soft_window),
    };
    // Every file is read and parsed before anything is stored: a bad file records nothing.
    let mut parsed = Vec::new();
    for path in &args.files {
        let source = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return crate::fail(&Error::io(&source, e)),
        };
        for (i, message) in split_mbox(&bytes).iter().enumerate() {
            match parse_report(message) {
                Ok(bounces) => parsed.push((format!("{source}#{}", i + 1), bounces)),
                Err(e) => return crate::fail_in(&format!("{source} (message {})", i + 1), &e),
            }
        }
    }
    let store = match SuppressionStore::connect(&args.queue.url).await {
        Ok(s) => s,
        Err(e) => return crate::fail(&e),
    };
    for (source, bounces) in parsed {
        for bounce in bounces {
            match store.record_bounce(&bounce, &source, policy).await {
                Ok(recorded) => {
                    tracing::debug!(?recorded, %source, "bounce recorded");
                    crate::print_line(&bounce.to_string());
                }
                Err(e) => return crate::fail(&e),
            }
        }
    }
    ExitCode::SUCCESS
}
