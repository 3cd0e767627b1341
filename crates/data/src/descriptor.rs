//! Dataset descriptors: a TOML file under `datasets/` that says where a
//! dataset's manifest and images are, which columns hold what, and how raw
//! label, source and category values map onto pairguard's data model.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::taxonomy::Taxonomy;
use crate::{DataError, Result};

/// PIL's default decompression-bomb limit: images above it are refused.
pub const DEFAULT_MAX_PIXELS: u64 = 89_478_485;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
    Parquet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaxonomySpec {
    Preset(String),
    Inline(Taxonomy),
}

/// Column names in the manifest. Only `label` is required; without an `id`
/// column ids are `<file stem>:<row>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Columns {
    pub id: Option<String>,
    pub image: Option<String>,
    pub label: String,
    pub category: Option<String>,
    pub source: Option<String>,
    pub pair_id: Option<String>,
    pub pair_role: Option<String>,
    pub group: Option<String>,
    pub split: Option<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            id: Some("id".into()),
            image: Some("image".into()),
            label: "label".into(),
            category: Some("category".into()),
            source: Some("source".into()),
            pair_id: Some("pair_id".into()),
            pair_role: Some("pair_role".into()),
            group: Some("group".into()),
            split: Some("split".into()),
        }
    }
}

/// Raw label values for each class, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelMap {
    pub safe: Vec<String>,
    #[serde(rename = "unsafe")]
    pub unsafe_: Vec<String>,
}

impl Default for LabelMap {
    fn default() -> Self {
        LabelMap { safe: vec!["safe".into(), "0".into(), "false".into()], unsafe_: vec!["unsafe".into(), "1".into(), "true".into()] }
    }
}

/// Raw source values; anything else is an error unless listed as unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SourceMap {
    pub real: Vec<String>,
    #[serde(rename = "ai-generated")]
    pub ai_generated: Vec<String>,
    pub unknown: Vec<String>,
}

/// A pinned Hugging Face repository holding the manifest files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpec {
    /// `owner/name`.
    pub repo: String,
    /// `dataset` (default) or `model`.
    #[serde(default = "default_repo_kind")]
    pub kind: String,
    /// A commit hash, so the data cannot change under an experiment.
    pub revision: String,
    /// Repository paths to fetch; the manifest paths are resolved among them.
    pub files: Vec<String>,
}

fn default_repo_kind() -> String {
    "dataset".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Descriptor {
    pub name: String,
    pub format: Format,
    /// Manifest files, relative to the descriptor (or to the hub snapshot).
    pub manifest: Vec<String>,
    /// Root that image paths are resolved against and must stay under.
    #[serde(default)]
    pub root: Option<String>,
    /// A precomputed embedding store for the samples (safetensors).
    #[serde(default)]
    pub embeddings: Option<String>,
    #[serde(default = "default_taxonomy")]
    pub taxonomy: TaxonomySpec,
    #[serde(default = "default_max_pixels")]
    pub max_pixels: u64,
    #[serde(default)]
    pub columns: Columns,
    #[serde(default)]
    pub labels: LabelMap,
    #[serde(default)]
    pub sources: SourceMap,
    /// Extra raw-category -> taxonomy-name mappings beyond the aliases.
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
    #[serde(default)]
    pub hub: Option<HubSpec>,
    /// Where the descriptor was read from; paths resolve against its folder.
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_taxonomy() -> TaxonomySpec {
    TaxonomySpec::Preset("unsafebench".into())
}

fn default_max_pixels() -> u64 {
    DEFAULT_MAX_PIXELS
}

impl Descriptor {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let mut d: Descriptor = toml::from_str(&text).map_err(|e| DataError::Descriptor { path: path.to_path_buf(), message: e.to_string() })?;
        d.path = path.to_path_buf();
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<()> {
        let err = |message: String| DataError::Descriptor { path: self.path.clone(), message };
        if self.manifest.is_empty() {
            return Err(err("`manifest` lists no files".into()));
        }
        let taxonomy = self.taxonomy().map_err(|e| err(e.to_string()))?;
        for (raw, name) in &self.categories {
            if taxonomy.index_of(name).is_none() {
                return Err(err(format!(
                    "[categories] maps {raw:?} to {name:?}, which is not in taxonomy {:?} (known: {})",
                    taxonomy.name,
                    taxonomy.names().join(", ")
                )));
            }
        }
        if let Some(hub) = &self.hub {
            if !matches!(hub.kind.as_str(), "dataset" | "model") {
                return Err(err(format!("[hub] kind must be `dataset` or `model`, not {:?}", hub.kind)));
            }
            if hub.repo.split('/').count() != 2 {
                return Err(err(format!("[hub] repo must be `owner/name`, not {:?}", hub.repo)));
            }
        }
        Ok(())
    }

    /// Where the embedding store lives: the `embeddings` path, else
    /// `<name>.embeddings.safetensors` beside the descriptor, which is where
    /// `pairguard embed` writes by default, so embed -> train needs no edit.
    pub fn default_store_path(&self) -> PathBuf {
        match &self.embeddings {
            Some(e) => self.base_dir().join(e),
            None => self.base_dir().join(format!("{}.embeddings.safetensors", self.name)),
        }
    }

    /// The folder that relative paths in the descriptor are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    pub fn taxonomy(&self) -> Result<Taxonomy> {
        match &self.taxonomy {
            TaxonomySpec::Inline(t) => Ok(t.clone()),
            TaxonomySpec::Preset(name) => Taxonomy::preset(name).ok_or_else(|| DataError::Descriptor {
                path: self.path.clone(),
                message: format!("unknown taxonomy preset {name:?} (known: unsafebench, safetypairs)"),
            }),
        }
    }

    /// Resolves a raw category value: explicit mapping first, then the
    /// taxonomy's names and aliases.
    pub fn resolve_category(&self, taxonomy: &Taxonomy, raw: &str) -> Option<String> {
        if let Some(name) = self.categories.get(raw.trim()) {
            return Some(name.clone());
        }
        taxonomy.resolve(raw).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Descriptor> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.toml");
        std::fs::write(&path, text).unwrap();
        Descriptor::from_file(&path)
    }

    #[test]
    fn minimal_descriptor_gets_defaults() {
        let d = parse("name = \"x\"\nformat = \"jsonl\"\nmanifest = [\"m.jsonl\"]\n").unwrap();
        assert_eq!(d.columns.label, "label");
        assert_eq!(d.max_pixels, DEFAULT_MAX_PIXELS);
        assert_eq!(d.taxonomy().unwrap().len(), 11);
    }

    #[test]
    fn unknown_keys_and_bad_mappings_are_rejected_with_the_file_name() {
        let e = parse("name = \"x\"\nformat = \"jsonl\"\nmanifest = [\"m\"]\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("d.toml") && e.to_string().contains("bogus"), "{e}");
        let e = parse("name = \"x\"\nformat = \"csv\"\nmanifest = [\"m\"]\n[categories]\nGore = \"Gore\"\n").unwrap_err();
        assert!(e.to_string().contains("\"Gore\""), "{e}");
        let e = parse("name = \"x\"\nformat = \"csv\"\nmanifest = [\"m\"]\ntaxonomy = \"nope\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown taxonomy preset"), "{e}");
    }

    #[test]
    fn inline_taxonomy_parses() {
        let d =
            parse("name = \"x\"\nformat = \"csv\"\nmanifest = [\"m\"]\n[taxonomy]\nname = \"mine\"\ncategories = [{ name = \"Gore\" }]\n").unwrap();
        assert_eq!(d.taxonomy().unwrap().names(), vec!["Gore"]);
    }
}
