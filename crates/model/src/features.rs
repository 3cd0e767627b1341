//! Labelled feature matrices: samples joined with their embeddings, in the
//! row-major layout heads train on.

use pairguard_data::{Dataset, EmbeddingStore, EncoderId, Label, PairIndex, Sample, Source, Split};

use crate::error::{Error, Result};

/// A dataset's embedding store, or an error naming the command that makes it.
pub fn store_of(ds: &Dataset) -> Result<&EmbeddingStore> {
    ds.embeddings.as_ref().ok_or_else(|| Error::NoStore {
        dataset: ds.descriptor.name.clone(),
        descriptor: ds.descriptor.path.clone(),
        default_store: ds.descriptor.default_store_path(),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabeledSet {
    pub dim: usize,
    /// Row-major `[len, dim]`.
    pub x: Vec<f32>,
    pub ids: Vec<String>,
    pub labels: Vec<bool>,
    /// Index into `categories`, per sample.
    pub category: Vec<Option<usize>>,
    pub categories: Vec<String>,
    pub sources: Vec<Source>,
    /// (unsafe row, safe row) for each complete pair in the set.
    pub pairs: Vec<(usize, usize)>,
}

impl LabeledSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// Builds a set from samples and a lookup for their vectors. Fails with
    /// the sample id when a vector is missing or has the wrong dimension.
    pub fn from_samples<'a>(
        samples: impl IntoIterator<Item = &'a Sample>,
        categories: &[String],
        dim: usize,
        vector: impl Fn(&str) -> Option<&'a [f32]>,
    ) -> Result<Self> {
        let samples: Vec<&Sample> = samples.into_iter().collect();
        let mut set = LabeledSet {
            dim,
            x: Vec::with_capacity(samples.len() * dim),
            ids: Vec::new(),
            labels: Vec::new(),
            category: Vec::new(),
            categories: categories.to_vec(),
            sources: Vec::new(),
            pairs: Vec::new(),
        };
        for s in &samples {
            let v = vector(&s.id).ok_or_else(|| Error::Sample { id: s.id.clone(), message: "no embedding in the store".into() })?;
            if v.len() != dim {
                return Err(Error::Sample { id: s.id.clone(), message: format!("embedding has {} dimensions, expected {dim}", v.len()) });
            }
            set.x.extend_from_slice(v);
            set.ids.push(s.id.clone());
            set.labels.push(s.label == Label::Unsafe);
            set.category.push(s.category.as_ref().and_then(|c| categories.iter().position(|k| k == c)));
            set.sources.push(s.source);
        }
        let owned: Vec<Sample> = samples.iter().map(|s| (*s).clone()).collect();
        set.pairs = PairIndex::build(&owned).pairs.iter().map(|p| (p.unsafe_member, p.safe_member)).collect();
        Ok(set)
    }

    /// The samples of a dataset (optionally one split) with the dataset's
    /// embedding store, checking the store's encoder against `expected`.
    pub fn from_dataset(ds: &Dataset, split: Option<Split>, expected: Option<&EncoderId>) -> Result<Self> {
        let store = store_of(ds)?;
        if let Some(e) = expected {
            e.ensure_matches(&store.encoder, &format!("dataset {}", ds.descriptor.name))?;
        }
        let categories: Vec<String> = ds.taxonomy.names().into_iter().map(str::to_string).collect();
        let chosen = ds.samples.iter().filter(|s| split.is_none() || s.split == split);
        Self::from_samples(chosen, &categories, store.dim(), |id| store.get(id))
    }

    /// A dataset divided for training with validation: a seeded, grouped,
    /// stratified split (pairs and groups never straddle it) with about
    /// `fraction` of the groups for validation. Splits fixed in the manifest
    /// are set aside for this.
    pub fn train_validation(ds: &Dataset, fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::TrainOption { option: "validation_fraction", message: format!("{fraction} must be in (0, 1)") });
        }
        let mut split = ds.clone();
        split.samples.iter_mut().for_each(|s| s.split = None);
        pairguard_data::split::assign(
            &mut split.samples,
            &pairguard_data::SplitConfig { train: 1.0 - fraction, validation: fraction, test: 0.0, seed },
        )?;
        let train = Self::from_dataset(&split, Some(Split::Train), None)?;
        let validation = Self::from_dataset(&split, Some(Split::Validation), None)?;
        if validation.is_empty() {
            return Err(Error::TrainingData(format!(
                "a validation fraction of {fraction} leaves no validation samples in {} ({} samples)",
                ds.descriptor.name,
                ds.samples.len()
            )));
        }
        Ok((train, validation))
    }

    /// A subset by row indices (pairs kept when both members are included).
    pub fn subset(&self, rows: &[usize]) -> Self {
        let mut out = LabeledSet {
            dim: self.dim,
            x: Vec::with_capacity(rows.len() * self.dim),
            ids: Vec::with_capacity(rows.len()),
            labels: Vec::with_capacity(rows.len()),
            category: Vec::with_capacity(rows.len()),
            categories: self.categories.clone(),
            sources: Vec::with_capacity(rows.len()),
            pairs: Vec::new(),
        };
        let mut new_index = std::collections::HashMap::new();
        for (j, &i) in rows.iter().enumerate() {
            new_index.insert(i, j);
            out.x.extend_from_slice(self.row(i));
            out.ids.push(self.ids[i].clone());
            out.labels.push(self.labels[i]);
            out.category.push(self.category[i]);
            out.sources.push(self.sources[i]);
        }
        out.pairs = self.pairs.iter().filter_map(|(u, s)| Some((*new_index.get(u)?, *new_index.get(s)?))).collect();
        out
    }

    /// Concatenates two sets of the same dimension (callers check it) and
    /// categories.
    pub fn concat(&self, other: &Self) -> Self {
        debug_assert_eq!(self.dim, other.dim);
        let off = self.len();
        let mut out = self.clone();
        out.x.extend_from_slice(&other.x);
        out.ids.extend(other.ids.iter().cloned());
        out.labels.extend(&other.labels);
        out.category.extend(&other.category);
        out.sources.extend(&other.sources);
        out.pairs.extend(other.pairs.iter().map(|(u, s)| (u + off, s + off)));
        out
    }

    /// Training targets `[len, outputs]`: column 0 is "unsafe", then one
    /// column per category that is 1 when the sample is unsafe in it.
    pub fn targets(&self, multilabel: bool) -> (Vec<f32>, usize) {
        let outputs = if multilabel { 1 + self.categories.len() } else { 1 };
        let mut t = vec![0.0; self.len() * outputs];
        for i in 0..self.len() {
            t[i * outputs] = f32::from(u8::from(self.labels[i]));
            if multilabel
                && self.labels[i]
                && let Some(c) = self.category[i]
            {
                t[i * outputs + 1 + c] = 1.0;
            }
        }
        (t, outputs)
    }

    /// SHA-256 over ids, labels and vectors: identifies training data in
    /// model cards.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for i in 0..self.len() {
            h.update(self.ids[i].as_bytes());
            h.update([u8::from(self.labels[i])]);
            for v in self.row(i) {
                h.update(v.to_le_bytes());
            }
        }
        hex::encode(h.finalize())
    }
}
