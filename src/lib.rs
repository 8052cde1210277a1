//! HTTP caching for [axum] and any [Tower] stack, modelled on Django's cache framework.
//!
//! `axum-cache` gives a Rust web application caching at every level, from fine to coarse:
//!
//! | You want to… | Use | Django counterpart |
//! |---|---|---|
//! | keep computed values (query results, counters, rendered snippets) | [`Cache`]: `get`, `set`, `get_or_set`, `incr`, … | `django.core.cache.cache` |
//! | choose between several caches by name, from configuration | [`Caches`], [`Cache::from_url`] | `CACHES`, `caches[...]` |
//! | keep entries in this process, bounded | [`store::MemoryStore`] | `LocMemCache` |
//! | share entries between processes and machines | `store::RedisStore` (`redis` feature) | `RedisCache` |
//! | switch caching off without touching code | [`store::DummyStore`] | `DummyCache` |
//! | plug in your own backend | the [`store::Store`] trait, checked by its conformance suite `store::conformance` (`conformance` feature, for your tests) | a custom backend |
//! | cache whole responses per route or per site | [`cache_page`], [`CacheLayer`], [`UpdateCacheLayer`] + [`FetchFromCacheLayer`] | `@cache_page`, `CacheMiddleware` |
//! | keep a cold page from being computed once per request | coalescing (on by default), [`CacheLayer::lock_across_processes`], stale serving | — |
//! | cache a rendered piece of a page; invalidate groups of entries | [`Cache::fragment`], [`Cache::with_tags`], [`Cache::delete_pattern`], `{% call cache(…) %}` (`minijinja` feature) | `{% cache %}` |
//! | tell browsers and CDNs how to cache | [`cache_control`], [`never_cache`], [`vary_on_headers`], [`vary_on_cookie`] | the decorators of the same names |
//! | answer `304 Not Modified` without running the handler | [`condition`] | `@condition`, `@etag`, `@last_modified` |
//! | give responses an `ETag` from their body and answer `304` | [`ConditionalGetLayer`] | `ConditionalGetMiddleware` |
//!
//! # Quick start
//!
//! ```
//! use axum_cache::{Cache, Timeout, store::MemoryStore};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Stats { visitors: u64 }
//!
//! # async fn count_visitors() -> u64 { 1234 }
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
//! let cache = Cache::new(MemoryStore::builder().max_bytes(256 << 20).build());
//!
//! // Computed once per five minutes, however many requests ask at once.
//! let stats: Stats = cache
//!     .get_or_set("stats:today", Timeout::secs(300), || async {
//!         Stats { visitors: count_visitors().await }
//!     })
//!     .await?;
//! assert_eq!(stats.visitors, 1234);
//!
//! // Atomic counters.
//! cache.add("hits", &0, Timeout::Never).await?;
//! assert_eq!(cache.incr("hits", 1).await?, 1);
//! # Ok(()) }
//! ```
//!
//! # Chapters
//!
//! - [The low-level API](docs::low_level): keys, versions, timeouts, typed values, errors.
//! - [Stores](docs::stores): which store to use, sizing the memory store, writing your own.
//! - [Configuration](docs::configuration): named caches and cache URLs.
//! - [Response caching](docs::page): `cache_page`, `CacheLayer`, the split layers, keys and
//!   `Vary`, layer order, security.
//! - [Stampede protection](docs::stampede): coalesced misses, locks across processes, stale
//!   pages, early refresh and jitter.
//! - [Fragments and invalidation](docs::invalidation): fragments, tags, pattern deletes,
//!   versioned keys, template blocks.
//! - [Counting what the caches do](docs::metrics): `PageStats`, `CacheStats`, the `metrics`
//!   feature's counters and the `tracing` feature's spans.
//! - [Client-side caching](docs::headers): the `Cache-Control`, `Vary` and conditional-request
//!   layers, where they go relative to the response cache, and the header functions under them.
//!
//! # Features
//!
//! | Feature | Enables |
//! |---|---|
//! | `axum` (default) | `CacheLayer::around`: the per-site cache before routing, served by `axum::serve`; and page keys inside routers nested with `Router::nest` use the URL the client asked for (axum's `OriginalUri`); without it, give each nested router's cache layer its own [`key_prefix`](CacheLayer::key_prefix) |
//! | `tracing` | a `tracing` span per request through a response cache (method, path, outcome, store latency), and events for store failures and values that no longer decode ([chapter](docs::metrics)) |
//! | `redis` | `store::RedisStore`: Redis (standalone, Cluster, Sentinel) through `fred` |
//! | `redis-tls` | `rediss://` URLs: TLS to Redis through rustls, with your own authorities and client certificates if needed |
//! | `minijinja` | `template`: the `{% call cache(…) %}` fragment block for MiniJinja templates |
//! | `metrics` | the caches' counts recorded through the `metrics` facade, for any exporter ([chapter](docs::metrics)) |
//! | `conformance` | `store::conformance`: the test suite every [`Store`](store::Store) must pass, for the tests of your own store (it panics by design: enable it under `[dev-dependencies]` only) |
//!
//! The default build needs no server. Without axum (any other Tower stack), turn the default
//! features off.
//!
//! [axum]: https://docs.rs/axum
//! [Tower]: https://docs.rs/tower
#![cfg_attr(docsrs, feature(doc_cfg))]
// The library must not panic on any input: no unwraps, no unchecked indexing. (Tests, benches and
// examples may.)
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod binary;
mod cache;
mod caches;
mod codec;
pub mod conditional;
mod error;
mod glob;
pub mod headers;
#[cfg(test)]
mod hostile;
mod key;
mod log;
pub mod page;
mod redact;
mod stampede;
pub mod store;
#[cfg(feature = "minijinja")]
#[cfg_attr(docsrs, doc(cfg(feature = "minijinja")))]
pub mod template;
mod timeout;
mod util;

pub use cache::{Cache, CacheBuilder, CacheStats, DEFAULT_TIMEOUT, VaryOn};
pub use caches::{Caches, CachesBuilder, DEFAULT_CACHE};
pub use conditional::{ConditionLayer, ConditionalGetLayer, condition};
pub use error::Error;
pub use headers::{
    CacheControlLayer, NeverCacheLayer, VaryLayer, cache_control, never_cache, vary_on_cookie,
    vary_on_headers,
};
pub use key::MAX_KEY_LEN;
pub use page::{
    CacheLayer, CacheStatus, CacheTags, FetchFromCacheLayer, UpdateCacheLayer, cache_page,
};
pub use timeout::Timeout;

/// Long-form guides, one chapter per capability.
pub mod docs {
    #[doc = include_str!("docs/low_level.md")]
    pub mod low_level {}
    #[doc = include_str!("docs/stores.md")]
    pub mod stores {}
    #[doc = include_str!("docs/configuration.md")]
    pub mod configuration {}
    #[doc = include_str!("docs/headers.md")]
    pub mod headers {}
    // These chapters link to items of optional features. docs.rs documents every feature, so
    // the links resolve there; a build without the feature shows their text unlinked.
    #[doc = include_str!("docs/page.md")]
    #[cfg_attr(not(feature = "axum"), allow(rustdoc::broken_intra_doc_links))]
    pub mod page {}
    #[doc = include_str!("docs/stampede.md")]
    pub mod stampede {}
    #[doc = include_str!("docs/invalidation.md")]
    #[cfg_attr(not(feature = "minijinja"), allow(rustdoc::broken_intra_doc_links))]
    pub mod invalidation {}
    #[doc = include_str!("docs/metrics.md")]
    pub mod metrics {}
}
