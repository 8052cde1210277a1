//! The response cache's counts on a Prometheus `/metrics` page, through the `metrics` feature.
//!
//! ```text
//! cargo run --example metrics --features metrics   # listens on 127.0.0.1:3000, or on $PORT
//! curl -s localhost:3000/articles; curl -s localhost:3000/articles; curl -s localhost:3000/me
//! curl -s localhost:3000/metrics | grep axum_cache
//! ```

mod app;

use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::main]
async fn main() {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other metrics recorder is installed");
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let address = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {address}: {error}"));
    println!("metrics example listening on http://{address}");
    println!("  curl -s http://{address}/articles");
    println!("  curl -s http://{address}/metrics | grep axum_cache");
    axum::serve(listener, app::router(metrics))
        .await
        .expect("server error");
}
