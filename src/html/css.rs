//! Removing active content from CSS: `expression()`, `javascript:`/`vbscript:` URLs,
//! `behavior`/`-moz-binding`, `@import`, and `url()` with any scheme but `http(s):`,
//! `data:image/…` and `cid:`.
//!
//! Hand-written rather than a full CSS parser: it only needs to split declarations (aware of
//! quotes, comments and parentheses) and judge each one after undoing the obfuscations CSS
//! allows (comments, backslash escapes, case, whitespace). What it keeps is byte for byte
//! what it was given.

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

/// A stylesheet with every unsafe declaration and every `@import` removed.
pub(crate) fn clean_stylesheet(css: &str) -> String {
    let chars: Vec<char> = css.chars().collect();
    let mut out = String::with_capacity(css.len());
    let mut opens: Vec<usize> = Vec::new();
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
            '@' if starts_with_ci(&chars[i..], "@import") => {
                // drop the statement up to its `;`
                let mut j = i;
                while j < chars.len() && chars[j] != ';' {
                    j = match chars[j] {
                        '"' | '\'' => find_string_end(&chars, j),
                        _ => j + 1,
                    };
                }
                i = j + 1;
                continue;
            }
            '{' => {
                out.push(c);
                opens.push(out.len());
            }
            '}' => {
                if let Some(start) = opens.pop() {
                    let block = out[start..].to_owned();
                    if !block.contains('{') {
                        out.truncate(start);
                        out.push_str(&clean_declarations(&block));
                    }
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

fn starts_with_ci(chars: &[char], word: &str) -> bool {
    chars.len() >= word.len()
        && chars
            .iter()
            .zip(word.chars())
            .all(|(a, b)| a.eq_ignore_ascii_case(&b))
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

/// Comments removed, escapes decoded, lowercased, whitespace and quotes dropped.
fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'*') => i = find_comment_end(&chars, i + 2),
            '\\' => {
                let hex: String = chars[i + 1..]
                    .iter()
                    .take(6)
                    .take_while(|c| c.is_ascii_hexdigit())
                    .collect();
                if hex.is_empty() {
                    if let Some(&c) = chars.get(i + 1)
                        && c != '\n'
                    {
                        out.extend(c.to_lowercase());
                    }
                    i += 2;
                } else {
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('\u{fffd}');
                    out.extend(c.to_lowercase());
                    i += 1 + hex.len();
                    if chars.get(i).is_some_and(|c| c.is_whitespace()) {
                        i += 1;
                    }
                }
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

fn is_safe_declaration(declaration: &str) -> bool {
    let norm = normalize(declaration);
    if [
        "expression(",
        "javascript:",
        "vbscript:",
        "livescript:",
        "@import",
        "behavior:",
        "-moz-binding",
        "behaviour:",
    ]
    .iter()
    .any(|bad| norm.contains(bad))
    {
        return false;
    }
    // every url(...) (and image-set/src(...) strings) must point somewhere inert
    let mut rest = norm.as_str();
    while let Some(at) = rest.find("url(").or_else(|| rest.find("src(")) {
        let target = &rest[at + 4..];
        let ok = target.starts_with("data:image/")
            || target.starts_with("cid:")
            || target.starts_with("https:")
            || target.starts_with("http:")
            || !target.split(')').next().unwrap_or_default().contains(':');
        if !ok {
            return false;
        }
        rest = target;
    }
    true
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
}
