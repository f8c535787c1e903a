//! fleetfit-fetch: downloads model files over the Hugging Face hub protocol (or plain `https://`, `http://`,
//! `file://` URLs) into the standard Hugging Face cache, verified, resumable and safe to interrupt.
//!
//! # Why not the `hf-hub` crate
//!
//! hf-hub 1.0 speaks the right protocol and keeps the right cache layout, but as measured (dependencies.md §6) it
//! cannot resume (a cut at 50 % restarts from byte 0), checks no sha256 or size, stores an HTTP error body as the
//! blob when a GET fails after a good HEAD (and serves it from cache afterwards), sets no timeouts, ignores
//! `HF_HUB_OFFLINE`, and brings 105 crates (27 % of our compile time). A fleet agent pulling 5–50 GB files over
//! flaky links needs exactly those missing parts, so this crate is a small reqwest client for the 3 calls that
//! matter (`HEAD`/`GET /{repo}/resolve/{rev}/{file}` and the CDN redirect) that keeps huggingface_hub's exact cache
//! layout, so llama.cpp, transformers and `huggingface-cli` see the same files:
//! `models--org--name/{blobs/<etag>, refs/<revision>, snapshots/<commit>/<file> -> ../../blobs/<etag>}` and
//! `.locks/models--org--name/<etag>.lock`.
//!
//! # What a fetch does
//!
//! `HEAD` (redirects not followed, metadata read from the hub's 302 itself) → return the snapshot file if it is
//! already there and intact → check free space before the first byte → `GET` with `Range: bytes=N-` when a
//! `<blob>.incomplete` exists, streaming to disk (a writer thread) with sha256 computed on the fly → retry connect errors,
//! timeouts, 408/429/5xx and mid-stream body errors (resuming, not restarting) → verify size and sha256 (the
//! catalog's value, else the hub's LFS `X-Linked-Etag`, else the git blob sha1 for small files) → on mismatch move
//! the file to the quarantine and link nothing → fsync, rename to `blobs/<etag>`, write `refs/<revision>`, link the
//! snapshot. A non-2xx response never becomes a blob. Dropping the future keeps `.incomplete` for the next resume.
//!
//! The token goes only to the endpoint's origin (scheme, host, port): a redirect to a CDN on another host gets no
//! `Authorization`. A CDN on the same origin (a relative `/cdn/...` redirect, as the test hub does) is the hub
//! itself and gets the token, as huggingface_hub's session does.

mod cache;
mod config;
mod error;
pub mod fsutil;
mod transfer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use reqwest::Url;
use sha2::Digest as _;

pub use config::{DEFAULT_ENDPOINT, DEFAULT_KEEP_FREE_BYTES, FetchConfig, Progress, ProgressFn};
pub use error::FetchError;

use cache::{RepoCache, is_hex};

/// Where a file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file in a hub repo (`org/name`) at a revision (branch, tag or commit).
    Hub {
        repo: String,
        revision: String,
        file: String,
    },
    /// `https://`, `http://` or `file://` (fleets serving models from their own storage).
    Url(String),
}

impl Source {
    /// A hub file at revision `main`.
    pub fn hub(repo: &str, file: &str) -> Source {
        Source::Hub {
            repo: repo.to_owned(),
            revision: "main".to_owned(),
            file: file.to_owned(),
        }
    }
}

/// One file to fetch, with what the catalog knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub source: Source,
    /// sha256 (hex) from the catalog; wins over the hub's etag.
    pub expected_sha256: Option<String>,
    pub expected_size: Option<u64>,
}

impl FetchRequest {
    pub fn new(source: Source) -> FetchRequest {
        FetchRequest {
            source,
            expected_sha256: None,
            expected_size: None,
        }
    }
}

/// What a `HEAD` says about a file (for dry runs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Remote {
    /// Size in bytes (`X-Linked-Size`, else `Content-Length`); `None` when a URL source does not say.
    pub size: Option<u64>,
    /// Commit the revision resolves to (`X-Repo-Commit`); hub sources only.
    pub commit: Option<String>,
    /// The etag, quotes removed: the blob's name in the cache.
    pub etag: Option<String>,
    /// `X-Linked-Etag` when it is an LFS sha256 (64 hex).
    pub linked_sha256: Option<String>,
    /// Where the file will be (the snapshot path for hub sources).
    pub destination: PathBuf,
    pub already_cached: bool,
    /// The URL the bytes come from (the CDN location when the hub redirects).
    pub final_url: String,
}

/// Which reference the downloaded bytes were checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegritySource {
    /// The request's `expected_sha256` (the catalog).
    Catalog,
    /// The hub's `X-Linked-Etag` (an LFS file's sha256).
    LinkedEtag,
    /// The git blob sha1 in the `ETag` of a small non-LFS file.
    GitBlobSha1,
    /// Nothing to check against (a URL without `expected_sha256`): only the size was checked, when known.
    None,
}

/// A file in place.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fetched {
    /// The path to use (the snapshot symlink for hub sources).
    pub path: PathBuf,
    /// The real file (`blobs/<etag>` for hub sources).
    pub blob: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub integrity_source: IntegritySource,
    pub commit: Option<String>,
    /// Bytes that came over the network in this call (0 on a cache hit).
    pub bytes_downloaded: u64,
    /// Bytes that were already in `.incomplete` when this call started.
    pub resumed_from: u64,
    pub seconds: f64,
}

/// Minimal percent-encoding of a path segment (RFC 3986 unreserved characters kept).
fn encode(segment: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

fn check_hub_source(repo: &str, file: &str) -> Result<(), FetchError> {
    let bad = |detail: &str| FetchError::InvalidSource {
        source_text: format!("{repo}/{file}"),
        detail: detail.to_owned(),
    };
    if repo.split('/').count() != 2
        || repo
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(bad("the repo must be `org/name`"));
    }
    if file.is_empty()
        || file
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(bad(
            "the file must be a relative path without `.` or `..` segments",
        ));
    }
    Ok(())
}

fn resolve_url(
    cfg: &FetchConfig,
    repo: &str,
    revision: &str,
    file: &str,
) -> Result<Url, FetchError> {
    let org_name: Vec<String> = repo.split('/').map(encode).collect();
    let file: Vec<String> = file.split('/').map(encode).collect();
    transfer::parse_url(&format!(
        "{}/{}/resolve/{}/{}",
        cfg.endpoint,
        org_name.join("/"),
        encode(revision),
        file.join("/")
    ))
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Content-Length` read from the header: reqwest's `content_length()` is the body's, which is 0 for a HEAD.
fn content_length(resp: &reqwest::Response) -> Option<u64> {
    header(resp, "content-length").and_then(|v| v.trim().parse().ok())
}

fn clean_etag(e: &str) -> String {
    e.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

/// The hub's metadata for one file.
struct HubMeta {
    url: Url,
    commit: String,
    etag: String,
    size: u64,
    final_url: String,
}

async fn hub_head(
    cfg: &FetchConfig,
    client: &reqwest::Client,
    repo: &str,
    revision: &str,
    file: &str,
) -> Result<HubMeta, FetchError> {
    let url = resolve_url(cfg, repo, revision, file)?;
    let what = format!(
        "repo `{repo}`, revision `{revision}`, file `{file}` (check the names, or set HF_TOKEN if the repo is private)"
    );
    let (resp, at) = transfer::head(
        cfg,
        client,
        &url,
        &["x-repo-commit", "x-linked-etag"],
        false,
    )
    .await?;
    let status = resp.status();
    if !(status.is_success() || status.is_redirection()) {
        return Err(transfer::status_error(status, &at, 1, &what));
    }
    let malformed = |detail: &str| FetchError::MalformedResponse {
        url: at.to_string(),
        detail: detail.to_owned(),
    };
    let commit = header(&resp, "x-repo-commit")
        .ok_or_else(|| malformed("missing X-Repo-Commit header (is HF_ENDPOINT a hub?)"))?;
    let etag = header(&resp, "x-linked-etag")
        .or_else(|| header(&resp, "etag"))
        .map(|e| clean_etag(&e))
        .filter(|e| !e.is_empty() && !e.contains('/'))
        .ok_or_else(|| malformed("missing ETag header"))?;
    let size = header(&resp, "x-linked-size")
        .and_then(|s| s.trim().parse().ok())
        .or_else(|| {
            if status.is_success() {
                content_length(&resp)
            } else {
                None
            }
        })
        .ok_or_else(|| malformed("missing X-Linked-Size and Content-Length"))?;
    let final_url = match header(&resp, "location") {
        Some(loc) if status.is_redirection() => at.join(&loc).map_or(loc, |u| u.to_string()),
        _ => at.to_string(),
    };
    if !is_hex(&commit, 40) {
        return Err(malformed(&format!(
            "X-Repo-Commit `{commit}` is not a 40-hex commit"
        )));
    }
    Ok(HubMeta {
        url,
        commit,
        etag,
        size,
        final_url,
    })
}

/// The reference to check against, in order: catalog, LFS sha256 etag, git blob sha1 etag, nothing.
fn integrity_for(req: &FetchRequest, etag: Option<&str>) -> (IntegritySource, Option<String>) {
    if let Some(s) = &req.expected_sha256 {
        return (
            IntegritySource::Catalog,
            Some(s.trim().to_ascii_lowercase()),
        );
    }
    match etag {
        Some(e) if is_hex(e, 64) => (IntegritySource::LinkedEtag, Some(e.to_ascii_lowercase())),
        Some(e) if is_hex(e, 40) => (IntegritySource::GitBlobSha1, Some(e.to_ascii_lowercase())),
        _ => (IntegritySource::None, None),
    }
}

/// Checks a complete file; `Err((expected, actual))` describes a mismatch.
async fn verify_file(
    path: &Path,
    sha256: Option<&str>,
    size: u64,
    req: &FetchRequest,
    src: IntegritySource,
    expected: Option<&str>,
    want_size: Option<u64>,
) -> Result<Result<String, (String, String)>, FetchError> {
    let git = src == IntegritySource::GitBlobSha1;
    let (sha, git_sha) = match sha256 {
        Some(s) if !git => (s.to_owned(), None),
        _ => {
            let p = path.to_owned();
            let (s, g, _) = tokio::task::spawn_blocking(move || cache::hash_file(&p, git))
                .await
                .map_err(|e| FetchError::Io {
                    path: path.to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })??;
            (s, g)
        }
    };
    for want in [want_size, req.expected_size].into_iter().flatten() {
        if size != want {
            return Ok(Err((format!("size {want}"), format!("size {size}"))));
        }
    }
    match (src, expected) {
        (IntegritySource::GitBlobSha1, Some(e)) if git_sha.as_deref() != Some(e) => Ok(Err((
            format!("git blob sha1 {e}"),
            format!("git blob sha1 {}", git_sha.unwrap_or_default()),
        ))),
        (IntegritySource::Catalog | IntegritySource::LinkedEtag, Some(e)) if sha != e => {
            Ok(Err((format!("sha256 {e}"), format!("sha256 {sha}"))))
        }
        _ => Ok(Ok(sha)),
    }
}

fn check_space(cfg: &FetchConfig, dir: &Path, size: u64, have: u64) -> Result<(), FetchError> {
    let needed = size
        .saturating_sub(have)
        .saturating_add(cfg.keep_free_bytes);
    let available = fs4::available_space(dir).map_err(FetchError::io(dir))?;
    if available < needed {
        return Err(FetchError::InsufficientSpace {
            needed,
            available,
            dir: dir.to_owned(),
        });
    }
    Ok(())
}

fn fsync(path: &Path) -> Result<(), FetchError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(FetchError::io(path))
}

/// Resolves size, commit, etag and final URL without downloading (for dry runs).
pub async fn head(cfg: &FetchConfig, req: &FetchRequest) -> Result<Remote, FetchError> {
    match &req.source {
        Source::Hub {
            repo,
            revision,
            file,
        } => {
            check_hub_source(repo, file)?;
            let rc = RepoCache::new(&cfg.cache_dir, repo);
            if cfg.offline {
                let path = cached(cfg, req).ok_or_else(|| offline_error(cfg, req))?;
                let size = std::fs::metadata(&path).ok().map(|m| m.len());
                let etag = std::fs::read_link(&path)
                    .ok()
                    .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
                let linked_sha256 = etag.clone().filter(|e| is_hex(e, 64));
                return Ok(Remote {
                    size,
                    commit: rc.resolve_revision(revision),
                    etag,
                    linked_sha256,
                    final_url: path.display().to_string(),
                    destination: path,
                    already_cached: true,
                });
            }
            let client = transfer::client(cfg)?;
            let meta = hub_head(cfg, &client, repo, revision, file).await?;
            let destination = rc.snapshot(&meta.commit, file);
            let already_cached = std::fs::metadata(&destination)
                .is_ok_and(|m| m.len() == meta.size)
                && std::fs::metadata(rc.blob(&meta.etag)).is_ok();
            Ok(Remote {
                size: Some(meta.size),
                commit: Some(meta.commit),
                linked_sha256: is_hex(&meta.etag, 64).then(|| meta.etag.clone()),
                etag: Some(meta.etag),
                destination,
                already_cached,
                final_url: meta.final_url,
            })
        }
        Source::Url(text) => {
            let (url, dest) = url_destination(cfg, text)?;
            let already_cached = dest.exists();
            if url.scheme() == "file" {
                let path = file_path(&url, text)?;
                let size = std::fs::metadata(&path)
                    .map_err(FetchError::io(&path))?
                    .len();
                return Ok(Remote {
                    size: Some(size),
                    commit: None,
                    etag: None,
                    linked_sha256: None,
                    destination: dest,
                    already_cached,
                    final_url: text.clone(),
                });
            }
            if cfg.offline {
                return Ok(Remote {
                    size: None,
                    commit: None,
                    etag: None,
                    linked_sha256: None,
                    destination: dest,
                    already_cached,
                    final_url: text.clone(),
                });
            }
            let client = transfer::client(cfg)?;
            let (resp, at) = transfer::head(cfg, &client, &url, &[], true).await?;
            let status = resp.status();
            if matches!(status.as_u16(), 401 | 403 | 404) {
                return Err(transfer::status_error(status, &at, 1, &format!("`{text}`")));
            }
            let size = if status.is_success() {
                content_length(&resp)
            } else {
                None
            };
            let etag = header(&resp, "etag").map(|e| clean_etag(&e));
            Ok(Remote {
                size,
                commit: None,
                etag,
                linked_sha256: None,
                destination: dest,
                already_cached,
                final_url: at.to_string(),
            })
        }
    }
}

/// The local file for a request, without any network: hub sources via `refs/<revision>` → snapshot; URL sources
/// via fleetfit's URL store. `None` when not cached.
pub fn cached(cfg: &FetchConfig, req: &FetchRequest) -> Option<PathBuf> {
    match &req.source {
        Source::Hub {
            repo,
            revision,
            file,
        } => {
            check_hub_source(repo, file).ok()?;
            let rc = RepoCache::new(&cfg.cache_dir, repo);
            let commit = rc.resolve_revision(revision)?;
            let p = rc.snapshot(&commit, file);
            std::fs::metadata(&p)
                .is_ok_and(|m| m.is_file())
                .then_some(p)
        }
        Source::Url(text) => {
            let (_, dest) = url_destination(cfg, text).ok()?;
            dest.is_file().then_some(dest)
        }
    }
}

fn offline_error(cfg: &FetchConfig, req: &FetchRequest) -> FetchError {
    let what = match &req.source {
        Source::Hub {
            repo,
            revision,
            file,
        } => format!("{repo}@{revision}/{file}"),
        Source::Url(u) => u.clone(),
    };
    FetchError::Offline {
        what,
        cache: cfg.cache_dir.clone(),
    }
}

/// Downloads (or finds in the cache) one file, verified. See the crate docs for the steps.
pub async fn fetch(cfg: &FetchConfig, req: &FetchRequest) -> Result<Fetched, FetchError> {
    let started = Instant::now();
    let mut out = match &req.source {
        Source::Hub {
            repo,
            revision,
            file,
        } => fetch_hub(cfg, req, repo, revision, file).await?,
        Source::Url(text) => fetch_url(cfg, req, text).await?,
    };
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// The cached blob's sha256 if it passes the request's check; a bad blob is quarantined.
async fn intact(
    cfg: &FetchConfig,
    req: &FetchRequest,
    blob: &Path,
    sidecar: &Path,
    etag: Option<&str>,
    size: Option<u64>,
    name: &str,
) -> Result<Option<String>, FetchError> {
    let Ok(meta) = std::fs::metadata(blob) else {
        return Ok(None);
    };
    let (src, expected) = integrity_for(req, etag);
    let recorded = cache::read_sidecar(sidecar, blob);
    if let Some(sha) = &recorded {
        // A sidecar is written only after a passed check, so only a different catalog value can fail it now.
        let bad_size = [size, req.expected_size]
            .into_iter()
            .flatten()
            .any(|s| s != meta.len());
        let bad_sha = matches!(src, IntegritySource::Catalog | IntegritySource::LinkedEtag)
            && expected.as_deref() != Some(sha.as_str());
        if !bad_size && !bad_sha {
            return Ok(Some(sha.clone()));
        }
    }
    if let Ok(sha) =
        verify_file(blob, None, meta.len(), req, src, expected.as_deref(), size).await?
    {
        cache::write_sidecar(sidecar, blob, &sha)?;
        return Ok(Some(sha));
    }
    cache::quarantine(blob, &cfg.quarantine_dir, name)?;
    let _ = std::fs::remove_file(sidecar);
    Ok(None)
}

async fn fetch_hub(
    cfg: &FetchConfig,
    req: &FetchRequest,
    repo: &str,
    revision: &str,
    file: &str,
) -> Result<Fetched, FetchError> {
    check_hub_source(repo, file)?;
    let rc = RepoCache::new(&cfg.cache_dir, repo);
    if cfg.offline {
        let path = cached(cfg, req).ok_or_else(|| offline_error(cfg, req))?;
        let blob = std::fs::canonicalize(&path).map_err(FetchError::io(&path))?;
        let etag = blob.file_name().map(|n| n.to_string_lossy().into_owned());
        let (src, _) = integrity_for(req, etag.as_deref());
        let sha = intact(
            cfg,
            req,
            &blob,
            &rc.sidecar(etag.as_deref().unwrap_or("")),
            etag.as_deref(),
            None,
            file,
        )
        .await?
        .ok_or_else(|| FetchError::IntegrityMismatch {
            url: path.display().to_string(),
            expected: req
                .expected_sha256
                .clone()
                .unwrap_or_else(|| "the recorded hash".to_owned()),
            actual: "a different file (moved to the quarantine)".to_owned(),
            quarantined: cfg.quarantine_dir.clone(),
        })?;
        let size = std::fs::metadata(&blob).map_or(0, |m| m.len());
        return Ok(Fetched {
            path,
            blob,
            size,
            sha256: sha,
            integrity_source: src,
            commit: rc.resolve_revision(revision),
            bytes_downloaded: 0,
            resumed_from: 0,
            seconds: 0.0,
        });
    }
    let client = transfer::client(cfg)?;
    let meta = hub_head(cfg, &client, repo, revision, file).await?;
    let blobs = rc.blobs();
    std::fs::create_dir_all(&blobs).map_err(FetchError::io(&blobs))?;
    let lock = transfer::lock_exclusive(&rc.lock(&meta.etag)).await?;
    let blob = rc.blob(&meta.etag);
    let snapshot = rc.snapshot(&meta.commit, file);
    let sidecar = rc.sidecar(&meta.etag);
    let (src, expected) = integrity_for(req, Some(&meta.etag));
    let install =
        |sha256: String, bytes_downloaded: u64, resumed_from: u64| -> Result<Fetched, FetchError> {
            if revision != meta.commit {
                cache::write_atomic(&rc.ref_file(revision), meta.commit.as_bytes())?;
            }
            cache::symlink(&cache::link_target(file, &meta.etag), &snapshot)?;
            Ok(Fetched {
                path: snapshot.clone(),
                blob: blob.clone(),
                size: meta.size,
                sha256,
                integrity_source: src,
                commit: Some(meta.commit.clone()),
                bytes_downloaded,
                resumed_from,
                seconds: 0.0,
            })
        };
    if let Some(sha) = intact(
        cfg,
        req,
        &blob,
        &sidecar,
        Some(&meta.etag),
        Some(meta.size),
        file,
    )
    .await?
    {
        return install(sha, 0, 0);
    }
    let incomplete = blobs.join(format!("{}.incomplete", meta.etag));
    let have = std::fs::metadata(&incomplete)
        .map_or(0, |m| m.len())
        .min(meta.size);
    check_space(cfg, &blobs, meta.size, have)?;
    let what = format!("{repo}@{revision}/{file}");
    let t = transfer::download(
        cfg,
        &client,
        &meta.url,
        &incomplete,
        Some(meta.size),
        &what,
        Some(lock.clone()),
    )
    .await?;
    match verify_file(
        &incomplete,
        Some(&t.sha256),
        t.size,
        req,
        src,
        expected.as_deref(),
        Some(meta.size),
    )
    .await?
    {
        Ok(sha) => {
            fsync(&incomplete)?;
            std::fs::rename(&incomplete, &blob).map_err(FetchError::io(&blob))?;
            cache::write_sidecar(&sidecar, &blob, &sha)?;
            let out = install(sha, t.bytes_downloaded, t.resumed_from);
            drop(lock);
            out
        }
        Err((expected, actual)) => {
            let quarantined = cache::quarantine(&incomplete, &cfg.quarantine_dir, file)?;
            Err(FetchError::IntegrityMismatch {
                url: meta.final_url,
                expected,
                actual,
                quarantined,
            })
        }
    }
}

/// `file://` URL → local path.
fn file_path(url: &Url, text: &str) -> Result<PathBuf, FetchError> {
    url.to_file_path().map_err(|()| FetchError::InvalidSource {
        source_text: text.to_owned(),
        detail: "not a local absolute path".to_owned(),
    })
}

/// URL sources live in `<cache_dir>/../fleetfit-urls/<first 16 hex of sha256(url)>/<file name>`: next to the hub
/// cache (same disk, same cleanup), outside its `models--*` namespace so hub tools never see foreign folders.
fn url_destination(cfg: &FetchConfig, text: &str) -> Result<(Url, PathBuf), FetchError> {
    let url = transfer::parse_url(text)?;
    if !matches!(url.scheme(), "https" | "http" | "file") {
        return Err(FetchError::InvalidSource {
            source_text: text.to_owned(),
            detail: "only https://, http:// and file:// URLs are supported".to_owned(),
        });
    }
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "download".to_owned());
    let key = cache::hex(&sha2::Sha256::digest(text.as_bytes()));
    let root = cfg.cache_dir.parent().map_or_else(
        || cfg.cache_dir.join("fleetfit-urls"),
        |p| p.join("fleetfit-urls"),
    );
    Ok((url, root.join(&key[..16]).join(name)))
}

async fn fetch_url(
    cfg: &FetchConfig,
    req: &FetchRequest,
    text: &str,
) -> Result<Fetched, FetchError> {
    let (url, dest) = url_destination(cfg, text)?;
    let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(FetchError::io(&dir))?;
    let sidecar = dir.join(format!(".{name}.fleetfit-sha256"));
    let incomplete = dir.join(format!("{name}.incomplete"));
    let (src, expected) = integrity_for(req, None);
    let is_file = url.scheme() == "file";
    let lock = transfer::lock_exclusive(&dir.join(".lock")).await?;
    let done = |sha256: String, size: u64, bytes_downloaded: u64, resumed_from: u64| Fetched {
        path: dest.clone(),
        blob: dest.clone(),
        size,
        sha256,
        integrity_source: src,
        commit: None,
        bytes_downloaded,
        resumed_from,
        seconds: 0.0,
    };
    if let Some(sha) = intact(cfg, req, &dest, &sidecar, None, None, &name).await? {
        let size = std::fs::metadata(&dest).map_or(0, |m| m.len());
        return Ok(done(sha, size, 0, 0));
    }
    if cfg.offline && !is_file {
        return Err(offline_error(cfg, req));
    }
    let t = if is_file {
        let path = file_path(&url, text)?;
        let size = std::fs::metadata(&path)
            .map_err(FetchError::io(&path))?
            .len();
        check_space(cfg, &dir, size, 0)?;
        transfer::copy_local(cfg, &path, &incomplete, &name).await?
    } else {
        let client = transfer::client(cfg)?;
        let (resp, at) = transfer::head(cfg, &client, &url, &[], true).await?;
        let status = resp.status();
        if matches!(status.as_u16(), 401 | 403 | 404) {
            return Err(transfer::status_error(status, &at, 1, &format!("`{text}`")));
        }
        let size = if status.is_success() {
            content_length(&resp)
        } else {
            None
        }
        .or(req.expected_size);
        if let Some(size) = size {
            let have = std::fs::metadata(&incomplete)
                .map_or(0, |m| m.len())
                .min(size);
            check_space(cfg, &dir, size, have)?;
        }
        transfer::download(
            cfg,
            &client,
            &url,
            &incomplete,
            size,
            text,
            Some(lock.clone()),
        )
        .await?
    };
    match verify_file(
        &incomplete,
        Some(&t.sha256),
        t.size,
        req,
        src,
        expected.as_deref(),
        None,
    )
    .await?
    {
        Ok(sha) => {
            fsync(&incomplete)?;
            std::fs::rename(&incomplete, &dest).map_err(FetchError::io(&dest))?;
            cache::write_sidecar(&sidecar, &dest, &sha)?;
            drop(lock);
            Ok(done(sha, t.size, t.bytes_downloaded, t.resumed_from))
        }
        Err((expected, actual)) => {
            let quarantined = cache::quarantine(&incomplete, &cfg.quarantine_dir, &name)?;
            Err(FetchError::IntegrityMismatch {
                url: text.to_owned(),
                expected,
                actual,
                quarantined,
            })
        }
    }
}
