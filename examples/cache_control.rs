//! Telling browsers and CDNs how to cache: `cache_control`, `never_cache`, `vary_on_headers` and
//! `vary_on_cookie`, with a response cache around them.
//!
//! ```text
//! cargo run --example cache_control        # listens on 127.0.0.1:3000, or on $PORT
//! curl -i localhost:3000/prices            # Cache-Control: public, max-age=60
//! curl -i localhost:3000/me                # never cached: Expires now, no-store, …
//! curl -i -H 'Accept-Language: fr' localhost:3000/greeting   # Vary: Accept-Language
//! curl -i -H 'Cookie: user=ann' localhost:3000/dashboard     # Vary: Cookie, private
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};
use axum::routing::get;
use axum_cache::headers::CacheControl;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer, cache_control, never_cache, vary_on_cookie, vary_on_headers};
use tower::ServiceBuilder;

/// Seconds since the epoch: shows whether a response came from the cache.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

async fn prices() -> String {
    format!("EUR/USD 1.08 (computed at {})\n", now())
}

async fn me() -> &'static str {
    "your account: never stored by anyone\n"
}

async fn greeting(headers: HeaderMap) -> String {
    let french = headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("fr"));
    let greeting = if french { "Bonjour" } else { "Hello" };
    format!("{greeting} (computed at {})\n", now())
}

async fn dashboard(headers: HeaderMap) -> String {
    let cookie = headers
        .get(COOKIE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("no cookie");
    format!("dashboard for {cookie}\n")
}

#[tokio::main]
async fn main() {
    let cache = Cache::new(MemoryStore::builder().max_bytes(16 << 20).build());
    let app = Router::new()
        // Browsers and CDNs may keep the prices for a minute.
        .route(
            "/prices",
            get(prices).layer(cache_control(
                CacheControl::new()
                    .with_public()
                    .with_max_age(Duration::from_secs(60)),
            )),
        )
        // Nobody keeps the account page: not the browser, not a proxy, not our cache.
        .route("/me", get(me).layer(never_cache()))
        // One cached copy per language.
        .route(
            "/greeting",
            get(greeting).layer(vary_on_headers(["Accept-Language"])),
        )
        // Per visitor, and only in the visitor's own browser.
        .route(
            "/dashboard",
            get(dashboard).layer(
                ServiceBuilder::new()
                    .layer(cache_control(CacheControl::new().with_private()))
                    .layer(vary_on_cookie()),
            ),
        )
        // The response cache is outside the header layers, so it sees what they set: /me and
        // /dashboard are never stored, /greeting is stored once per language, /prices for 60 s.
        .layer(CacheLayer::new(cache).cache_status_header(true));

    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let address = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    println!("cache-control example listening on http://{address}");
    println!("  curl -i http://{address}/prices");
    println!("  curl -i http://{address}/me");
    println!("  curl -i -H 'Accept-Language: fr' http://{address}/greeting");
    println!("  curl -i -H 'Cookie: user=ann' http://{address}/dashboard");
    axum::serve(listener, app).await.expect("server error");
}
