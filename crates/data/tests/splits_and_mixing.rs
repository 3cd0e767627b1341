use pairguard_data::split::{SplitConfig, assign};
use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
use pairguard_data::{Mixer, PairIndex, Split, Strategy};

fn bench() -> Benchmark {
    Benchmark::generate(&SyntheticConfig::tiny()).unwrap()
}

#[test]
fn pair_members_share_a_split_and_the_seed_fixes_the_split() {
    let b = bench();
    let mut samples = b.pairs.samples.clone();
    samples.extend(b.coarse.samples.iter().cloned());
    let cfg = SplitConfig { seed: 3, ..Default::default() };
    assign(&mut samples, &cfg).unwrap();
    let index = PairIndex::build(&samples);
    assert_eq!(index.len(), b.config.pairs);
    for p in &index.pairs {
        assert_eq!(samples[p.original].split, samples[p.counterfactual].split, "pair {}", p.id);
    }
    let mut again = b.pairs.samples.clone();
    again.extend(b.coarse.samples.iter().cloned());
    assign(&mut again, &cfg).unwrap();
    assert_eq!(samples, again);
    let mut other = samples.clone();
    other.iter_mut().for_each(|s| s.split = None);
    assign(&mut other, &SplitConfig { seed: 4, ..cfg }).unwrap();
    assert_ne!(samples, other, "a different seed gives a different split");
}

#[test]
fn splits_are_stratified_by_label_and_category() {
    let b = bench();
    let mut samples = b.coarse.samples.clone();
    assign(&mut samples, &SplitConfig::default()).unwrap();
    let mut strata = std::collections::BTreeMap::<(String, Option<String>), (usize, usize)>::new();
    for s in &samples {
        let e = strata.entry((s.label.name().to_string(), s.category.clone())).or_default();
        e.0 += 1;
        if s.split == Some(Split::Test) {
            e.1 += 1;
        }
    }
    for ((label, cat), (n, test)) in strata {
        let expected = (n as f64 * 0.2).round() as usize;
        assert_eq!(test, expected, "stratum {label}/{cat:?}: {test} of {n} in test");
    }
}

#[test]
fn derived_samples_share_a_group_split_and_fixed_splits_are_kept() {
    let b = bench();
    let mut samples = b.coarse.samples[..40].to_vec();
    for (i, s) in samples.iter_mut().enumerate() {
        s.group = Some(format!("orig-{}", i / 4));
    }
    samples[5].split = Some(Split::Validation);
    assign(&mut samples, &SplitConfig::default()).unwrap();
    for chunk in samples.chunks(4) {
        assert!(chunk.iter().all(|s| s.split == chunk[0].split));
    }
    assert_eq!(samples[4].split, Some(Split::Validation));
    samples[6].split = Some(Split::Test);
    samples[7].split = Some(Split::Train);
    assert!(assign(&mut samples, &SplitConfig::default()).unwrap_err().to_string().contains("orig-1"));
}

fn mixer(seed: u64) -> (Benchmark, Mixer) {
    let b = bench();
    let coarse: Vec<usize> = (0..b.coarse.samples.len()).collect();
    let index = PairIndex::build(&b.pairs.samples);
    let m = Mixer::new(&coarse, &index, seed);
    (b, m)
}

#[test]
fn sets_are_nested_along_budgets_for_every_strategy() {
    let (_b, m) = mixer(1);
    let budgets = [16, 32, 64, 128];
    for strategy in [
        Strategy::CoarseOnly,
        Strategy::PairsOnly,
        Strategy::Ratio { pair_fraction: 0.5 },
        Strategy::RatioUnpaired { pair_fraction: 0.5 },
        Strategy::CoarsePlusPairs { pairs: 8 },
        Strategy::CoarsePlusUnpaired { pairs: 8 },
    ] {
        let sets: Vec<_> = budgets.iter().map(|&n| m.build(&strategy, n).unwrap()).collect();
        for (set, &n) in sets.iter().zip(&budgets) {
            assert_eq!(set.len(), n - n % 2 * usize::from(strategy == Strategy::PairsOnly), "{}", strategy.name());
        }
        for w in sets.windows(2) {
            assert!(w[0].is_subset_of(&w[1]), "{} not nested", strategy.name());
        }
    }
}

#[test]
fn pairs_come_whole_and_the_control_never_pairs() {
    let (b, m) = mixer(2);
    let pair_of = |i: usize| b.pairs.samples[i].pair.as_ref().unwrap().pair_id.clone();
    let set = m.build(&Strategy::CoarsePlusPairs { pairs: 10 }, 64).unwrap();
    assert_eq!((set.coarse.len(), set.pair_pool.len(), set.whole_pairs), (44, 20, 10));
    for two in set.pair_pool.chunks(2) {
        assert_eq!(pair_of(two[0]), pair_of(two[1]));
        assert_ne!(b.pairs.samples[two[0]].label, b.pairs.samples[two[1]].label);
    }
    let control = m.build(&Strategy::CoarsePlusUnpaired { pairs: 10 }, 64).unwrap();
    assert_eq!((control.coarse, control.pair_pool.len()), (set.coarse.clone(), 20));
    let ids: std::collections::HashSet<String> = control.pair_pool.iter().map(|&i| pair_of(i)).collect();
    assert_eq!(ids.len(), 20, "every extra sample comes from a different pair");
    let unsafe_count = control.pair_pool.iter().filter(|&&i| b.pairs.samples[i].label.is_unsafe()).count();
    assert_eq!(unsafe_count, 10, "label balance matches whole pairs");
}

#[test]
fn mixing_is_deterministic_per_seed_and_checks_the_pools() {
    let (_b, m1) = mixer(5);
    let (_b, m2) = mixer(5);
    let (_b, m3) = mixer(6);
    let s = Strategy::Ratio { pair_fraction: 0.25 };
    assert_eq!(m1.build(&s, 100).unwrap(), m2.build(&s, 100).unwrap());
    assert_ne!(m1.build(&s, 100).unwrap(), m3.build(&s, 100).unwrap());
    let e = m1.build(&Strategy::CoarseOnly, 100_000).unwrap_err().to_string();
    assert!(e.contains("needs 100000 coarse samples"), "{e}");
    let e = m1.build(&Strategy::CoarsePlusPairs { pairs: 20 }, 16).unwrap_err().to_string();
    assert!(e.contains("at least 40"), "{e}");
}
