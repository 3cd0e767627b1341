//! Category taxonomies as data. Presets cover UnsafeBench's 11 categories and
//! the 9 policy categories SafetyPairs-style pair sets use; descriptors may
//! also define their own.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Canonical name, as written in reports.
    pub name: String,
    /// Other spellings found in manifests (matched case-insensitively).
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    pub name: String,
    pub categories: Vec<Category>,
}

fn cat(name: &str, aliases: &[&str]) -> Category {
    Category { name: name.to_string(), aliases: aliases.iter().map(|a| a.to_string()).collect() }
}

impl Taxonomy {
    /// UnsafeBench (Qu et al., 2024): 11 categories shared by its real
    /// (LAION-5B) and AI-generated (Lexica) images.
    pub fn unsafebench() -> Self {
        Taxonomy {
            name: "unsafebench".into(),
            categories: vec![
                cat("Hate", &[]),
                cat("Harassment", &[]),
                cat("Violence", &[]),
                cat("Self-harm", &["Self harm", "Selfharm"]),
                cat("Sexual", &[]),
                cat("Shocking", &[]),
                cat("Illegal activity", &["Illegal Activity", "Illegal"]),
                cat("Deception", &[]),
                cat("Political", &[]),
                cat("Public and personal health", &["Health", "Public and Personal Health"]),
                cat("Spam", &[]),
            ],
        }
    }

    /// The nine policy categories (O1-O9 of the LlavaGuard policy) that
    /// SafetyPairs-style counterfactual pair sets are organised by.
    pub fn safetypairs() -> Self {
        Taxonomy {
            name: "safetypairs".into(),
            categories: vec![
                cat("Hate, humiliation, harassment", &["O1", "Hate", "Harassment"]),
                cat("Violence, harm, cruelty", &["O2", "Violence"]),
                cat("Sexual content", &["O3", "Sexual"]),
                cat("Nudity", &["O4", "Nudity content"]),
                cat("Criminal planning", &["O5"]),
                cat("Weapons or substance abuse", &["O6", "Weapons", "Substance abuse"]),
                cat("Self-harm", &["O7", "Self harm"]),
                cat("Animal cruelty", &["O8"]),
                cat("Disasters or emergencies", &["O9", "Disasters"]),
            ],
        }
    }

    /// A taxonomy with numbered categories, used by the synthetic benchmark.
    pub fn numbered(name: &str, n: usize) -> Self {
        Taxonomy { name: name.into(), categories: (0..n).map(|i| cat(&format!("category-{i}"), &[])).collect() }
    }

    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "unsafebench" => Some(Self::unsafebench()),
            "safetypairs" => Some(Self::safetypairs()),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.categories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    pub fn names(&self) -> Vec<&str> {
        self.categories.iter().map(|c| c.name.as_str()).collect()
    }

    /// Resolves a raw manifest value to a canonical category name.
    pub fn resolve(&self, raw: &str) -> Option<&str> {
        let raw = raw.trim();
        self.categories
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(raw) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(raw)))
            .map(|c| c.name.as_str())
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.categories.iter().position(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_published_sizes() {
        assert_eq!(Taxonomy::unsafebench().len(), 11);
        assert_eq!(Taxonomy::safetypairs().len(), 9);
    }

    #[test]
    fn resolve_matches_aliases_case_insensitively() {
        let t = Taxonomy::unsafebench();
        assert_eq!(t.resolve("illegal activity"), Some("Illegal activity"));
        assert_eq!(t.resolve(" Self harm "), Some("Self-harm"));
        assert_eq!(t.resolve("Gambling"), None);
    }
}
