//! A Hugging Face hub-compatible HTTP server on 127.0.0.1 for tests and air-gapped demos (std threads only).
//!
//! It speaks the part of the hub protocol that download clients use (see `dependencies.md` §6):
//!
//! - `HEAD|GET /{org}/{name}/resolve/{rev}/{file...}`: for LFS-style files a `302` to `/cdn/<sha256>` carrying
//!   `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size` and `ETag`; for small (non-LFS) files a `200` with the git
//!   blob sha1 as `ETag` and the bytes on `GET`, as the real hub does. `If-None-Match` with the etag gives `304`.
//! - `GET /cdn/<etag>`: the bytes, with `Range` support (`206` + `Content-Range`, `416` when out of range).
//! - `GET /api/models/{org}/{name}/revision/{rev}` and `GET /api/models/{org}/{name}/tree/{rev}?recursive=true`.
//!
//! `X-Xet-Hash` is never sent. Every response closes its connection. Faults can be injected per file
//! ([`Fault`]) and every request is logged ([`TestHub::requests`]). It must not be used as a production server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use sha1::Digest as _;

/// A fault injected into the responses for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The next CDN `GET` sends headers with the full `Content-Length`, writes `n` bytes and closes (once).
    CutAfter(u64),
    /// Every `GET` of the resolve URL answers this status (the `HEAD` stays good).
    Status(u16),
    /// The first `k` resolve `GET`s answer this status, then normal.
    StatusTimes(u16, u32),
    /// The CDN serves the byte at this offset flipped; `HEAD` still advertises the true sha256.
    CorruptByte(u64),
    /// The next CDN `GET` sends its headers and then nothing (once); the connection stays open for a while.
    Stall,
    /// `HEAD` and `GET` of the resolve URL answer `401` without `Authorization: Bearer <token>`.
    RequireToken(String),
    /// The next CDN `GET` writes `n` bytes, then holds the connection open for 20 s sending
    /// nothing (once): a client killed meanwhile leaves a partial download behind.
    StallAfter(u64),
}

/// One request as the hub saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Whether an `Authorization` header was present.
    pub authorization: bool,
}

#[derive(Clone)]
enum Content {
    Memory(Arc<Vec<u8>>),
    Disk(PathBuf),
}

#[derive(Clone)]
struct Entry {
    content: Content,
    size: u64,
    sha256: String,
    /// sha256 for LFS files, git blob sha1 for small ones.
    etag: String,
    lfs: bool,
    advertised_size: u64,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<String, BTreeMap<String, Entry>>,
    faults: BTreeMap<(String, String), Fault>,
    /// etag → (repo, file), for the CDN.
    cdn: BTreeMap<String, (String, String)>,
    log: Vec<LoggedRequest>,
    cdn_host: Option<String>,
}

/// The server; it stops accepting when dropped.
pub struct TestHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// sha256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

/// The git blob sha1 of bytes (`"blob {len}\0"` + content), which the hub uses as the `ETag` of non-LFS files.
pub fn git_blob_sha1(bytes: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

/// The fake commit sha of a repo: deterministic, 40 hex.
pub fn commit_of(repo: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(b"fleetfit-testhub commit ");
    h.update(repo.as_bytes());
    hex(&h.finalize())
}

impl TestHub {
    /// Binds `127.0.0.1:0` and serves in background threads until dropped.
    pub fn start() -> TestHub {
        match TestHub::start_on("127.0.0.1:0") {
            Ok(hub) => hub,
            Err(e) => panic!("testhub: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// Binds `addr` and serves in background threads until dropped.
    pub fn start_on(addr: &str) -> io::Result<TestHub> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                thread::spawn(move || {
                    let _ = handle(&st, conn);
                });
            }
        });
        Ok(TestHub { addr, state, stop })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Redirects to the CDN go to `http://<host>:<port>/cdn/...` (absolute) instead of the relative `/cdn/...`,
    /// e.g. `localhost`, so the CDN is "another host" for clients while being the same server.
    pub fn set_cdn_host(&self, host: &str) {
        lock(&self.state).cdn_host = Some(host.to_owned());
    }

    /// The fake commit sha of `repo`.
    pub fn commit(&self, repo: &str) -> String {
        commit_of(repo)
    }

    fn insert(&self, repo: &str, file: &str, entry: Entry) {
        let mut st = lock(&self.state);
        st.cdn
            .insert(entry.etag.clone(), (repo.to_owned(), file.to_owned()));
        st.repos
            .entry(repo.to_owned())
            .or_default()
            .insert(file.to_owned(), entry);
    }

    /// Adds an LFS-style file: `ETag`/`X-Linked-Etag` = sha256, `X-Linked-Size`, served from the CDN.
    pub fn add_file(&self, repo: &str, file: &str, bytes: Vec<u8>) {
        let size = bytes.len() as u64;
        self.add_file_with_advertised_size(repo, file, bytes, size);
    }

    /// Like [`TestHub::add_file`], but `X-Linked-Size` advertises `advertised` (to fake a huge file).
    pub fn add_file_with_advertised_size(
        &self,
        repo: &str,
        file: &str,
        bytes: Vec<u8>,
        advertised: u64,
    ) {
        let sha = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        let entry = Entry {
            content: Content::Memory(Arc::new(bytes)),
            size,
            sha256: sha.clone(),
            etag: sha,
            lfs: true,
            advertised_size: advertised,
        };
        self.insert(repo, file, entry);
    }

    /// Adds a non-LFS file: `ETag` = git blob sha1, no `X-Linked-*`, served directly by the resolve URL.
    pub fn add_small_file(&self, repo: &str, file: &str, bytes: Vec<u8>) {
        let size = bytes.len() as u64;
        let entry = Entry {
            sha256: sha256_hex(&bytes),
            etag: git_blob_sha1(&bytes),
            content: Content::Memory(Arc::new(bytes)),
            size,
            lfs: false,
            advertised_size: size,
        };
        self.insert(repo, file, entry);
    }

    /// Adds an LFS-style file streamed from disk; its sha256 is computed once, now.
    pub fn add_file_from_disk(&self, repo: &str, file: &str, path: &Path) -> io::Result<()> {
        let mut f = File::open(path)?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
        }
        let sha = hex(&h.finalize());
        let entry = Entry {
            content: Content::Disk(path.to_owned()),
            size,
            sha256: sha.clone(),
            etag: sha,
            lfs: true,
            advertised_size: size,
        };
        self.insert(repo, file, entry);
        Ok(())
    }

    /// The sha256 of a registered file.
    pub fn sha256(&self, repo: &str, file: &str) -> Option<String> {
        lock(&self.state)
            .repos
            .get(repo)?
            .get(file)
            .map(|e| e.sha256.clone())
    }

    /// The absolute CDN URL of a registered file (what curl downloads in the benchmark).
    pub fn cdn_url(&self, repo: &str, file: &str) -> Option<String> {
        let st = lock(&self.state);
        let e = st.repos.get(repo)?.get(file)?;
        Some(format!("{}/cdn/{}", self.url(), e.etag))
    }

    /// Injects a fault for one file (replacing any previous one).
    pub fn set_fault(&self, repo: &str, file: &str, fault: Fault) {
        lock(&self.state)
            .faults
            .insert((repo.to_owned(), file.to_owned()), fault);
    }

    /// Removes the fault of one file.
    pub fn clear_fault(&self, repo: &str, file: &str) {
        lock(&self.state)
            .faults
            .remove(&(repo.to_owned(), file.to_owned()));
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> io::Result<Request> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Request {
        method,
        target,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    content_length: u64,
) -> io::Result<()> {
    let mut s = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    let _ = write!(
        s,
        "Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(s.as_bytes())
}

fn simple(stream: &mut TcpStream, req: &Request, status: u16, body: &str) -> io::Result<()> {
    write_head(
        stream,
        status,
        &[("Content-Type", "text/plain".to_owned())],
        body.len() as u64,
    )?;
    if req.method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    Ok(())
}

fn json(stream: &mut TcpStream, req: &Request, body: &serde_json::Value) -> io::Result<()> {
    let body = body.to_string();
    write_head(
        stream,
        200,
        &[("Content-Type", "application/json".to_owned())],
        body.len() as u64,
    )?;
    if req.method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    Ok(())
}

fn handle(state: &Mutex<State>, mut stream: TcpStream) -> io::Result<()> {
    let req = read_request(&stream)?;
    {
        let mut st = lock(state);
        st.log.push(LoggedRequest {
            method: req.method.clone(),
            path: req.target.clone(),
            host: req.header("host").map(str::to_owned),
            range: req.header("range").map(str::to_owned),
            authorization: req.header("authorization").is_some(),
        });
    }
    let result = route(state, &mut stream, &req);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    result
}

fn route(state: &Mutex<State>, stream: &mut TcpStream, req: &Request) -> io::Result<()> {
    if req.method != "GET" && req.method != "HEAD" {
        return simple(stream, req, 405, "method not allowed");
    }
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["cdn", etag] => cdn(state, stream, req, etag),
        ["api", "models", org, name, "revision", rev] => {
            let repo = format!("{org}/{name}");
            let st = lock(state);
            let Some(files) = st.repos.get(&repo).filter(|_| rev_ok(&repo, rev)) else {
                drop(st);
                return simple(stream, req, 404, "Repository not found");
            };
            let siblings: Vec<_> = files
                .keys()
                .map(|f| serde_json::json!({ "rfilename": f }))
                .collect();
            let body =
                serde_json::json!({ "id": repo, "sha": commit_of(&repo), "siblings": siblings });
            drop(st);
            json(stream, req, &body)
        }
        ["api", "models", org, name, "tree", rev] => {
            let repo = format!("{org}/{name}");
            let _ = query; // recursive=true is the only mode: every file is listed.
            let st = lock(state);
            let Some(files) = st.repos.get(&repo).filter(|_| rev_ok(&repo, rev)) else {
                drop(st);
                return simple(stream, req, 404, "Repository not found");
            };
            let list: Vec<_> = files
                .iter()
                .map(|(f, e)| {
                    let mut v = serde_json::json!({ "type": "file", "oid": e.etag, "size": e.size, "path": f });
                    if e.lfs {
                        v["lfs"] = serde_json::json!({ "oid": e.sha256, "size": e.size });
                    }
                    v
                })
                .collect();
            drop(st);
            json(stream, req, &serde_json::Value::Array(list))
        }
        [org, name, "resolve", rev, file @ ..] if !file.is_empty() => resolve(
            state,
            stream,
            req,
            &format!("{org}/{name}"),
            rev,
            &file.join("/"),
        ),
        _ => simple(stream, req, 404, "not found"),
    }
}

fn rev_ok(repo: &str, rev: &str) -> bool {
    rev == "main" || rev == commit_of(repo)
}

fn etag_matches(req: &Request, etag: &str) -> bool {
    req.header("if-none-match").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().trim_start_matches("W/").trim_matches('"') == etag)
    })
}

fn resolve(
    state: &Mutex<State>,
    stream: &mut TcpStream,
    req: &Request,
    repo: &str,
    rev: &str,
    file: &str,
) -> io::Result<()> {
    let mut st = lock(state);
    let key = (repo.to_owned(), file.to_owned());
    match st.faults.get(&key).cloned() {
        Some(Fault::RequireToken(tok)) => {
            let ok = req
                .header("authorization")
                .is_some_and(|v| v == format!("Bearer {tok}"));
            if !ok {
                drop(st);
                return simple(
                    stream,
                    req,
                    401,
                    "Invalid credentials in Authorization header",
                );
            }
        }
        Some(Fault::Status(code)) if req.method == "GET" => {
            drop(st);
            return simple(stream, req, code, "injected error");
        }
        Some(Fault::StatusTimes(code, k)) if req.method == "GET" => {
            if k <= 1 {
                st.faults.remove(&key);
            } else {
                st.faults.insert(key, Fault::StatusTimes(code, k - 1));
            }
            drop(st);
            return simple(stream, req, code, "injected error");
        }
        _ => {}
    }
    let entry = st.repos.get(repo).and_then(|f| f.get(file)).cloned();
    let cdn_host = st.cdn_host.clone();
    drop(st);
    let Some(e) = entry.filter(|_| rev_ok(repo, rev)) else {
        return simple(stream, req, 404, "Entry not found");
    };
    let commit = commit_of(repo);
    let quoted = format!("\"{}\"", e.etag);
    if etag_matches(req, &e.etag) {
        return write_head(
            stream,
            304,
            &[("ETag", quoted), ("X-Repo-Commit", commit)],
            0,
        );
    }
    if e.lfs {
        let location = match cdn_host {
            Some(h) => format!("http://{h}:{}/cdn/{}", stream.local_addr()?.port(), e.etag),
            None => format!("/cdn/{}", e.etag),
        };
        let headers = [
            ("Location", location),
            ("ETag", quoted.clone()),
            ("X-Linked-Etag", quoted),
            ("X-Linked-Size", e.advertised_size.to_string()),
            ("X-Repo-Commit", commit),
        ];
        return write_head(stream, 302, &headers, 0);
    }
    let headers = [
        ("ETag", quoted),
        ("X-Repo-Commit", commit),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    serve_bytes(stream, req, &e, &headers, None)
}

fn cdn(state: &Mutex<State>, stream: &mut TcpStream, req: &Request, etag: &str) -> io::Result<()> {
    let mut st = lock(state);
    let Some((repo, file)) = st.cdn.get(etag).cloned() else {
        drop(st);
        return simple(stream, req, 404, "no such object");
    };
    let Some(e) = st.repos.get(&repo).and_then(|f| f.get(&file)).cloned() else {
        drop(st);
        return simple(stream, req, 404, "no such object");
    };
    let key = (repo, file);
    let fault = if req.method == "GET" {
        st.faults.get(&key).cloned()
    } else {
        None
    };
    if matches!(
        fault,
        Some(Fault::CutAfter(_) | Fault::Stall | Fault::StallAfter(_))
    ) {
        st.faults.remove(&key);
    }
    drop(st);
    // The hub's metadata headers here too: huggingface_hub follows a relative redirect on HEAD and reads them from
    // the target (the real CDN is on another host, so clients stop at the hub's 302 there).
    let quoted = format!("\"{}\"", e.etag);
    let headers = [
        ("ETag", quoted.clone()),
        ("X-Linked-Etag", quoted),
        ("X-Linked-Size", e.advertised_size.to_string()),
        ("X-Repo-Commit", commit_of(&key.0)),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    serve_bytes(stream, req, &e, &headers, fault.as_ref())
}

/// Parses `bytes=N-` / `bytes=N-M` against `size`: `Ok(None)` = no range, `Err(())` = not satisfiable.
fn parse_range(v: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = v else { return Ok(None) };
    let spec = v.trim().strip_prefix("bytes=").ok_or(())?;
    let (a, b) = spec.split_once('-').ok_or(())?;
    let start: u64 = a.trim().parse().map_err(|_| ())?;
    let end = if b.trim().is_empty() {
        size.saturating_sub(1)
    } else {
        b.trim()
            .parse::<u64>()
            .map_err(|_| ())?
            .min(size.saturating_sub(1))
    };
    if start >= size || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn serve_bytes(
    stream: &mut TcpStream,
    req: &Request,
    e: &Entry,
    base: &[(&str, String)],
    fault: Option<&Fault>,
) -> io::Result<()> {
    let mut headers: Vec<(&str, String)> = base.to_vec();
    headers.push(("Content-Type", "application/octet-stream".to_owned()));
    let (status, start, end) = match parse_range(req.header("range"), e.size) {
        Ok(None) => (200, 0, e.size),
        Ok(Some((s, last))) => {
            headers.push(("Content-Range", format!("bytes {s}-{last}/{}", e.size)));
            (206, s, last + 1)
        }
        Err(()) => {
            headers.push(("Content-Range", format!("bytes */{}", e.size)));
            return write_head(stream, 416, &headers, 0);
        }
    };
    write_head(stream, status, &headers, end - start)?;
    if req.method == "HEAD" {
        return Ok(());
    }
    let (limit, corrupt) = match fault {
        Some(Fault::Stall) => {
            stream.flush()?;
            thread::sleep(Duration::from_secs(20));
            return Ok(());
        }
        Some(Fault::CutAfter(n) | Fault::StallAfter(n)) => {
            (start.saturating_add(*n).min(end), None)
        }
        Some(Fault::CorruptByte(off)) => (end, Some(*off)),
        _ => (end, None),
    };
    let mut pos = start;
    let mut send = |chunk: &mut [u8], pos: &mut u64| -> io::Result<()> {
        if let Some(off) = corrupt
            && off >= *pos
            && off < *pos + chunk.len() as u64
        {
            chunk[(off - *pos) as usize] ^= 0xff;
        }
        stream.write_all(chunk)?;
        *pos += chunk.len() as u64;
        Ok(())
    };
    match &e.content {
        Content::Memory(bytes) => {
            while pos < limit {
                let n = (limit - pos).min(1 << 20) as usize;
                let mut chunk = bytes[pos as usize..pos as usize + n].to_vec();
                send(&mut chunk, &mut pos)?;
            }
        }
        Content::Disk(path) => {
            let mut f = File::open(path)?;
            f.seek(SeekFrom::Start(pos))?;
            let mut buf = vec![0u8; 1 << 20];
            while pos < limit {
                let want = (limit - pos).min(buf.len() as u64) as usize;
                let n = f.read(&mut buf[..want])?;
                if n == 0 {
                    break;
                }
                send(&mut buf[..n], &mut pos)?;
            }
        }
    }
    if let Some(Fault::StallAfter(_)) = fault {
        stream.flush()?;
        thread::sleep(Duration::from_secs(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_sha1(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn ranges_parse_and_reject() {
        assert_eq!(parse_range(Some("bytes=2-"), 10), Ok(Some((2, 9))));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Ok(Some((2, 4))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(None, 10), Ok(None));
    }
}
