//! Inlining CSS (css-inline): `<style>` rules, and any fetched stylesheets, move into
//! `style` attributes; `@media` rules stay in a `<style>` block.

/// `body` with its CSS inlined, or `None` when there is nothing to inline (no `<style>`
/// element and no `extra_css`) or css-inline cannot parse the CSS.
pub(crate) fn inline(body: &str, extra_css: Option<&str>) -> Option<String> {
    if !applies(body, extra_css) {
        return None;
    }
    let inliner = css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .keep_style_tags(false)
        .keep_link_tags(false)
        .load_remote_stylesheets(false)
        .extra_css(extra_css.map(|c| std::borrow::Cow::Owned(c.to_owned())))
        .build();
    // css-inline gives up on CSS it cannot parse (say, a style attribute holding
    // markup); browsers skip such declarations, so the body keeps its `<style>`
    // sheets un-inlined instead of failing: the sanitiser and the style cleaning
    // that follow treat them like any other, and the policy hashes what remains.
    match inliner.inline(body) {
        Ok(inlined) => Some(inlined),
        Err(e) => {
            tracing::warn!(error = %e, "the HTML body's CSS cannot be inlined; keeping its style sheets as they are");
            None
        }
    }
}

/// Whether [`inline`] has anything to inline: a `<style>` element or `extra_css`.
pub(crate) fn applies(body: &str, extra_css: Option<&str>) -> bool {
    extra_css.is_some() || super::images::contains_ignore_ascii_case(body, "<style")
}
