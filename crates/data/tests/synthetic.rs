use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
use pairguard_data::{Dataset, LoadOptions, PairIndex};

fn rate_unsafe(part: &pairguard_data::synthetic::Part, risky: bool, clusters: usize) -> f64 {
    let (mut n, mut u) = (0usize, 0usize);
    for (s, &c) in part.samples.iter().zip(&part.clusters) {
        if (c < clusters / 2) == risky {
            n += 1;
            u += usize::from(s.label.is_unsafe());
        }
    }
    u as f64 / n as f64
}

#[test]
fn label_rates_per_cluster_follow_the_shortcut_knob() {
    let cfg = SyntheticConfig { shortcut: 0.6, coarse: 8000, test: 8000, ..SyntheticConfig::tiny() };
    let b = Benchmark::generate(&cfg).unwrap();
    let k = cfg.clusters;
    // Binomial standard error at n ~ 4000 is under 0.008.
    assert!((rate_unsafe(&b.coarse, true, k) - 0.8).abs() < 0.03);
    assert!((rate_unsafe(&b.coarse, false, k) - 0.2).abs() < 0.03);
    assert!((rate_unsafe(&b.test_shifted, true, k) - 0.5).abs() < 0.03);
    assert!((rate_unsafe(&b.test_shifted, false, k) - 0.5).abs() < 0.03);
}

#[test]
fn pairs_differ_along_the_harm_direction_of_their_category() {
    let cfg = SyntheticConfig { edit_noise: 0.0, ..SyntheticConfig::tiny() };
    let b = Benchmark::generate(&cfg).unwrap();
    let d = cfg.dim;
    let index = PairIndex::build(&b.pairs.samples);
    assert_eq!(index.len(), cfg.pairs);
    for p in &index.pairs {
        let u = &b.pairs.vectors[p.unsafe_member * d..(p.unsafe_member + 1) * d];
        let s = &b.pairs.vectors[p.safe_member * d..(p.safe_member + 1) * d];
        let k: usize = p.category.as_ref().unwrap().trim_start_matches("category-").parse().unwrap();
        // Normalisation rescales, so compare directions: u - c*s lies along h_k
        // for some scalar c. Check the residual of the difference off span{s, h_k}.
        let h = &b.truth.harm[k];
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let diff: Vec<f32> = u.iter().zip(s).map(|(a, b)| a - b).collect();
        // Project out s and h (Gram-Schmidt on the two-vector basis).
        let hs: Vec<f32> = {
            let c = dot(h, s);
            let v: Vec<f32> = h.iter().zip(s).map(|(a, b)| a - c * b).collect();
            let n = dot(&v, &v).sqrt();
            v.into_iter().map(|x| x / n).collect()
        };
        let a = dot(&diff, s);
        let c = dot(&diff, &hs);
        let resid: f32 = diff.iter().zip(s).zip(&hs).map(|((x, y), z)| (x - a * y - c * z).powi(2)).sum();
        assert!(resid.sqrt() < 1e-5, "pair {} differs outside span(s, h_k): {}", p.id, resid.sqrt());
        assert!(c > 0.05, "unsafe member moved along +h_k");
        assert_eq!(b.pairs.clusters[p.unsafe_member], b.pairs.clusters[p.safe_member]);
    }
}

#[test]
fn harm_directions_are_orthonormal_and_the_seed_fixes_everything() {
    let cfg = SyntheticConfig::tiny();
    let b = Benchmark::generate(&cfg).unwrap();
    for (i, hi) in b.truth.harm.iter().enumerate() {
        for (j, hj) in b.truth.harm.iter().enumerate() {
            let d: f32 = hi.iter().zip(hj).map(|(a, b)| a * b).sum();
            assert!((d - f32::from(i == j)).abs() < 1e-5);
        }
    }
    let again = Benchmark::generate(&cfg).unwrap();
    assert_eq!(b.coarse.vectors, again.coarse.vectors);
    let other = Benchmark::generate(&SyntheticConfig { seed: 1, ..cfg }).unwrap();
    assert_ne!(b.coarse.vectors, other.coarse.vectors);
}

#[test]
fn written_benchmark_loads_back_through_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SyntheticConfig { images: 8, ..SyntheticConfig::tiny() };
    let b = Benchmark::generate(&cfg).unwrap();
    let paths = b.write(dir.path()).unwrap();
    assert_eq!(paths.len(), 6);
    let ds = Dataset::load(&dir.path().join("pairs.toml"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.samples, b.pairs.samples);
    let store = ds.embeddings.as_ref().unwrap();
    assert_eq!(store.encoder, cfg.encoder_id());
    assert_eq!(ds.embedding(&b.pairs.samples[3].id).unwrap(), &b.pairs.vectors[3 * cfg.dim..4 * cfg.dim]);
    let opts = LoadOptions { image_check: pairguard_data::images::ImageCheck::Decode, ..Default::default() };
    let images = Dataset::load(&dir.path().join("images.toml"), &opts).unwrap();
    assert_eq!(images.samples.len(), 8);
    assert_eq!(PairIndex::build(&images.samples).len(), 4);
}

/// The image sets' parameters draw every image again: a pair's members are
/// one truth with the cross in or out, the cross changes only its mask, and
/// the single images follow the shortcut (coarse) or not (shifted).
#[test]
fn image_truth_redraws_every_image_and_the_cross_stays_in_its_mask() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SyntheticConfig { images: 20, coarse_images: 400, cross_contrast: 0.3, ..SyntheticConfig::tiny() };
    Benchmark::generate(&cfg).unwrap().write(dir.path()).unwrap();
    let truth = pairguard_data::synthetic::ImagesTruth::from_file(&dir.path().join("images-truth.json")).unwrap();
    assert_eq!(truth.images.len(), 20 + 400 + 200);
    for (id, t) in &truth.images {
        let file = image::open(dir.path().join("images").join(format!("{id}.png"))).unwrap().to_rgb8();
        assert_eq!(truth.render(t, t.harmful), file, "{id}");
    }
    let mask = pairguard_data::synthetic::ImagesTruth::feature_mask();
    let t = truth.images["img-p0000-o"];
    let partner = image::open(dir.path().join("images/img-p0000-c.png")).unwrap().to_rgb8();
    assert_eq!(truth.render(&t, !t.harmful), partner, "the edit of one member is the other");
    let (with, without) = (truth.render(&t, true), truth.render(&t, false));
    for ((a, b), m) in with.pixels().zip(without.pixels()).zip(mask.pixels()) {
        assert!(a == b || m.0[0] == 255, "a change outside the cross");
    }
    let rate = |prefix: &str, risky: bool| {
        let v: Vec<bool> =
            truth.images.iter().filter(|(id, t)| id.starts_with(prefix) && (t.cluster < cfg.clusters / 2) == risky).map(|(_, t)| t.harmful).collect();
        v.iter().filter(|&&h| h).count() as f64 / v.len() as f64
    };
    assert!(rate("coarse-images", true) > 0.75 && rate("coarse-images", false) < 0.25);
    assert!((rate("test-shifted-images", true) - 0.5).abs() < 0.15);
    let policy = pairguard_data::Policy::from_file(&dir.path().join("policy.toml")).unwrap();
    assert_eq!(policy.categories.len(), cfg.categories);
    assert!(SyntheticConfig { cross_contrast: 0.0, ..SyntheticConfig::tiny() }.check().is_err());
}
