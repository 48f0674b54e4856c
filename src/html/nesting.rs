//! The nesting limit: how deep the body's elements nest, measured on the tree a browser
//! builds (html5ever's tree builder, the parser css-inline and ammonia use too), before any
//! of the steps that walk that tree sees the body.
//!
//! Why: css-inline serialises its tree recursively (a few thousand unclosed `<span>`s
//! overflow a 2 MiB thread stack and abort the process), and html5ever's tree builder checks
//! element scopes by walking the stack of open elements, so a deep stack makes every later
//! tag slower (200,000 nested `<div>`s take minutes). Browsers stop nesting at
//! [`MAX_DEPTH`] levels (Blink's and WebKit's parsers attach deeper elements to the element
//! at that depth instead); a body that nests deeper is refused here with
//! [`Error::InvalidMessage`], since it cannot render as written anyway.
//!
//! Bounded work: the body is fed to the tree builder in chunks, and feeding stops at the
//! first element inserted deeper than the limit, so the tree builder never holds more than
//! the limit plus one chunk's worth of open elements. Each insertion's depth is counted up
//! the (exact) parent links, at most [`MAX_DEPTH`] steps; a last linear pass over the
//! finished tree catches elements that the adoption agency moved deeper without inserting
//! anything.

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};

use html5ever::interface::{ElementFlags, NodeOrText, QualName, QuirksMode, TreeSink};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{Attribute, ParseOpts, local_name, ns};

use crate::error::{Error, Result};

/// The deepest an element may nest, counting `<html>` and `<body>` (as browsers do: Blink's
/// `kMaximumHTMLParserDOMTreeDepth` and WebKit's `maximumHTMLParserDOMTreeDepth` are 512).
pub const MAX_DEPTH: usize = 512;

/// How much of the body is fed to the tree builder between two looks at the depth.
const CHUNK: usize = 4096;

/// `Ok` when no element of `html` nests deeper than [`MAX_DEPTH`]; otherwise an
/// [`Error::InvalidMessage`] for field `html` giving the limit and the depth found.
pub(crate) fn check(html: &str) -> Result<()> {
    let mut parser = html5ever::parse_document(Depths::default(), ParseOpts::default());
    feed(&mut parser, html, |sink| sink.too_deep.get())?;
    let deepest = parser.finish();
    if deepest > MAX_DEPTH {
        return Err(too_deep(deepest, false));
    }
    Ok(())
}

/// The error for a body nesting `found` levels deep (`stopped`: at least that deep, the
/// parse stopped there).
/// Feeds `html` to `parser` in [`CHUNK`]s and stops, with the nesting error, at the first
/// chunk after which `too_deep_at` reports an element inserted deeper than the limit, so
/// the tree builder never holds more than the limit plus one chunk's open elements.
pub(crate) fn feed<Sink: TreeSink>(
    parser: &mut html5ever::driver::Parser<Sink>,
    html: &str,
    too_deep_at: impl Fn(&Sink) -> Option<usize>,
) -> Result<()> {
    let mut rest = html;
    while !rest.is_empty() {
        let mut at = CHUNK.min(rest.len());
        while !rest.is_char_boundary(at) {
            at += 1;
        }
        let (chunk, tail) = rest.split_at(at);
        parser.process(StrTendril::from(chunk));
        rest = tail;
        if let Some(found) = too_deep_at(&parser.tokenizer.sink.sink) {
            return Err(too_deep(found, true));
        }
    }
    Ok(())
}

pub(crate) fn too_deep(found: usize, stopped: bool) -> Error {
    let found = if stopped {
        format!("at least {found}")
    } else {
        found.to_string()
    };
    Error::invalid(
        "html",
        format!(
            "elements nest {found} levels deep, more than the limit of {MAX_DEPTH}: \
             close elements (such as `<div>` and `<span>`) instead of leaving them open"
        ),
    )
}

/// A node of the tree being built: only what depth needs.
struct Node {
    parent: Option<usize>,
    /// Elements count as a level; the document and template contents do not.
    element: bool,
    /// Nodes this one was the parent of (some may have moved on since: check `parent`).
    children: Vec<usize>,
}

/// A [`TreeSink`] that keeps the shape of the tree and nothing else. Handles are indices.
struct Depths {
    nodes: RefCell<Vec<Node>>,
    names: RefCell<Vec<QualName>>,
    /// Elements that are `<template>` → their contents node.
    templates: RefCell<Vec<(usize, usize)>>,
    integration_points: RefCell<Vec<usize>>,
    /// Set at the first element inserted deeper than the limit, with its depth.
    too_deep: Cell<Option<usize>>,
}

impl Default for Depths {
    fn default() -> Self {
        let sink = Depths {
            nodes: RefCell::new(Vec::new()),
            names: RefCell::new(Vec::new()),
            templates: RefCell::new(Vec::new()),
            integration_points: RefCell::new(Vec::new()),
            too_deep: Cell::new(None),
        };
        sink.new_node(false, QualName::new(None, ns!(), local_name!("")));
        sink
    }
}

impl Depths {
    fn new_node(&self, element: bool, name: QualName) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            parent: None,
            element,
            children: Vec::new(),
        });
        self.names.borrow_mut().push(name);
        nodes.len() - 1
    }

    /// Makes `child` a child of `parent` and records its depth when it is too deep.
    fn attach(&self, parent: usize, child: usize) {
        {
            let mut nodes = self.nodes.borrow_mut();
            let Some(node) = nodes.get_mut(child) else {
                return;
            };
            node.parent = Some(parent);
            if let Some(p) = nodes.get_mut(parent) {
                p.children.push(child);
            }
        }
        if self.too_deep.get().is_none() {
            let depth = self.depth_of(child);
            if depth > MAX_DEPTH {
                self.too_deep.set(Some(depth));
            }
        }
    }

    /// The depth of `node`, counted up its parents, but never more than one past the limit.
    fn depth_of(&self, node: usize) -> usize {
        let nodes = self.nodes.borrow();
        let mut depth = 0;
        let mut at = Some(node);
        while let Some(n) = at.and_then(|i| nodes.get(i)) {
            depth += usize::from(n.element);
            if depth > MAX_DEPTH {
                break;
            }
            at = n.parent;
        }
        depth
    }

    fn parent_of(&self, node: usize) -> Option<usize> {
        self.nodes.borrow().get(node).and_then(|n| n.parent)
    }

    fn detach(&self, node: usize) {
        if let Some(n) = self.nodes.borrow_mut().get_mut(node) {
            n.parent = None;
        }
    }

    fn insert(&self, parent: usize, child: NodeOrText<usize>) {
        if let NodeOrText::AppendNode(child) = child {
            self.detach(child);
            self.attach(parent, child);
        }
    }
}

impl TreeSink for Depths {
    type Handle = usize;
    /// The depth of the deepest element of the finished tree.
    type Output = usize;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> usize {
        // every node's depth, each computed once: walk up to the first node already known
        let nodes = self.nodes.into_inner();
        let mut depth: Vec<Option<usize>> = vec![None; nodes.len()];
        let mut path = Vec::new();
        let mut deepest = 0;
        for start in 0..nodes.len() {
            let mut at = Some(start);
            let mut base = 0;
            while let Some(i) = at {
                if let Some(known) = depth.get(i).copied().flatten() {
                    base = known;
                    break;
                }
                // a cycle cannot happen in a tree builder's tree; stop rather than loop
                if path.len() > nodes.len() {
                    break;
                }
                path.push(i);
                at = nodes.get(i).and_then(|n| n.parent);
            }
            while let Some(i) = path.pop() {
                base += usize::from(nodes.get(i).is_some_and(|n| n.element));
                if let Some(slot) = depth.get_mut(i) {
                    *slot = Some(base);
                }
            }
            deepest = deepest.max(base);
        }
        deepest
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> usize {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a usize) -> Ref<'a, QualName> {
        Ref::map(self.names.borrow(), |names| {
            names.get(*target).unwrap_or(&names[0])
        })
    }

    fn create_element(&self, name: QualName, _: Vec<Attribute>, flags: ElementFlags) -> usize {
        let element = self.new_node(true, name);
        if flags.template {
            let contents = self.new_node(false, QualName::new(None, ns!(), local_name!("")));
            self.attach(element, contents);
            self.templates.borrow_mut().push((element, contents));
        }
        if flags.mathml_annotation_xml_integration_point {
            self.integration_points.borrow_mut().push(element);
        }
        element
    }

    fn create_comment(&self, _text: StrTendril) -> usize {
        self.new_node(false, QualName::new(None, ns!(), local_name!("")))
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> usize {
        self.new_node(false, QualName::new(None, ns!(), local_name!("")))
    }

    fn append(&self, parent: &usize, child: NodeOrText<usize>) {
        self.insert(*parent, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &usize,
        prev_element: &usize,
        child: NodeOrText<usize>,
    ) {
        let parent = self.parent_of(*element).unwrap_or(*prev_element);
        self.insert(parent, child);
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {}

    fn get_template_contents(&self, target: &usize) -> usize {
        self.templates
            .borrow()
            .iter()
            .find(|(t, _)| t == target)
            .map_or(*target, |(_, contents)| *contents)
    }

    fn same_node(&self, x: &usize, y: &usize) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &usize, new_node: NodeOrText<usize>) {
        if let Some(parent) = self.parent_of(*sibling) {
            self.insert(parent, new_node);
        }
    }

    fn add_attrs_if_missing(&self, _target: &usize, _attrs: Vec<Attribute>) {}

    fn remove_from_parent(&self, target: &usize) {
        self.detach(*target);
    }

    fn reparent_children(&self, node: &usize, new_parent: &usize) {
        let moved: Vec<usize> = {
            let mut nodes = self.nodes.borrow_mut();
            let Some(old) = nodes.get_mut(*node) else {
                return;
            };
            let candidates = std::mem::take(&mut old.children);
            candidates
                .into_iter()
                .filter(|&c| nodes.get(c).is_some_and(|n| n.parent == Some(*node)))
                .collect()
        };
        for child in moved {
            self.attach(*new_parent, child);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &usize) -> bool {
        self.integration_points.borrow().contains(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(html: &str) -> usize {
        let mut parser = html5ever::parse_document(Depths::default(), ParseOpts::default());
        parser.process(StrTendril::from(html));
        parser.finish()
    }

    #[test]
    fn counts_as_the_tree_builder_nests() {
        // html > body > p: a fragment gets its html and body
        assert_eq!(depth("<p>x"), 3);
        assert_eq!(depth("<div><div><div>x</div></div></div>"), 5);
        // a <p> closes the open <p>, an <li> the open <li>, a <td> the open <td>
        assert_eq!(depth(&"<p>x".repeat(50)), 3);
        assert_eq!(depth(&format!("<ul>{}</ul>", "<li>x".repeat(50))), 4);
        assert_eq!(
            depth(&format!("<table>{}</table>", "<tr><td>x".repeat(50))),
            6
        );
        // unclosed inline elements inside a <p> still nest, and survive the next <p>
        assert_eq!(depth(&format!("<p>{}x", "<span>".repeat(10))), 13);
        assert_eq!(depth(&format!("{}<p>x", "<span>".repeat(10))), 13);
        // template contents count under their template
        assert_eq!(depth("<template><div><div>x</div></div></template>"), 5);
        // the adoption agency moves content: <b><p>x</b>y puts x and y under p > (a new) b
        assert_eq!(depth("<b><p>x</b>y"), 4);
        assert_eq!(depth("<b><div><div><span>x</b>y"), 6);
    }

    #[test]
    fn refuses_one_level_past_the_limit() {
        let at = |n: usize| format!("{}x", "<div>".repeat(n));
        assert!(check(&at(MAX_DEPTH - 2)).is_ok());
        let err = check(&at(MAX_DEPTH - 1)).unwrap_err();
        assert_eq!(err.field(), Some("html"));
        assert!(err.to_string().contains("513"), "{err}");
    }
}
