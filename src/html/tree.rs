//! One html5ever tree build of a body as an HTML fragment (the way ammonia parses it: in a
//! `<div>` context), into a flat arena the sanitiser walks without recursion, with the
//! nesting limit of [`super::nesting`] enforced while it is built.
//!
//! The limit is counted as in [`super::nesting`]: the fragment's root `<html>` is one level
//! and the `<body>` a document would put around the fragment another, so a body refused
//! there is refused here at the same depth, with the same error. Bounded work, as there:
//! the body is fed in chunks and feeding stops at the first element inserted deeper than
//! the limit; each insertion's depth is counted up the parent links (at most
//! [`MAX_DEPTH`] + 1 steps); a last linear pass over the finished tree catches elements
//! the adoption agency moved deeper without inserting anything. Nodes are doubly linked,
//! so every tree-builder operation is O(1) but `reparent_children` (O(children moved)).

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::sync::LazyLock;

use html5ever::interface::{ElementFlags, NodeOrText, QualName, QuirksMode, TreeSink};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{Attribute, ParseOpts, local_name, ns};

use super::nesting::{self, MAX_DEPTH};
use crate::error::Result;

/// Levels above the fragment's root element that a document has (its `<body>`).
const ABOVE_ROOT: usize = 1;

/// What a node is.
#[derive(Debug)]
pub(crate) enum Data {
    /// The document (node 0).
    Document,
    /// An element; `template` is the contents node of a `<template>` (not one of its
    /// children, as in html5ever's own DOM).
    Element {
        name: QualName,
        attrs: Vec<Attribute>,
        template: Option<usize>,
        integration_point: bool,
    },
    /// A text node.
    Text(StrTendril),
    /// A comment, doctype or processing instruction (the sanitiser drops all three).
    Other,
}

/// A node of the arena; links are indices.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) data: Data,
    pub(crate) parent: Option<usize>,
    pub(crate) first_child: Option<usize>,
    last_child: Option<usize>,
    prev: Option<usize>,
    pub(crate) next: Option<usize>,
}

/// A parsed fragment.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
}

impl Tree {
    /// The fragment's root `<html>` element, whose children are the body's content.
    pub(crate) fn root(&self) -> Option<usize> {
        self.nodes.first().and_then(|d| d.first_child)
    }
}

/// Parses `html` as ammonia does (a fragment in a `<div>` context), refusing a body whose
/// elements nest deeper than [`MAX_DEPTH`] with the error [`nesting::check`] gives.
pub(crate) fn parse(html: &str) -> Result<Tree> {
    let mut parser = html5ever::parse_fragment(
        Sink::for_body(html),
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        Vec::new(),
        false,
    );
    nesting::feed(&mut parser, html, |sink| sink.too_deep.get())?;
    let tree = parser.finish();
    let deepest = deepest(&tree);
    if deepest > MAX_DEPTH {
        return Err(nesting::too_deep(deepest, false));
    }
    Ok(tree)
}

/// The depth of the deepest element, template contents included: one iterative walk.
fn deepest(tree: &Tree) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(0usize, ABOVE_ROOT)];
    while let Some((at, depth)) = stack.pop() {
        let Some(node) = tree.nodes.get(at) else {
            continue;
        };
        let depth = match &node.data {
            Data::Element { template, .. } => {
                if let Some(contents) = template {
                    stack.push((*contents, depth + 1));
                }
                depth + 1
            }
            _ => depth,
        };
        deepest = deepest.max(depth);
        let mut child = node.first_child;
        while let Some(c) = child {
            stack.push((c, depth));
            child = tree.nodes.get(c).and_then(|n| n.next);
        }
    }
    deepest
}

/// What [`TreeSink::elem_name`] answers for a handle that is not an element.
static NO_NAME: LazyLock<QualName> = LazyLock::new(|| QualName::new(None, ns!(), local_name!("")));

/// The [`TreeSink`]: handles are indices into the arena.
struct Sink {
    nodes: RefCell<Vec<Node>>,
    /// Set at the first element inserted deeper than the limit, with its depth.
    too_deep: Cell<Option<usize>>,
}

/// Nodes reserved before a parse: one per [`BYTES_PER_NODE`] bytes of the body (about
/// what tag-dense email markup has), at most [`RESERVED_NODES_MAX`]; beyond that the arena
/// grows by doubling as it would anyway.
const BYTES_PER_NODE: usize = 8;
const RESERVED_NODES_MAX: usize = 4096;

impl Sink {
    /// An empty arena (the document node only), sized for `html`.
    fn for_body(html: &str) -> Self {
        let reserved = (html.len() / BYTES_PER_NODE).clamp(1, RESERVED_NODES_MAX);
        let sink = Sink {
            nodes: RefCell::new(Vec::with_capacity(reserved)),
            too_deep: Cell::new(None),
        };
        sink.new_node(Data::Document);
        sink
    }

    fn new_node(&self, data: Data) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            data,
            parent: None,
            first_child: None,
            last_child: None,
            prev: None,
            next: None,
        });
        nodes.len() - 1
    }

    /// Elements from `node` up (template contents count through their template), plus the
    /// levels above the root; stops counting past the limit.
    fn depth_of(&self, node: usize) -> usize {
        let nodes = self.nodes.borrow();
        let mut depth = ABOVE_ROOT;
        let mut at = Some(node);
        while let Some(i) = at {
            let Some(n) = nodes.get(i) else { break };
            if matches!(n.data, Data::Element { .. }) {
                depth += 1;
                if depth > MAX_DEPTH {
                    break;
                }
            }
            at = n.parent;
        }
        depth
    }

    fn note_depth(&self, node: usize) {
        if self.too_deep.get().is_none() {
            let depth = self.depth_of(node);
            if depth > MAX_DEPTH {
                self.too_deep.set(Some(depth));
            }
        }
    }

    fn detach(&self, node: usize) {
        let mut nodes = self.nodes.borrow_mut();
        let Some(n) = nodes.get_mut(node) else { return };
        let (parent, prev, next) = (n.parent.take(), n.prev.take(), n.next.take());
        let Some(parent) = parent else { return };
        match prev.and_then(|p| nodes.get_mut(p)) {
            Some(p) => p.next = next,
            None => {
                if let Some(p) = nodes.get_mut(parent) {
                    p.first_child = next;
                }
            }
        }
        match next.and_then(|n| nodes.get_mut(n)) {
            Some(n) => n.prev = prev,
            None => {
                if let Some(p) = nodes.get_mut(parent) {
                    p.last_child = prev;
                }
            }
        }
    }

    /// Links a detached `child` as the last child of `parent`.
    fn link_last(&self, parent: usize, child: usize) {
        {
            let mut nodes = self.nodes.borrow_mut();
            let last = nodes.get(parent).and_then(|p| p.last_child);
            if let Some(c) = nodes.get_mut(child) {
                c.parent = Some(parent);
                c.prev = last;
                c.next = None;
            }
            match last.and_then(|l| nodes.get_mut(l)) {
                Some(l) => l.next = Some(child),
                None => {
                    if let Some(p) = nodes.get_mut(parent) {
                        p.first_child = Some(child);
                    }
                }
            }
            if let Some(p) = nodes.get_mut(parent) {
                p.last_child = Some(child);
            }
        }
        self.note_depth(child);
    }

    /// Links a detached `child` just before `sibling` (which has a parent).
    fn link_before(&self, sibling: usize, child: usize) {
        {
            let mut nodes = self.nodes.borrow_mut();
            let Some((parent, prev)) = nodes
                .get(sibling)
                .and_then(|s| s.parent.map(|p| (p, s.prev)))
            else {
                return;
            };
            if let Some(c) = nodes.get_mut(child) {
                c.parent = Some(parent);
                c.prev = prev;
                c.next = Some(sibling);
            }
            if let Some(s) = nodes.get_mut(sibling) {
                s.prev = Some(child);
            }
            match prev.and_then(|p| nodes.get_mut(p)) {
                Some(p) => p.next = Some(child),
                None => {
                    if let Some(p) = nodes.get_mut(parent) {
                        p.first_child = Some(child);
                    }
                }
            }
        }
        self.note_depth(child);
    }

    /// Appends `text` to node `at` when it is a text node; `false` when it is not.
    fn merge_text(&self, at: Option<usize>, text: &StrTendril) -> bool {
        let mut nodes = self.nodes.borrow_mut();
        match at.and_then(|i| nodes.get_mut(i)) {
            Some(Node {
                data: Data::Text(existing),
                ..
            }) => {
                existing.push_tendril(text);
                true
            }
            _ => false,
        }
    }

    fn last_child(&self, node: usize) -> Option<usize> {
        self.nodes.borrow().get(node).and_then(|n| n.last_child)
    }

    fn prev_sibling(&self, node: usize) -> Option<usize> {
        self.nodes.borrow().get(node).and_then(|n| n.prev)
    }

    fn parent_of(&self, node: usize) -> Option<usize> {
        self.nodes.borrow().get(node).and_then(|n| n.parent)
    }
}

impl TreeSink for Sink {
    type Handle = usize;
    type Output = Tree;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Tree {
        Tree {
            nodes: self.nodes.into_inner(),
        }
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> usize {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a usize) -> Ref<'a, QualName> {
        Ref::map(self.nodes.borrow(), |nodes| match nodes.get(*target) {
            Some(Node {
                data: Data::Element { name, .. },
                ..
            }) => name,
            _ => &NO_NAME,
        })
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> usize {
        let element = self.new_node(Data::Element {
            name,
            attrs,
            template: None,
            integration_point: flags.mathml_annotation_xml_integration_point,
        });
        if flags.template {
            let contents = self.new_node(Data::Document);
            let mut nodes = self.nodes.borrow_mut();
            if let Some(c) = nodes.get_mut(contents) {
                // a parent link only, for depth: the contents are not a child
                c.parent = Some(element);
            }
            if let Some(Node {
                data: Data::Element { template, .. },
                ..
            }) = nodes.get_mut(element)
            {
                *template = Some(contents);
            }
        }
        element
    }

    fn create_comment(&self, _text: StrTendril) -> usize {
        self.new_node(Data::Other)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> usize {
        self.new_node(Data::Other)
    }

    fn append(&self, parent: &usize, child: NodeOrText<usize>) {
        match child {
            NodeOrText::AppendText(text) => {
                if !self.merge_text(self.last_child(*parent), &text) {
                    let node = self.new_node(Data::Text(text));
                    self.link_last(*parent, node);
                }
            }
            NodeOrText::AppendNode(node) => {
                self.detach(node);
                self.link_last(*parent, node);
            }
        }
    }

    fn append_based_on_parent_node(
        &self,
        element: &usize,
        prev_element: &usize,
        child: NodeOrText<usize>,
    ) {
        if self.parent_of(*element).is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {
        let node = self.new_node(Data::Other);
        self.link_last(0, node);
    }

    fn get_template_contents(&self, target: &usize) -> usize {
        match self.nodes.borrow().get(*target) {
            Some(Node {
                data:
                    Data::Element {
                        template: Some(contents),
                        ..
                    },
                ..
            }) => *contents,
            _ => *target,
        }
    }

    fn same_node(&self, x: &usize, y: &usize) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &usize, new_node: NodeOrText<usize>) {
        if self.parent_of(*sibling).is_none() {
            return;
        }
        match new_node {
            NodeOrText::AppendText(text) => {
                if !self.merge_text(self.prev_sibling(*sibling), &text) {
                    let node = self.new_node(Data::Text(text));
                    self.link_before(*sibling, node);
                }
            }
            NodeOrText::AppendNode(node) => {
                self.detach(node);
                self.link_before(*sibling, node);
            }
        }
    }

    fn add_attrs_if_missing(&self, target: &usize, attrs: Vec<Attribute>) {
        let mut nodes = self.nodes.borrow_mut();
        if let Some(Node {
            data: Data::Element {
                attrs: existing, ..
            },
            ..
        }) = nodes.get_mut(*target)
        {
            for attr in attrs {
                if !existing.iter().any(|e| e.name == attr.name) {
                    existing.push(attr);
                }
            }
        }
    }

    fn remove_from_parent(&self, target: &usize) {
        self.detach(*target);
    }

    fn reparent_children(&self, node: &usize, new_parent: &usize) {
        let mut child = self.nodes.borrow().get(*node).and_then(|n| n.first_child);
        while let Some(c) = child {
            child = self.nodes.borrow().get(c).and_then(|n| n.next);
            self.detach(c);
            self.link_last(*new_parent, c);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &usize) -> bool {
        matches!(
            self.nodes.borrow().get(*handle),
            Some(Node {
                data: Data::Element {
                    integration_point: true,
                    ..
                },
                ..
            })
        )
    }
}
