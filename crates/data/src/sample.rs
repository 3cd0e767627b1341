//! The data model: a [`Sample`] is one image (or its precomputed embedding)
//! with a safety label and the metadata the experiments slice by.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Safety verdict. "Unsafe" is the positive class everywhere in pairguard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Label {
    Safe,
    Unsafe,
}

impl Label {
    pub fn is_unsafe(self) -> bool {
        self == Label::Unsafe
    }
    pub fn as_f32(self) -> f32 {
        if self.is_unsafe() { 1.0 } else { 0.0 }
    }
    /// The name manifests and reports use (the serde name).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Where an image came from. UnsafeBench reports scores separately for real
/// (LAION) and AI-generated (Lexica) images, so the source is kept per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Source {
    Real,
    AiGenerated,
    #[default]
    Unknown,
}

impl Source {
    /// The name manifests and reports use (the serde name).
    pub fn name(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Source> {
        match s.trim().to_ascii_lowercase().as_str() {
            "real" => Some(Source::Real),
            "ai-generated" | "ai_generated" | "generated" => Some(Source::AiGenerated),
            "unknown" | "" => Some(Source::Unknown),
            _ => None,
        }
    }
}

/// Which side of a counterfactual edit a sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum PairRole {
    /// The unedited image.
    Original,
    /// The image edited to add or remove the safety-relevant feature.
    Counterfactual,
}

impl PairRole {
    pub fn parse(s: &str) -> Option<PairRole> {
        match s.trim().to_ascii_lowercase().as_str() {
            "original" | "orig" | "source" => Some(PairRole::Original),
            "counterfactual" | "edited" | "edit" => Some(PairRole::Counterfactual),
            _ => None,
        }
    }
    /// The name manifests and reports use (the serde name).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PairMember {
    pub pair_id: String,
    pub role: PairRole,
}

/// Dataset split. Assigned by [`crate::split`] unless the manifest fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];
    pub fn parse(s: &str) -> Option<Split> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Some(Split::Train),
            "validation" | "val" | "valid" | "dev" => Some(Split::Validation),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
    /// The name manifests and reports use (the serde name).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Where the pixels of a sample live.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A file, already resolved and checked to lie under the dataset root.
    Path(PathBuf),
    /// Encoded image bytes from a parquet row (the Hugging Face `Image` layout).
    Bytes { bytes: Arc<[u8]>, name: Option<String> },
}

impl std::fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageRef::Path(p) => write!(f, "Path({})", p.display()),
            ImageRef::Bytes { bytes, name } => write!(f, "Bytes({} bytes, {:?})", bytes.len(), name),
        }
    }
}

impl ImageRef {
    /// A short human-readable description for error messages.
    pub fn describe(&self) -> String {
        match self {
            ImageRef::Path(p) => p.display().to_string(),
            ImageRef::Bytes { name, bytes } => match name {
                Some(n) => format!("embedded image {n} ({} bytes)", bytes.len()),
                None => format!("embedded image ({} bytes)", bytes.len()),
            },
        }
    }
}

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Unique within its dataset.
    pub id: String,
    /// The image, if the dataset has pixels; embedding-only datasets have none.
    pub image: Option<ImageRef>,
    pub label: Label,
    /// A category name from the dataset's taxonomy.
    pub category: Option<String>,
    pub pair: Option<PairMember>,
    /// Samples derived from one original share a group, and so a split.
    pub group: Option<String>,
    pub source: Source,
    pub split: Option<Split>,
}

impl Sample {
    /// The key that keeps related samples in the same split: the pair id,
    /// else the explicit group, else the sample's own id.
    pub fn group_key(&self) -> &str {
        if let Some(p) = &self.pair {
            &p.pair_id
        } else if let Some(g) = &self.group {
            g
        } else {
            &self.id
        }
    }
}
