//! `FILE#BLOCK` as a template of its own, for `{% include "FILE#BLOCK" %}`.
//!
//! minijinja renders one block of a template from Rust (`State::render_block`), but an
//! `include` names a template. So the loader answers `FILE#BLOCK` with the block's body
//! cut out of FILE's source, behind FILE's own `import` and `from` tags (so its macros
//! still resolve). A block FILE does not define itself is looked for in the file it
//! `extends`, as inheritance would find it. Written by hand because no crate does this;
//! it reads only tag boundaries, linearly.

/// How many `extends` steps are followed before giving up (a cycle is a template error).
const MAX_PARENTS: usize = 16;

/// The source of `block` in `file` (or in the files it extends), with `file`'s imports;
/// `None` when `file` does not exist. A missing block is an error naming it.
pub(super) fn block_source(
    file_source: &dyn Fn(&str) -> Result<Option<String>, minijinja::Error>,
    file: &str,
    block: &str,
) -> Result<Option<String>, minijinja::Error> {
    let mut name = file.to_owned();
    let mut imports = String::new();
    for _ in 0..MAX_PARENTS {
        let Some(source) = file_source(&name)? else {
            if name == file {
                return Ok(None);
            }
            return Err(not_found(&format!("{name} (extended by {file})")));
        };
        let tags = tags(&source);
        for tag in &tags {
            if matches!(
                tag.words.first().map(String::as_str),
                Some("import" | "from")
            ) {
                imports.push_str(&source[tag.start..tag.end]);
            }
        }
        if let Some(body) = find_block(&source, &tags, block) {
            return Ok(Some(format!("{imports}{body}")));
        }
        match tags
            .iter()
            .find(|t| t.words.first().is_some_and(|w| w == "extends"))
            .and_then(|t| t.words.get(1))
            .and_then(|w| unquote(w))
        {
            Some(parent) => name = parent,
            None => {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::UnknownBlock,
                    format!("{file} has no block `{block}`"),
                ));
            }
        }
    }
    Err(minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!("{file} extends more than {MAX_PARENTS} files (a cycle?)"),
    ))
}

fn not_found(what: &str) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::TemplateNotFound, what.to_owned())
}

/// One `{% ... %}` tag: where it starts and ends, and its words.
#[derive(Debug)]
struct Tag {
    start: usize,
    end: usize,
    words: Vec<String>,
}

/// Every statement tag of `source`, skipping comments and `raw` sections.
fn tags(source: &str) -> Vec<Tag> {
    let mut found = Vec::new();
    let mut at = 0;
    let mut raw = false;
    while let Some(offset) = source[at..].find(['{']) {
        let start = at + offset;
        let rest = &source[start..];
        if rest.starts_with("{#") {
            at = rest.find("#}").map_or(source.len(), |e| start + e + 2);
            continue;
        }
        if !rest.starts_with("{%") {
            at = start + 1;
            continue;
        }
        let Some(close) = rest.find("%}") else {
            break;
        };
        let end = start + close + 2;
        let inner = source[start + 2..end - 2]
            .trim_matches(['-', '+', '~'])
            .trim();
        let words: Vec<String> = inner.split_whitespace().map(str::to_owned).collect();
        let first = words.first().map(String::as_str);
        if raw {
            if first == Some("endraw") {
                raw = false;
            }
        } else if first == Some("raw") {
            raw = true;
        } else {
            found.push(Tag { start, end, words });
        }
        at = end;
    }
    found
}

/// The body of `{% block NAME %}…{% endblock %}` in `source`, nested blocks included.
fn find_block<'a>(source: &'a str, tags: &[Tag], name: &str) -> Option<&'a str> {
    let open = tags.iter().position(|t| {
        t.words.first().is_some_and(|w| w == "block") && t.words.get(1).is_some_and(|w| w == name)
    })?;
    let mut depth = 0usize;
    for tag in &tags[open + 1..] {
        match tag.words.first().map(String::as_str) {
            Some("block") => depth += 1,
            Some("endblock") if depth == 0 => return Some(&source[tags[open].end..tag.start]),
            Some("endblock") => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `"x"` or `'x'` as `x`.
fn unquote(word: &str) -> Option<String> {
    let inner = word
        .strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .or_else(|| word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')))?;
    Some(inner.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn files(name: &str) -> Result<Option<String>, minijinja::Error> {
        Ok(match name {
            "layout.html" => Some(
                "{% import \"m.html\" as m %}<main>{% block body %}{% endblock %}</main>\
                 {# {% block footer %}not this{% endblock %} #}\
                 {% block footer %}<p>{% block thanks %}Thanks{% endblock %}</p>{% endblock %}"
                    .into(),
            ),
            "child.html" => {
                Some("{% extends 'layout.html' %}{% block body %}hi{% endblock %}".into())
            }
            "loop.html" => Some("{% extends 'loop.html' %}".into()),
            _ => None,
        })
    }

    #[test]
    fn a_block_with_its_nested_blocks_and_the_files_imports() {
        assert_eq!(
            block_source(&files, "layout.html", "footer")
                .unwrap()
                .unwrap(),
            "{% import \"m.html\" as m %}<p>{% block thanks %}Thanks{% endblock %}</p>"
        );
    }

    #[test]
    fn an_inherited_block_is_found_in_the_parent() {
        let body = block_source(&files, "child.html", "footer")
            .unwrap()
            .unwrap();
        assert!(
            body.ends_with("<p>{% block thanks %}Thanks{% endblock %}</p>"),
            "{body}"
        );
        assert_eq!(
            block_source(&files, "child.html", "body").unwrap().unwrap(),
            "hi"
        );
    }

    #[test]
    fn missing_files_blocks_and_cycles() {
        assert!(block_source(&files, "nope.html", "x").unwrap().is_none());
        let err = block_source(&files, "layout.html", "nope").unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::UnknownBlock);
        assert!(block_source(&files, "loop.html", "x").is_err());
    }
}
