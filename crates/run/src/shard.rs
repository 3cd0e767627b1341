//! One job split across machines with no scheduler of pairguard's own: each
//! worker takes a [`Shard`] (a deterministic, balanced, contiguous slice of
//! the job's ordered work units), writes its results into a shared folder,
//! and leaves a completion marker in the folder's [`Ledger`]. A merge step
//! then checks that the finished shards belong to one run and cover every
//! unit exactly once before it assembles the result.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::fs::write_atomic;
use crate::{Error, Result};

/// Shard `index` of `count`, counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            return Err(Error::Shard("a job needs at least one shard (N in I/N must be positive)".into()));
        }
        if index >= count {
            return Err(Error::Shard(format!("shard index {index} is out of range for {count} shards (indices run from 0 to {})", count - 1)));
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// This shard's units of `0..units`: contiguous, in order, and balanced
    /// (sizes differ by at most one); the shards of one count tile the range.
    pub fn range(&self, units: usize) -> Range<usize> {
        self.index * units / self.count..(self.index + 1) * units / self.count
    }

    /// Where the shard index comes from when `--shard` is not given: a Slurm
    /// job array (`SLURM_ARRAY_TASK_ID`) or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`), with `shards` as the count; without
    /// `shards`, a Slurm array alone (`SLURM_ARRAY_TASK_COUNT` shards,
    /// counted from `SLURM_ARRAY_TASK_MIN`). Returns the shard and the
    /// variable it came from, or None when the process is not one of many.
    pub fn from_environment(shards: Option<usize>, var: impl Fn(&str) -> Option<String>) -> Result<Option<(Shard, &'static str)>> {
        let number = |name: &'static str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| Error::Shard(format!("{name}={v:?} is not a non-negative integer"))),
            }
        };
        const SLURM: &str = "SLURM_ARRAY_TASK_ID";
        const K8S: &str = "JOB_COMPLETION_INDEX";
        match shards {
            Some(count) => {
                let (index, from) = match (number(SLURM)?, number(K8S)?) {
                    (Some(i), _) => (i, SLURM),
                    (None, Some(i)) => (i, K8S),
                    (None, None) => {
                        return Err(Error::Shard(format!(
                            "--shards {count} takes this process's index from {SLURM} (a Slurm job array) or {K8S} (a Kubernetes Indexed Job), and neither is set; give --shard I/{count} instead"
                        )));
                    }
                };
                Shard::new(index, count).map(|s| Some((s, from))).map_err(|e| Error::Shard(format!("{from}: {e}")))
            }
            None => {
                let (Some(id), Some(count)) = (number(SLURM)?, number("SLURM_ARRAY_TASK_COUNT")?) else { return Ok(None) };
                let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                let index = id.checked_sub(min).ok_or_else(|| Error::Shard(format!("{SLURM}={id} is below SLURM_ARRAY_TASK_MIN={min}")))?;
                Shard::new(index, count)
                    .map(|s| Some((s, SLURM)))
                    .map_err(|e| Error::Shard(format!("{SLURM}={id} (from {min}) in an array of {count} tasks: {e}; give --shards N or --shard I/N")))
            }
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Shard(format!("shard {s:?}: expected I/N, such as 0/4 (shard 0 of 4)"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        Shard::new(i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?)
    }
}

impl TryFrom<String> for Shard {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

/// What one process does with a shardable job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Assignment {
    /// All of it, ending with the merged result.
    #[default]
    Whole,
    /// One shard's units, ending with its completion marker.
    Shard(Shard),
    /// No new work: check that the shards cover the job, then merge.
    Collect,
}

/// A finished shard's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    pub shard: Shard,
    /// Hash of the run's identity (inputs and settings): shards of one run share it.
    pub identity: String,
    /// The job's number of units, and the ones this shard did.
    pub units: usize,
    pub start: usize,
    pub end: usize,
}

/// The completion markers of a shared output folder, one file per shard
/// (`shards/I-of-N.json`), each written atomically once its shard's work is.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
}

impl Ledger {
    /// The ledger of the output folder `out`.
    pub fn of(out: &Path) -> Self {
        Ledger { dir: out.join("shards") }
    }

    /// Where `shard`'s marker is written.
    pub fn marker(&self, shard: Shard) -> PathBuf {
        self.dir.join(format!("{}-of-{}.json", shard.index, shard.count))
    }

    fn read(path: &Path) -> Result<Marker> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::parse(path, e))
    }

    /// Whether `shard` of this run has finished. A marker of another run is
    /// an error: its folder's other files would be mixed with this run's.
    pub fn finished(&self, shard: Shard, identity: &str, units: usize) -> Result<bool> {
        let path = self.marker(shard);
        if !path.is_file() {
            return Ok(false);
        }
        let m = Self::read(&path)?;
        if m.identity != identity || m.units != units {
            return Err(Error::Shard(format!(
                "{}: shard {shard} finished for another run (other inputs or settings) in this output folder; choose another output or delete it",
                path.display()
            )));
        }
        Ok(true)
    }

    /// Records that `shard` did its units of a job of `units`.
    pub fn mark(&self, shard: Shard, identity: &str, units: usize) -> Result<PathBuf> {
        let r = shard.range(units);
        let marker = Marker { shard, identity: identity.into(), units, start: r.start, end: r.end };
        let path = self.marker(shard);
        write_atomic(&path, &serde_json::to_vec_pretty(&marker).map_err(|e| Error::parse(&path, e))?)?;
        Ok(path)
    }

    /// Checks that the finished shards belong to the run `identity` and
    /// cover its `units` completely and once; the error names the shards
    /// still missing. Returns the markers in shard order.
    pub fn complete(&self, identity: &str, units: usize) -> Result<Vec<Marker>> {
        let mut markers = Vec::new();
        if self.dir.is_dir() {
            let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
            for entry in entries {
                let path = entry.map_err(|e| Error::io(&self.dir, e))?.path();
                if path.extension().is_some_and(|x| x == "json") {
                    markers.push((Self::read(&path)?, path));
                }
            }
        }
        let dir = self.dir.display();
        if markers.is_empty() {
            return Err(Error::Shard(format!("{dir}: no shard has finished yet")));
        }
        markers.sort_by_key(|(m, _)| m.shard);
        for (m, path) in &markers {
            if m.identity != identity || m.units != units {
                return Err(Error::Shard(format!(
                    "{}: shard {} was run with other inputs or settings than the rest of this job",
                    path.display(),
                    m.shard
                )));
            }
            if m.shard.range(units) != (m.start..m.end) || *path != self.marker(m.shard) {
                return Err(Error::Shard(format!("{}: not the marker of shard {}", path.display(), m.shard)));
            }
        }
        // Every unit covered once: shards of different counts may be mixed
        // as long as they tile the job.
        let mut cover: BTreeMap<usize, Shard> = BTreeMap::new();
        for (m, _) in &markers {
            for u in m.start..m.end {
                if let Some(other) = cover.insert(u, m.shard) {
                    return Err(Error::Shard(format!("{dir}: shards {other} and {} both did unit {u}; delete the markers of one split", m.shard)));
                }
            }
        }
        if cover.len() < units {
            let counts: Vec<usize> = markers.iter().map(|(m, _)| m.shard.count).collect();
            let missing: Vec<String> = if counts.iter().all(|&c| c == counts[0]) {
                let n = counts[0];
                (0..n).filter_map(|i| Shard::new(i, n).ok()).filter(|s| !markers.iter().any(|(m, _)| m.shard == *s)).map(|s| s.to_string()).collect()
            } else {
                let uncovered: Vec<usize> = (0..units).filter(|u| !cover.contains_key(u)).collect();
                vec![format!("units {:?}", uncovered)]
            };
            return Err(Error::Shard(format!("{dir}: shards not finished: {}", missing.join(", "))));
        }
        Ok(markers.into_iter().map(|(m, _)| m).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_units_in_balanced_contiguous_ranges() {
        for units in [0, 1, 5, 17, 100] {
            for count in 1..=7 {
                let ranges: Vec<Range<usize>> = (0..count).map(|i| Shard::new(i, count).unwrap().range(units)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[count - 1].end, units);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{units} / {count}: {sizes:?}");
            }
        }
    }

    #[test]
    fn shards_parse_and_refuse_what_is_not_one() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::new(2, 4).unwrap());
        assert_eq!(Shard::new(2, 4).unwrap().to_string(), "2/4");
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert!("4/4".parse::<Shard>().unwrap_err().to_string().contains("out of range"));
    }

    #[test]
    fn the_environment_names_the_shard() {
        let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let slurm = env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "0")]);
        assert_eq!(Shard::from_environment(None, slurm).unwrap(), Some((Shard::new(3, 4).unwrap(), "SLURM_ARRAY_TASK_ID")));
        // A rerun of one task is an array of one: --shards keeps the count.
        let rerun = env(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "1"), ("SLURM_ARRAY_TASK_MIN", "2")]);
        assert_eq!(Shard::from_environment(Some(4), rerun).unwrap().unwrap().0, Shard::new(2, 4).unwrap());
        let one_based = env(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "1")]);
        assert_eq!(Shard::from_environment(None, one_based).unwrap().unwrap().0, Shard::new(3, 4).unwrap());
        let k8s = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert_eq!(Shard::from_environment(Some(2), k8s).unwrap(), Some((Shard::new(1, 2).unwrap(), "JOB_COMPLETION_INDEX")));
        assert_eq!(Shard::from_environment(None, k8s).unwrap(), None, "an Indexed Job's index alone does not give the count");
        assert_eq!(Shard::from_environment(None, env(&[])).unwrap(), None);
        let e = Shard::from_environment(Some(4), env(&[])).unwrap_err().to_string();
        assert!(e.contains("--shard I/4"), "{e}");
        let e = Shard::from_environment(Some(1), k8s).unwrap_err();
        assert!(e.to_string().contains("JOB_COMPLETION_INDEX: shard index 1 is out of range for 1 shards"), "{e}");
        let e = Shard::from_environment(None, env(&[("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_COUNT", "2")])).unwrap_err();
        assert!(e.to_string().contains("SLURM_ARRAY_TASK_ID=\"x\""), "{e}");
    }

    #[test]
    fn the_ledger_names_missing_shards_and_refuses_foreign_ones() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::of(dir.path());
        let s = |i, n| Shard::new(i, n).unwrap();
        assert!(ledger.complete("a", 10).unwrap_err().to_string().contains("no shard has finished"));
        assert!(!ledger.finished(s(0, 4), "a", 10).unwrap());
        ledger.mark(s(0, 4), "a", 10).unwrap();
        ledger.mark(s(2, 4), "a", 10).unwrap();
        assert!(ledger.finished(s(0, 4), "a", 10).unwrap());
        assert!(ledger.finished(s(0, 4), "b", 10).unwrap_err().to_string().contains("another run"));
        let e = ledger.complete("a", 10).unwrap_err().to_string();
        assert!(e.contains("shards not finished: 1/4, 3/4"), "{e}");
        ledger.mark(s(1, 4), "a", 10).unwrap();
        ledger.mark(s(3, 4), "a", 10).unwrap();
        assert_eq!(ledger.complete("a", 10).unwrap().len(), 4);
        assert!(ledger.complete("b", 10).unwrap_err().to_string().contains("other inputs or settings"));
        // Shards of another split of the same job overlap.
        ledger.mark(s(1, 2), "a", 10).unwrap();
        assert!(ledger.complete("a", 10).unwrap_err().to_string().contains("both did unit"));
    }
}
