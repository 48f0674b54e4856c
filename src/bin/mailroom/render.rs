//! `mailroom render`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mailroom::{Error, RenderOptions};

use crate::input::{TemplatesArg, read_messages};

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
    #[command(flatten)]
    signing: SigningArgs,
    #[command(flatten)]
    templates: TemplatesArg,
    /// Print this template, or one block of it (`FILE#BLOCK`), instead of a message.
    #[arg(long, value_name = "NAME[#BLOCK]", conflicts_with = "file")]
    template: Option<String>,
    /// The JSON object `--template` renders with (default: empty).
    #[arg(long, value_name = "FILE.json", requires = "template")]
    context: Option<PathBuf>,
    /// Message JSON file (standard input when omitted).
    file: Option<PathBuf>,
}

pub(crate) fn run(args: RenderArgs) -> ExitCode {
    let templates = match args.templates.load() {
        Ok(t) => t,
        Err(e) => return crate::fail(&e),
    };
    if let Some(name) = &args.template {
        return match render_template(templates.as_ref(), name, args.context.as_deref()) {
            Ok(text) => {
                crate::print_line(text.trim_end_matches('\n'));
                ExitCode::SUCCESS
            }
            Err(e) => crate::fail(&e),
        };
    }
    let mut options = RenderOptions::new().smtputf8(args.smtputf8);
    if args.deterministic {
        options = options.seed(0);
    }
    if args.raw_html {
        options = options.raw_html();
    }
    options = match args.signing.sign(options) {
        Ok(options) => options,
        Err(e) => return crate::fail(&e),
    };
    let files: Vec<PathBuf> = args.file.iter().cloned().collect();
    let inputs = match read_messages(&files, templates.as_ref()) {
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

/// `--template NAME[#BLOCK] --context FILE`: one template or partial, as text.
fn render_template(
    templates: Option<&mailroom::templates::Templates>,
    name: &str,
    context: Option<&std::path::Path>,
) -> Result<String, Error> {
    let Some(templates) = templates else {
        return Err(Error::configuration(
            "templates",
            "no templates directory: give --templates DIR (or set MAILROOM_TEMPLATES, or run where ./templates is)",
        ));
    };
    let context: serde_json::Value = match context {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io(path.display().to_string(), e))?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Error::InvalidMessage {
                    field: "context".into(),
                    reason: format!("{} is not JSON: {e}", path.display()),
                })?;
            if !value.is_object() {
                return Err(Error::InvalidMessage {
                    field: "context".into(),
                    reason: format!("{} must hold a JSON object", path.display()),
                });
            }
            value
        }
    };
    templates.render(name, &context)
}

/// DKIM signing, shared by `render`, `send` and `worker`: the options are built once, and
/// every message the command renders is signed with them.
#[derive(Debug, Args)]
pub(crate) struct SigningArgs {
    /// DKIM private key (PEM, RSA or Ed25519); repeat with a selector and domain for each signature.
    #[arg(long = "dkim-key", value_name = "PEM")]
    dkim_keys: Vec<PathBuf>,
    /// DKIM selector for the key at the same position.
    #[arg(long = "dkim-selector", value_name = "S")]
    dkim_selectors: Vec<String>,
    /// DKIM signing domain (d=) for the key at the same position.
    #[arg(long = "dkim-domain", value_name = "D")]
    dkim_domains: Vec<String>,
}

impl SigningArgs {
    /// `options` with one signer per `--dkim-key` (see [`signers`](Self::signers)).
    pub(crate) fn sign(&self, mut options: RenderOptions) -> Result<RenderOptions, Error> {
        for signer in self.signers()? {
            options = options.signer(signer);
        }
        Ok(options)
    }

    /// One signer per `--dkim-key`, paired by position with `--dkim-selector` and
    /// `--dkim-domain`.
    pub(crate) fn signers(&self) -> Result<Vec<std::sync::Arc<mailroom::dkim::DkimSigner>>, Error> {
        let n = self.dkim_keys.len();
        if self.dkim_selectors.len() != n || self.dkim_domains.len() != n {
            return Err(Error::configuration(
                "dkim_key",
                format!(
                    "each --dkim-key needs its own --dkim-selector and --dkim-domain (got {n} keys, {} selectors, {} domains)",
                    self.dkim_selectors.len(),
                    self.dkim_domains.len()
                ),
            ));
        }
        self.dkim_keys
            .iter()
            .zip(&self.dkim_selectors)
            .zip(&self.dkim_domains)
            .map(|((key, selector), domain)| {
                mailroom::dkim::DkimSigner::from_pem_file(key, domain, selector)
                    .map(std::sync::Arc::new)
            })
            .collect()
    }
}
