//! mbox files: messages one after another, each starting with a `From ` line.

/// The messages of an mbox file (mboxo or mboxrd): each starts at a line beginning with
/// `From ` at the start of the file or after an empty line; that separator line is
/// dropped, and one `>` is taken off quoted `>From ` lines. A file that does not start
/// with `From ` is one message, returned whole.
pub fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    if !bytes.starts_with(b"From ") {
        return vec![bytes.to_vec()];
    }
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if previous_blank && line.starts_with(b"From ") {
            if let Some(done) = current.take() {
                messages.push(trim_separator(done));
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = content.is_empty();
        if let Some(message) = current.as_mut() {
            let unquoted = match line.iter().position(|&b| b != b'>') {
                Some(i) if i > 0 && line[i..].starts_with(b"From ") => &line[1..],
                _ => line,
            };
            message.extend_from_slice(unquoted);
        }
    }
    if let Some(done) = current.take() {
        messages.push(trim_separator(done));
    }
    messages.retain(|m| !m.iter().all(u8::is_ascii_whitespace));
    messages
}

/// A message without the empty line that separated it from the next `From `.
fn trim_separator(mut message: Vec<u8>) -> Vec<u8> {
    if message.ends_with(b"\r\n\r\n") {
        message.truncate(message.len() - 2);
    } else if message.ends_with(b"\n\n") {
        message.truncate(message.len() - 1);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_from_lines_and_unquotes() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2026\nSubject: one\n\n>From the start\n\nFrom c@d Mon Jan  1 00:00:00 2026\nSubject: two\n\nbody\n";
        let messages = split_mbox(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], b"Subject: one\n\nFrom the start\n");
        assert_eq!(messages[1], b"Subject: two\n\nbody\n");
        assert_eq!(split_mbox(b"Subject: x\n\ny\n").len(), 1);
    }
}
