//! Sets of element and attribute names the sanitiser asks about once per element or
//! attribute. The names the parser hands over are html5ever atoms, whose hash is computed
//! once when the atom is made (or read from the static table of known names), so a lookup
//! here costs one multiply and one probe; a linear `contains` over the lists costs a
//! comparison per entry (194 for MathML's names), which a profile of the pipeline showed
//! as the largest cost of the whole walk.

use std::collections::HashSet;

use html5ever::LocalName;
use rustc_hash::FxBuildHasher;

/// A fixed set of names, built once from a list.
#[derive(Debug)]
pub(super) struct NameSet(HashSet<LocalName, FxBuildHasher>);

impl NameSet {
    /// The set of `lists`' names (each name as it is written: atoms compare exactly).
    pub(super) fn of(lists: &[&[&str]]) -> Self {
        NameSet(
            lists
                .iter()
                .flat_map(|list| list.iter())
                .map(|name| LocalName::from(*name))
                .collect(),
        )
    }

    /// Whether `name` is in the set.
    pub(super) fn contains(&self, name: &LocalName) -> bool {
        self.0.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_its_names_in_their_case() {
        let set = NameSet::of(&[&["clipPath", "a"], &["mi"]]);
        for name in ["clipPath", "a", "mi"] {
            assert!(set.contains(&LocalName::from(name)), "{name}");
        }
        // atoms compare case-sensitively, as the lists' `contains` did
        for name in ["clippath", "A", "m", "mis", ""] {
            assert!(!set.contains(&LocalName::from(name)), "{name}");
        }
        // a name the static table does not know is found as well
        let odd = NameSet::of(&[&["x-not-a-known-name"]]);
        assert!(odd.contains(&LocalName::from("x-not-a-known-name")));
    }
}
