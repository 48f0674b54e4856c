//! Reading message JSON from files or standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

use mailroom::{Email, Error};

/// One message read from a named file or from standard input.
pub(crate) struct Input {
    pub(crate) source: String,
    pub(crate) email: Result<Email, Error>,
}

/// Reads each file (or standard input when there are none) as message JSON.
///
/// A file that cannot be read is an I/O error (exit 74); bytes that are not UTF-8 are
/// invalid input (exit 65), like any other JSON that does not parse.
pub(crate) fn read_messages(files: &[PathBuf]) -> Result<Vec<Input>, Error> {
    if files.is_empty() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("standard input", e))?;
        return Ok(vec![parse("standard input".into(), bytes)]);
    }
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| Error::io(display(path), e))?;
            Ok(parse(display(path), bytes))
        })
        .collect()
}

/// Reads every message and stops at the first one that is not valid, naming its source:
/// for commands that must act on all messages or on none.
pub(crate) fn read_valid_messages(files: &[PathBuf]) -> Result<Vec<Email>, (String, Error)> {
    read_messages(files)
        .map_err(|e| (String::new(), e))?
        .into_iter()
        .map(|input| input.email.map_err(|e| (input.source, e)))
        .collect()
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn parse(source: String, bytes: Vec<u8>) -> Input {
    let email = String::from_utf8(bytes)
        .map_err(|e| Error::InvalidMessage {
            field: "json".into(),
            reason: format!(
                "is not UTF-8 text (invalid byte at offset {}); message JSON must be UTF-8",
                e.utf8_error().valid_up_to()
            ),
        })
        .and_then(|text| Email::from_json(&text));
    Input { source, email }
}
