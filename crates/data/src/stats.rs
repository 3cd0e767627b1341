//! Dataset statistics: the counts a user checks before training.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::pairs::PairIndex;
use crate::sample::Sample;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub samples: usize,
    pub by_label: BTreeMap<String, usize>,
    pub by_category: BTreeMap<String, usize>,
    pub by_source: BTreeMap<String, usize>,
    pub by_split: BTreeMap<String, usize>,
    /// label x category, the strata splits are balanced over.
    pub by_label_category: BTreeMap<String, usize>,
    pub pairs: usize,
    pub incomplete_pairs: usize,
    pub pairs_by_category: BTreeMap<String, usize>,
}

impl Stats {
    pub fn of(samples: &[Sample]) -> Self {
        let mut st = Stats { samples: samples.len(), ..Default::default() };
        for s in samples {
            let cat = s.category.clone().unwrap_or_else(|| "(none)".into());
            *st.by_label.entry(s.label.name().into()).or_default() += 1;
            *st.by_category.entry(cat.clone()).or_default() += 1;
            *st.by_source.entry(s.source.name().into()).or_default() += 1;
            let split = s.split.map(|x| x.name()).unwrap_or("(unassigned)");
            *st.by_split.entry(split.into()).or_default() += 1;
            *st.by_label_category.entry(format!("{} / {cat}", s.label.name())).or_default() += 1;
        }
        let pairs = PairIndex::build(samples);
        st.pairs = pairs.len();
        st.incomplete_pairs = pairs.incomplete.len();
        for p in &pairs.pairs {
            *st.pairs_by_category.entry(p.category.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        }
        st
    }

    /// A plain-text table for the terminal.
    pub fn render(&self) -> String {
        let mut out = format!("samples: {}\n", self.samples);
        let section = |out: &mut String, title: &str, m: &BTreeMap<String, usize>| {
            if m.is_empty() {
                return;
            }
            out.push_str(&format!("\n{title}\n"));
            let width = m.keys().map(|k| k.len()).max().unwrap_or(0);
            for (k, v) in m {
                out.push_str(&format!("  {k:<width$}  {v:>7}\n"));
            }
        };
        section(&mut out, "by label", &self.by_label);
        section(&mut out, "by category", &self.by_category);
        section(&mut out, "by source", &self.by_source);
        section(&mut out, "by split", &self.by_split);
        out.push_str(&format!("\npairs: {} complete, {} incomplete\n", self.pairs, self.incomplete_pairs));
        section(&mut out, "pairs by category", &self.pairs_by_category);
        out
    }
}
