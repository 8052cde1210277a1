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

use axum_cache::store::{RedisStore, Store};
use axum_cache::{Cache, Timeout};
use bytes::Bytes;
use support::redis;
use support::tasks::eventually;
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

/// An outage is logged: each failed call as a warning with its operation and key, the breaker
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
    let failed = lines
        .iter()
        .filter(|line| {
            line.starts_with("WARN message=cache store operation failed")
                && line.contains("operation=\"get\" key=\":1:k\"")
        })
        .count();
    assert_eq!(failed, 3, "{lines:#?}");
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
