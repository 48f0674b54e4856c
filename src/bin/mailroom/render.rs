//! `mailroom render`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mailroom::{Error, RenderOptions};

use crate::input::read_messages;

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// Derive Date, Message-ID and boundaries from the content (same input, same bytes).
    #[arg(long)]
    deterministic: bool,
    /// Write RFC 6532 UTF-8 headers instead of encoded words and punycode.
    #[arg(long)]
    smtputf8: bool,
    /// Write the HTML body as given (skip the CSP-safe HTML pipeline).
    #[arg(long)]
    raw_html: bool,
    /// DKIM private key (PEM, RSA or Ed25519); repeat with a selector and domain for each signature.
    #[arg(long = "dkim-key", value_name = "PEM")]
    dkim_keys: Vec<PathBuf>,
    /// DKIM selector for the key at the same position.
    #[arg(long = "dkim-selector", value_name = "S")]
    dkim_selectors: Vec<String>,
    /// DKIM signing domain (d=) for the key at the same position.
    #[arg(long = "dkim-domain", value_name = "D")]
    dkim_domains: Vec<String>,
    /// Message JSON file (standard input when omitted).
    file: Option<PathBuf>,
}

pub(crate) fn run(args: RenderArgs) -> ExitCode {
    let mut options = RenderOptions::new().smtputf8(args.smtputf8);
    if args.deterministic {
        options = options.seed(0);
    }
    if args.raw_html {
        options = options.raw_html();
    }
    match dkim_signers(&args) {
        Ok(signers) => {
            for signer in signers {
                options = options.signer(signer);
            }
        }
        Err(e) => return crate::fail(&e),
    }
    let files: Vec<PathBuf> = args.file.iter().cloned().collect();
    let inputs = match read_messages(&files) {
        Ok(inputs) => inputs,
        Err(e) => return crate::fail(&e),
    };
    let mut stdout = std::io::stdout().lock();
    for input in inputs {
        let bytes = match input.email.and_then(|email| email.render(&options)) {
            Ok(bytes) => bytes,
            Err(e) => return crate::fail_in(&input.source, &e),
        };
        if let Err(e) = stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
            return crate::fail(&Error::io("standard output", e));
        }
    }
    ExitCode::SUCCESS
}

/// One signer per `--dkim-key`, paired by position with `--dkim-selector` and `--dkim-domain`.
fn dkim_signers(args: &RenderArgs) -> Result<Vec<std::sync::Arc<dyn mailroom::Signer>>, Error> {
    let n = args.dkim_keys.len();
    if args.dkim_selectors.len() != n || args.dkim_domains.len() != n {
        return Err(Error::configuration(
            "dkim_key",
            format!(
                "each --dkim-key needs its own --dkim-selector and --dkim-domain (got {n} keys, {} selectors, {} domains)",
                args.dkim_selectors.len(),
                args.dkim_domains.len()
            ),
        ));
    }
    let mut signers: Vec<std::sync::Arc<dyn mailroom::Signer>> = Vec::with_capacity(n);
    for ((key, selector), domain) in args
        .dkim_keys
        .iter()
        .zip(&args.dkim_selectors)
        .zip(&args.dkim_domains)
    {
        signers.push(std::sync::Arc::new(
            mailroom::dkim::DkimSigner::from_pem_file(key, domain, selector)?,
        ));
    }
    Ok(signers)
}
