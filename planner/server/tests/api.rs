//! In-process tests of the router (`tower::ServiceExt::oneshot`, no socket): the OpenAPI file
//! documents every route and the router serves every documented one; body limits and JSON
//! errors; the store's enrollment refusals write nothing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fleetfit_server::auth::AdminToken;
use fleetfit_server::config::ConfigSource;
use fleetfit_server::metrics::Metrics;
use fleetfit_server::routes::{AppState, ROUTES, router};
use fleetfit_server::store::{EnrollRefusal, NewEnrollment, NewToken, SqliteStore, Store};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt as _;

const ADMIN: &str = "admin";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn app(dir: &tempfile::TempDir) -> (axum::Router, Arc<SqliteStore>) {
    let store = Arc::new(
        SqliteStore::open(&format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .await
        .unwrap(),
    );
    let config =
        Arc::new(ConfigSource::open(root().join("catalog"), root().join("policies")).unwrap());
    let state = Arc::new(AppState::new(
        store.clone(),
        config,
        Arc::new(Metrics::default()),
        AdminToken::new(ADMIN).unwrap(),
        60,
    ));
    (router(state), store)
}

fn openapi_routes() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(root().join("docs/openapi.yaml")).unwrap();
    let doc: serde_json::Value = fleetfit_core::yaml::parse("docs/openapi.yaml", &text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                out.insert((method.clone(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_in_the_openapi_file_and_nothing_else_is() {
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let documented = openapi_routes();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/openapi.yaml: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
}

#[tokio::test]
async fn the_router_serves_every_listed_route_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(&dir).await;
    for (method, path) in ROUTES {
        let uri = path.replace("{id}", "x");
        let req = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let status = app.clone().oneshot(req).await.unwrap().status();
        assert_ne!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
    }
    let req = Request::get("/v1/nope").body(Body::empty()).unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn oversized_streamed_bodies_get_413_and_bad_json_400_or_422() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = app(&dir).await;
    // No Content-Length: the limit applies while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = Body::from_stream(futures_util_stream(chunks));
    let req = Request::post("/v1/enroll")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    for (body, status) in [
        ("{", StatusCode::BAD_REQUEST),
        ("not json", StatusCode::BAD_REQUEST),
        ("{\"device_id\": \"a\"}", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "{\"enrollment_token\": \"t\", \"device_id\": \"a\", \"extra\": 1}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let req = Request::post("/v1/enroll").body(Body::from(body)).unwrap();
        assert_eq!(
            app.clone().oneshot(req).await.unwrap().status(),
            status,
            "{body}"
        );
    }
    assert!(store.devices().await.unwrap().is_empty());
}

fn futures_util_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_core_stream::iter(chunks)
}

/// A tiny `Stream` over a vector (no extra crate).
mod futures_core_stream {
    pub use futures_core::Stream;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct Iter<I>(I);

    pub fn iter<I: IntoIterator>(i: I) -> Iter<I::IntoIter> {
        Iter(i.into_iter())
    }

    impl<I: Iterator + Unpin> Stream for Iter<I> {
        type Item = I::Item;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
            Poll::Ready(self.0.next())
        }
    }
}

#[tokio::test]
async fn refused_enrollments_write_nothing_and_a_token_is_spent_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = app(&dir).await;
    let enrollment = |id: &str| NewEnrollment {
        device_id: id.to_owned(),
        hostname: String::new(),
        labels: std::collections::BTreeMap::new(),
        credential_id: format!("cred-{id}"),
        credential_hash: format!("hash-{id}"),
    };
    let token = |id: &str, expires_at: i64| NewToken {
        id: id.to_owned(),
        hash: format!("tokhash-{id}"),
        created_at: 0,
        expires_at,
        uses: 1,
        labels: std::collections::BTreeMap::from([("site".to_owned(), "lab".to_owned())]),
    };
    store.create_token(token("live", 1000)).await.unwrap();
    store.create_token(token("old", 10)).await.unwrap();
    store.create_token(token("gone", 1000)).await.unwrap();
    assert!(store.revoke_token("gone".into(), 5).await.unwrap());
    let r = |h: &str, id: &str| store.enroll(h.to_owned(), 100, enrollment(id));
    assert_eq!(r("nope", "a").await.unwrap(), Err(EnrollRefusal::Unknown));
    assert_eq!(
        r("tokhash-old", "a").await.unwrap(),
        Err(EnrollRefusal::Expired)
    );
    assert_eq!(
        r("tokhash-gone", "a").await.unwrap(),
        Err(EnrollRefusal::Revoked)
    );
    assert!(store.devices().await.unwrap().is_empty());
    assert_eq!(r("tokhash-live", "a").await.unwrap(), Ok(()));
    assert_eq!(
        r("tokhash-live", "b").await.unwrap(),
        Err(EnrollRefusal::Exhausted)
    );
    let devices = store.devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].id, "a");
    let owner = store
        .credential_owner("hash-a".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.device_id, "a");
    let tokens = store.list_tokens().await.unwrap();
    let live = tokens.iter().find(|t| t.id == "live").unwrap();
    assert_eq!(live.uses_left, 0);
}
