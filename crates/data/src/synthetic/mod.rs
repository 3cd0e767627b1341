//! The embedded synthetic benchmark: embeddings (and, for end-to-end tests,
//! small images) with known ground truth, written in pairguard's own formats.
//!
//! # Generative model
//!
//! All directions are random unit vectors in `R^dim`, drawn from the seed:
//! context centres `mu_c` (one per scene cluster), category topics `t_k`,
//! harm directions `h_k` (orthogonalised against each other and the topics)
//! and one style direction `s` for AI-generated images. A sample in cluster
//! `c`, category `k`, with label `y` (1 = unsafe) and source flag `a` is
//!
//! ```text
//! x = normalize(context * mu_c + topic * t_k + harm * y * h_k + style * a * s + noise * e),
//! e ~ N(0, I / dim)
//! ```
//!
//! * **The cause.** Only `h_k` decides the label: it is the harmful feature.
//! * **The shortcut.** In the coarse pool (and the coarse test set), the first
//!   half of the clusters are "risky" with `P(unsafe) = (1 + shortcut) / 2`
//!   and the rest "benign" with `(1 - shortcut) / 2`. The strong context
//!   signal lets a probe predict labels from the scene, which works in
//!   distribution and fails elsewhere.
//! * **The pairs.** A pair shares cluster, category and noise `e`; its two
//!   members differ only by `harm * h_k` plus independent edit noise
//!   `edit_noise * e'`. Pairs are balanced within every cluster, so the only
//!   signal they carry is the harm direction.
//! * **The shortcut-free test.** Labels are independent of the cluster
//!   (`P(unsafe) = 1/2` everywhere): a probe that leaned on the scene loses
//!   accuracy here, one that learned `h_k` does not.
//!
//! Written datasets: `coarse` (pool), `pairs` (pool), `test-coarse`,
//! `test-shifted` and `test-pairs` (held-out pairs, the pair benchmark),
//! each as a TOML descriptor, a JSONL manifest and an embedding store, plus
//! `ground-truth.json`. With `images > 0`, `images` is a small image dataset
//! (32x32 PNGs) with the same structure for end-to-end pixel tests; with
//! `coarse_images > 0`, `coarse-images` (single images with the scene
//! shortcut) and `test-shifted-images` (half as many, without it) are image
//! datasets to make counterfactual pairs from. Every image's generating
//! parameters are in `images-truth.json` (see [`ImagesTruth`]), and
//! `policy.toml` is a policy for the benchmark's categories.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::descriptor::{Columns, DEFAULT_MAX_PIXELS, Descriptor, Format, LabelMap, SourceMap, TaxonomySpec};
use crate::embeddings::{EmbeddingStore, EncoderId};
use crate::prompt_embeddings::PromptEmbeddings;
use crate::sample::{ImageRef, Label, PairMember, PairRole, Sample, Source};
use crate::seed::derive_seed;
use crate::taxonomy::Taxonomy;
use crate::{DataError, Result};
use pairguard_run::{sha256_bytes, write_atomic};

mod images;

pub use images::{ImageTruth, ImagesTruth};

/// Knobs of the generative model (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    pub dim: usize,
    pub categories: usize,
    pub clusters: usize,
    /// Size of the coarse pool.
    pub coarse: usize,
    /// Pairs in the pair pool.
    pub pairs: usize,
    /// Size of each single-image test set.
    pub test: usize,
    /// Pairs in the pair benchmark.
    pub test_pairs: usize,
    pub context: f64,
    pub topic: f64,
    pub harm: f64,
    pub style: f64,
    pub noise: f64,
    pub edit_noise: f64,
    /// 0 = labels independent of the scene; 1 = the scene decides the label.
    pub shortcut: f64,
    /// Number of images in the optional image dataset (0 = none).
    pub images: usize,
    /// Single images with the scene shortcut, to make pairs from (0 = none).
    pub coarse_images: usize,
    /// How dark the images' cross is: 1 paints it, smaller values blend it
    /// into the scene (a subtler harmful feature).
    pub cross_contrast: f64,
    pub seed: u64,
}

/// The named benchmark sizes, as `--preset` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The demo's benchmark.
    Default,
    /// A small one for tests.
    Tiny,
}

impl std::str::FromStr for Preset {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "default" => Ok(Preset::Default),
            "tiny" => Ok(Preset::Tiny),
            other => Err(DataError::SyntheticConfig(format!("unknown preset {other:?} (default, tiny)"))),
        }
    }
}

impl Default for SyntheticConfig {
    /// The demo benchmark: strong scene shortcut, weak harm signal.
    fn default() -> Self {
        SyntheticConfig {
            dim: 64,
            categories: 4,
            clusters: 8,
            coarse: 6000,
            pairs: 1500,
            test: 2000,
            test_pairs: 500,
            context: 2.0,
            topic: 0.5,
            harm: 0.6,
            style: 0.3,
            noise: 1.0,
            edit_noise: 0.1,
            shortcut: 0.8,
            images: 0,
            coarse_images: 0,
            cross_contrast: 1.0,
            seed: 0,
        }
    }
}

impl SyntheticConfig {
    /// A few hundred samples, for unit tests.
    pub fn tiny() -> Self {
        SyntheticConfig {
            dim: 16,
            categories: 3,
            clusters: 4,
            coarse: 400,
            pairs: 100,
            test: 200,
            test_pairs: 50,
            // Fewer samples: a stronger harm signal keeps tests decisive.
            harm: 0.9,
            ..Self::default()
        }
    }

    pub fn preset(preset: Preset) -> Self {
        match preset {
            Preset::Default => Self::default(),
            Preset::Tiny => Self::tiny(),
        }
    }

    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(DataError::SyntheticConfig(m.to_string()));
        if self.dim < 2 * self.categories + 2 {
            return bad("dim must be at least 2 x categories + 2 so harm directions can be orthogonal");
        }
        if self.categories == 0 || self.clusters < 2 {
            return bad("needs at least 1 category and 2 clusters");
        }
        if !(0.0..=1.0).contains(&self.shortcut) {
            return bad("shortcut must be in [0, 1]");
        }
        if !(self.cross_contrast > 0.0 && self.cross_contrast <= 1.0) {
            return bad("cross_contrast must be in (0, 1]");
        }
        if [self.context, self.topic, self.harm, self.style, self.noise, self.edit_noise].iter().any(|v| !v.is_finite() || *v < 0.0) {
            return bad("strengths and noise levels must be finite and non-negative");
        }
        Ok(())
    }

    /// The encoder identity written into every store: synthetic embeddings
    /// from different configs must not be mixed.
    pub fn encoder_id(&self) -> EncoderId {
        EncoderId {
            model: "synthetic".into(),
            revision: None,
            weights_sha256: sha256_bytes(serde_json::to_string(self).expect("serialisable").as_bytes()),
            architecture: "synthetic".into(),
            preprocess: "synthetic-v1".into(),
            dim: self.dim,
            normalized: true,
            precision: Default::default(),
        }
    }
}

/// The hidden directions of the model.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    pub context: Vec<Vec<f32>>,
    pub topic: Vec<Vec<f32>>,
    pub harm: Vec<Vec<f32>>,
    pub style: Vec<f32>,
}

/// One generated dataset held in memory.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub samples: Vec<Sample>,
    /// The cluster of each sample (ground truth, not in the data model).
    pub clusters: Vec<usize>,
    pub vectors: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct Benchmark {
    pub config: SyntheticConfig,
    pub truth: GroundTruth,
    pub coarse: Part,
    pub pairs: Part,
    pub test_coarse: Part,
    pub test_shifted: Part,
    pub test_pairs: Part,
}

fn unit(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..dim).map(|_| Distribution::<f64>::sample(&StandardNormal, rng)).collect();
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// Gram-Schmidt: makes `v` orthogonal to every vector in `basis`, unit norm.
fn orthogonalise(mut v: Vec<f64>, basis: &[Vec<f64>]) -> Vec<f64> {
    for b in basis {
        let d: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
        v.iter_mut().zip(b).for_each(|(x, y)| *x -= d * y);
    }
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

struct Model<'a> {
    cfg: &'a SyntheticConfig,
    context: Vec<Vec<f64>>,
    topic: Vec<Vec<f64>>,
    harm: Vec<Vec<f64>>,
    style: Vec<f64>,
}

impl Model<'_> {
    fn noise(&self, rng: &mut ChaCha8Rng, scale: f64) -> Vec<f64> {
        let s = scale / (self.cfg.dim as f64).sqrt();
        (0..self.cfg.dim).map(|_| s * Distribution::<f64>::sample(&StandardNormal, rng)).collect::<Vec<f64>>()
    }

    /// The pre-normalisation vector without the harm term.
    fn base(&self, c: usize, k: usize, ai: bool, e: &[f64]) -> Vec<f64> {
        let cfg = self.cfg;
        (0..cfg.dim)
            .map(|d| cfg.context * self.context[c][d] + cfg.topic * self.topic[k][d] + if ai { cfg.style * self.style[d] } else { 0.0 } + e[d])
            .collect()
    }

    fn finish(&self, mut v: Vec<f64>, k: usize, unsafe_: bool, extra: &[f64]) -> Vec<f32> {
        for d in 0..v.len() {
            v[d] += extra[d] + if unsafe_ { self.cfg.harm * self.harm[k][d] } else { 0.0 };
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.into_iter().map(|x| (x / n) as f32).collect()
    }

    fn risky(&self, c: usize) -> bool {
        c < self.cfg.clusters / 2
    }
}

fn single_images(model: &Model, name: &str, n: usize, shortcut: bool, seed: u64) -> Part {
    let cfg = model.cfg;
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, name));
    let mut part =
        Part { name: name.into(), samples: Vec::with_capacity(n), clusters: Vec::with_capacity(n), vectors: Vec::with_capacity(n * cfg.dim) };
    let zero = vec![0.0; cfg.dim];
    for i in 0..n {
        let c = rng.random_range(0..cfg.clusters);
        let k = rng.random_range(0..cfg.categories);
        let ai = rng.random_bool(0.5);
        let p = if !shortcut {
            0.5
        } else if model.risky(c) {
            (1.0 + cfg.shortcut) / 2.0
        } else {
            (1.0 - cfg.shortcut) / 2.0
        };
        let y = rng.random_bool(p);
        let e = model.noise(&mut rng, cfg.noise);
        let v = model.finish(model.base(c, k, ai, &e), k, y, &zero);
        part.vectors.extend(v);
        part.clusters.push(c);
        part.samples.push(Sample {
            id: format!("{name}-{i:06}"),
            image: None,
            label: if y { Label::Unsafe } else { Label::Safe },
            category: Some(format!("category-{k}")),
            pair: None,
            group: None,
            source: if ai { Source::AiGenerated } else { Source::Real },
            split: None,
        });
    }
    part
}

/// One member of a generated pair; ids end in `-o` (original) or `-c`.
fn pair_member(pair_id: &str, role: PairRole, unsafe_: bool, k: usize, source: Source, image: Option<ImageRef>) -> Sample {
    Sample {
        id: format!("{pair_id}-{}", if role == PairRole::Original { "o" } else { "c" }),
        image,
        label: if unsafe_ { Label::Unsafe } else { Label::Safe },
        category: Some(format!("category-{k}")),
        pair: Some(PairMember { pair_id: pair_id.to_string(), role }),
        group: None,
        source,
        split: None,
    }
}

fn pair_set(model: &Model, name: &str, n_pairs: usize, seed: u64) -> Part {
    let cfg = model.cfg;
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, name));
    let mut part = Part {
        name: name.into(),
        samples: Vec::with_capacity(2 * n_pairs),
        clusters: Vec::with_capacity(2 * n_pairs),
        vectors: Vec::with_capacity(2 * n_pairs * cfg.dim),
    };
    for i in 0..n_pairs {
        let c = rng.random_range(0..cfg.clusters);
        let k = rng.random_range(0..cfg.categories);
        let ai = rng.random_bool(0.5);
        // Which side was photographed and which was edited.
        let original_unsafe = rng.random_bool(0.5);
        let e = model.noise(&mut rng, cfg.noise);
        let base = model.base(c, k, ai, &e);
        let pair_id = format!("{name}-p{i:05}");
        for role in [PairRole::Original, PairRole::Counterfactual] {
            let y = (role == PairRole::Original) == original_unsafe;
            let edit = model.noise(&mut rng, cfg.edit_noise);
            part.vectors.extend(model.finish(base.clone(), k, y, &edit));
            part.clusters.push(c);
            let source = if ai { Source::AiGenerated } else { Source::Real };
            part.samples.push(pair_member(&pair_id, role, y, k, source, None));
        }
    }
    part
}

impl Benchmark {
    pub fn generate(cfg: &SyntheticConfig) -> Result<Self> {
        cfg.check()?;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, "directions"));
        let context: Vec<Vec<f64>> = (0..cfg.clusters).map(|_| unit(&mut rng, cfg.dim)).collect();
        let topic: Vec<Vec<f64>> = (0..cfg.categories).map(|_| unit(&mut rng, cfg.dim)).collect();
        let mut harm: Vec<Vec<f64>> = Vec::new();
        for _ in 0..cfg.categories {
            let basis: Vec<Vec<f64>> = topic.iter().chain(harm.iter()).cloned().collect();
            harm.push(orthogonalise(unit(&mut rng, cfg.dim), &basis));
        }
        let style = unit(&mut rng, cfg.dim);
        let model = Model { cfg, context, topic, harm, style };
        let f32s = |v: &Vec<Vec<f64>>| v.iter().map(|x| x.iter().map(|&y| y as f32).collect()).collect();
        let truth = GroundTruth {
            context: f32s(&model.context),
            topic: f32s(&model.topic),
            harm: f32s(&model.harm),
            style: model.style.iter().map(|&y| y as f32).collect(),
        };
        Ok(Benchmark {
            config: cfg.clone(),
            coarse: single_images(&model, "coarse", cfg.coarse, true, cfg.seed),
            pairs: pair_set(&model, "pairs", cfg.pairs, cfg.seed),
            test_coarse: single_images(&model, "test-coarse", cfg.test, true, cfg.seed),
            test_shifted: single_images(&model, "test-shifted", cfg.test, false, cfg.seed),
            test_pairs: pair_set(&model, "test-pairs", cfg.test_pairs, cfg.seed),
            truth,
        })
    }

    pub fn taxonomy(&self) -> Taxonomy {
        Taxonomy::numbered("synthetic", self.config.categories)
    }

    pub fn parts(&self) -> [&Part; 5] {
        [&self.coarse, &self.pairs, &self.test_coarse, &self.test_shifted, &self.test_pairs]
    }

    /// Writes every part as descriptor + JSONL manifest + embedding store,
    /// and the ground truth. Returns the descriptor paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let encoder = self.config.encoder_id();
        let mut written = Vec::new();
        for part in self.parts() {
            let store = EmbeddingStore::new(encoder.clone(), part.samples.iter().map(|s| s.id.clone()).collect(), part.vectors.clone())?;
            store.save(&dir.join(format!("{}.safetensors", part.name)))?;
            let manifest = manifest_jsonl(&part.samples, Some(&part.clusters), None);
            write_atomic(&dir.join(format!("{}.jsonl", part.name)), manifest.as_bytes())?;
            let d = self.descriptor(&part.name, Some(format!("{}.safetensors", part.name)), None);
            let path = dir.join(format!("{}.toml", part.name));
            write_atomic(&path, toml::to_string(&d).expect("serialisable").as_bytes())?;
            written.push(path);
        }
        let truth = serde_json::json!({ "config": self.config, "directions": self.truth });
        write_atomic(&dir.join("ground-truth.json"), serde_json::to_string_pretty(&truth).expect("json").as_bytes())?;
        let mut truth = ImagesTruth {
            clusters: self.config.clusters,
            categories: self.config.categories,
            contrast: self.config.cross_contrast,
            images: Default::default(),
        };
        if self.config.images > 0 {
            written.push(self.write_images(dir, &mut truth)?);
        }
        if self.config.coarse_images > 0 {
            written.extend(self.write_single_images(dir, &mut truth)?);
        }
        if !truth.images.is_empty() {
            write_atomic(&dir.join("images-truth.json"), &serde_json::to_vec_pretty(&truth).expect("json"))?;
        }
        write_atomic(&dir.join("policy.toml"), self.policy_file().as_bytes())?;
        self.prompts()?.save(&dir.join("prompts.safetensors"))?;
        Ok(written)
    }

    /// The text side: embeddings of the policy's prompts with known ground
    /// truth, as a CLIP text tower would give them. A prompt for category k
    /// lies along k's topic direction and, when it names the harmful
    /// feature, along k's harm direction; a safe prompt instead lies along a
    /// direction of its own that images do not show (the "plain
    /// background"), as strongly. Every prompt is offset by one shared
    /// direction (the modality gap: CLIP's text and image embeddings occupy
    /// different cones), plus noise. The gap and safe directions are
    /// orthogonal to the images' directions as far as the dimension allows.
    pub fn prompts(&self) -> Result<PromptEmbeddings> {
        const GAP: f64 = 1.5;
        const NOISE: f64 = 0.2;
        let cfg = &self.config;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, "prompts"));
        let f64s = |v: &Vec<f32>| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let t = &self.truth;
        // An orthonormal basis of the image directions, grown by each new
        // direction; once it spans the space, new directions are random.
        let mut basis: Vec<Vec<f64>> = Vec::new();
        let extend = |basis: &mut Vec<Vec<f64>>, v: Vec<f64>| -> Vec<f64> {
            let mut r = v.clone();
            for b in basis.iter() {
                let d: f64 = r.iter().zip(b).map(|(x, y)| x * y).sum();
                r.iter_mut().zip(b).for_each(|(x, y)| *x -= d * y);
            }
            let n = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n < 1e-6 {
                return v;
            }
            let r: Vec<f64> = r.into_iter().map(|x| x / n).collect();
            basis.push(r.clone());
            r
        };
        for v in t.context.iter().chain(&t.topic).chain(&t.harm).chain(std::iter::once(&t.style)) {
            extend(&mut basis, f64s(v));
        }
        let mut own = |basis: &mut Vec<Vec<f64>>| {
            let v = unit(&mut rng, cfg.dim);
            extend(basis, v)
        };
        let gap = own(&mut basis);
        let safe_dirs: Vec<Vec<f64>> = (0..cfg.categories).map(|_| own(&mut basis)).collect();
        let policy = self.policy();
        let (mut texts, mut x) = (Vec::new(), Vec::new());
        for (k, c) in policy.categories.iter().enumerate() {
            for (phrases, harmful) in [(&c.unsafe_, true), (&c.safe, false)] {
                for text in policy.templates.iter().flat_map(|t| phrases.iter().map(move |p| t.replace("{}", p))) {
                    let e: Vec<f64> =
                        (0..cfg.dim).map(|_| NOISE / (cfg.dim as f64).sqrt() * Distribution::<f64>::sample(&StandardNormal, &mut rng)).collect();
                    x.extend((0..cfg.dim).map(|d| {
                        let feature = if harmful { f64::from(t.harm[k][d]) } else { safe_dirs[k][d] };
                        (GAP * gap[d] + cfg.topic * f64::from(t.topic[k][d]) + cfg.harm * feature + e[d]) as f32
                    }));
                    texts.push(text);
                }
            }
        }
        PromptEmbeddings::new(texts, cfg.dim, x, "synthetic".into(), cfg.encoder_id().weights_sha256, "synthetic text side".into())
    }

    fn descriptor(&self, name: &str, embeddings: Option<String>, root: Option<String>) -> Descriptor {
        Descriptor {
            name: format!("synthetic-{name}"),
            format: Format::Jsonl,
            manifest: vec![format!("{name}.jsonl")],
            root,
            embeddings,
            taxonomy: TaxonomySpec::Inline(self.taxonomy()),
            max_pixels: DEFAULT_MAX_PIXELS,
            columns: Columns::default(),
            labels: LabelMap::default(),
            sources: SourceMap::default(),
            categories: Default::default(),
            hub: None,
            path: PathBuf::new(),
        }
    }

    /// The benchmark's policy: in every category the harmful feature is the
    /// dark cross (a category's phrases name the category, so its prompts
    /// differ from the others').
    pub fn policy(&self) -> crate::policy::Policy {
        crate::policy::Policy {
            name: "synthetic".into(),
            taxonomy: TaxonomySpec::Inline(self.taxonomy()),
            templates: vec!["a picture with {}.".into()],
            add: "Draw {unsafe} over the image in place of {safe}; change nothing else.".into(),
            remove: "Replace {unsafe} with {safe}; change nothing else.".into(),
            categories: self
                .taxonomy()
                .names()
                .iter()
                .map(|n| crate::policy::PolicyCategory {
                    name: n.to_string(),
                    unsafe_: vec![format!("a dark cross ({n})")],
                    safe: vec![format!("the plain background ({n})")],
                })
                .collect(),
            path: PathBuf::new(),
            sha256: String::new(),
        }
    }

    fn policy_file(&self) -> String {
        let policy = self.policy();
        format!(
            "# The synthetic benchmark's policy: in every category the harmful feature is a dark cross.\n{}",
            toml::to_string(&policy).expect("serialisable")
        )
    }
}

/// JSONL in the default column layout; `clusters` adds a ground-truth column
/// that readers ignore.
fn manifest_jsonl(samples: &[Sample], clusters: Option<&[usize]>, paths: Option<&[String]>) -> String {
    let mut out = String::new();
    for (i, s) in samples.iter().enumerate() {
        let mut obj = serde_json::Map::new();
        obj.insert("id".into(), s.id.clone().into());
        if let Some(p) = paths {
            obj.insert("image".into(), p[i].clone().into());
        }
        obj.insert("label".into(), s.label.name().into());
        if let Some(c) = &s.category {
            obj.insert("category".into(), c.clone().into());
        }
        obj.insert("source".into(), s.source.name().into());
        if let Some(p) = &s.pair {
            obj.insert("pair_id".into(), p.pair_id.clone().into());
            obj.insert("pair_role".into(), p.role.name().into());
        }
        if let Some(c) = clusters {
            obj.insert("cluster".into(), c[i].into());
        }
        out.push_str(&serde_json::Value::Object(obj).to_string());
        out.push('\n');
    }
    out
}
