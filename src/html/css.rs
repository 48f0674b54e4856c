//! Removing active content from CSS: `expression()`, `javascript:`/`vbscript:` URLs,
//! `behavior`/`-moz-binding`, `@import` and `@font-face` rules, and resource URLs (`url()`,
//! `image-set()` strings...) with any scheme but `http(s):`, `data:image/…` and `cid:`.
//!
//! Hand-written rather than a full CSS parser: it only needs to split declarations (aware of
//! quotes, comments and parentheses) and judge each one after undoing the obfuscations CSS
//! allows (comments, backslash escapes, case, whitespace). Names and URLs are read as a CSS
//! tokenizer reads them (CSS Syntax Level 3 §4.3, escapes decoded as in §4.3.7), so
//! `@\69mport` is `@import` and `\75 rl(…)` is `url(…)`; [`resource_urls`] is also what the
//! computed policy reads, so what is kept and what is allowed are decided on the same text.
//! What it keeps is byte for byte what it was given.

/// The functions whose string arguments a browser loads as images (besides `url()`).
const LOADERS: [&str; 8] = [
    "url",
    "src",
    "image-set",
    "-webkit-image-set",
    "image",
    "-webkit-image",
    "cross-fade",
    "-webkit-cross-fade",
];

/// At-rules removed whole: `@import` loads a style sheet, `@font-face` a font, and the
/// computed policy allows neither.
const REMOVED_AT_RULES: [&str; 2] = ["import", "font-face"];

/// The safe declarations of a `style` attribute (or of one rule block), unchanged, joined
/// with `;`. Returns the input itself when nothing was removed.
pub(crate) fn clean_declarations(declarations: &str) -> String {
    let parts = split_top_level(declarations, ';');
    if parts.iter().all(|d| is_safe_declaration(d)) {
        return declarations.to_owned();
    }
    let kept: Vec<&str> = parts
        .into_iter()
        .filter(|d| is_safe_declaration(d))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    kept.join("; ")
}

/// A stylesheet with every unsafe declaration and every `@import` and `@font-face` rule
/// removed.
pub(crate) fn clean_stylesheet(css: &str) -> String {
    let chars: Vec<char> = css.chars().collect();
    let mut out = String::with_capacity(css.len());
    // open blocks: where each starts in `out`, and whether it holds a block of its own
    let mut opens: Vec<(usize, bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = find_comment_end(&chars, i + 2);
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            '"' | '\'' => {
                let end = find_string_end(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            '\\' => {
                out.extend(chars.get(i..(i + 2).min(chars.len())).unwrap_or_default());
                i += 2;
                continue;
            }
            '@' => {
                let (name, end) = ident(&chars, i + 1);
                if REMOVED_AT_RULES.contains(&name.to_ascii_lowercase().as_str()) {
                    i = at_rule_end(&chars, end);
                } else {
                    out.extend(&chars[i..end.max(i + 1)]);
                    i = end.max(i + 1);
                }
                continue;
            }
            '{' => {
                if let Some(parent) = opens.last_mut() {
                    parent.1 = true;
                }
                out.push(c);
                opens.push((out.len(), false));
            }
            '}' => {
                // each character is in one innermost block, so the cleaning is linear
                if let Some((start, false)) = opens.pop() {
                    let block = out.split_off(start);
                    out.push_str(&clean_declarations(&block));
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    // A removal can never let the text close its <style> element early.
    out.replace("</", "<\\/")
}

/// Where the at-rule whose prelude starts at `from` ends: after its `;`, or after the block
/// that closes it.
fn at_rule_end(chars: &[char], from: usize) -> usize {
    let mut depth = 0usize;
    let mut j = from;
    while j < chars.len() {
        j = match chars[j] {
            '"' | '\'' => find_string_end(chars, j),
            '/' if chars.get(j + 1) == Some(&'*') => find_comment_end(chars, j + 2),
            '\\' => j + 2,
            ';' if depth == 0 => return j + 1,
            '{' => {
                depth += 1;
                j + 1
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
                j + 1
            }
            _ => j + 1,
        };
    }
    chars.len()
}

fn find_comment_end(chars: &[char], from: usize) -> usize {
    (from..chars.len().saturating_sub(1))
        .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
        .map_or(chars.len(), |j| j + 2)
}

fn find_string_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            c if c == quote || c == '\n' => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

/// Splits on `sep` outside quotes, comments and parentheses.
fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = (depth - 1).max(0),
            (None, c) if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The escape whose backslash is at `chars[i]` (CSS Syntax §4.3.7): the character it stands
/// for (`None` for an escaped line break, which stands for nothing) and where it ends.
fn escape(chars: &[char], i: usize) -> (Option<char>, usize) {
    let hex_len = chars
        .get(i + 1..)
        .unwrap_or_default()
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_hexdigit())
        .count();
    if hex_len == 0 {
        return match chars.get(i + 1) {
            None => (Some('\u{fffd}'), i + 1),
            Some('\n' | '\r' | '\x0c') => (None, i + 2),
            Some(&c) => (Some(if c == '\0' { '\u{fffd}' } else { c }), i + 2),
        };
    }
    let hex: String = chars[i + 1..i + 1 + hex_len].iter().collect();
    let c = u32::from_str_radix(&hex, 16)
        .ok()
        .filter(|&v| v != 0)
        .and_then(char::from_u32)
        .unwrap_or('\u{fffd}');
    let mut end = i + 1 + hex_len;
    match (chars.get(end), chars.get(end + 1)) {
        (Some('\r'), Some('\n')) => end += 2,
        (Some(' ' | '\t' | '\n' | '\r' | '\x0c'), _) => end += 1,
        _ => {}
    }
    (Some(c), end)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii()
}

/// The name (escapes decoded) that starts at `from`, and where it ends; empty when none does.
fn ident(chars: &[char], from: usize) -> (String, usize) {
    let mut name = String::new();
    let mut i = from;
    while let Some(&c) = chars.get(i) {
        if c == '\\' && !matches!(chars.get(i + 1), Some('\n' | '\r' | '\x0c')) {
            let (decoded, end) = escape(chars, i);
            name.extend(decoded);
            i = end;
        } else if is_name_char(c) {
            name.push(c);
            i += 1;
        } else {
            break;
        }
    }
    (name, i)
}

/// A quoted string starting at `chars[start]`: its value (escapes decoded) and its end.
fn string_token(chars: &[char], start: usize) -> (String, usize) {
    let quote = chars[start];
    let mut value = String::new();
    let mut j = start + 1;
    while let Some(&c) = chars.get(j) {
        match c {
            '\\' => {
                let (decoded, end) = escape(chars, j);
                value.extend(decoded);
                j = end;
            }
            '\n' => return (value, j),
            c if c == quote => return (value, j + 1),
            c => {
                value.push(c);
                j += 1;
            }
        }
    }
    (value, j)
}

/// An unquoted `url(` token's value (escapes decoded) from `from`, and where it ends.
fn url_token(chars: &[char], from: usize) -> (String, usize) {
    let mut value = String::new();
    let mut j = from;
    while let Some(&c) = chars.get(j) {
        match c {
            ')' => return (value.trim().to_owned(), j + 1),
            '\\' => {
                let (decoded, end) = escape(chars, j);
                value.extend(decoded);
                j = end;
            }
            c => {
                value.push(c);
                j += 1;
            }
        }
    }
    (value.trim().to_owned(), j)
}

/// Every URL a browser would load from this CSS text, decoded as a browser decodes it:
/// `url(…)` (unquoted or quoted, however its name is escaped) and the strings given to
/// `image-set()`, `src()`, `image()` and `cross-fade()`.
pub(crate) fn resource_urls(css: &str) -> Vec<String> {
    let chars: Vec<char> = css.chars().collect();
    let mut urls = Vec::new();
    // the functions (or plain parentheses, as "") we are inside
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '/' if chars.get(i + 1) == Some(&'*') => i = find_comment_end(&chars, i + 2),
            '"' | '\'' => {
                let (value, end) = string_token(&chars, i);
                if open.last().is_some_and(|f| LOADERS.contains(&f.as_str())) {
                    urls.push(value.trim().to_owned());
                }
                i = end;
            }
            '(' => {
                open.push(String::new());
                i += 1;
            }
            ')' => {
                open.pop();
                i += 1;
            }
            c if c == '\\' || is_name_char(c) => {
                let (name, end) = ident(&chars, i);
                let end = end.max(i + 1);
                if chars.get(end) != Some(&'(') {
                    i = end;
                    continue;
                }
                let name = name.to_ascii_lowercase();
                let after = end + 1;
                let first = chars[after..].iter().position(|c| !c.is_whitespace());
                let quoted = first.is_some_and(|p| matches!(chars[after + p], '"' | '\''));
                if name == "url" && !quoted {
                    let (value, url_end) = url_token(&chars, after);
                    urls.push(value);
                    i = url_end;
                } else {
                    open.push(name);
                    i = after;
                }
            }
            _ => i += 1,
        }
    }
    urls.retain(|u| !u.is_empty());
    urls
}

/// Comments removed, escapes decoded, lowercased, whitespace and quotes dropped.
fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'*') => i = find_comment_end(&chars, i + 2),
            '\\' => {
                let (decoded, end) = escape(&chars, i);
                out.extend(decoded.into_iter().flat_map(char::to_lowercase));
                i = end;
            }
            c if c.is_whitespace() || c == '"' || c == '\'' || c == '\0' => i += 1,
            c => {
                out.extend(c.to_lowercase());
                i += 1;
            }
        }
    }
    out
}

/// A resource URL that loads nothing active: `http(s):`, `data:image/…`, `cid:`, or no
/// scheme at all.
fn is_inert_target(url: &str) -> bool {
    let t: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect();
    t.starts_with("data:image/")
        || t.starts_with("cid:")
        || t.starts_with("https:")
        || t.starts_with("http:")
        || !t
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
            .contains(':')
}

fn is_safe_declaration(declaration: &str) -> bool {
    let norm = normalize(declaration);
    if [
        "expression(",
        "javascript:",
        "vbscript:",
        "livescript:",
        "@import",
        "@font-face",
        "behavior:",
        "-moz-binding",
        "behaviour:",
    ]
    .iter()
    .any(|bad| norm.contains(bad))
    {
        return false;
    }
    resource_urls(declaration)
        .iter()
        .all(|u| is_inert_target(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations() {
        assert_eq!(
            clean_declarations("color: red; width: 1px"),
            "color: red; width: 1px"
        );
        assert_eq!(
            clean_declarations("color: red; width: expression(alert(1))"),
            "color: red"
        );
        assert_eq!(
            clean_declarations("background: url(javascript:alert(1)); color: blue"),
            "color: blue"
        );
        assert_eq!(clean_declarations("background:url('jav\\61script:x')"), "");
        assert_eq!(clean_declarations("width: ex/**/pression(alert(1))"), "");
        assert_eq!(clean_declarations("width: EXPRE\\53SION(alert(1))"), "");
        assert_eq!(
            clean_declarations("background: url(\"data:image/png;base64,AAAA\"); color: red"),
            "background: url(\"data:image/png;base64,AAAA\"); color: red"
        );
        assert_eq!(clean_declarations("background: url(data:text/html,x)"), "");
        assert_eq!(clean_declarations("behavior: url(x.htc)"), "");
        assert_eq!(clean_declarations("-moz-binding: url(x.xml#xss)"), "");
        assert_eq!(
            clean_declarations("background-image: url(cid:logo)"),
            "background-image: url(cid:logo)"
        );
        assert_eq!(
            clean_declarations("font-family: '\\5FAE\\8F6F\\96C5\\9ED1'"),
            "font-family: '\\5FAE\\8F6F\\96C5\\9ED1'"
        );
    }

    #[test]
    fn stylesheets() {
        assert_eq!(clean_stylesheet("p { color: red }"), "p { color: red }");
        assert_eq!(
            clean_stylesheet("@import url(evil.css); p{color:red}"),
            " p{color:red}"
        );
        assert_eq!(
            clean_stylesheet(
                "@media (max-width: 600px) { p { width: expression(1); color: red } }"
            ),
            "@media (max-width: 600px) { p {color: red} }"
        );
        assert_eq!(clean_stylesheet("a{background:url(javascript:x)}"), "a{}");
        assert_eq!(
            clean_stylesheet("a{content:'}'; color: red}"),
            "a{content:'}'; color: red}"
        );
        assert_eq!(clean_stylesheet("<@import x;/style>"), "<\\/style>");
    }

    #[test]
    fn escapes_are_decoded_before_deciding() {
        // CSS Syntax §4.3.7: 1-6 hex digits and one optional whitespace, or any character
        assert_eq!(
            clean_stylesheet("@\\69mport url(x.css); p{color:red}"),
            " p{color:red}"
        );
        assert_eq!(clean_stylesheet("@\\69 mport url(x.css);p{}"), "p{}");
        assert_eq!(clean_stylesheet("@\\000069mport 'x.css';p{}"), "p{}");
        assert_eq!(clean_stylesheet("@im\\port 'x.css';p{}"), "p{}");
        assert_eq!(clean_stylesheet("@IMPORT 'x.css';p{}"), "p{}");
        assert_eq!(
            clean_stylesheet(
                "@font-face { font-family: x; src: url(https://f.example/x.woff) } p{}"
            ),
            " p{}"
        );
        assert_eq!(clean_stylesheet("@font-f\\61 ce{src:url(x)}p{}"), "p{}");
        assert_eq!(
            clean_stylesheet("@media print{p{color:red}}"),
            "@media print{p{color:red}}"
        );
        assert_eq!(clean_declarations("background: \\75 rl(javascript:x)"), "");
        assert_eq!(
            clean_declarations("background: u\\72l(java\\73 cript:x)"),
            ""
        );
        assert_eq!(
            clean_declarations("background-image: image-set('javascript:x' 1x); color: red"),
            "color: red"
        );
        assert_eq!(
            clean_declarations("background-image: -webkit-image-set(\"data:text/html,x\" 1x)"),
            ""
        );
    }

    #[test]
    fn resource_urls_are_read_as_a_browser_reads_them() {
        assert_eq!(
            resource_urls(
                "a: url(a.png); b: URL( 'b.png' ); c: \\75 rl(c\\2e png); d: u\\rl(\"d.png\")"
            ),
            ["a.png", "b.png", "c.png", "d.png"]
        );
        assert_eq!(
            resource_urls(
                "background: image-set('x.png' 1x, url(y.png) 2x, \"z.png\" type('image/png'))"
            ),
            ["x.png", "y.png", "z.png"]
        );
        assert_eq!(
            resource_urls("content: 'not a url'; font: 12px 'url(x)'"),
            Vec::<String>::new()
        );
        assert_eq!(
            resource_urls("a: url(https://e.example/a\\)b.png)"),
            ["https://e.example/a)b.png"]
        );
    }

    #[test]
    fn many_sources_stay_linear() {
        // `src(` used to send every later `url(` search back over the whole text
        let decl = format!("a:{}", "src(x)".repeat(20_000));
        assert_eq!(clean_declarations(&decl), decl);
        let nested = format!("{}{}", "{".repeat(20_000), "}".repeat(20_000));
        assert_eq!(clean_stylesheet(&nested), nested);
    }
}
