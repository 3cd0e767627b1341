//! The outputs of a guard pairguard did not train (a vision-language judge,
//! a published classifier run elsewhere), read from JSON lines and scored
//! with exactly the metrics a trained guard gets.
//!
//! One line per sample: `id`, a `score` (P(unsafe) in [0, 1]) and/or a
//! `verdict` (`"safe"` or `"unsafe"`), and optional per-category scores
//! `categories: {name: score}`. Either every line has a score, and the
//! decision is `score >= threshold`, or none has, and the verdicts are the
//! scores (0 or 1: ranking metrics then rank verdicts, and calibration is
//! not defined).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::LabeledSet;
use crate::guard::{Evaluation, evaluate_scores};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    categories: BTreeMap<String, f64>,
}

/// What the scores of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreKind {
    /// Probabilities: decisions at a threshold, calibration defined.
    Scores,
    /// Verdicts only, as 0 or 1.
    Verdicts,
}

#[derive(Debug, Clone)]
struct Row {
    /// The line it was read from.
    line: usize,
    score: f64,
    categories: BTreeMap<String, f64>,
}

/// A file of a guard's outputs, one per sample id.
#[derive(Debug, Clone)]
pub struct ScoreFile {
    pub path: PathBuf,
    pub kind: ScoreKind,
    rows: HashMap<String, Row>,
}

/// A score file evaluated on a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalEvaluation {
    pub scores: PathBuf,
    pub kind: ScoreKind,
    pub threshold: f64,
    /// Samples of the dataset the file answers, and those it does not.
    pub answered: usize,
    pub missing: usize,
    pub missing_share: f64,
    pub missing_ids: Vec<String>,
    pub evaluation: Evaluation,
}

fn unit(v: f64) -> bool {
    (0.0..=1.0).contains(&v)
}

impl ScoreFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |line: usize, m: String| Error::ScoreFile { path: path.to_path_buf(), message: format!("line {line}: {m}") };
        let mut rows: HashMap<String, Row> = HashMap::new();
        let mut kind = None;
        for (i, raw) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let n = i + 1;
            let line: Line = serde_json::from_str(raw).map_err(|e| bad(n, e.to_string()))?;
            let verdict = match line.verdict.as_deref() {
                None => None,
                Some("unsafe") => Some(1.0),
                Some("safe") => Some(0.0),
                Some(v) => return Err(bad(n, format!("verdict {v:?} is neither \"safe\" nor \"unsafe\""))),
            };
            let this = if line.score.is_some() { ScoreKind::Scores } else { ScoreKind::Verdicts };
            let score = match (line.score, verdict) {
                (Some(s), _) if !unit(s) => return Err(bad(n, format!("score {s} of {:?} is not in [0, 1]", line.id))),
                (Some(s), _) => s,
                (None, Some(v)) => v,
                (None, None) => return Err(bad(n, format!("{:?} has neither a score nor a verdict", line.id))),
            };
            match kind {
                None => kind = Some(this),
                Some(k) if k != this => {
                    let has = if this == ScoreKind::Scores { "a score" } else { "no score" };
                    return Err(bad(n, format!("{:?} has {has}, unlike the lines before it; give every line a score or none", line.id)));
                }
                Some(_) => {}
            }
            if let Some((c, v)) = line.categories.iter().find(|(_, v)| !unit(**v)) {
                return Err(bad(n, format!("category score {c} = {v} of {:?} is not in [0, 1]", line.id)));
            }
            if let Some(first) = rows.get(&line.id) {
                return Err(bad(n, format!("{:?} again (first on line {})", line.id, first.line)));
            }
            rows.insert(line.id, Row { line: n, score, categories: line.categories });
        }
        let kind = kind.ok_or_else(|| Error::ScoreFile { path: path.to_path_buf(), message: "no scores".into() })?;
        Ok(ScoreFile { path: path.to_path_buf(), kind, rows })
    }

    /// The file's score for each row of `set` (None where it has none);
    /// an id the set lacks is an error.
    pub fn aligned(&self, set: &LabeledSet) -> Result<Vec<Option<f64>>> {
        let known: std::collections::HashSet<&str> = set.ids.iter().map(String::as_str).collect();
        let mut unknown: Vec<&str> = self.rows.keys().map(String::as_str).filter(|id| !known.contains(id)).collect();
        if !unknown.is_empty() {
            unknown.sort();
            let message = format!("{} ids the dataset lacks, such as {:?}", unknown.len(), &unknown[..unknown.len().min(3)]);
            return Err(Error::ScoreFile { path: self.path.clone(), message });
        }
        Ok(set.ids.iter().map(|id| self.rows.get(id).map(|r| r.score)).collect())
    }

    /// The file's scores on `set`. Every id of the file must be in the set;
    /// ids of the set the file lacks are an error unless `allow_missing`,
    /// and are then left out of the metrics and counted.
    pub fn evaluate(&self, set: &LabeledSet, threshold: Option<f64>, allow_missing: bool, fpr_target: f64) -> Result<ExternalEvaluation> {
        let bad = |m: String| Error::ScoreFile { path: self.path.clone(), message: m };
        let scores = self.aligned(set)?;
        let (answered, missing): (Vec<usize>, Vec<usize>) = (0..set.len()).partition(|&i| scores[i].is_some());
        let missing_ids: Vec<String> = missing.iter().map(|&i| set.ids[i].clone()).collect();
        if !missing.is_empty() && !allow_missing {
            return Err(bad(format!(
                "no score for {} of the dataset's {} samples, such as {:?}; pass --allow-missing to evaluate the rest and count them",
                missing.len(),
                set.len(),
                &missing_ids[..missing_ids.len().min(3)]
            )));
        }
        let threshold = self.threshold(threshold)?;
        let sub = set.subset(&answered);
        let probs: Vec<f64> = sub.ids.iter().map(|id| self.rows[id].score).collect();
        // Per-category scores: none, or every category on every line.
        let given = sub.ids.iter().any(|id| !self.rows[id].categories.is_empty());
        for id in sub.ids.iter().filter(|_| given) {
            let cats = &self.rows[id].categories;
            if let Some(c) = cats.keys().find(|c| !sub.categories.contains(c)) {
                return Err(bad(format!("{id:?} scores category {c:?}, which the dataset's taxonomy lacks ({})", sub.categories.join(", "))));
            }
            if let Some(c) = sub.categories.iter().find(|c| !cats.contains_key(*c)) {
                return Err(bad(format!("{id:?} has no score for category {c:?}; per-category scores go on every line, for every category")));
            }
        }
        let category_probs: Option<Vec<f64>> =
            given.then(|| sub.ids.iter().flat_map(|id| sub.categories.iter().map(|c| self.rows[id].categories[c])).collect());
        let mut evaluation = evaluate_scores(&sub, &probs, category_probs.as_deref(), threshold, fpr_target);
        if self.kind == ScoreKind::Verdicts {
            // Calibration of 0/1 verdicts says nothing.
            evaluation.overall.ece = f64::NAN;
            evaluation.by_category.values_mut().chain(evaluation.by_source.values_mut()).for_each(|m| m.ece = f64::NAN);
        }
        let missing_share = if set.is_empty() { 0.0 } else { missing.len() as f64 / set.len() as f64 };
        Ok(ExternalEvaluation {
            scores: self.path.clone(),
            kind: self.kind,
            threshold,
            answered: answered.len(),
            missing: missing.len(),
            missing_share,
            missing_ids,
            evaluation,
        })
    }
}

impl ScoreFile {
    /// Where the file's samples are called unsafe: `threshold` (default
    /// 0.5) for scores; verdicts, scored 0 or 1, take none.
    pub fn threshold(&self, threshold: Option<f64>) -> Result<f64> {
        let bad = |m: String| Error::ScoreFile { path: self.path.clone(), message: m };
        match (self.kind, threshold) {
            (ScoreKind::Verdicts, Some(_)) => Err(bad("the file holds verdicts only: a threshold applies to scores".into())),
            (_, Some(t)) if !unit(t) => Err(bad(format!("threshold {t} is not in [0, 1]"))),
            (_, t) => Ok(t.unwrap_or(0.5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairguard_data::Source;

    fn set() -> LabeledSet {
        LabeledSet {
            dim: 0,
            x: Vec::new(),
            ids: ["a", "b", "c", "d"].map(String::from).to_vec(),
            labels: vec![true, false, true, false],
            category: vec![Some(0), None, Some(1), None],
            categories: vec!["x".into(), "y".into()],
            sources: vec![Source::Real, Source::Real, Source::AiGenerated, Source::AiGenerated],
            pairs: vec![(0, 1), (2, 3)],
        }
    }

    fn file(text: &str) -> Result<ScoreFile> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        std::fs::write(&p, text).unwrap();
        ScoreFile::read(&p)
    }

    #[test]
    fn scores_are_evaluated_as_a_trained_guard_would_be() {
        let f =
            file("{\"id\":\"a\",\"score\":0.9}\n{\"id\":\"b\",\"score\":0.2}\n{\"id\":\"c\",\"score\":0.4}\n{\"id\":\"d\",\"score\":0.3}\n").unwrap();
        let e = f.evaluate(&set(), None, false, 0.05).unwrap();
        let want = evaluate_scores(&set(), &[0.9, 0.2, 0.4, 0.3], None, 0.5, 0.05);
        assert_eq!(serde_json::to_string(&e.evaluation).unwrap(), serde_json::to_string(&want).unwrap());
        assert_eq!((e.evaluation.overall.auroc, e.evaluation.overall.accuracy), (1.0, 0.75));
        let e = f.evaluate(&set(), Some(0.35), false, 0.05).unwrap();
        assert_eq!(e.evaluation.overall.accuracy, 1.0);
    }

    #[test]
    fn verdicts_alone_are_scores_of_zero_or_one_without_calibration() {
        let f =
            file("{\"id\":\"a\",\"verdict\":\"unsafe\"}\n{\"id\":\"b\",\"verdict\":\"unsafe\"}\n{\"id\":\"c\",\"verdict\":\"unsafe\"}\n").unwrap();
        assert_eq!(f.kind, ScoreKind::Verdicts);
        let e = f.evaluate(&set(), None, true, 0.05).unwrap();
        assert_eq!((e.answered, e.missing, e.missing_ids.clone()), (3, 1, vec!["d".to_string()]));
        assert_eq!((e.evaluation.overall.recall, e.evaluation.overall.precision), (1.0, 2.0 / 3.0));
        assert!(e.evaluation.overall.ece.is_nan());
        let err = f.evaluate(&set(), Some(0.5), true, 0.05).unwrap_err().to_string();
        assert!(err.contains("verdicts only"), "{err}");
        let err = f.evaluate(&set(), None, false, 0.05).unwrap_err().to_string();
        assert!(err.contains("no score for 1 of the dataset's 4 samples, such as [\"d\"]") && err.contains("--allow-missing"), "{err}");
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, needle) in [
            ("{\"id\":\"a\",\"score\":1.5}\n", "line 1: score 1.5 of \"a\" is not in [0, 1]"),
            ("{\"id\":\"a\",\"score\":0.5}\n{\"id\":\"a\",\"score\":0.5}\n", "line 2: \"a\" again (first on line 1)"),
            ("{\"id\":\"a\"}\n", "neither a score nor a verdict"),
            ("{\"id\":\"a\",\"verdict\":\"maybe\"}\n", "neither \"safe\" nor \"unsafe\""),
            ("{\"id\":\"a\",\"score\":0.5}\n{\"id\":\"b\",\"verdict\":\"safe\"}\n", "line 2: \"b\" has no score"),
            ("{\"id\":\"a\",\"score\":NaN}\n", "line 1:"),
            ("{\"id\":\"a\",\"score\":0.5,\"extra\":1}\n", "unknown field `extra`"),
            ("{\"id\":\"a\",\"score\":0.5,\"categories\":{\"x\":-1}}\n", "category score x = -1"),
            ("", "no scores"),
        ] {
            let e = file(text).unwrap_err().to_string();
            assert!(e.contains("s.jsonl") && e.contains(needle), "{text:?}: {e}");
        }
        let e = file("{\"id\":\"z\",\"score\":0.5}\n").unwrap().evaluate(&set(), None, true, 0.05).unwrap_err().to_string();
        assert!(e.contains("1 ids the dataset lacks, such as [\"z\"]"), "{e}");
    }
}
