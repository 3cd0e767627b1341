//! How a call of a resumable, shardable job ended.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Shard;

/// How a call of a job ended: every job returns this, and a command says
/// the same things for each.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// The whole job is done (by this call, or by shards it collected).
    Done(T),
    /// This shard's units are written and its marker is at `marker`; the
    /// job is finished by collecting the shards once every one has.
    Shard { shard: Shard, marker: PathBuf },
    /// Stopped before its last unit (a limit for tests of resuming): run
    /// the same call again to go on.
    Interrupted,
}

impl<T> Outcome<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(t) => Outcome::Done(f(t)),
            Outcome::Shard { shard, marker } => Outcome::Shard { shard, marker },
            Outcome::Interrupted => Outcome::Interrupted,
        }
    }
}

/// A unit of work (an image, a sample) that failed and was left out, named
/// by its id; the job goes on without it and lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub id: String,
    pub error: String,
}
