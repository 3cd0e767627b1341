//! Loading a dataset: descriptor -> manifest rows -> validated samples.
//! Every problem becomes a [`Finding`]; by default any finding fails the load
//! (nothing is dropped silently), with `skip_invalid` the offending rows are
//! dropped and listed in the [`Report`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::descriptor::Descriptor;
use crate::embeddings::EmbeddingStore;
use crate::hub::{self, HubOptions, RepoKind};
use crate::images::{self, ImageCheck};
use crate::readers::{self, RawRow, RawValue};
use crate::sample::{ImageRef, Label, PairMember, PairRole, Sample, Source, Split};
use crate::taxonomy::Taxonomy;
use crate::validate::{Finding, Report};
use crate::{DataError, Result};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Drop invalid rows (each one reported) instead of failing.
    pub skip_invalid: bool,
    pub image_check: ImageCheck,
    pub hub: HubOptions,
    /// Load the embedding store ([`Descriptor::default_store_path`]); off
    /// when the store is what is about to be made.
    pub embeddings: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { skip_invalid: false, image_check: ImageCheck::default(), hub: HubOptions::default(), embeddings: true }
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub descriptor: Descriptor,
    pub taxonomy: Taxonomy,
    pub samples: Vec<Sample>,
    pub embeddings: Option<EmbeddingStore>,
    /// The manifest files actually read (local or from the Hub cache).
    pub manifest_files: Vec<PathBuf>,
    pub report: Report,
}

/// Where a sample came from, for findings raised after conversion.
#[derive(Debug, Clone)]
struct Origin {
    file: PathBuf,
    row: usize,
}

impl Dataset {
    /// Loads and validates; fails on the first invalid row unless
    /// `skip_invalid` is set.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Self> {
        let ds = Self::load_with_report(path, opts)?;
        if !ds.report.is_clean() && !opts.skip_invalid {
            return Err(DataError::Invalid {
                dataset: ds.descriptor.name.clone(),
                count: ds.report.findings.len(),
                first: ds.report.findings[0].to_string(),
            });
        }
        Ok(ds)
    }

    /// Loads, returning every finding; invalid rows are excluded from
    /// `samples` and listed in `report`. Fails only when the dataset cannot
    /// be read at all (missing descriptor, unreadable manifest, ...).
    pub fn load_with_report(path: &Path, opts: &LoadOptions) -> Result<Self> {
        let descriptor = Descriptor::from_file(path)?;
        let taxonomy = descriptor.taxonomy()?;
        let manifest_files = manifest_files(&descriptor, &opts.hub)?;
        let root = match &descriptor.root {
            Some(r) => descriptor.base_dir().join(r),
            None => manifest_files[0].parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let mut findings = Vec::new();
        let mut samples = Vec::new();
        let mut origins = Vec::new();
        let mut dropped_rows = 0;
        for file in &manifest_files {
            for raw in readers::read_manifest(&descriptor, file)? {
                match convert(&descriptor, &taxonomy, &root, &raw) {
                    Ok(s) => {
                        samples.push(s);
                        origins.push(Origin { file: raw.file.clone(), row: raw.row });
                    }
                    Err(f) => {
                        findings.push(f);
                        dropped_rows += 1;
                    }
                }
            }
        }
        if samples.is_empty() && dropped_rows == 0 {
            let files: Vec<String> = manifest_files.iter().map(|f| f.display().to_string()).collect();
            return Err(DataError::Parse {
                path: descriptor.path.clone(),
                message: format!("no samples: its manifests ({}) hold no rows", files.join(", ")),
            });
        }

        let store = descriptor.default_store_path();
        let embeddings = match (opts.embeddings, &descriptor.embeddings) {
            (false, _) => None,
            (true, Some(_)) if !store.exists() => {
                return Err(DataError::MissingStore { store, descriptor: descriptor.path.clone() });
            }
            (true, _) if store.exists() => Some(EmbeddingStore::load(&store)?),
            (true, _) => None,
        };

        let mut bad: HashSet<usize> = HashSet::new();
        let finding = |i: usize, s: &Sample, field: &str, message: String| Finding {
            file: origins[i].file.clone(),
            row: origins[i].row,
            id: Some(s.id.clone()),
            field: field.into(),
            message,
        };

        // Duplicate ids: the first occurrence wins, later ones are findings.
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (i, s) in samples.iter().enumerate() {
            if let Some(&j) = first_seen.get(s.id.as_str()) {
                findings.push(finding(i, s, "id", format!("duplicate id, first used at row {}", origins[j].row)));
                bad.insert(i);
            } else {
                first_seen.insert(&s.id, i);
            }
        }

        // Pairs: exactly one original and one counterfactual, opposite labels.
        let mut by_pair: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in samples.iter().enumerate() {
            if let Some(p) = &s.pair
                && !bad.contains(&i)
            {
                by_pair.entry(p.pair_id.as_str()).or_default().push(i);
            }
        }
        for (pair_id, members) in &by_pair {
            let problem = pair_problem(&samples, members);
            if let Some(msg) = problem {
                for &i in members {
                    findings.push(finding(i, &samples[i], "pair_id", format!("pair {pair_id:?}: {msg}")));
                    bad.insert(i);
                }
            }
        }

        // Embeddings: every sample needs a vector when a store is given.
        for (i, s) in samples.iter().enumerate() {
            match (&embeddings, &s.image) {
                (Some(store), _) if store.get(&s.id).is_none() => {
                    findings.push(finding(i, s, "embedding", "no vector for this id in the embedding store".into()));
                    bad.insert(i);
                }
                (None, None) => {
                    findings.push(finding(i, s, "image", "no image and no embedding store".into()));
                    bad.insert(i);
                }
                _ => {}
            }
        }

        // Images, checked in parallel: file present, header readable, pixel
        // count under the limit, and with ImageCheck::Decode fully decodable.
        let image_errors = check_images(&samples, opts.image_check, descriptor.max_pixels);
        for (i, msg) in image_errors {
            findings.push(finding(i, &samples[i], "image", msg));
            bad.insert(i);
        }

        findings.sort_by(|a, b| (&a.file, a.row).cmp(&(&b.file, b.row)));
        let mut dropped = Vec::new();
        let samples: Vec<Sample> = samples
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| {
                if bad.contains(&i) {
                    dropped.push(s.id);
                    None
                } else {
                    Some(s)
                }
            })
            .collect();
        Ok(Dataset { descriptor, taxonomy, samples, embeddings, manifest_files, report: Report { findings, dropped, dropped_rows } })
    }

    /// The embedding of a sample, if the dataset has a store.
    pub fn embedding(&self, id: &str) -> Option<&[f32]> {
        self.embeddings.as_ref().and_then(|e| e.get(id))
    }
}

fn pair_problem(samples: &[Sample], members: &[usize]) -> Option<String> {
    if members.len() != 2 {
        return Some(format!("has {} member(s); a pair needs exactly 2", members.len()));
    }
    let (a, b) = (&samples[members[0]], &samples[members[1]]);
    let (ra, rb) = (a.pair.as_ref()?.role, b.pair.as_ref()?.role);
    if ra == rb {
        return Some(format!("both members have role {}", ra.name()));
    }
    if a.label == b.label {
        return Some(format!("both members are labelled {}; a pair needs opposite labels", a.label.name()));
    }
    None
}

fn check_images(samples: &[Sample], level: ImageCheck, max_pixels: u64) -> Vec<(usize, String)> {
    use rayon::prelude::*;
    if level == ImageCheck::None {
        return Vec::new();
    }
    samples.par_iter().enumerate().filter_map(|(i, s)| images::check(s.image.as_ref()?, level, max_pixels).err().map(|m| (i, m))).collect()
}

fn manifest_files(d: &Descriptor, hub_opts: &HubOptions) -> Result<Vec<PathBuf>> {
    let Some(spec) = &d.hub else {
        return Ok(d.manifest.iter().map(|m| d.base_dir().join(m)).collect());
    };
    for m in &d.manifest {
        if !spec.files.contains(m) {
            return Err(DataError::Descriptor { path: d.path.clone(), message: format!("manifest {m:?} is not among [hub] files") });
        }
    }
    let kind = RepoKind::parse(&spec.kind).expect("checked when the descriptor was read");
    let fetched = hub::fetch(&spec.repo, kind, &spec.revision, &spec.files, hub_opts)?;
    Ok(d.manifest.iter().map(|m| fetched[spec.files.iter().position(|f| f == m).expect("checked above")].clone()).collect())
}

/// Maps one raw row onto a [`Sample`], or the first problem found.
fn convert(d: &Descriptor, taxonomy: &Taxonomy, root: &Path, raw: &RawRow) -> Result<Sample, Finding> {
    let c = &d.columns;
    let finding = |field: &str, id: Option<&str>, message: String| Finding {
        file: raw.file.clone(),
        row: raw.row,
        id: id.map(str::to_string),
        field: field.to_string(),
        message,
    };
    let text = |col: &Option<String>| col.as_ref().and_then(|c| raw.get(c)).and_then(RawValue::as_str);

    let id = match &c.id {
        Some(col) => match raw.get(col).and_then(RawValue::as_str) {
            Some(v) => v.trim().to_string(),
            None if raw.get(col).is_none() && !raw.fields.contains_key(col) => default_id(raw),
            None => return Err(finding(col, None, "empty id".into())),
        },
        None => default_id(raw),
    };
    let id_ref = Some(id.as_str());

    let label_raw = raw.get(&c.label).and_then(RawValue::as_str).ok_or_else(|| finding(&c.label, id_ref, "missing label".into()))?;
    let label = if d.labels.safe.iter().any(|v| v.eq_ignore_ascii_case(label_raw.trim())) {
        Label::Safe
    } else if d.labels.unsafe_.iter().any(|v| v.eq_ignore_ascii_case(label_raw.trim())) {
        Label::Unsafe
    } else {
        return Err(finding(&c.label, id_ref, format!("unknown label {label_raw:?} (safe: {:?}, unsafe: {:?})", d.labels.safe, d.labels.unsafe_)));
    };

    let category = match text(&c.category) {
        None => None,
        Some(raw_cat) => Some(d.resolve_category(taxonomy, raw_cat).ok_or_else(|| {
            finding(
                c.category.as_deref().unwrap_or("category"),
                id_ref,
                format!("unknown category {raw_cat:?} for taxonomy {:?} (known: {})", taxonomy.name, taxonomy.names().join(", ")),
            )
        })?),
    };

    let source = match text(&c.source) {
        None => Source::Unknown,
        Some(v) => {
            let m = &d.sources;
            let is = |list: &Vec<String>| list.iter().any(|x| x.eq_ignore_ascii_case(v.trim()));
            if is(&m.real) {
                Source::Real
            } else if is(&m.ai_generated) {
                Source::AiGenerated
            } else if is(&m.unknown) {
                Source::Unknown
            } else {
                Source::parse(v).ok_or_else(|| {
                    finding(
                        c.source.as_deref().unwrap_or("source"),
                        id_ref,
                        format!("unknown source {v:?} (map it under [sources] in the descriptor)"),
                    )
                })?
            }
        }
    };

    let pair = match (text(&c.pair_id), text(&c.pair_role)) {
        (None, None) => None,
        (Some(pid), Some(role)) => Some(PairMember {
            pair_id: pid.trim().to_string(),
            role: PairRole::parse(role).ok_or_else(|| {
                finding(c.pair_role.as_deref().unwrap_or("pair_role"), id_ref, format!("unknown pair role {role:?} (original or counterfactual)"))
            })?,
        }),
        (Some(_), None) => {
            return Err(finding(c.pair_role.as_deref().unwrap_or("pair_role"), id_ref, "pair member without a role".into()));
        }
        (None, Some(_)) => {
            return Err(finding(c.pair_id.as_deref().unwrap_or("pair_id"), id_ref, "role given without a pair id".into()));
        }
    };

    let split = match text(&c.split) {
        None => None,
        Some(v) => Some(
            Split::parse(v)
                .ok_or_else(|| finding(c.split.as_deref().unwrap_or("split"), id_ref, format!("unknown split {v:?} (train, validation or test)")))?,
        ),
    };

    let image_col = c.image.as_deref().unwrap_or("image");
    let image = match c.image.as_ref().and_then(|col| raw.get(col)) {
        None | Some(RawValue::Null) => None,
        Some(RawValue::Image { bytes, name }) => Some(ImageRef::Bytes { bytes: bytes.clone(), name: name.clone() }),
        Some(RawValue::Str(p)) if p.trim().is_empty() => None,
        Some(RawValue::Str(p)) => {
            let path = images::resolve_under_root(root, p.trim()).map_err(|m| finding(image_col, id_ref, m))?;
            if !path.is_file() {
                return Err(finding(image_col, id_ref, format!("missing file {}", path.display())));
            }
            Some(ImageRef::Path(path))
        }
    };

    Ok(Sample { id, image, label, category, pair, group: text(&c.group).map(|g| g.trim().to_string()), source, split })
}

fn default_id(raw: &RawRow) -> String {
    let stem = raw.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{stem}:{}", raw.row)
}
