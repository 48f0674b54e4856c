//! Removing active content with ammonia: an allow-list of tags and attributes (no script,
//! iframe, object, embed, form, base, meta, link or SVG; no `on*` attribute), URLs limited
//! to inert schemes, `data:` only for images, and CSS cleaned in `style` attributes here
//! (and in `<style>` elements by the rewriting pass, see [`super::images`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use ammonia::Builder;

use super::css::clean_declarations;

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut b = Builder::default();
    b.add_tags(["style", "font", "section", "main"])
        .rm_clean_content_tags(["style"])
        .add_clean_content_tags(["title"])
        .add_generic_attributes([
            "style",
            "class",
            "align",
            "valign",
            "width",
            "height",
            "bgcolor",
            "dir",
            "border",
            "cellpadding",
            "cellspacing",
        ])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes("style", ["media", "type"])
        .add_tag_attributes("td", ["background", "colspan", "rowspan", "nowrap"])
        .add_tag_attributes("table", ["background", "summary"])
        .url_schemes(
            ["http", "https", "mailto", "tel", "cid", "data"]
                .into_iter()
                .collect(),
        )
        .strip_comments(true)
        .attribute_filter(filter_attribute);
    b
});

thread_local! {
    /// `style` values cleaned during the current [`sanitize`] call, each distinct value
    /// once (inlined CSS repeats the same declarations on many elements); emptied when the
    /// call ends.
    static CLEANED_STYLES: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// [`clean_declarations`], remembered for the current [`sanitize`] call.
fn clean_style(value: &str) -> String {
    CLEANED_STYLES.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return clean_declarations(value);
        };
        if let Some(cleaned) = memo.get(value) {
            return cleaned.clone();
        }
        let cleaned = clean_declarations(value);
        memo.insert(value.to_owned(), cleaned.clone());
        cleaned
    })
}

fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match attribute {
        "style" => {
            let cleaned = clean_style(value);
            (!cleaned.trim().is_empty()).then(|| {
                if cleaned == value {
                    Cow::Borrowed(value)
                } else {
                    Cow::Owned(cleaned)
                }
            })
        }
        // ammonia checks the schemes of the attributes it knows as URLs; this covers the
        // rest (`background`...) and allows `data:` only for images where an image is loaded
        "href" | "src" | "background" | "cite" | "srcset" | "poster" | "longdesc" | "action"
        | "formaction" => {
            let squeezed: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .flat_map(char::to_lowercase)
                .collect();
            let scheme = squeezed
                .split_once(':')
                .map(|(s, _)| s)
                .filter(|s| !s.contains(['/', '?', '#']));
            let allowed = match scheme {
                None => true,
                Some("http" | "https" | "mailto" | "tel" | "cid") => true,
                Some("data") => {
                    matches!(element, "img" | "td" | "table") && squeezed.starts_with("data:image/")
                }
                Some(_) => false,
            };
            allowed.then_some(Cow::Borrowed(value))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// The body with active content removed, as an HTML fragment.
pub(crate) fn sanitize(html: &str) -> String {
    let clean = SANITIZER.clean(html).to_string();
    CLEANED_STYLES.with(|memo| {
        if let Ok(mut memo) = memo.try_borrow_mut() {
            // dropped, not cleared: one large body does not keep its table alive
            drop(std::mem::take(&mut *memo));
        }
    });
    clean
}
