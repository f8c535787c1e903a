//! End-to-end tests of fleetfit-fetch against the local test hub (real HTTP on 127.0.0.1, real files).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetfit_fetch::{
    FetchConfig, FetchError, FetchRequest, IntegritySource, Progress, Source, cached, fetch, head,
};
use fleetfit_testhub::{Fault, LoggedRequest, TestHub, sha256_hex};

const REPO: &str = "acme/tiny";

/// Deterministic pseudo-random bytes.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as u8
        })
        .collect()
}

/// A config built through `from_env_with` (so HF_ENDPOINT / HF_HUB_CACHE are honoured), fast retries, no bar.
fn config(hub: &TestHub, dir: &Path) -> FetchConfig {
    let endpoint = format!("{}/", hub.url());
    let cache = dir.join("hub").to_string_lossy().into_owned();
    let mut c = FetchConfig::from_env_with(|k| match k {
        "HF_ENDPOINT" => Some(endpoint.clone()),
        "HF_HUB_CACHE" => Some(cache.clone()),
        "HOME" => Some("/nonexistent".to_owned()),
        _ => None,
    });
    assert_eq!(c.endpoint, hub.url(), "trailing slash trimmed");
    c.progress = Progress::Never;
    c.backoff_base = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(50);
    c.keep_free_bytes = 0;
    c.quarantine_dir = dir.join("quarantine");
    c
}

fn req(file: &str) -> FetchRequest {
    FetchRequest::new(Source::hub(REPO, file))
}

fn repo_dir(dir: &Path) -> PathBuf {
    dir.join("hub").join("models--acme--tiny")
}

fn gets(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter().filter(|r| r.method == "GET").collect()
}

/// GETs of file bytes (huggingface_hub also GETs other `/api/...` paths).
fn file_gets(log: &[LoggedRequest]) -> usize {
    gets(log)
        .iter()
        .filter(|r| r.path.contains("/resolve/") || r.path.starts_with("/cdn/"))
        .count()
}

fn entries(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Nothing final in the cache: no blob (an `.incomplete` may stay for resume) and no snapshot.
fn assert_nothing_installed(dir: &Path) {
    let blobs = entries(&repo_dir(dir).join("blobs"));
    assert!(
        blobs.iter().all(|b| b.ends_with(".incomplete")),
        "blobs: {blobs:?}"
    );
    assert!(entries(&repo_dir(dir).join("snapshots")).is_empty());
}

#[tokio::test]
async fn downloads_into_the_huggingface_cache_layout_and_hits_the_cache_next_time() {
    let hub = TestHub::start();
    let bytes = data(300_000, 1);
    let sha = sha256_hex(&bytes);
    hub.add_file(REPO, "model.gguf", bytes.clone());
    hub.add_file(REPO, "onnx/sub/model.onnx", data(1000, 2));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&hub, dir.path());
    let commit = hub.commit(REPO);

    let got = fetch(&cfg, &req("model.gguf")).await.unwrap();
    let root = repo_dir(dir.path());
    assert_eq!(
        got.path,
        root.join("snapshots").join(&commit).join("model.gguf")
    );
    assert_eq!(got.blob, root.join("blobs").join(&sha));
    assert_eq!(
        (got.sha256.as_str(), got.size, got.integrity_source),
        (sha.as_str(), 300_000, IntegritySource::LinkedEtag)
    );
    assert_eq!(got.commit.as_deref(), Some(commit.as_str()));
    assert_eq!(got.bytes_downloaded, 300_000);
    assert_eq!(
        std::fs::read_to_string(root.join("refs/main")).unwrap(),
        commit
    );
    assert_eq!(
        std::fs::read_link(&got.path).unwrap(),
        PathBuf::from(format!("../../blobs/{sha}"))
    );
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    assert_eq!(
        entries(&root.join("blobs")),
        vec![sha.clone()],
        "no .incomplete left"
    );
    assert!(
        dir.path()
            .join("hub/.locks/models--acme--tiny")
            .join(format!("{sha}.lock"))
            .exists()
    );
    assert!(
        hub.requests()
            .iter()
            .all(|r| r.path.starts_with("/acme/tiny/resolve/main/") || r.path.starts_with("/cdn/"))
    );

    let nested = fetch(&cfg, &req("onnx/sub/model.onnx")).await.unwrap();
    let link = std::fs::read_link(&nested.path).unwrap();
    assert!(link.starts_with("../../../../blobs/"), "{}", link.display());
    assert_eq!(std::fs::read(&nested.path).unwrap(), data(1000, 2));

    hub.clear_requests();
    let again = fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert_eq!(again.path, got.path);
    assert_eq!(again.bytes_downloaded, 0);
    assert!(
        gets(&hub.requests()).is_empty(),
        "cache hit must not GET: {:?}",
        hub.requests()
    );
    assert_eq!(cached(&cfg, &req("model.gguf")), Some(got.path.clone()));

    let remote = head(&cfg, &req("model.gguf")).await.unwrap();
    assert_eq!(remote.size, Some(300_000));
    assert_eq!(remote.commit.as_deref(), Some(commit.as_str()));
    assert_eq!(remote.linked_sha256.as_deref(), Some(sha.as_str()));
    assert!(remote.already_cached);
    assert!(remote.final_url.ends_with(&format!("/cdn/{sha}")));

    // The commit hash works as a revision too.
    let by_commit = FetchRequest::new(Source::Hub {
        repo: REPO.into(),
        revision: commit.clone(),
        file: "model.gguf".into(),
    });
    assert_eq!(fetch(&cfg, &by_commit).await.unwrap().path, got.path);
}

#[tokio::test]
async fn token_goes_to_the_hub_host_but_not_to_a_cdn_on_another_host() {
    let hub = TestHub::start();
    hub.add_file(REPO, "model.gguf", data(50_000, 3));
    hub.set_fault(REPO, "model.gguf", Fault::RequireToken("hf_secret".into()));
    hub.set_cdn_host("localhost");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, dir.path());

    let err = fetch(&cfg, &req("model.gguf")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("HF_TOKEN"), "{err}");
    assert_nothing_installed(dir.path());

    cfg.token = Some("hf_secret".into());
    hub.clear_requests();
    fetch(&cfg, &req("model.gguf")).await.unwrap();
    let log = hub.requests();
    let (hub_side, cdn): (Vec<_>, Vec<_>) = log.iter().partition(|r| r.path.starts_with("/acme/"));
    assert!(
        !hub_side.is_empty() && hub_side.iter().all(|r| r.authorization),
        "{log:?}"
    );
    assert!(
        !cdn.is_empty()
            && cdn.iter().all(|r| !r.authorization
                && r.host
                    .as_deref()
                    .is_some_and(|h| h.starts_with("localhost"))),
        "{log:?}"
    );
}

#[tokio::test]
async fn same_host_cdn_gets_the_token_like_huggingface_hub() {
    let hub = TestHub::start();
    hub.add_file(REPO, "model.gguf", data(10_000, 4));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, dir.path());
    cfg.token = Some("hf_secret".into());
    fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert!(
        hub.requests().iter().all(|r| r.authorization),
        "a relative redirect stays on the endpoint's origin"
    );
}

#[tokio::test]
async fn resumes_with_range_after_a_cut_connection() {
    let hub = TestHub::start();
    let bytes = data(400_000, 5);
    hub.add_file(REPO, "model.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, dir.path());

    // Within one call: the body error is retried with Range.
    hub.set_fault(REPO, "model.gguf", Fault::CutAfter(100_000));
    let got = fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert_eq!(got.sha256, sha256_hex(&bytes));
    let ranges: Vec<_> = gets(&hub.requests())
        .iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .map(|r| r.range.clone())
        .collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], None);
    assert!(
        ranges[1]
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "{ranges:?}"
    );

    // Across calls: the first gives up (1 attempt) and keeps `.incomplete`; the second resumes from it.
    let dir = tempfile::tempdir().unwrap();
    cfg = config(&hub, dir.path());
    cfg.max_attempts = 1;
    hub.set_fault(REPO, "model.gguf", Fault::CutAfter(150_000));
    hub.clear_requests();
    let err = fetch(&cfg, &req("model.gguf")).await.unwrap_err();
    assert!(matches!(err, FetchError::Network { .. }), "{err}");
    let partial = repo_dir(dir.path())
        .join("blobs")
        .join(format!("{}.incomplete", sha256_hex(&bytes)));
    let have = std::fs::metadata(&partial).unwrap().len();
    assert!(have > 0 && have <= 150_000, "{have}");
    assert_nothing_installed(dir.path());
    let got = fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert_eq!(got.sha256, sha256_hex(&bytes));
    assert_eq!(got.resumed_from, have);
    assert_eq!(got.bytes_downloaded, 400_000 - have);
    assert!(got.bytes_downloaded < got.size);
    let last = gets(&hub.requests())
        .into_iter()
        .next_back()
        .unwrap()
        .clone();
    assert_eq!(last.range, Some(format!("bytes={have}-")));
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let hub = TestHub::start();
    hub.add_file(REPO, "model.gguf", data(20_000, 6));
    hub.set_fault(REPO, "model.gguf", Fault::StatusTimes(500, 2));
    let dir = tempfile::tempdir().unwrap();
    let got = fetch(&config(&hub, dir.path()), &req("model.gguf"))
        .await
        .unwrap();
    assert_eq!(got.size, 20_000);
    let resolve_gets = gets(&hub.requests())
        .iter()
        .filter(|r| r.path.starts_with("/acme/"))
        .count();
    assert_eq!(resolve_gets, 3);
}

#[tokio::test]
async fn http_errors_map_to_errors_and_install_nothing() {
    let hub = TestHub::start();
    hub.add_file(REPO, "model.gguf", data(20_000, 7));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, dir.path());
    cfg.max_attempts = 2;

    let err = fetch(&cfg, &req("missing.gguf")).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::NotFound { what, url } if what.contains("acme/tiny") && what.contains("main") && what.contains("missing.gguf") && url.contains("/resolve/main/missing.gguf")),
        "{err}"
    );

    for (code, check) in [
        (
            401u16,
            (|e: &FetchError| matches!(e, FetchError::Unauthorized { status: 401, .. }))
                as fn(&FetchError) -> bool,
        ),
        (404, |e| matches!(e, FetchError::NotFound { .. })),
        (500, |e| {
            matches!(
                e,
                FetchError::Http {
                    status: 500,
                    attempts: 2,
                    ..
                }
            )
        }),
    ] {
        hub.set_fault(REPO, "model.gguf", Fault::Status(code));
        let err = fetch(&cfg, &req("model.gguf")).await.unwrap_err();
        assert!(check(&err), "{code}: {err}");
        assert!(
            err.to_string().contains(&hub.url()),
            "the message names the URL: {err}"
        );
        assert_nothing_installed(dir.path());
    }
}

#[tokio::test]
async fn forbidden_after_a_good_head_does_not_poison_the_cache() {
    let hub = TestHub::start();
    let bytes = data(30_000, 8);
    hub.add_file(REPO, "model.gguf", bytes.clone());
    hub.set_fault(REPO, "model.gguf", Fault::Status(403));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&hub, dir.path());
    let err = fetch(&cfg, &req("model.gguf")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { status: 403, .. }),
        "{err}"
    );
    assert!(entries(&repo_dir(dir.path()).join("blobs")).is_empty());
    assert_eq!(cached(&cfg, &req("model.gguf")), None);
    hub.clear_fault(REPO, "model.gguf");
    let got = fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert_eq!(std::fs::read(got.path).unwrap(), bytes);
}

#[tokio::test]
async fn corrupt_bytes_are_quarantined_and_not_linked() {
    let hub = TestHub::start();
    let bytes = data(100_000, 9);
    let sha = sha256_hex(&bytes);
    hub.add_file(REPO, "model.gguf", bytes);
    hub.set_fault(REPO, "model.gguf", Fault::CorruptByte(1234));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&hub, dir.path());
    let err = fetch(&cfg, &req("model.gguf")).await.unwrap_err();
    let FetchError::IntegrityMismatch {
        expected,
        actual,
        quarantined,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(expected, format!("sha256 {sha}"));
    assert!(actual.starts_with("sha256 ") && actual != expected);
    assert!(
        quarantined.starts_with(dir.path().join("quarantine"))
            && quarantined.to_string_lossy().ends_with("-model.gguf")
    );
    assert_eq!(std::fs::metadata(&quarantined).unwrap().len(), 100_000);
    assert!(entries(&repo_dir(dir.path()).join("blobs")).is_empty());
    assert!(entries(&repo_dir(dir.path()).join("snapshots")).is_empty());
}

#[tokio::test]
async fn catalog_sha256_wins_over_the_etag() {
    let hub = TestHub::start();
    let bytes = data(10_000, 10);
    hub.add_file(REPO, "model.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&hub, dir.path());
    let wrong = sha256_hex(b"something else");
    let mut r = req("model.gguf");
    r.expected_sha256 = Some(wrong.clone());
    let err = fetch(&cfg, &r).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::IntegrityMismatch { expected, .. } if *expected == format!("sha256 {wrong}")),
        "{err}"
    );
    assert_eq!(cached(&cfg, &r), None);

    r.expected_sha256 = Some(sha256_hex(&bytes).to_uppercase());
    r.expected_size = Some(10_000);
    let got = fetch(&cfg, &r).await.unwrap();
    assert_eq!(got.integrity_source, IntegritySource::Catalog);
    // And a catalog value that disagrees with an already cached blob is not served from the cache.
    r.expected_sha256 = Some(wrong);
    assert!(matches!(
        fetch(&cfg, &r).await,
        Err(FetchError::IntegrityMismatch { .. })
    ));
}

#[tokio::test]
async fn insufficient_space_is_reported_before_any_get() {
    let hub = TestHub::start();
    hub.add_file_with_advertised_size(REPO, "huge.gguf", data(1000, 11), 1 << 60);
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&config(&hub, dir.path()), &req("huge.gguf"))
        .await
        .unwrap_err();
    let FetchError::InsufficientSpace {
        needed,
        available,
        dir: at,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*needed, 1 << 60);
    assert!(available < needed);
    assert_eq!(*at, repo_dir(dir.path()).join("blobs"));
    assert!(
        gets(&hub.requests()).is_empty(),
        "no GET before the space check: {:?}",
        hub.requests()
    );

    // The keep-free margin counts too.
    hub.add_file(REPO, "small.gguf", data(1000, 12));
    let mut cfg = config(&hub, dir.path());
    cfg.keep_free_bytes = u64::MAX / 2;
    assert!(matches!(
        fetch(&cfg, &req("small.gguf")).await,
        Err(FetchError::InsufficientSpace { .. })
    ));
}

#[tokio::test]
async fn disk_full_mid_write_is_an_error_and_installs_nothing() {
    let hub = TestHub::start();
    // Advertise a small size so the space check passes; the real body is 3 MiB on a 1 MiB tmpfs.
    hub.add_file_with_advertised_size(REPO, "model.gguf", data(3 << 20, 13), 100_000);
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return eprintln!(
                "ignored: cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Err(e) => return eprintln!("ignored: cannot run mount: {e}"),
    }
    let cfg = config(&hub, &mnt);
    let res = fetch(&cfg, &req("model.gguf")).await;
    let blobs = entries(&repo_dir(&mnt).join("blobs"));
    let snaps = entries(&repo_dir(&mnt).join("snapshots"));
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    let err = res.unwrap_err();
    assert!(
        matches!(&err, FetchError::Io { source, .. } if source.raw_os_error() == Some(28)),
        "{err}"
    );
    assert!(
        blobs.iter().all(|b| b.ends_with(".incomplete")),
        "{blobs:?}"
    );
    assert!(snaps.is_empty());
}

#[tokio::test]
async fn a_stalled_stream_times_out_and_resumes() {
    let hub = TestHub::start();
    let bytes = data(50_000, 14);
    hub.add_file(REPO, "model.gguf", bytes.clone());
    hub.set_fault(REPO, "model.gguf", Fault::Stall);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, dir.path());
    cfg.read_timeout = Duration::from_secs(1);
    let t = std::time::Instant::now();
    let got = fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs(1) && t.elapsed() < Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(std::fs::read(got.path).unwrap(), bytes);
    assert_eq!(
        gets(&hub.requests())
            .iter()
            .filter(|r| r.path.starts_with("/cdn/"))
            .count(),
        2
    );
}

#[tokio::test]
async fn dropping_the_future_keeps_the_partial_file_for_resume() {
    let hub = TestHub::start();
    let bytes = data(200_000, 15);
    hub.add_file(REPO, "model.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, dir.path());
    cfg.read_timeout = Duration::from_secs(30);
    // 60 000 bytes arrive, then the server goes quiet: cancel while waiting.
    hub.set_fault(REPO, "model.gguf", Fault::CutAfter(60_000));
    cfg.max_attempts = 1;
    let _ = fetch(&cfg, &req("model.gguf")).await;
    hub.set_fault(REPO, "model.gguf", Fault::Stall);
    cfg.max_attempts = 5;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), fetch(&cfg, &req("model.gguf")))
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let partial = repo_dir(dir.path())
        .join("blobs")
        .join(format!("{}.incomplete", sha256_hex(&bytes)));
    let have = std::fs::metadata(&partial).unwrap().len();
    assert!(have > 0, "the partial file survives cancellation");
    let got = fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert_eq!(got.resumed_from, have);
    assert_eq!(std::fs::read(got.path).unwrap(), bytes);
}

#[tokio::test]
async fn offline_mode_serves_the_cache_and_says_when_absent() {
    let hub = TestHub::start();
    hub.add_file(REPO, "model.gguf", data(10_000, 16));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, dir.path());
    let online = fetch(&cfg, &req("model.gguf")).await.unwrap();
    hub.clear_requests();
    cfg.offline = true;
    let off = fetch(&cfg, &req("model.gguf")).await.unwrap();
    assert_eq!(
        (off.path, off.sha256, off.bytes_downloaded),
        (online.path, online.sha256, 0)
    );
    let err = fetch(&cfg, &req("other.gguf")).await.unwrap_err();
    assert!(matches!(err, FetchError::Offline { .. }), "{err}");
    assert!(
        err.to_string().contains("HF_HUB_OFFLINE") && err.to_string().contains("other.gguf"),
        "{err}"
    );
    assert!(
        hub.requests().is_empty(),
        "offline means no network: {:?}",
        hub.requests()
    );
    let c = FetchConfig::from_env_with(|k| (k == "HF_HUB_OFFLINE").then(|| "1".to_owned()));
    assert!(c.offline);
}

#[tokio::test]
async fn file_and_http_url_sources() {
    let hub = TestHub::start();
    let bytes = data(70_000, 17);
    let sha = sha256_hex(&bytes);
    hub.add_file(REPO, "model.gguf", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&hub, dir.path());

    let local = dir.path().join("store").join("model.gguf");
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, &bytes).unwrap();
    let mut r = FetchRequest::new(Source::Url(format!("file://{}", local.display())));
    let got = fetch(&cfg, &r).await.unwrap();
    assert_eq!(got.integrity_source, IntegritySource::None);
    assert_eq!(got.sha256, sha);
    assert!(
        got.path.starts_with(dir.path().join("fleetfit-urls")) && got.path.ends_with("model.gguf")
    );
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    assert_eq!(cached(&cfg, &r), Some(got.path.clone()));

    let url = hub.cdn_url(REPO, "model.gguf").unwrap();
    r = FetchRequest::new(Source::Url(url.clone()));
    r.expected_sha256 = Some(sha.clone());
    let got = fetch(&cfg, &r).await.unwrap();
    assert_eq!(
        (got.integrity_source, got.bytes_downloaded),
        (IntegritySource::Catalog, 70_000)
    );
    assert_eq!(std::fs::read(&got.path).unwrap(), bytes);
    assert_eq!(head(&cfg, &r).await.unwrap().size, Some(70_000));

    // Resume and integrity work for URLs too.
    hub.set_fault(REPO, "model.gguf", Fault::CorruptByte(5));
    let mut bad = FetchRequest::new(Source::Url(format!("{url}?v=2")));
    bad.expected_sha256 = Some(sha);
    assert!(matches!(
        fetch(&cfg, &bad).await,
        Err(FetchError::IntegrityMismatch { .. })
    ));
    assert!(matches!(
        fetch(&cfg, &FetchRequest::new(Source::Url("ftp://x/y".into()))).await,
        Err(FetchError::InvalidSource { .. })
    ));
}

#[tokio::test]
async fn small_non_lfs_files_are_checked_by_git_blob_sha1() {
    let hub = TestHub::start();
    let bytes = br#"{"architectures":["LlamaForCausalLM"]}"#.to_vec();
    hub.add_small_file(REPO, "config.json", bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let got = fetch(&config(&hub, dir.path()), &req("config.json"))
        .await
        .unwrap();
    assert_eq!(got.integrity_source, IntegritySource::GitBlobSha1);
    let git = fleetfit_testhub::git_blob_sha1(&bytes);
    assert_eq!(got.blob.file_name().unwrap().to_string_lossy(), git);
    assert_eq!(got.sha256, sha256_hex(&bytes));
    assert_eq!(std::fs::read(got.path).unwrap(), bytes);
}

#[tokio::test]
async fn huggingface_hub_python_reads_our_cache() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import huggingface_hub"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return eprintln!("ignored: huggingface_hub not installed");
    }
    let hub = TestHub::start();
    hub.add_file(REPO, "model.gguf", data(10_000, 18));
    hub.add_small_file(REPO, "config.json", b"{}".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&hub, dir.path());
    let got = fetch(&cfg, &req("model.gguf")).await.unwrap();
    fetch(&cfg, &req("config.json")).await.unwrap();
    let script = r#"
import sys, huggingface_hub as h
p = h.try_to_load_from_cache("acme/tiny", "model.gguf", cache_dir=sys.argv[1])
print(p)
info = h.scan_cache_dir(sys.argv[1])
assert not info.warnings, info.warnings
repo = [r for r in info.repos if r.repo_id == "acme/tiny"][0]
print(sorted(f.file_name for rev in repo.revisions for f in rev.files), sorted(r for rev in repo.revisions for r in rev.refs))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("hub"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next().map(PathBuf::from), Some(got.path.clone()));
    assert_eq!(lines.next(), Some("['config.json', 'model.gguf'] ['main']"));

    // huggingface_hub online against the test hub: it finds our blob (HEAD only, no GET) ...
    hub.clear_requests();
    let dl = r#"
import sys, huggingface_hub as h
print(h.hf_hub_download("acme/tiny", sys.argv[2], cache_dir=sys.argv[1]))
"#;
    let run = |file: &str| {
        let out = std::process::Command::new("python3")
            .args(["-c", dl])
            .arg(dir.path().join("hub"))
            .arg(file)
            .env("HF_ENDPOINT", hub.url())
            .env("NO_PROXY", "127.0.0.1")
            .env_remove("HF_HUB_OFFLINE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    };
    assert_eq!(run("model.gguf"), got.path);
    assert!(file_gets(&hub.requests()) == 0, "{:?}", hub.requests());
    // ... and what it downloads itself is a cache hit for us.
    hub.add_file(REPO, "py/other.bin", data(5000, 19));
    let py = run("py/other.bin");
    hub.clear_requests();
    let ours = fetch(&cfg, &req("py/other.bin")).await.unwrap();
    assert_eq!((ours.path, ours.bytes_downloaded), (py, 0));
    assert_eq!(file_gets(&hub.requests()), 0);
}
