//! Fragments and invalidation: a cached sidebar, article cards keyed on `updated_at`, and
//! article pages tagged so that an edit invalidates them.
//!
//! ```text
//! cargo run --example fragments                       # 127.0.0.1:3000, or $PORT
//! curl -s localhost:3000/                              # the list: sidebar and cards rendered
//! curl -s localhost:3000/                              # nothing rendered again (see /stats)
//! curl -s localhost:3000/articles/1                    # the article page, cached and tagged
//! curl -s -X POST -d 'New title' localhost:3000/articles/1   # edit: new card key, tag invalidated
//! curl -s localhost:3000/articles/1                    # regenerated with the new title
//! curl -s localhost:3000/stats                         # how often each piece was rendered
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use axum_cache::headers::add_never_cache_headers;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer, CacheTags, Timeout};
use serde::Serialize;

#[derive(Clone)]
struct Article {
    title: String,
    updated_at: u64,
}

#[derive(Default, Serialize)]
struct Renders {
    sidebar: AtomicUsize,
    cards: AtomicUsize,
    pages: AtomicUsize,
}

#[derive(Clone)]
struct App {
    cache: Cache,
    articles: Arc<Mutex<BTreeMap<u64, Article>>>,
    renders: Arc<Renders>,
}

impl App {
    fn articles(&self) -> BTreeMap<u64, Article> {
        self.articles.lock().expect("articles").clone()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// The list page: a sidebar cached for a minute, and one card per article cached under its
/// `updated_at`, so an edit needs no invalidation at all.
async fn index(State(app): State<App>) -> Response {
    let articles = app.articles();
    let sidebar = app
        .cache
        .fragment("sidebar", &[], Timeout::secs(60), || async {
            app.renders.sidebar.fetch_add(1, Ordering::Relaxed);
            format!("<aside>{} articles</aside>", articles.len())
        })
        .await
        .expect("memory store");
    let mut cards = String::new();
    for (id, article) in &articles {
        let card = app
            .cache
            .fragment(
                "card",
                &[id, &article.updated_at],
                Timeout::Never,
                || async {
                    app.renders.cards.fetch_add(1, Ordering::Relaxed);
                    format!("<li><a href=\"/articles/{id}\">{}</a></li>", article.title)
                },
            )
            .await
            .expect("memory store");
        cards.push_str(&card);
    }
    // The list itself changes with every edit; only its pieces are cached.
    let mut response = Html(format!("{sidebar}<ul>{cards}</ul>\n")).into_response();
    add_never_cache_headers(response.headers_mut(), SystemTime::now());
    response
}

/// An article page, cached whole by the layer and tagged with the article.
async fn article(State(app): State<App>, Path(id): Path<u64>) -> Response {
    let Some(article) = app.articles().get(&id).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    app.renders.pages.fetch_add(1, Ordering::Relaxed);
    let tags = CacheTags::new(["articles".to_owned(), format!("article:{id}")]);
    (
        Extension(tags),
        Html(format!("<h1>{}</h1>\n", article.title)),
    )
        .into_response()
}

/// Edits an article: a new `updated_at` (new card key) and an invalidated tag (its page).
async fn edit(State(app): State<App>, Path(id): Path<u64>, title: String) -> StatusCode {
    {
        let mut articles = app.articles.lock().expect("articles");
        let Some(article) = articles.get_mut(&id) else {
            return StatusCode::NOT_FOUND;
        };
        article.title = title;
        article.updated_at = now();
    }
    app.cache
        .invalidate_tag(&format!("article:{id}"))
        .await
        .expect("memory store");
    StatusCode::NO_CONTENT
}

async fn stats(State(app): State<App>) -> Response {
    let mut response = Json(app.renders.as_ref()).into_response();
    add_never_cache_headers(response.headers_mut(), SystemTime::now());
    response
}

#[tokio::main]
async fn main() {
    let cache = Cache::new(MemoryStore::new());
    let articles = BTreeMap::from([
        (
            1,
            Article {
                title: "Caching at every level".into(),
                updated_at: now(),
            },
        ),
        (
            2,
            Article {
                title: "Tags, not patterns".into(),
                updated_at: now(),
            },
        ),
    ]);
    let app = App {
        cache: cache.clone(),
        articles: Arc::new(Mutex::new(articles)),
        renders: Arc::default(),
    };
    let router = Router::new()
        .route("/", get(index))
        .route("/articles/{id}", get(article).post(edit))
        .route("/stats", get(stats))
        .with_state(app)
        .layer(CacheLayer::new(cache).timeout(Duration::from_secs(300)));
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let address = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    println!("fragments example listening on http://{address}");
    axum::serve(listener, router).await.expect("server error");
}
