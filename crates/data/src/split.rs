//! Grouped, stratified, seeded splits. All samples sharing a group key (both
//! members of a pair, or everything derived from one original) land in the
//! same split, so no counterfactual leaks between training and test. Groups
//! are stratified by label x category and shuffled with a seed derived from
//! the stratum, so adding a category never reshuffles the others.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sample::{Sample, Split};
use crate::seed::derive_seed;
use crate::{DataError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    pub train: f64,
    pub validation: f64,
    pub test: f64,
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig { train: 0.7, validation: 0.1, test: 0.2, seed: 0 }
    }
}

impl SplitConfig {
    fn check(&self) -> Result<()> {
        let parts = [self.train, self.validation, self.test];
        if parts.iter().any(|p| !(0.0..=1.0).contains(p)) || ((parts.iter().sum::<f64>()) - 1.0).abs() > 1e-9 {
            return Err(DataError::Split(format!(
                "split fractions must be in [0, 1] and sum to 1, got train {} validation {} test {}",
                self.train, self.validation, self.test
            )));
        }
        Ok(())
    }
}

/// The stratum of a group: pairs by category, other groups by their label
/// set and category.
fn stratum(members: &[&Sample]) -> String {
    let category = members.iter().find_map(|s| s.category.as_deref()).unwrap_or("-");
    if members.iter().any(|s| s.pair.is_some()) {
        return format!("pair|{category}");
    }
    let mut labels: Vec<&str> = members.iter().map(|s| s.label.name()).collect();
    labels.sort_unstable();
    labels.dedup();
    format!("{}|{category}", labels.join("+"))
}

/// Assigns a split to every sample that has none. A group in which any
/// member already has a split (fixed by the manifest) takes that split for
/// all members; conflicting fixed splits within a group are an error.
pub fn assign(samples: &mut [Sample], config: &SplitConfig) -> Result<()> {
    config.check()?;
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        groups.entry(s.group_key().to_string()).or_default().push(i);
    }
    let mut strata: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut fixed: Vec<(&str, Split)> = Vec::new();
    for (key, members) in &groups {
        let mut splits: Vec<Split> = members.iter().filter_map(|&i| samples[i].split).collect();
        splits.sort_unstable();
        splits.dedup();
        match splits.as_slice() {
            [] => {
                let refs: Vec<&Sample> = members.iter().map(|&i| &samples[i]).collect();
                strata.entry(stratum(&refs)).or_default().push(key);
            }
            [one] => fixed.push((key, *one)),
            many => {
                return Err(DataError::Split(format!(
                    "group {key:?} has members fixed to different splits ({:?}); related samples must share a split",
                    many
                )));
            }
        }
    }
    let mut decided: BTreeMap<String, Split> = fixed.into_iter().map(|(k, s)| (k.to_string(), s)).collect();
    for (name, mut keys) in strata {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(config.seed, &name));
        keys.shuffle(&mut rng);
        let n = keys.len();
        let n_test = (n as f64 * config.test).round() as usize;
        let n_val = ((n as f64 * config.validation).round() as usize).min(n - n_test);
        for (j, key) in keys.into_iter().enumerate() {
            let split = if j < n_test {
                Split::Test
            } else if j < n_test + n_val {
                Split::Validation
            } else {
                Split::Train
            };
            decided.insert(key.to_string(), split);
        }
    }
    for (key, members) in groups {
        let split = decided[&key];
        for i in members {
            samples[i].split = Some(split);
        }
    }
    Ok(())
}
