//! The cache API over Redis: a value computed once and shared by every process, an atomic
//! counter, a pattern delete and a lock.
//!
//! ```text
//! redis-server --port 6379 --save "" --appendonly no &     # or any Redis you have
//! cargo run --example redis --features redis                # uses $REDIS_URL if set
//! ```
//!
//! Run it twice: the second run finds the report the first one stored, and the counter goes on.

use std::time::{Duration, Instant};

use axum_cache::store::RedisStore;
use axum_cache::{Cache, Timeout};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Report {
    generated_by_pid: u32,
    total: u64,
}

async fn slow_report() -> Report {
    tokio::time::sleep(Duration::from_millis(300)).await;
    Report {
        generated_by_pid: std::process::id(),
        total: (1..=1000).sum(),
    }
}

#[tokio::main]
async fn main() -> Result<(), axum_cache::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let store = RedisStore::builder(&url)
        .prefix("example")
        .command_timeout(Duration::from_millis(100))
        .build()
        .await?;
    // Errors become misses, so the program would carry on (slower) if Redis went away.
    let cache = Cache::builder(store.clone())
        .key_prefix("demo")
        .ignore_errors(true)
        .build();

    for attempt in 1..=2 {
        let started = Instant::now();
        let report: Report = cache
            .get_or_set("report", Timeout::secs(60), slow_report)
            .await?;
        println!(
            "report #{attempt}: total {} computed by process {} ({:?})",
            report.total,
            report.generated_by_pid,
            started.elapsed()
        );
    }

    cache.add("runs", &0, Timeout::Never).await?;
    println!(
        "this example has run {} times",
        cache.incr("runs", 1).await?
    );

    for id in 1..=3 {
        cache
            .set(
                &format!("user:{id}"),
                &format!("user {id}"),
                Timeout::secs(60),
            )
            .await?;
    }
    // Store keys are `demo:1:user:…` (the cache's key prefix and version) under the store prefix.
    let removed = store.delete_pattern("demo:1:user:*").await?;
    println!("delete_pattern removed {removed} users");

    match store
        .lock("lock:nightly-job", Duration::from_secs(10))
        .await?
    {
        Some(lock) => {
            println!("took the lock on {:?}; doing the job", lock.key());
            lock.release().await?;
        }
        None => println!("another process holds the lock; skipping the job"),
    }

    println!("store stats: {:?}", store.stats());
    Ok(())
}
