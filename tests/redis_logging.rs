//! What `RedisStore` and `Cache` log through `tracing` while Redis is down and when it is back.
//!
//! A test binary of its own: `tracing` caches whether a log statement is wanted the first time
//! any thread runs it, from that thread's subscriber when only one is set. The recording
//! subscriber here is set for this test's thread alone, so a statement that another test ran
//! first (on a thread without one) would stay silent here.
#![cfg(all(feature = "redis", feature = "tracing"))]

mod support;

use std::fmt::{Debug, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum_cache::store::{RedisStore, Store};
use axum_cache::{Cache, CacheLayer, CacheStatus, Timeout, vary_on_cookie, vary_on_headers};
use bytes::Bytes;
use http_body_util::BodyExt;
use support::redis;
use support::tasks::eventually;
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Every event's level, message and fields as one line of text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines()
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line(event.metadata().level().to_string());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// How events name a key: the first 8 bytes of its SHA-256, in hex.
fn short_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// An outage is logged: each failed call as a warning with its operation and key hash, the breaker
/// opening as a warning, and its closing once Redis is back.
#[tokio::test]
async fn an_outage_is_logged_as_it_starts_and_ends() {
    let Some(mut server) = redis::own_server() else {
        return;
    };
    let recorder = Recorder::default();
    let _logging = tracing::subscriber::set_default(recorder.clone());
    let store = RedisStore::builder(server.url())
        .prefix("logged")
        .command_timeout(Duration::from_millis(200))
        .breaker(2, Duration::from_millis(300))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .await
        .expect("connects");
    let cache = Cache::builder(store.clone()).ignore_errors(true).build();
    cache.set("k", "v", Timeout::secs(60)).await.unwrap();
    server.kill();
    for _ in 0..3 {
        assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    }
    let lines = recorder.lines();
    let key_hash = short_hash(":1:k");
    let failed = lines
        .iter()
        .filter(|line| {
            line.starts_with("WARN message=cache store operation failed")
                && line.contains(&format!("operation=\"get\" key_hash={key_hash}"))
        })
        .count();
    assert_eq!(failed, 3, "{lines:#?}");
    assert!(
        lines.iter().all(|line| !line.contains(":1:k")),
        "events name keys by their hash alone: {lines:#?}"
    );
    assert_eq!(
        recorder.count("WARN message=Redis keeps failing"),
        1,
        "{lines:#?}"
    );
    assert_eq!(recorder.count("Redis answers again"), 0, "{lines:#?}");

    server.restart();
    eventually(Duration::from_secs(10), "recovery", || async {
        store
            .set("after", Bytes::from_static(b"v"), None)
            .await
            .is_ok()
    })
    .await;
    assert_eq!(
        recorder.count("INFO message=Redis answers again"),
        1,
        "{:#?}",
        recorder.lines()
    );
}

/// A value no one could guess, with a readable label.
fn secret(label: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = |n: u64| RandomState::new().hash_one(n);
    format!("{label}-{:016x}{:016x}", random(1), random(2))
}

/// Request secrets never leave the process: after requests carrying unique random secrets in
/// `Authorization`, in `Cookie` under `Vary: Cookie` and in a custom varied header (misses,
/// hits, a lock across processes, then the same during an outage), no key and no value in
/// Redis, no command Redis received (`MONITOR`) and no event logged holds any of them.
#[tokio::test]
async fn request_secrets_reach_no_key_no_value_no_command_and_no_log() {
    let Some(mut server) = redis::own_server() else {
        return;
    };
    let mut monitor = std::process::Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "monitor"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli monitor");
    let mut monitored = std::io::BufReader::new(monitor.stdout.take().expect("monitor output"));
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut monitored, &mut ready).expect("monitor starts");
    assert_eq!(ready.trim(), "OK");
    let recorder = Recorder::default();
    let _logging = tracing::subscriber::set_default(recorder.clone());
    let store = RedisStore::builder(server.url())
        .prefix("secrets")
        .command_timeout(Duration::from_millis(200))
        .breaker(1000, Duration::from_millis(300))
        .build()
        .await
        .expect("connects");
    let cache = Cache::builder(store).key_secret("the key secret").build();
    let layer = CacheLayer::new(cache.clone())
        .lock_across_processes(Duration::from_secs(5), Duration::from_secs(1));
    let app = Router::new()
        .route("/bearer", get(|| async { "for a bearer" }))
        .route(
            "/cookie",
            get(|| async { "for a session" }).layer(vary_on_cookie()),
        )
        .route(
            "/custom",
            get(|| async { "for a key" }).layer(vary_on_headers(["X-Api-Key"])),
        )
        .layer(layer);
    let mut secrets = Vec::new();
    let send_all = async |secrets: &mut Vec<String>| {
        let mut statuses = Vec::new();
        for _user in 0..2 {
            let requests = [
                (
                    "/bearer",
                    "authorization",
                    format!("Bearer {}", secret("bearer")),
                ),
                (
                    "/cookie",
                    "cookie",
                    format!("session={}", secret("session")),
                ),
                ("/custom", "x-api-key", secret("apikey")),
            ];
            for (path, name, value) in requests {
                secrets.push(value.clone());
                for _round in 0..2 {
                    let tasks = support::tasks::Tasks::now();
                    let request = Request::builder()
                        .uri(path)
                        .header("host", "example.com")
                        .header(name, &value)
                        .body(Body::empty())
                        .unwrap();
                    let response = app.clone().oneshot(request).await.unwrap();
                    statuses.push(response.extensions().get::<CacheStatus>().copied());
                    response.into_body().collect().await.unwrap();
                    tasks.wait_for().await;
                }
            }
        }
        statuses
    };
    let statuses = send_all(&mut secrets).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == Some(CacheStatus::Hit))
            .count(),
        6,
        "each request's second round is a hit: {statuses:?}"
    );
    let keys = server.cli(&["--scan"]);
    assert!(keys.lines().count() >= 6, "pages were stored: {keys}");
    let mut stored = keys.clone();
    for key in keys.lines() {
        stored.push_str(&server.cli(&["GET", key]));
    }
    server.kill();
    let outage = send_all(&mut secrets).await;
    assert!(
        outage
            .iter()
            .all(|status| *status != Some(CacheStatus::Hit))
    );
    // The server is gone, so the monitor has ended; read what it saw.
    let mut commands = String::new();
    std::io::Read::read_to_string(&mut monitored, &mut commands).expect("monitor output");
    let _ = monitor.wait();
    assert!(commands.contains("\"SET\""), "MONITOR saw the writes");
    let logged = recorder.lines().join("\n");
    assert!(
        logged.contains("cache store operation failed"),
        "the outage was logged: {logged}"
    );
    for secret in &secrets {
        // The token alone, as well as the whole header value.
        let token = secret.rsplit([' ', '=']).next().unwrap();
        for (place, text) in [
            ("keys and values", &stored),
            ("commands", &commands),
            ("events", &logged),
        ] {
            assert!(
                !text.contains(token),
                "{secret} appears in the {place}: {text}"
            );
        }
    }
}
