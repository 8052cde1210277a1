//! What a response cache counts: every outcome with its reason, the pages written, and what its
//! stampede protection did. [`PageStats`] is the snapshot; with the `metrics` feature every count
//! is also recorded through the `metrics` facade, labelled with the cache's name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::status::{Bypass, CacheStatus, NotStored, Stale};

/// The running counts of one response cache (a layer and every service built from it).
#[derive(Debug, Default)]
pub(super) struct Counters {
    hits: AtomicU64,
    stored: AtomicU64,
    stale_while_revalidate: AtomicU64,
    stale_if_error: AtomicU64,
    not_stored: [AtomicU64; NotStored::COUNT],
    bypassed: [AtomicU64; Bypass::COUNT],
    writes: AtomicU64,
    write_failures: AtomicU64,
    coalesced: AtomicU64,
    lock_waits: AtomicU64,
    refreshes: AtomicU64,
    store_reads: AtomicU64,
    store_read_micros: AtomicU64,
}

/// One of the counts that are not outcomes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Event {
    /// A page was written to the store (`true`), or its write failed (`false`).
    Written(bool),
    /// A request waited for another request of this process fetching the same page.
    Coalesced,
    /// A request waited for another process's lock on the same page.
    LockWait,
    /// A background refresh started.
    Refresh,
    /// A lookup read a record from a remote store, which took this long to answer.
    StoreRead(Duration),
}

impl Counters {
    /// Counts what the cache did with a request. `cache` names the cache in metrics (shared, so
    /// a label costs no copy).
    pub(super) fn outcome(&self, status: CacheStatus, cache: &Arc<str>) {
        let counter = match status {
            CacheStatus::Hit => Some(&self.hits),
            CacheStatus::Stored => Some(&self.stored),
            CacheStatus::Stale(Stale::WhileRevalidate) => Some(&self.stale_while_revalidate),
            CacheStatus::Stale(Stale::IfError) => Some(&self.stale_if_error),
            CacheStatus::Miss(reason) => self.not_stored.get(reason.index()),
            CacheStatus::Bypass(reason) => self.bypassed.get(reason.index()),
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(feature = "metrics")]
        record::outcome(status, cache);
        #[cfg(not(feature = "metrics"))]
        let _ = cache;
    }

    /// Counts one of the other events. `cache` names the cache in metrics.
    pub(super) fn event(&self, event: Event, cache: &Arc<str>) {
        let counter = match event {
            Event::Written(true) => &self.writes,
            Event::Written(false) => &self.write_failures,
            Event::Coalesced => &self.coalesced,
            Event::LockWait => &self.lock_waits,
            Event::Refresh => &self.refreshes,
            Event::StoreRead(took) => {
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                self.store_read_micros.fetch_add(micros, Ordering::Relaxed);
                &self.store_reads
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        record::event(event, cache);
        #[cfg(not(feature = "metrics"))]
        let _ = cache;
    }

    /// The counts so far; `background` gives the skipped and timed-out background work, and
    /// `store_errors` the failures of the cache's store.
    pub(super) fn snapshot(&self, background: (u64, u64), store_errors: u64) -> PageStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let stored = read(&self.stored);
        let not_stored = self.not_stored.each_ref().map(read);
        let bypassed = self.bypassed.each_ref().map(read);
        let stale_while_revalidate = read(&self.stale_while_revalidate);
        let stale_if_error = read(&self.stale_if_error);
        PageStats {
            hits: read(&self.hits),
            misses: stored + not_stored.iter().sum::<u64>(),
            stored,
            writes: read(&self.writes),
            write_failures: read(&self.write_failures),
            bypasses: bypassed.iter().sum(),
            stale_served: stale_while_revalidate + stale_if_error,
            stale_while_revalidate,
            stale_if_error,
            coalesced: read(&self.coalesced),
            lock_waits: read(&self.lock_waits),
            refreshes: read(&self.refreshes),
            store_reads: read(&self.store_reads),
            store_read_time: Duration::from_micros(read(&self.store_read_micros)),
            background_skipped: background.0,
            background_timed_out: background.1,
            store_errors,
            not_stored,
            bypassed,
        }
    }
}

/// What a response cache has done, counted since its layer was built, over every service built
/// from it: from [`CacheLayer::stats`](super::CacheLayer::stats).
///
/// Every request the cache sees is counted once, as a hit, a stale page served, a miss (stored
/// or not, and why not) or a bypass (and why); a background refresh asks the origin, so it
/// counts as a miss too. The other fields count what happened besides.
///
/// ```
/// use axum_cache::{Cache, CacheLayer, page::NotStored, store::MemoryStore};
///
/// let layer = CacheLayer::new(Cache::new(MemoryStore::new()));
/// let stats = layer.stats();
/// let looked_up = stats.hits + stats.stale_served + stats.misses;
/// let private = stats.not_stored(NotStored::CacheControl);
/// # assert_eq!((looked_up, private), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PageStats {
    /// Requests answered from the cache with a fresh page.
    pub hits: u64,
    /// Requests looked up and not found (or found unusable), so the origin answered: the
    /// responses stored and those not stored.
    pub misses: u64,
    /// Misses whose response the cache set out to store. It is written once its body ends
    /// cleanly within the size limit: see [`writes`](PageStats::writes).
    pub stored: u64,
    /// Pages written to the store.
    pub writes: u64,
    /// Pages whose write to the store failed (or did not fit the stored form).
    pub write_failures: u64,
    /// Requests the cache did not look up: see [`bypassed`](PageStats::bypassed) for why.
    pub bypasses: u64,
    /// Stale pages served (`stale-while-revalidate` or `stale-if-error`).
    pub stale_served: u64,
    /// Stale pages served while a fresh copy was fetched in the background.
    pub stale_while_revalidate: u64,
    /// Stale pages served in place of a failed origin response.
    pub stale_if_error: u64,
    /// Requests that waited for another request of this process fetching the same page.
    pub coalesced: u64,
    /// Requests that waited for another process's lock on the same page.
    pub lock_waits: u64,
    /// Background refreshes started (stale-while-revalidate and early refresh).
    pub refreshes: u64,
    /// Records read from a remote store by lookups (an in-process store is not counted: it
    /// answers in place).
    pub store_reads: u64,
    /// The time those reads took, in all: `store_read_time / store_reads` is the mean.
    pub store_read_time: Duration,
    /// Background work (remote writes, refreshes) skipped because as many tasks as
    /// [`max_background_tasks`](super::CacheLayer::max_background_tasks) allows were running.
    pub background_skipped: u64,
    /// Background work stopped at its deadline
    /// ([`background_timeout`](super::CacheLayer::background_timeout)).
    pub background_timed_out: u64,
    /// Failed operations of the cache's store, through this layer or anything else sharing the
    /// [`Cache`](crate::Cache) ([`Cache::store_errors`](crate::Cache::store_errors)).
    pub store_errors: u64,
    not_stored: [u64; NotStored::COUNT],
    bypassed: [u64; Bypass::COUNT],
}

impl PageStats {
    /// Misses whose response was not stored for `reason`.
    pub fn not_stored(&self, reason: NotStored) -> u64 {
        self.not_stored.get(reason.index()).copied().unwrap_or(0)
    }

    /// Requests not looked up for `reason`.
    pub fn bypassed(&self, reason: Bypass) -> u64 {
        self.bypassed.get(reason.index()).copied().unwrap_or(0)
    }
}

/// Recording through the `metrics` facade, under the names the stats chapter lists.
#[cfg(feature = "metrics")]
mod record {
    use std::sync::Arc;

    use super::{CacheStatus, Event, Stale};

    /// `axum_cache_page_requests_total{cache, outcome, reason}`.
    pub(super) fn outcome(status: CacheStatus, cache: &Arc<str>) {
        let (outcome, reason) = match status {
            CacheStatus::Hit => ("hit", ""),
            CacheStatus::Stored => ("stored", ""),
            CacheStatus::Stale(Stale::WhileRevalidate) => ("stale", "while-revalidate"),
            CacheStatus::Stale(Stale::IfError) => ("stale", "if-error"),
            CacheStatus::Miss(reason) => ("miss", reason.detail()),
            CacheStatus::Bypass(reason) => ("bypass", reason.detail()),
        };
        metrics::counter!(
            "axum_cache_page_requests_total",
            "cache" => Arc::clone(cache),
            "outcome" => outcome,
            "reason" => reason,
        )
        .increment(1);
    }

    /// `axum_cache_page_writes_total{cache, result}`, `axum_cache_page_coalesced_total{cache}`,
    /// `axum_cache_page_lock_waits_total{cache}`, `axum_cache_page_refreshes_total{cache}` and
    /// the histogram `axum_cache_page_store_read_seconds{cache}`.
    pub(super) fn event(event: Event, cache: &Arc<str>) {
        let cache = Arc::clone(cache);
        let counter = match event {
            Event::Written(written) => metrics::counter!(
                "axum_cache_page_writes_total",
                "cache" => cache,
                "result" => if written { "ok" } else { "failed" },
            ),
            Event::Coalesced => {
                metrics::counter!("axum_cache_page_coalesced_total", "cache" => cache)
            }
            Event::LockWait => {
                metrics::counter!("axum_cache_page_lock_waits_total", "cache" => cache)
            }
            Event::Refresh => {
                metrics::counter!("axum_cache_page_refreshes_total", "cache" => cache)
            }
            Event::StoreRead(took) => {
                metrics::histogram!("axum_cache_page_store_read_seconds", "cache" => cache)
                    .record(took.as_secs_f64());
                return;
            }
        };
        counter.increment(1);
    }
}
