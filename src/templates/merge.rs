//! Mail merge: one templated message JSON, many recipients.
//!
//! Each row (a CSV record or a JSON Lines object) gives `email` (required), `name`
//! (optional) and further fields; the fields join the message's `context` (the row wins)
//! and `email`/`name` become its `To`. Each message gets a Message-ID derived from the
//! campaign and the recipient, so the `send_mail` idempotency key (the Message-ID) makes a
//! second run of the same merge enqueue nothing and return the same task ids.

use std::path::Path;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Templates;
use crate::error::{Error, Result};
use crate::message::Email;

/// One row of a merge file, with the line it starts on (the CSV header is line 1).
#[derive(Debug, Clone, PartialEq)]
pub struct MergeRow {
    /// The line the row starts on, for errors.
    pub line: u64,
    /// The row's fields: `email`, `name` and the rest.
    pub fields: Map<String, Value>,
}

/// Reads a merge file: `.csv` (a header row, then one record a row; every value a string)
/// or `.jsonl` (one JSON object a line; blank lines skipped). A row that cannot be read is
/// an error naming its line; nothing is returned then.
pub fn read_rows(path: &Path) -> Result<Vec<MergeRow>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(&shown, e))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => csv_rows(&shown, &text),
        Some("jsonl" | "ndjson") => jsonl_rows(&shown, &text),
        _ => Err(Error::invalid(
            "merge",
            format!("{shown}: give a .csv or .jsonl file"),
        )),
    }
}

fn csv_rows(shown: &str, text: &str) -> Result<Vec<MergeRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| Error::invalid("merge", format!("{shown} line 1: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            Error::invalid("merge", format!("{shown} line {line}: {e}"))
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let fields = header
            .iter()
            .zip(record.iter())
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        rows.push(MergeRow { line, fields });
    }
    Ok(rows)
}

fn jsonl_rows(shown: &str, text: &str) -> Result<Vec<MergeRow>> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(fields)) => rows.push(MergeRow {
                line: number,
                fields,
            }),
            Ok(_) => {
                return Err(Error::invalid(
                    "merge",
                    format!("{shown} line {number}: each line must be a JSON object"),
                ));
            }
            Err(e) => {
                return Err(Error::invalid(
                    "merge",
                    format!("{shown} line {number}: not JSON: {e}"),
                ));
            }
        }
    }
    Ok(rows)
}

/// The campaign a merge belongs to when none is named: derived from the message JSON, so
/// the same file merged again is the same campaign.
pub fn default_campaign(message_json: &str) -> String {
    let digest = Sha256::digest(message_json.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl Templates {
    /// Fills the templated `message_json` once per row: one `Email` (or the error that
    /// row met, naming its line) per row, in order. Each message's Message-ID is derived
    /// from `campaign` and the recipient's address (without case), so merging again gives
    /// the very same messages.
    pub fn merge(
        &self,
        message_json: &str,
        rows: &[MergeRow],
        campaign: &str,
    ) -> Result<Vec<(u64, Result<Email>)>> {
        let base = crate::message::json::read_value(message_json)?;
        let Value::Object(base) = base else {
            return Err(Error::invalid(
                "json",
                "must be a JSON object (one message)",
            ));
        };
        for (field, why) in [
            ("to", "each row's `email` and `name` give it"),
            (
                "message_id",
                "each row's message gets its own, from the campaign and the recipient",
            ),
        ] {
            if base.get(field).is_some_and(|v| !v.is_null()) {
                return Err(Error::invalid(
                    field,
                    format!("must be absent in a merge message: {why}"),
                ));
            }
        }
        let context = match base.get("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(Error::invalid("context", "must be a JSON object")),
        };
        let domain = match base.get("from") {
            Some(from) if !from.is_null() => {
                crate::message::json::address(from.clone(), "from")?.ascii_domain()?
            }
            _ => return Err(Error::invalid("from", "is required")),
        };
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.line,
                    self.merge_row(&base, &context, row, campaign, &domain),
                )
            })
            .collect())
    }

    fn merge_row(
        &self,
        base: &Map<String, Value>,
        context: &Map<String, Value>,
        row: &MergeRow,
        campaign: &str,
        domain: &str,
    ) -> Result<Email> {
        let at = |e: Error| line_error(row.line, e);
        let email = match row.fields.get("email") {
            Some(Value::String(e)) if !e.trim().is_empty() => e.trim().to_owned(),
            _ => return Err(at(Error::invalid("email", "is required in every row"))),
        };
        let mut to = Map::from_iter([("email".to_owned(), Value::String(email.clone()))]);
        if let Some(Value::String(name)) = row.fields.get("name")
            && !name.trim().is_empty()
        {
            to.insert("name".to_owned(), Value::String(name.clone()));
        }
        let mut merged = context.clone();
        for (k, v) in &row.fields {
            merged.insert(k.clone(), v.clone());
        }
        let mut message = base.clone();
        message.insert("to".to_owned(), Value::Array(vec![Value::Object(to)]));
        message.insert("context".to_owned(), Value::Object(merged));
        {
            let mut hasher = Sha256::new();
            hasher.update(campaign.as_bytes());
            hasher.update([0]);
            hasher.update(email.to_lowercase().as_bytes());
            let id: String = hasher.finalize()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            message.insert(
                "message_id".to_owned(),
                Value::String(format!("<merge.{id}@{domain}>")),
            );
        }
        crate::message::json::from_value_filled(Value::Object(message), &|name, ctx| {
            self.filled(name, ctx)
        })
        .map_err(at)
    }
}

/// `error` with the row's line in front of its reason.
fn line_error(line: u64, error: Error) -> Error {
    match error {
        Error::InvalidMessage { field, reason } => Error::InvalidMessage {
            field,
            reason: format!("(merge row at line {line}) {reason}"),
        },
        Error::InvalidAddress { field, reason } => Error::InvalidAddress {
            field,
            reason: format!("(merge row at line {line}) {reason}"),
        },
        Error::HeaderInjection { field, reason } => Error::HeaderInjection {
            field,
            reason: format!("(merge row at line {line}) {reason}"),
        },
        other => other,
    }
}
