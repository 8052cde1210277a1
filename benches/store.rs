//! Memory-store operations and typed `Cache` hits.
//!
//! Run with `cargo bench --bench store`.

use std::hint::black_box;

use axum_cache::store::{MemoryStore, Store};
use axum_cache::{Cache, Timeout};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Article {
    id: u64,
    title: String,
    author: String,
    tags: Vec<String>,
    views: u64,
}

fn article() -> Article {
    Article {
        id: 42,
        title: "Caching at every level".into(),
        author: "Ada".into(),
        tags: vec!["rust".into(), "http".into(), "cache".into()],
        views: 1234,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn memory_store(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryStore::new();
    let value = Bytes::from(vec![b'x'; 2048]);
    rt.block_on(async {
        for i in 0..10_000 {
            store
                .set(&format!("key:{i}"), value.clone(), None)
                .await
                .expect("set");
        }
    });
    let mut group = c.benchmark_group("memory_store");
    group.bench_function("get_hit_2KiB", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.get(black_box("key:5000")).await.expect("get")) })
    });
    group.bench_function("get_miss", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.get(black_box("key:none")).await.expect("get")) })
    });
    group.bench_function("set_overwrite_2KiB", |b| {
        b.to_async(&rt).iter(|| async {
            store
                .set(black_box("key:5000"), value.clone(), None)
                .await
                .expect("set")
        })
    });
    group.bench_function("set_with_eviction_2KiB", |b| {
        let small = MemoryStore::builder().max_entries(1_000).build();
        let mut i = 0u64;
        b.to_async(&rt).iter(|| {
            i += 1;
            let key = format!("key:{i}");
            let (small, value) = (&small, value.clone());
            async move { small.set(&key, value, None).await.expect("set") }
        })
    });
    group.bench_function("incr", |b| {
        rt.block_on(store.set("counter", Bytes::from_static(b"0"), None))
            .expect("set");
        b.to_async(&rt)
            .iter(|| async { black_box(store.incr("counter", 1).await.expect("incr")) })
    });
    group.finish();
}

fn typed_cache(c: &mut Criterion) {
    let rt = runtime();
    let cache = Cache::new(MemoryStore::new());
    rt.block_on(async {
        cache
            .set("article", &article(), Timeout::Never)
            .await
            .expect("set");
        cache
            .set("count", &1234u64, Timeout::Never)
            .await
            .expect("set");
    });
    let mut group = c.benchmark_group("cache");
    group.bench_function("get_struct_hit", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                cache
                    .get::<Article>(black_box("article"))
                    .await
                    .expect("get"),
            )
        })
    });
    group.bench_function("get_integer_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get::<u64>(black_box("count")).await.expect("get")) })
    });
    group.bench_function("get_miss", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                cache
                    .get::<Article>(black_box("missing"))
                    .await
                    .expect("get"),
            )
        })
    });
    group.bench_function("set_struct", |b| {
        let value = article();
        b.to_async(&rt).iter(|| async {
            cache
                .set(black_box("article"), &value, Timeout::Never)
                .await
                .expect("set")
        })
    });
    group.bench_function("get_or_set_hit", |b| {
        b.to_async(&rt).iter(|| async {
            let value: Article = cache
                .get_or_set(black_box("article"), Timeout::Never, || async { article() })
                .await
                .expect("get_or_set");
            black_box(value)
        })
    });
    group.finish();
}

criterion_group!(benches, memory_store, typed_cache);
criterion_main!(benches);
