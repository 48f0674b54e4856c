//! Reading message JSON from files or standard input.

use std::io::Read;
use std::path::PathBuf;

use mailroom::{Email, Error};

/// One message read from a named file or from standard input.
pub(crate) struct Input {
    pub(crate) source: String,
    pub(crate) email: Result<Email, Error>,
}

/// Reads each file (or standard input when there are none) as message JSON.
pub(crate) fn read_messages(files: &[PathBuf]) -> Result<Vec<Input>, Error> {
    if files.is_empty() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::io("standard input", e))?;
        return Ok(vec![Input {
            source: "standard input".into(),
            email: Email::from_json(&text),
        }]);
    }
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io(path.display().to_string(), e))?;
            Ok(Input {
                source: path.display().to_string(),
                email: Email::from_json(&text),
            })
        })
        .collect()
}
