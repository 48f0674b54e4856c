//! RFC 2047 encoded words, word by word, the way Python's `email` package writes them:
//! words that can stay as they are stay readable, and each run of neighbouring words that
//! needs encoding becomes encoded words (with the spaces between those words inside them,
//! since a decoder drops whitespace between adjacent encoded words).
//!
//! Every encoded word is at most 75 characters and ends on a UTF-8 character boundary, and
//! the words are sized for the line they will land on, so mail-builder's folding (at the
//! spaces between tokens) keeps every line within 78 columns.

use std::fmt::Write;

/// The longest encoded word RFC 2047 allows.
const MAX_WORD: usize = 75;
/// The line width words are sized for: 78 minus a margin for folding differences.
const LINE: usize = 76;
/// `=?utf-8?Q?` + `?=`.
const OVERHEAD: usize = 12;

/// Where the text goes: unstructured text (Subject) or a phrase (a display name), where
/// plain words must be RFC 5322 atoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    Text,
    Phrase,
}

/// One piece of a header value.
pub(crate) enum Segment<'a> {
    /// Written as it is (split at its spaces for folding).
    Plain(&'a str),
    /// Text to encode word by word in this context.
    Words(&'a str, Context),
    /// Text encoded whole, as one run of encoded words: every character (tabs, runs of
    /// spaces, leading and trailing spaces) comes back exactly. For text that needs
    /// encoding but does not [split cleanly](splits_cleanly).
    Encoded(&'a str),
}

/// Whether a decoder could take part of `text` for an RFC 2047 encoded word (`=?...?=`).
/// Decoders differ in how strictly they match one (Python's `email` finds them inside
/// quoted strings and in the middle of words), so any `=?` counts.
pub(crate) fn looks_encoded(text: &str) -> bool {
    text.contains("=?")
}

/// Whether `text` can be encoded word by word: words separated by single spaces, with no
/// leading or trailing space (other whitespace would not survive the round trip exactly).
pub(crate) fn splits_cleanly(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ")
        && !text.chars().any(|c| c.is_whitespace() && c != ' ')
}

/// Writes `segments` as one header value whose tokens are separated by single spaces,
/// starting at `column` (after `Name: `).
pub(crate) fn header_value(segments: &[Segment<'_>], column: usize) -> String {
    let mut out = Layout {
        text: String::new(),
        column,
        first: true,
    };
    for segment in segments {
        match segment {
            Segment::Plain(text) => {
                for token in text.split(' ') {
                    out.push(token);
                }
            }
            Segment::Words(text, context) => encode_words(&mut out, text, *context),
            Segment::Encoded(text) => encode_run(&mut out, text),
        }
    }
    out.text
}

/// The value being written, and where on its line the next token would start.
struct Layout {
    text: String,
    column: usize,
    first: bool,
}

impl Layout {
    /// Room for the next token on the current line (after its separating space).
    fn room(&self) -> usize {
        let used = self.column + usize::from(!self.first);
        LINE.saturating_sub(used)
    }

    fn push(&mut self, token: &str) {
        let width = token.chars().count();
        if self.first {
            self.column += width;
        } else if self.column + 1 + width <= LINE {
            self.column += 1 + width;
        } else {
            // The folder will break the line before this token.
            self.column = 1 + width;
        }
        if !self.first {
            self.text.push(' ');
        }
        self.text.push_str(token);
        self.first = false;
    }
}

fn encode_words(out: &mut Layout, text: &str, context: Context) {
    let words: Vec<&str> = text.split(' ').collect();
    let mut i = 0;
    while i < words.len() {
        if !needs_encoding(words[i], context) {
            out.push(words[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < words.len() && needs_encoding(words[i], context) {
            i += 1;
        }
        encode_run(out, &words[start..i].join(" "));
    }
}

/// Whether a word must be encoded: non-ASCII, something a decoder would take for an
/// encoded word, or (in a phrase) not an atom.
fn needs_encoding(word: &str, context: Context) -> bool {
    if looks_encoded(word) {
        return true;
    }
    match context {
        Context::Text => !word.is_ascii(),
        Context::Phrase => !word.bytes().all(is_atext),
    }
}

/// RFC 5322 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Characters a "Q" encoded word may carry as they are in any context (RFC 2047 §5(3)).
fn q_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!*+-/".contains(&b)
}

fn q_len(c: char) -> usize {
    match c {
        ' ' => 1,
        c if c.is_ascii() && q_literal(c as u8) => 1,
        c => 3 * c.len_utf8(),
    }
}

/// One run as encoded words, "Q" or "B", whichever is shorter in all (Python's rule).
fn encode_run(out: &mut Layout, run: &str) {
    let q: usize = run.chars().map(q_len).sum();
    let b = run.len().div_ceil(3) * 4;
    let use_b = b < q;
    let mut rest = run;
    while !rest.is_empty() {
        // Size the word for the rest of this line, or for a fresh line if little is left.
        let room = out.room();
        let budget = if room >= OVERHEAD + 12 {
            room.min(MAX_WORD)
        } else {
            MAX_WORD
        } - OVERHEAD;
        let take = if use_b {
            b_prefix(rest, budget)
        } else {
            q_prefix(rest, budget)
        };
        // At least one character per word, whatever the budget.
        let take = if take == 0 {
            rest.chars().next().map_or(rest.len(), char::len_utf8)
        } else {
            take
        };
        let (chunk, tail) = rest.split_at(take);
        out.push(&encoded_word(chunk, use_b));
        rest = tail;
    }
}

/// The byte length of the longest prefix of whole characters whose "Q" form fits `budget`.
fn q_prefix(text: &str, budget: usize) -> usize {
    let mut len = 0;
    for (i, c) in text.char_indices() {
        len += q_len(c);
        if len > budget {
            return i;
        }
    }
    text.len()
}

/// The byte length of the longest prefix of whole characters whose "B" form fits `budget`.
fn b_prefix(text: &str, budget: usize) -> usize {
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let next = i + c.len_utf8();
        if next.div_ceil(3) * 4 > budget {
            return end;
        }
        end = next;
    }
    end
}

fn encoded_word(chunk: &str, base64: bool) -> String {
    use base64::Engine;
    if base64 {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(chunk)
        )
    } else {
        let mut word = String::with_capacity(OVERHEAD + chunk.len() * 3);
        word.push_str("=?utf-8?Q?");
        for &b in chunk.as_bytes() {
            match b {
                b' ' => word.push('_'),
                b if q_literal(b) => word.push(b as char),
                b => {
                    let _ = write!(word, "={b:02X}");
                }
            }
        }
        word.push_str("?=");
        word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str, column: usize) -> String {
        header_value(&[Segment::Words(value, Context::Text)], column)
    }

    #[test]
    fn ascii_words_stay_readable_and_runs_share_one_word() {
        assert_eq!(
            text("Grüße aus Köln — bis bald", 9),
            "=?utf-8?B?R3LDvMOfZQ==?= aus =?utf-8?B?S8O2bG4g4oCU?= bis bald"
        );
    }

    #[test]
    fn phrases_encode_words_that_are_not_atoms() {
        assert_eq!(
            header_value(&[Segment::Words("Zoë (QA) Smith", Context::Phrase)], 6),
            "=?utf-8?B?Wm/DqyAoUUEp?= Smith"
        );
    }

    #[test]
    fn text_that_looks_encoded_is_encoded() {
        assert_eq!(text("é =?x?=", 9), "=?utf-8?B?w6kgPT94Pz0=?=");
        // "Q" where it is shorter: mostly ASCII in one run.
        assert_eq!(
            text("«quoted-text-and-more»", 9),
            "=?utf-8?Q?=C2=ABquoted-text-and-more=C2=BB?="
        );
    }

    #[test]
    fn text_encoded_whole_keeps_every_space() {
        assert_eq!(
            header_value(&[Segment::Encoded("  hello\tworld =? ")], 9),
            "=?utf-8?Q?__hello=09world_=3D=3F_?="
        );
    }

    #[test]
    fn long_runs_split_on_character_boundaries_within_the_limits() {
        let value = "日本語のテキスト".repeat(12);
        let out = text(&value, 9);
        let mut column = 9;
        for token in out.split(' ') {
            assert!(token.len() <= MAX_WORD, "{token}");
            assert!(token.starts_with("=?utf-8?B?"), "{token}");
            column = if column == 9 {
                column + token.len()
            } else {
                1 + token.len()
            };
            assert!(column <= 78, "{out}");
        }
    }
}
