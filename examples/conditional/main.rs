//! Conditional requests: `condition()` and `ConditionalGetLayer` in a small axum server.
//!
//! ```text
//! cargo run --example conditional     # listens on 127.0.0.1:3000, or on $PORT
//! curl -i localhost:3000/articles/1   # 200, ETag: "article-1-v1", Last-Modified
//! curl -i -H 'If-None-Match: "article-1-v1"' localhost:3000/articles/1   # 304, not rendered
//! curl -s localhost:3000/stats        # renders: 1
//! ```
//!
//! Open <http://localhost:3000/articles/1?reload-once> in a browser: the page reloads itself
//! once, and the log shows the reload revalidated with `If-None-Match` and got 304.

mod app;

#[tokio::main]
async fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let address = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    println!("conditional-requests example listening on http://{address}");
    println!("  curl -i http://{address}/articles/1");
    println!("  curl -i -H 'If-None-Match: \"article-1-v1\"' http://{address}/articles/1");
    println!("  curl -i -X PUT -H 'If-Match: \"article-1-v0\"' -d new http://{address}/articles/1");
    println!("  curl -s http://{address}/stats");
    axum::serve(listener, app::router(app::AppState::new()))
        .await
        .expect("server error");
}
