//! Training sets for a budget of N samples, mixed from a coarse pool
//! (UnsafeBench-like single images) and a pair pool (SafetyPairs-like
//! counterfactual pairs).
//!
//! Every strategy draws prefixes of two fixed seeded orders (one over the
//! coarse pool, one over the pairs), so for one seed the set for a larger
//! budget contains the set for a smaller one whenever each component's size
//! grows with the budget: sample-efficiency curves then compare nested data,
//! which removes most of the between-budget variance.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::pairs::PairIndex;
use crate::seed::derive_seed;
use crate::{DataError, Result};

/// How a budget is divided between the pools.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Strategy {
    /// N coarse samples.
    CoarseOnly,
    /// N/2 whole pairs.
    PairsOnly,
    /// A fraction of the budget as whole pairs, the rest coarse.
    Ratio { pair_fraction: f64 },
    /// The control for `Ratio`: the same fraction of the budget drawn from
    /// the pair pool as single members of distinct pairs.
    RatioUnpaired { pair_fraction: f64 },
    /// K whole pairs plus N - 2K coarse samples.
    CoarsePlusPairs { pairs: usize },
    /// The control for `CoarsePlusPairs`: the same budget and the same kind
    /// of extra images, but 2K members of 2K *different* pairs (half unsafe,
    /// half safe), so no two extra samples form a counterfactual pair.
    /// Comparing the two isolates the effect of pairing from more data.
    CoarsePlusUnpaired { pairs: usize },
}

impl Strategy {
    /// A short stable name for tables, file names and plot legends.
    pub fn name(&self) -> String {
        match self {
            Strategy::CoarseOnly => "coarse".into(),
            Strategy::PairsOnly => "pairs".into(),
            Strategy::Ratio { pair_fraction } => format!("ratio-{pair_fraction}"),
            Strategy::RatioUnpaired { pair_fraction } => format!("ratio-{pair_fraction}-unpaired"),
            Strategy::CoarsePlusPairs { pairs } => format!("coarse+{pairs}pairs"),
            Strategy::CoarsePlusUnpaired { pairs } => format!("coarse+{pairs}unpaired"),
        }
    }

    /// (coarse samples, whole pairs, unpaired pair-pool samples) for a budget.
    pub fn allocation(&self, budget: usize) -> Result<(usize, usize, usize)> {
        let need = |k: usize| -> Result<()> {
            if 2 * k > budget {
                return Err(DataError::Mix(format!("strategy {} needs a budget of at least {} (2 x {k}), got {budget}", self.name(), 2 * k)));
            }
            Ok(())
        };
        Ok(match *self {
            Strategy::CoarseOnly => (budget, 0, 0),
            Strategy::PairsOnly => (0, budget / 2, 0),
            Strategy::Ratio { pair_fraction } | Strategy::RatioUnpaired { pair_fraction } => {
                if !(0.0..=1.0).contains(&pair_fraction) {
                    return Err(DataError::Mix(format!("pair_fraction must be in [0, 1], got {pair_fraction}")));
                }
                let pairs = ((pair_fraction * budget as f64) / 2.0).floor() as usize;
                if matches!(self, Strategy::Ratio { .. }) { (budget - 2 * pairs, pairs, 0) } else { (budget - 2 * pairs, 0, 2 * pairs) }
            }
            Strategy::CoarsePlusPairs { pairs } => {
                need(pairs)?;
                (budget - 2 * pairs, pairs, 0)
            }
            Strategy::CoarsePlusUnpaired { pairs } => {
                need(pairs)?;
                (budget - 2 * pairs, 0, 2 * pairs)
            }
        })
    }
}

/// A training set: indices into the coarse pool's samples and into the pair
/// pool's samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingSet {
    pub budget: usize,
    pub coarse: Vec<usize>,
    pub pair_pool: Vec<usize>,
    /// How many whole pairs `pair_pool` holds (the rest are unpaired).
    pub whole_pairs: usize,
}

impl TrainingSet {
    pub fn len(&self) -> usize {
        self.coarse.len() + self.pair_pool.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether every sample of `self` is also in `larger`.
    pub fn is_subset_of(&self, larger: &TrainingSet) -> bool {
        let contains = |small: &[usize], big: &[usize]| {
            let big: std::collections::HashSet<_> = big.iter().collect();
            small.iter().all(|i| big.contains(i))
        };
        contains(&self.coarse, &larger.coarse) && contains(&self.pair_pool, &larger.pair_pool)
    }
}

/// Seeded orders over the pools; see the module docs.
#[derive(Debug, Clone)]
pub struct Mixer {
    coarse_order: Vec<usize>,
    /// (unsafe member, safe member) per pair, in seeded order.
    pair_order: Vec<(usize, usize)>,
}

impl Mixer {
    /// `coarse` lists the eligible coarse-pool sample indices (e.g. the
    /// training split); `pairs` indexes the pair pool's samples.
    pub fn new(coarse: &[usize], pairs: &PairIndex, seed: u64) -> Self {
        let members: Vec<(usize, usize)> = pairs.pairs.iter().map(|p| (p.unsafe_member, p.safe_member)).collect();
        Self::from_members(coarse, &members, seed)
    }

    /// As [`Mixer::new`], with each pair given as (unsafe member, safe member).
    pub fn from_members(coarse: &[usize], pairs: &[(usize, usize)], seed: u64) -> Self {
        let mut coarse_order = coarse.to_vec();
        coarse_order.sort_unstable();
        coarse_order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(seed, "mix/coarse")));
        let mut pair_order = pairs.to_vec();
        pair_order.sort_unstable();
        pair_order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(seed, "mix/pairs")));
        Mixer { coarse_order, pair_order }
    }

    pub fn pairs_available(&self) -> usize {
        self.pair_order.len()
    }

    pub fn build(&self, strategy: &Strategy, budget: usize) -> Result<TrainingSet> {
        let (n_coarse, n_pairs, n_unpaired) = strategy.allocation(budget)?;
        if n_coarse > self.coarse_order.len() {
            return Err(DataError::Mix(format!(
                "{} at budget {budget} needs {n_coarse} coarse samples, the pool has {}",
                strategy.name(),
                self.coarse_order.len()
            )));
        }
        let pairs_needed = n_pairs.max(n_unpaired);
        if pairs_needed > self.pair_order.len() {
            return Err(DataError::Mix(format!(
                "{} at budget {budget} needs {pairs_needed} pairs, the pool has {}",
                strategy.name(),
                self.pair_order.len()
            )));
        }
        let mut pair_pool = Vec::with_capacity(2 * n_pairs + n_unpaired);
        for &(u, s) in &self.pair_order[..n_pairs] {
            pair_pool.push(u);
            pair_pool.push(s);
        }
        // One member from each of n_unpaired distinct pairs, alternating
        // unsafe and safe so the label balance matches whole pairs.
        for (j, &(u, s)) in self.pair_order[..n_unpaired].iter().enumerate() {
            pair_pool.push(if j % 2 == 0 { u } else { s });
        }
        Ok(TrainingSet { budget, coarse: self.coarse_order[..n_coarse].to_vec(), pair_pool, whole_pairs: n_pairs })
    }
}
