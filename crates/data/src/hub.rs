//! Fetching dataset and model files from the Hugging Face Hub at a pinned
//! revision. Files land in (and are served from) the standard Hub cache
//! (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, as
//! the `hf-hub` client resolves it), so anything fetched by Python's
//! `huggingface_hub` is reused. Offline mode ([`HubOptions::offline`], which
//! the command-line tool sets from `HF_HUB_OFFLINE`) never touches the
//! network and fails clearly on a cache miss.

use std::path::{Path, PathBuf};

use hf_hub::{HFClient, HFError};

use crate::{DataError, Result};

#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Resolve from the cache only.
    pub offline: bool,
    /// Overrides the cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Overrides `HF_TOKEN`.
    pub token: Option<String>,
}

/// Kind of Hub repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Dataset,
    Model,
}

impl RepoKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dataset" => Some(RepoKind::Dataset),
            "model" => Some(RepoKind::Model),
            _ => None,
        }
    }
}

/// Fetches `files` of `repo` at `revision` and returns their local paths.
pub fn fetch(repo: &str, kind: RepoKind, revision: &str, files: &[String], opts: &HubOptions) -> Result<Vec<PathBuf>> {
    let (owner, name) = repo.split_once('/').ok_or_else(|| DataError::Hub(format!("repo id {repo:?} is not `owner/name`")))?;
    let mut builder = HFClient::builder();
    if let Some(dir) = &opts.cache_dir {
        builder = builder.cache_dir(dir);
    }
    if let Some(token) = &opts.token {
        builder = builder.token(token);
    }
    let async_client = builder.build().map_err(|e| DataError::Hub(format!("cannot create client: {e}")))?;
    let cache = async_client.cache_dir().to_path_buf();
    let client = hf_hub::HFClientSync::from_inner(async_client).map_err(|e| DataError::Hub(format!("cannot create client: {e}")))?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let result = match kind {
            RepoKind::Dataset => client.dataset(owner, name).download_file().filename(file).revision(revision).local_files_only(opts.offline).send(),
            RepoKind::Model => client.model(owner, name).download_file().filename(file).revision(revision).local_files_only(opts.offline).send(),
        };
        out.push(result.map_err(|e| explain(e, repo, revision, file, opts, &cache))?);
    }
    Ok(out)
}

fn explain(e: HFError, repo: &str, revision: &str, file: &str, opts: &HubOptions, cache: &Path) -> DataError {
    let hint = match &e {
        HFError::LocalEntryNotFound { .. } if opts.offline => {
            format!("not in the local cache {} and offline mode is on (unset HF_HUB_OFFLINE or fetch it on a connected machine)", cache.display())
        }
        _ => format!("{e}"),
    };
    DataError::Hub(format!("{repo}@{revision}: {file}: {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lays out a cache exactly as the Hub clients do:
    /// `datasets--owner--name/{refs/main, snapshots/<sha>/<file>, blobs/<etag>}`.
    fn fake_cache(root: &Path, sha: &str) {
        let repo = root.join("datasets--acme--pairs");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), sha).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/0123abcd"), b"{\"id\": \"a\"}\n").unwrap();
        let snap = repo.join("snapshots").join(sha).join("data");
        std::fs::create_dir_all(&snap).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("../../../blobs/0123abcd", snap.join("train.jsonl")).unwrap();
        #[cfg(not(unix))]
        std::fs::write(snap.join("train.jsonl"), b"{\"id\": \"a\"}\n").unwrap();
    }

    #[test]
    fn offline_mode_reads_a_hub_laid_out_cache() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "4f1b0c2a9d3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";
        fake_cache(dir.path(), sha);
        let opts = HubOptions { offline: true, cache_dir: Some(dir.path().to_path_buf()), token: None };
        let files = fetch("acme/pairs", RepoKind::Dataset, sha, &["data/train.jsonl".into()], &opts).unwrap();
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "{\"id\": \"a\"}\n");
        // A branch name resolves through refs/ as well.
        let files = fetch("acme/pairs", RepoKind::Dataset, "main", &["data/train.jsonl".into()], &opts).unwrap();
        assert!(files[0].ends_with("data/train.jsonl"));
    }

    #[test]
    fn offline_cache_miss_is_a_clear_error_without_network() {
        let dir = tempfile::tempdir().unwrap();
        let opts = HubOptions { offline: true, cache_dir: Some(dir.path().to_path_buf()), token: None };
        let t = std::time::Instant::now();
        let e = fetch("acme/other", RepoKind::Dataset, "main", &["x.parquet".into()], &opts).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("acme/other@main: x.parquet") && msg.contains("offline mode"), "{msg}");
        // No network retries happened (they take seconds).
        assert!(t.elapsed().as_secs() < 2);
    }
}
