//! Safety policies as text: per category, phrases naming the harmful
//! feature and safe stand-ins for it, and templates that turn them into
//! prompts (for zero-shot scoring) and edit instructions (for making
//! counterfactual pairs). A policy is a TOML file; see `policies/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::seed::derive_seed;
use crate::taxonomy::Taxonomy;
use crate::{DataError, Result};

/// One category of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyCategory {
    /// A category of the policy's taxonomy.
    pub name: String,
    /// Phrases naming the harmful feature ("a raised middle finger").
    #[serde(rename = "unsafe")]
    pub unsafe_: Vec<String>,
    /// Phrases naming a safe stand-in in the same place ("an open palm").
    pub safe: Vec<String>,
}

/// Which way an edit moves an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Put the harmful feature into a safe image.
    Add,
    /// Take it out of an unsafe image.
    Remove,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Add => "add",
            Direction::Remove => "remove",
        }
    }

    /// The edit that flips an image of this label.
    pub fn flipping(is_unsafe: bool) -> Self {
        if is_unsafe { Direction::Remove } else { Direction::Add }
    }
}

/// A policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    /// The taxonomy its categories belong to: a preset name (`unsafebench`,
    /// `safetypairs`) or, as the synthetic benchmark writes it, inline.
    pub taxonomy: crate::descriptor::TaxonomySpec,
    /// Zero-shot prompt templates; `{}` is replaced by a phrase.
    pub templates: Vec<String>,
    /// Edit instruction adding the feature: `{unsafe}` and `{safe}` are replaced.
    pub add: String,
    /// Edit instruction removing it.
    pub remove: String,
    #[serde(rename = "category")]
    pub categories: Vec<PolicyCategory>,
    #[serde(skip)]
    pub path: PathBuf,
    /// SHA-256 of the file it was read from (empty when built in memory).
    #[serde(skip)]
    pub sha256: String,
}

impl Policy {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let mut p: Policy = toml::from_str(&text).map_err(|e| DataError::parse(path, e))?;
        p.path = path.to_path_buf();
        p.sha256 = pairguard_run::sha256_bytes(text.as_bytes());
        p.check()?;
        Ok(p)
    }

    pub fn taxonomy(&self) -> Result<Taxonomy> {
        match &self.taxonomy {
            crate::descriptor::TaxonomySpec::Inline(t) => Ok(t.clone()),
            crate::descriptor::TaxonomySpec::Preset(n) => {
                Taxonomy::preset(n).ok_or_else(|| DataError::parse(&self.path, format!("unknown taxonomy {n:?} (unsafebench, safetypairs)")))
            }
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(DataError::parse(&self.path, m));
        let taxonomy = self.taxonomy()?;
        if self.categories.is_empty() {
            return bad("lists no [[category]]".into());
        }
        if let Some(t) = self.templates.iter().find(|t| !t.contains("{}")) {
            return bad(format!("template {t:?} has no {{}} for the phrase"));
        }
        for (key, text) in [("add", &self.add), ("remove", &self.remove)] {
            if !text.contains("{unsafe}") {
                return bad(format!("`{key}` must name the feature with {{unsafe}}: {text:?}"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.categories {
            if taxonomy.index_of(&c.name).is_none() {
                return bad(format!("category {:?} is not in taxonomy {:?} (known: {})", c.name, taxonomy.name, taxonomy.names().join(", ")));
            }
            if !seen.insert(&c.name) {
                return bad(format!("category {:?} is listed twice", c.name));
            }
            if c.unsafe_.is_empty() || c.safe.is_empty() {
                return bad(format!("category {:?} needs at least one `unsafe` and one `safe` phrase", c.name));
            }
        }
        Ok(())
    }

    pub fn category(&self, name: &str) -> Option<&PolicyCategory> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// The edit instruction for an image of `category` moved in `direction`,
    /// its phrases chosen by `seed`.
    pub fn instruction(&self, category: &PolicyCategory, direction: Direction, seed: u64) -> String {
        let pick = |v: &[String], what: &str| v[(derive_seed(seed, what) % v.len() as u64) as usize].clone();
        let template = match direction {
            Direction::Add => &self.add,
            Direction::Remove => &self.remove,
        };
        template.replace("{unsafe}", &pick(&category.unsafe_, "unsafe")).replace("{safe}", &pick(&category.safe, "safe"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies").join(name)
    }

    #[test]
    fn shipped_policies_cover_their_taxonomies() {
        for (file, n) in [("unsafebench.toml", 11), ("safetypairs.toml", 9)] {
            let p = Policy::from_file(&shipped(file)).unwrap();
            assert_eq!(p.categories.len(), n, "{file}");
            assert_eq!(p.taxonomy().unwrap().len(), n, "{file}");
        }
    }

    #[test]
    fn instructions_are_seeded_and_bad_policies_named() {
        let p = Policy::from_file(&shipped("safetypairs.toml")).unwrap();
        let c = &p.categories[0];
        let a = p.instruction(c, Direction::Add, 1);
        assert_eq!(a, p.instruction(c, Direction::Add, 1));
        assert!(c.unsafe_.iter().any(|u| a.contains(u.as_str())), "{a}");
        let r = p.instruction(c, Direction::Remove, 1);
        assert!(c.safe.iter().any(|s| r.contains(s.as_str())), "{r}");
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(shipped("safetypairs.toml")).unwrap();
        for (from, to, needle) in [
            ("name = \"Nudity\"", "name = \"Spam\"", "not in taxonomy"),
            ("{unsafe}", "the feature", "must name the feature"),
            ("taxonomy = \"safetypairs\"", "taxonomy = \"nope\"", "unknown taxonomy"),
        ] {
            let path = dir.path().join("p.toml");
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let e = Policy::from_file(&path).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("p.toml"), "{from}: {e}");
        }
    }
}
