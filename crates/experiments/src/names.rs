//! File names derived from sample ids.

use pairguard_run::sha256_bytes;

/// A file name for a sample id: the id itself when it is made of
/// `[A-Za-z0-9._-]`; otherwise the other characters become `_` and a hash
/// of the id is appended, so that two ids never share a file.
pub fn file_stem(id: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if !id.is_empty() && id.chars().all(plain) && !id.starts_with('.') {
        return id.to_string();
    }
    let cleaned: String = id.chars().map(|c| if plain(c) { c } else { '_' }).collect();
    format!("{cleaned}-{}", &sha256_bytes(id.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe_and_distinct() {
        assert_eq!(file_stem("img-p0001-o"), "img-p0001-o");
        let (a, b) = (file_stem("a/b"), file_stem("a_b"));
        assert_ne!(a, b);
        assert!(a.starts_with("a_b-") && !a.contains('/'));
        assert!(file_stem("..").starts_with("..-") && file_stem("").starts_with('-'));
    }
}
