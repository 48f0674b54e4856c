//! Reading message JSON from files or standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use mailroom::templates::{TEMPLATES_ENV, Templates};
use mailroom::{Email, Error};

/// `--templates DIR`: where message JSON's `template` names are found.
#[derive(Debug, Args)]
pub(crate) struct TemplatesArg {
    /// Templates directory for messages that name a `template` (default: MAILROOM_TEMPLATES,
    /// else ./templates when it exists).
    #[arg(long = "templates", env = TEMPLATES_ENV, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl TemplatesArg {
    /// The directory given, else `./templates` when there is one.
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        match &self.dir {
            Some(dir) => Some(dir.clone()),
            None if Path::new("templates").is_dir() => Some(PathBuf::from("templates")),
            None => None,
        }
    }

    /// The templates: the directory given (which must exist), else `./templates` when
    /// there is one, else none (a message naming a template is then an error saying so).
    pub(crate) fn load(&self) -> Result<Option<Templates>, Error> {
        match &self.dir {
            Some(dir) => Templates::from_dir(dir).map(Some),
            None if Path::new("templates").is_dir() => Templates::from_dir("templates").map(Some),
            None => Ok(None),
        }
    }
}

/// One message read from a named file or from standard input.
pub(crate) struct Input {
    pub(crate) source: String,
    pub(crate) email: Result<Email, Error>,
}

/// Reads each file (or standard input when there are none) as message JSON.
///
/// A file that cannot be read is an I/O error (exit 74); bytes that are not UTF-8 are
/// invalid input (exit 65), like any other JSON that does not parse.
/// A message naming a `template` is filled from `templates`.
pub(crate) fn read_messages(
    files: &[PathBuf],
    templates: Option<&Templates>,
) -> Result<Vec<Input>, Error> {
    if files.is_empty() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("standard input", e))?;
        return Ok(vec![parse("standard input".into(), bytes, templates)]);
    }
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| Error::io(display(path), e))?;
            Ok(parse(display(path), bytes, templates))
        })
        .collect()
}

/// Reads every message and stops at the first one that is not valid, naming its source:
/// for commands that must act on all messages or on none.
pub(crate) fn read_valid_messages(
    files: &[PathBuf],
    templates: Option<&Templates>,
) -> Result<Vec<Email>, (String, Error)> {
    read_messages(files, templates)
        .map_err(|e| (String::new(), e))?
        .into_iter()
        .map(|input| input.email.map_err(|e| (input.source, e)))
        .collect()
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn parse(source: String, bytes: Vec<u8>, templates: Option<&Templates>) -> Input {
    let email = String::from_utf8(bytes)
        .map_err(|e| Error::InvalidMessage {
            field: "json".into(),
            reason: format!(
                "is not UTF-8 text (invalid byte at offset {}); message JSON must be UTF-8",
                e.utf8_error().valid_up_to()
            ),
        })
        .and_then(|text| match templates {
            Some(templates) => templates.email_from_json(&text),
            None => Email::from_json(&text),
        });
    Input { source, email }
}
