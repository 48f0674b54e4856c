//! `mailroom send`: deliver now.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mailroom::{RenderOptions, transport};

use crate::input::{TemplatesArg, read_messages};
use crate::render::SigningArgs;

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Transport URL (smtp://, smtps://, ses://, mailgun://, postmark://, sendgrid://, resend://, file:DIR, console:, memory:, dummy:).
    #[arg(
        long,
        env = "MAILROOM_TRANSPORT",
        value_name = "TRANSPORT_URL",
        hide_env_values = true
    )]
    via: String,
    #[command(flatten)]
    signing: SigningArgs,
    #[command(flatten)]
    templates: TemplatesArg,
    /// Message JSON files (standard input when none).
    files: Vec<PathBuf>,
}

/// Sends every message; prints one JSON line per delivered message. Exits with the status
/// of the first failure (69 permanent, 75 transient or a recipient deferred, 65 invalid
/// input), 0 when all went.
pub(crate) async fn run(args: SendArgs) -> ExitCode {
    let transport = match transport::from_url(&args.via) {
        Ok(t) => t,
        Err(e) => return crate::fail(&e),
    };
    let options = match args.signing.sign(RenderOptions::new()) {
        Ok(options) => options,
        Err(e) => return crate::fail(&e),
    };
    let templates = match args.templates.load() {
        Ok(t) => t,
        Err(e) => return crate::fail(&e),
    };
    let inputs = match read_messages(&args.files, templates.as_ref()) {
        Ok(inputs) => inputs,
        Err(e) => return crate::fail(&e),
    };
    let mut status = ExitCode::SUCCESS;
    let mut failed = false;
    for input in inputs {
        let result = match input.email {
            Ok(email) => match email.prepare(&options) {
                Ok(rendered) => transport.send_rendered(&rendered).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(delivery) => {
                crate::print_line(&serde_json::to_string(&delivery).unwrap_or_default());
                // A recipient the server deferred has not got the message: worth retrying.
                if !delivery.deferred.is_empty() {
                    let who: Vec<&str> = delivery
                        .deferred
                        .iter()
                        .map(|d| d.recipient.as_str())
                        .collect();
                    eprintln!(
                        "mailroom: {}: deferred by the server, not delivered yet: {}",
                        input.source,
                        who.join(", ")
                    );
                    if !failed {
                        status = ExitCode::from(crate::exit::TEMPFAIL);
                        failed = true;
                    }
                }
            }
            Err(e) => {
                let code = crate::fail_in(&input.source, &e);
                if !failed {
                    status = code;
                    failed = true;
                }
            }
        }
    }
    status
}
