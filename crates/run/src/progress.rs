//! Progress reporting without printing: long-running library work (embedding,
//! sweeps) reports through this trait, and the command-line tool draws it.

/// Receives progress from long-running work. Every method has a no-op
/// default, so an implementation overrides only what it shows.
pub trait Progress: Sync {
    /// Work of `total` units (`unit` names them: "images", "fits") begins.
    fn start(&self, _total: u64, _unit: &str) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// What is being worked on now.
    fn stage(&self, _what: &str) {}
    /// Something the user should read (a skipped image, a budget left out).
    fn note(&self, _message: &str) {}
    /// The work is over.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
