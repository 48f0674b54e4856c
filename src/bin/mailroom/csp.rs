//! `mailroom csp`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mailroom::html::{self, HtmlOptions};

use crate::input::{TemplatesArg, read_messages};

#[derive(Debug, Args)]
pub(crate) struct CspArgs {
    #[command(flatten)]
    templates: TemplatesArg,
    /// Message JSON file (standard input when omitted). Local images in the HTML are read
    /// relative to the file's directory.
    file: Option<PathBuf>,
}

/// Prints the Content-Security-Policy under which the message's HTML body, as mailroom
/// sends it, renders with nothing blocked that it needs.
pub(crate) fn run(args: CspArgs) -> ExitCode {
    let files: Vec<PathBuf> = args.file.iter().cloned().collect();
    let templates = match args.templates.load() {
        Ok(t) => t,
        Err(e) => return crate::fail(&e),
    };
    let inputs = match read_messages(&files, templates.as_ref()) {
        Ok(inputs) => inputs,
        Err(e) => return crate::fail(&e),
    };
    let mut options = HtmlOptions::default();
    if let Some(dir) = args.file.as_ref().and_then(|f| f.parent()) {
        options = options.base_dir(if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        });
    }
    for input in inputs {
        match input
            .email
            .and_then(|email| html::process(&email, &options))
        {
            Ok(email) => crate::print_line(&html::policy(&email).to_string()),
            Err(e) => return crate::fail_in(&input.source, &e),
        }
    }
    ExitCode::SUCCESS
}
