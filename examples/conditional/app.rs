//! The application of the `conditional` example, shared with the browser test
//! (`tests/browser.rs`), which drives it with headless Chromium.
//!
//! - `GET /articles/{id}`: an HTML page guarded by `condition()`. Its ETag and Last-Modified
//!   come from the article's version and update time, looked up before the handler runs; a
//!   browser revalidating a current copy gets `304 Not Modified` and the page is not rendered.
//! - `PUT /articles/{id}`: edits the article. With `If-Match` and a stale ETag it is refused
//!   with `412 Precondition Failed` before the handler runs (no lost update).
//! - `GET /static/app.js`: a script behind `ConditionalGetLayer`, which tags it with the
//!   SHA-256 of its body and answers `304` when the browser has it.
//! - `GET /stats`: how often the handlers ran, and every request with its `If-None-Match` and
//!   status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, IF_NONE_MATCH};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_cache::headers::CacheControl;
use axum_cache::{ConditionLayer, ConditionalGetLayer, cache_control, condition};
use serde::Serialize;
use tower::ServiceBuilder;

/// The script of every article page: counts this tab's loads of the page and, with
/// `?reload-once` in the address, reloads once so that the browser revalidates its copy.
const SCRIPT: &str = r#"const loads = Number(sessionStorage.getItem("loads") || "0") + 1;
sessionStorage.setItem("loads", String(loads));
document.getElementById("loads").textContent = "loads=" + loads;
if (loads === 1 && location.search.includes("reload-once")) {
  location.reload();
}
"#;

#[derive(Clone)]
struct Article {
    title: String,
    body: String,
    version: u64,
    updated_at: SystemTime,
}

/// One request as the server saw it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LogLine {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) if_none_match: Option<String>,
    pub(crate) status: u16,
}

#[derive(Default)]
struct Shared {
    articles: Mutex<HashMap<u32, Article>>,
    renders: AtomicU64,
    scripts: AtomicU64,
    log: Mutex<Vec<LogLine>>,
}

/// The example's state: articles, handler counters and the request log.
#[derive(Clone, Default)]
pub(crate) struct AppState {
    shared: Arc<Shared>,
}

impl AppState {
    /// Two articles, last changed a day ago.
    pub(crate) fn new() -> AppState {
        let state = AppState::default();
        let yesterday = whole_seconds(SystemTime::now() - Duration::from_secs(86_400));
        let mut articles = state.articles();
        for (id, title) in [(1, "Conditional requests"), (2, "Caching with axum")] {
            let body = format!("{title}: revalidate instead of downloading again.");
            let article = Article {
                title: title.to_owned(),
                body,
                version: 1,
                updated_at: yesterday,
            };
            articles.insert(id, article);
        }
        drop(articles);
        state
    }

    /// How many times an article page was rendered.
    pub(crate) fn renders(&self) -> u64 {
        self.shared.renders.load(Ordering::SeqCst)
    }

    /// How many times the script handler ran.
    pub(crate) fn scripts(&self) -> u64 {
        self.shared.scripts.load(Ordering::SeqCst)
    }

    /// Every request so far.
    pub(crate) fn log(&self) -> Vec<LogLine> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn articles(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Article>> {
        self.shared
            .articles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn article(&self, id: u32) -> Option<Article> {
        self.articles().get(&id).cloned()
    }
}

/// The example's router.
pub(crate) fn router(state: AppState) -> Router {
    // Revalidate on every use: browsers keep the page but ask before showing it again.
    let revalidate = || cache_control(CacheControl::new().with_no_cache());
    Router::new()
        .route("/", get(index))
        .route(
            "/articles/{id}",
            get(show).put(edit).layer(
                // Outermost first: the 304s of `condition` get Cache-Control too.
                ServiceBuilder::new()
                    .layer(revalidate())
                    .layer(article_validators(&state)),
            ),
        )
        .route(
            "/static/app.js",
            get(script).layer(
                ServiceBuilder::new()
                    .layer(ConditionalGetLayer::new())
                    .layer(revalidate()),
            ),
        )
        .route("/stats", get(stats))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// The article's ETag (its version) and Last-Modified (its update time), looked up before the
/// handler, here in memory, in a real application in the database.
fn article_validators(state: &AppState) -> ConditionLayer {
    let (for_etag, for_date) = (state.clone(), state.clone());
    condition()
        .etag(move |request| {
            // The future must own what it uses: clone the state and the request head.
            let (state, mut parts) = (for_etag.clone(), request.clone());
            async move {
                let id = article_id(&mut parts).await?;
                let version = state.article(id)?.version;
                Some(format!("article-{id}-v{version}"))
            }
        })
        .last_modified(move |request| {
            let (state, mut parts) = (for_date.clone(), request.clone());
            async move { Some(state.article(article_id(&mut parts).await?)?.updated_at) }
        })
}

/// The `{id}` of the route, with axum's own extractor.
async fn article_id(parts: &mut Parts) -> Option<u32> {
    let Path(id) = Path::<u32>::from_request_parts(parts, &()).await.ok()?;
    Some(id)
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><title>axum-cache: conditional requests</title>\
         <p><a href=\"/articles/1\">article 1</a>, <a href=\"/articles/2\">article 2</a>, \
         <a href=\"/stats\">stats</a></p>",
    )
}

async fn show(State(state): State<AppState>, Path(id): Path<u32>) -> Response {
    state.shared.renders.fetch_add(1, Ordering::SeqCst);
    let Some(article) = state.article(id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <script src=\"/static/app.js\" defer></script></head>\
         <body><h1>{title}</h1><p>{body}</p><p>version {version}</p><p id=\"loads\"></p>\
         </body></html>",
        title = escape(&article.title),
        body = escape(&article.body),
        version = article.version,
    ))
    .into_response()
}

async fn edit(State(state): State<AppState>, Path(id): Path<u32>, body: String) -> StatusCode {
    let mut articles = state.articles();
    let Some(article) = articles.get_mut(&id) else {
        return StatusCode::NOT_FOUND;
    };
    article.body = body;
    article.version += 1;
    article.updated_at = whole_seconds(SystemTime::now());
    StatusCode::NO_CONTENT
}

async fn script(State(state): State<AppState>) -> impl IntoResponse {
    state.shared.scripts.fetch_add(1, Ordering::SeqCst);
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT)
}

#[derive(Serialize)]
struct Stats {
    renders: u64,
    scripts: u64,
    log: Vec<LogLine>,
}

async fn stats(State(state): State<AppState>) -> Json<Stats> {
    Json(Stats {
        renders: state.renders(),
        scripts: state.scripts(),
        log: state.log(),
    })
}

/// Logs every request with its `If-None-Match` and the status it got.
async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, ToString::to_string);
    let if_none_match = request
        .headers()
        .get(IF_NONE_MATCH)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let response = next.run(request).await;
    let line = LogLine {
        method,
        path,
        if_none_match,
        status: response.status().as_u16(),
    };
    println!(
        "{} {} if-none-match={:?} -> {}",
        line.method, line.path, line.if_none_match, line.status
    );
    state
        .shared
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(line);
    response
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
