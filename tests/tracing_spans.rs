//! The response cache's `tracing` span: one per request, with its method, path (never the query
//! or a header), outcome and store latency, and the work done after the answer (a remote write)
//! inside it.
#![cfg(feature = "tracing")]

mod support;

use std::collections::HashMap;
use std::fmt::{Debug, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum_cache::store::{MemoryStore, Store};
use axum_cache::{CacheBuilder, CacheLayer, CacheStatus};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use support::stores::BytesOnly;
use support::tasks::Tasks;

/// A span as recorded: its name and its fields as text.
#[derive(Clone, Debug, Default)]
struct SpanRecord {
    name: String,
    fields: HashMap<String, String>,
}

/// An event as recorded: its message and fields as text, and the span it happened in.
#[derive(Clone, Debug)]
struct EventRecord {
    text: String,
    span: Option<u64>,
}

/// Records spans, their fields and the events inside them; tracks which span each thread is in.
#[derive(Clone, Default)]
struct Recorder {
    next: Arc<AtomicU64>,
    spans: Arc<Mutex<HashMap<u64, SpanRecord>>>,
    metadata: Arc<Mutex<HashMap<u64, &'static Metadata<'static>>>>,
    events: Arc<Mutex<Vec<EventRecord>>>,
    entered: Arc<Mutex<HashMap<ThreadId, Vec<u64>>>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut record = SpanRecord {
            name: attributes.metadata().name().to_owned(),
            ..SpanRecord::default()
        };
        attributes.record(&mut Fields(&mut record.fields));
        self.spans.lock().unwrap().insert(id, record);
        self.metadata
            .lock()
            .unwrap()
            .insert(id, attributes.metadata());
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(record) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut record.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn current_span(&self) -> tracing_core::span::Current {
        let current = self
            .entered
            .lock()
            .unwrap()
            .get(&std::thread::current().id())
            .and_then(|stack| stack.last().copied());
        let metadata = current.and_then(|id| Some((id, *self.metadata.lock().unwrap().get(&id)?)));
        match metadata {
            Some((id, metadata)) => tracing_core::span::Current::new(Id::from_u64(id), metadata),
            None => tracing_core::span::Current::none(),
        }
    }

    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        let span = self
            .entered
            .lock()
            .unwrap()
            .get(&std::thread::current().id())
            .and_then(|stack| stack.last().copied());
        self.events
            .lock()
            .unwrap()
            .push(EventRecord { text: text.0, span });
    }

    fn enter(&self, span: &Id) {
        self.entered
            .lock()
            .unwrap()
            .entry(std::thread::current().id())
            .or_default()
            .push(span.into_u64());
    }

    fn exit(&self, _: &Id) {
        if let Some(stack) = self
            .entered
            .lock()
            .unwrap()
            .get_mut(&std::thread::current().id())
        {
            stack.pop();
        }
    }
}

impl Recorder {
    fn cache_spans(&self) -> Vec<(u64, SpanRecord)> {
        let mut spans: Vec<(u64, SpanRecord)> = self
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, record)| record.name == "response_cache")
            .map(|(id, record)| (*id, record.clone()))
            .collect();
        spans.sort_by_key(|(id, _)| *id);
        spans
    }
}

async fn send(app: &Router, uri: &str) -> CacheStatus {
    let request = Request::builder()
        .uri(uri)
        .header("host", "example.com")
        .header("authorization", "Bearer top-secret-token")
        .body(Body::empty())
        .unwrap();
    let tasks = Tasks::now();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = *response.extensions().get::<CacheStatus>().unwrap();
    response.into_body().collect().await.unwrap();
    tasks.wait_for().await;
    status
}

fn app(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route(
            "/page",
            get(|| async { ([("cache-control", "public")], "page") }),
        )
        .layer(CacheLayer::new(CacheBuilder::from_arc(store).build()))
}

#[tokio::test(flavor = "current_thread")]
async fn each_request_has_a_span_with_method_path_and_outcome() {
    let recorder = Recorder::default();
    let _subscriber = tracing::subscriber::set_default(recorder.clone());
    let app = app(Arc::new(MemoryStore::new()));
    assert_eq!(
        send(&app, "/page?token=query-secret").await,
        CacheStatus::Stored
    );
    assert_eq!(
        send(&app, "/page?token=query-secret").await,
        CacheStatus::Hit
    );
    let spans = recorder.cache_spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    for ((_, span), outcome) in spans.iter().zip(["Stored", "Hit"]) {
        assert_eq!(span.fields.get("method").map(String::as_str), Some("GET"));
        assert_eq!(span.fields.get("path").map(String::as_str), Some("/page"));
        assert_eq!(
            span.fields.get("outcome").map(String::as_str),
            Some(outcome)
        );
    }
    let everything = format!("{spans:?} {:?}", recorder.events.lock().unwrap());
    assert!(
        !everything.contains("query-secret"),
        "no query in spans or events"
    );
    assert!(
        !everything.contains("top-secret-token"),
        "no header value in spans or events"
    );
    // The outcome event happens inside the request's span.
    let events = recorder.events.lock().unwrap().clone();
    let outcomes: Vec<&EventRecord> = events
        .iter()
        .filter(|event| event.text.contains("response cache"))
        .collect();
    assert_eq!(outcomes.len(), 2);
    for (event, (id, _)) in outcomes.iter().zip(&spans) {
        assert_eq!(event.span, Some(*id));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_remote_lookup_records_its_latency_and_storing_names_the_requests_span() {
    let recorder = Recorder::default();
    let _subscriber = tracing::subscriber::set_default(recorder.clone());
    let app = app(Arc::new(BytesOnly::default()));
    assert_eq!(send(&app, "/page").await, CacheStatus::Stored);
    assert_eq!(send(&app, "/page").await, CacheStatus::Hit);
    let spans = recorder.cache_spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    for (_, span) in &spans {
        let micros = span
            .fields
            .get("store_micros")
            .expect("store latency recorded");
        assert!(micros.parse::<u64>().is_ok(), "{micros}");
    }
    // The page is stored when its body ends, outside the request's future: the event still
    // names the request's span. (The spawned write itself is checked below, by the test whose
    // write fails.)
    let events = recorder.events.lock().unwrap().clone();
    let stored: Vec<&EventRecord> = events
        .iter()
        .filter(|event| event.text.contains("response stored"))
        .collect();
    assert!(!stored.is_empty(), "{events:?}");
    assert!(
        stored.iter().all(|event| event.span == Some(spans[0].0)),
        "{stored:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_background_write_is_logged_in_the_requests_span() {
    let recorder = Recorder::default();
    let _subscriber = tracing::subscriber::set_default(recorder.clone());
    let app = app(Arc::new(support::stores::DownStore));
    assert_eq!(send(&app, "/page").await, CacheStatus::Stored);
    let spans = recorder.cache_spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let events = recorder.events.lock().unwrap().clone();
    let failed_write: Vec<&EventRecord> = events
        .iter()
        .filter(|event| event.text.contains("operation=\"set\""))
        .collect();
    assert_eq!(failed_write.len(), 1, "{events:?}");
    assert_eq!(
        failed_write[0].span,
        Some(spans[0].0),
        "the spawned write carries the span"
    );
}
