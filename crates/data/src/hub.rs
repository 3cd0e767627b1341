//! Fetching dataset and model files from the Hugging Face Hub at a pinned
//! revision. Files land in (and are served from) the standard Hub cache
//! (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`),
//! laid out as Python's `huggingface_hub` lays it out, so anything fetched
//! by either is reused by the other. Offline mode ([`HubOptions::offline`],
//! which the command-line tool sets from `HF_HUB_OFFLINE`) never touches the
//! network and fails clearly on a cache miss.
//!
//! Downloads go through `hf-hub`'s blocking client (ureq and rustls): a few
//! files fetched once need no async runtime.

use std::path::PathBuf;

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use crate::{DataError, Result};

#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Resolve from the cache only.
    pub offline: bool,
    /// Overrides the cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Overrides `HF_TOKEN`.
    pub token: Option<String>,
    /// The Hub's address; overrides `HF_ENDPOINT` (default `https://huggingface.co`).
    pub endpoint: Option<String>,
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
/// A file already in the cache at that revision is not fetched again.
pub fn fetch(repo: &str, kind: RepoKind, revision: &str, files: &[String], opts: &HubOptions) -> Result<Vec<PathBuf>> {
    if repo.split_once('/').is_none_or(|(owner, name)| owner.is_empty() || name.is_empty()) {
        return Err(DataError::Hub(format!("repo id {repo:?} is not `owner/name`")));
    }
    let repo_type = match kind {
        RepoKind::Dataset => RepoType::Dataset,
        RepoKind::Model => RepoType::Model,
    };
    let hub_repo = Repo::with_revision(repo.to_string(), repo_type, revision.to_string());
    let cache = Cache::new(cache_dir(opts));
    let fail = |file: &str, hint: String| DataError::Hub(format!("{repo}@{revision}: {file}: {hint}"));
    let mut api = None;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        if let Some(path) = cached(&cache, &hub_repo, file) {
            out.push(path);
            continue;
        }
        if opts.offline {
            return Err(fail(
                file,
                format!(
                    "not in the local cache {} and offline mode is on (unset HF_HUB_OFFLINE or fetch it on a connected machine)",
                    cache.path().display()
                ),
            ));
        }
        if api.is_none() {
            let mut builder = ApiBuilder::from_cache(cache.clone());
            if let Some(endpoint) = opts.endpoint.clone().or_else(|| std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty())) {
                builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
            }
            let built = builder
                .with_token(token(opts))
                .with_progress(false)
                .with_retries(3)
                .build()
                .map_err(|e| fail(file, format!("cannot create client: {e}")))?;
            api = Some(built);
        }
        let api = api.as_ref().expect("built above");
        out.push(api.repo(hub_repo.clone()).download(file).map_err(|e| fail(file, explain(&e)))?);
    }
    Ok(out)
}

/// The cache the Hub clients share: `HF_HUB_CACHE`, else `$HF_HOME/hub`,
/// else `~/.cache/huggingface/hub`.
fn cache_dir(opts: &HubOptions) -> PathBuf {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    opts.cache_dir
        .clone()
        .or_else(|| env("HF_HUB_CACHE"))
        .or_else(|| env("HF_HOME").map(|home| home.join("hub")))
        .unwrap_or_else(|| Cache::default().path().clone())
}

/// The token: the option, else `HF_TOKEN`, else the one `hf auth login`
/// saved under `HF_HOME`.
fn token(opts: &HubOptions) -> Option<String> {
    opts.token.clone().or_else(|| std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty())).or_else(|| Cache::from_env().token())
}

/// A cached file at the repository's revision: a branch or tag resolves
/// through `refs/`, and a commit hash names its snapshot directly (Python's
/// client writes no ref for a commit it was asked for by hash).
fn cached(cache: &Cache, repo: &Repo, file: &str) -> Option<PathBuf> {
    if let Some(path) = cache.repo(repo.clone()).get(file) {
        return Some(path);
    }
    let revision = repo.revision();
    let is_commit = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    let path = cache.path().join(repo.folder_name()).join("snapshots").join(revision).join(file);
    (is_commit && path.exists()).then_some(path)
}

/// What a failed download means to the user.
fn explain(e: &ApiError) -> String {
    if let ApiError::RequestError(inner) = e {
        match inner.as_ref() {
            ureq::Error::Status(401 | 403, _) => {
                return format!("{e} (a gated or private repository: accept its terms on the Hub and set HF_TOKEN)");
            }
            ureq::Error::Status(404, _) => return format!("{e} (no such repository, revision or file)"),
            ureq::Error::Transport(_) => {
                return format!("{e} (no connection to the Hub; with the files in the cache, set HF_HUB_OFFLINE=1)");
            }
            _ => {}
        }
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
        let opts = HubOptions { offline: true, cache_dir: Some(dir.path().to_path_buf()), token: None, endpoint: None };
        let files = fetch("acme/pairs", RepoKind::Dataset, sha, &["data/train.jsonl".into()], &opts).unwrap();
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "{\"id\": \"a\"}\n");
        // A branch name resolves through refs/ as well.
        let files = fetch("acme/pairs", RepoKind::Dataset, "main", &["data/train.jsonl".into()], &opts).unwrap();
        assert!(files[0].ends_with("data/train.jsonl"));
    }

    #[test]
    fn offline_cache_miss_is_a_clear_error_without_network() {
        let dir = tempfile::tempdir().unwrap();
        let opts = HubOptions { offline: true, cache_dir: Some(dir.path().to_path_buf()), token: None, endpoint: None };
        let t = std::time::Instant::now();
        let e = fetch("acme/other", RepoKind::Dataset, "main", &["x.parquet".into()], &opts).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("acme/other@main: x.parquet") && msg.contains("offline mode"), "{msg}");
        // No network retries happened (they take seconds).
        assert!(t.elapsed().as_secs() < 2);
    }

    /// A one-repository Hub on a loopback port, answering as huggingface.co
    /// does: a ranged GET of `resolve/<revision>/<file>` with the commit in
    /// `x-repo-commit`, the blob's `etag` and the size in `content-range`;
    /// anything else is a 404. It answers one request per connection (and
    /// says so), until the test ends.
    fn loopback_hub(file: &'static str, body: &'static [u8], commit: &'static str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                {
                    let mut head = Vec::new();
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                        head.push(std::mem::take(&mut line));
                    }
                    let Some(request) = head.first() else { continue };
                    let path = request.split(' ').nth(1).unwrap_or("").to_string();
                    let start: usize = head
                        .iter()
                        .find_map(|h| h.to_ascii_lowercase().strip_prefix("range: bytes=").map(|r| r.split('-').next().unwrap().trim().to_string()))
                        .map_or(0, |s| s.parse().unwrap());
                    let answer = if path == format!("/datasets/acme/pairs/resolve/main/{file}") {
                        let end = if head.iter().any(|h| h.to_ascii_lowercase().starts_with("range: bytes=0-0")) { 1 } else { body.len() };
                        let part = &body[start..end];
                        let mut a = format!(
                            "HTTP/1.1 206 Partial Content\r\nx-repo-commit: {commit}\r\netag: \"0123abcd\"\r\ncontent-range: bytes {start}-{}/{}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            end - 1,
                            body.len(),
                            part.len()
                        )
                        .into_bytes();
                        a.extend_from_slice(part);
                        a
                    } else {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
                    };
                    let _ = stream.write_all(&answer);
                }
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn online_fetch_downloads_into_the_shared_cache_layout_then_serves_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "4f1b0c2a9d3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";
        let body: &[u8] = b"{\"id\": \"a\", \"label\": \"unsafe\"}\n";
        let endpoint = loopback_hub("data/train.jsonl", body, sha);
        let opts = HubOptions { offline: false, cache_dir: Some(dir.path().to_path_buf()), token: None, endpoint: Some(endpoint) };
        let files = fetch("acme/pairs", RepoKind::Dataset, "main", &["data/train.jsonl".into()], &opts).unwrap();
        assert_eq!(std::fs::read(&files[0]).unwrap(), body);
        // Laid out as Python's client lays it out: the blob under its etag,
        // the snapshot entry under the commit, and the branch's ref.
        let repo = dir.path().join("datasets--acme--pairs");
        assert_eq!(std::fs::read(repo.join("blobs/0123abcd")).unwrap(), body);
        assert_eq!(files[0], repo.join("snapshots").join(sha).join("data/train.jsonl"));
        assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), sha);
        // Offline, the same file resolves from the cache, by branch and by commit.
        let offline = HubOptions { offline: true, ..opts.clone() };
        assert_eq!(fetch("acme/pairs", RepoKind::Dataset, "main", &["data/train.jsonl".into()], &offline).unwrap(), files);
        assert_eq!(fetch("acme/pairs", RepoKind::Dataset, sha, &["data/train.jsonl".into()], &offline).unwrap(), files);
        // A file the Hub does not have is an error naming it.
        let e = fetch("acme/pairs", RepoKind::Dataset, "main", &["data/missing.jsonl".into()], &opts).unwrap_err().to_string();
        assert!(e.contains("acme/pairs@main: data/missing.jsonl") && e.contains("404") && e.contains("no such repository, revision or file"), "{e}");
    }

    #[test]
    fn an_unreachable_hub_says_how_to_work_offline() {
        let dir = tempfile::tempdir().unwrap();
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let opts =
            HubOptions { offline: false, cache_dir: Some(dir.path().to_path_buf()), token: None, endpoint: Some(format!("http://127.0.0.1:{port}")) };
        let e = fetch("acme/pairs", RepoKind::Dataset, "main", &["x.parquet".into()], &opts).unwrap_err().to_string();
        assert!(e.contains("acme/pairs@main: x.parquet") && e.contains("HF_HUB_OFFLINE=1"), "{e}");
    }
}
