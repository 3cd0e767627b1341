//! Counterfactual pairs: two samples that differ only in the safety-relevant
//! feature and so carry opposite labels.

use std::collections::BTreeMap;

use crate::sample::{Label, PairRole, Sample};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub id: String,
    /// Indices into the sample list the index was built from.
    pub original: usize,
    pub counterfactual: usize,
    /// The member labelled unsafe, and the one labelled safe.
    pub unsafe_member: usize,
    pub safe_member: usize,
    pub category: Option<String>,
}

impl Pair {
    pub fn members(&self) -> [usize; 2] {
        [self.original, self.counterfactual]
    }
}

/// The complete pairs in a sample list, in pair-id order. Incomplete or
/// inconsistent pairs are rejected when a dataset loads, so here they are
/// skipped (and counted).
#[derive(Debug, Clone, Default)]
pub struct PairIndex {
    pub pairs: Vec<Pair>,
    /// Pair ids seen with a member count or labelling other than a valid pair.
    pub incomplete: Vec<String>,
}

impl PairIndex {
    pub fn build(samples: &[Sample]) -> Self {
        let mut by_id: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in samples.iter().enumerate() {
            if let Some(p) = &s.pair {
                by_id.entry(&p.pair_id).or_default().push(i);
            }
        }
        let mut index = PairIndex::default();
        for (id, members) in by_id {
            let valid = members.len() == 2 && {
                let (a, b) = (&samples[members[0]], &samples[members[1]]);
                a.label != b.label && a.pair.as_ref().map(|p| p.role) != b.pair.as_ref().map(|p| p.role)
            };
            if !valid {
                index.incomplete.push(id.to_string());
                continue;
            }
            let role = |i: usize| samples[i].pair.as_ref().map(|p| p.role);
            let (original, counterfactual) =
                if role(members[0]) == Some(PairRole::Original) { (members[0], members[1]) } else { (members[1], members[0]) };
            let (unsafe_member, safe_member) =
                if samples[original].label == Label::Unsafe { (original, counterfactual) } else { (counterfactual, original) };
            let category = samples[unsafe_member].category.clone().or_else(|| samples[safe_member].category.clone());
            index.pairs.push(Pair { id: id.to_string(), original, counterfactual, unsafe_member, safe_member, category });
        }
        index
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
