//! The behaviour every [`Store`] must have, as a reusable test suite.
//!
//! The checks port the backend cases of Django's cache test suite (`BaseCacheTests`) to the
//! store level, and add what a shared cache needs: atomic `add` and `incr` under real
//! concurrency, exact expiry, binary, empty and large values, and huge or zero TTLs.
//!
//! Run [`run`] from a test with a fresh store and a [`TestClock`] that moves the store's clock,
//! and [`run_concurrent`] from a multi-threaded runtime. Each check panics with a message naming
//! the broken rule, so a failure reads like any other test failure.
//!
//! ```
//! use axum_cache::store::{MemoryStore, conformance::{self, TestClock}};
//!
//! # fn main() {
//! // MemoryStore follows tokio's clock, so a paused runtime can be advanced instantly.
//! tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .start_paused(true)
//!     .build()
//!     .unwrap()
//!     .block_on(async {
//!         let store = MemoryStore::new();
//!         conformance::run(&store, &TestClock::new(tokio::time::advance)).await;
//!     });
//! # }
//! ```
//!
//! A store whose clock cannot be moved (a remote server) passes `TestClock::new(tokio::time::sleep)`;
//! the checks only ever advance by a few seconds in all.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Barrier;

use super::{LockToken, Store, StoreError};

type Advance = Box<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Moves time forward as the store under test sees it.
pub struct TestClock {
    advance: Advance,
}

impl TestClock {
    /// A clock moved by `advance`: `tokio::time::advance` for a store on tokio's clock in a
    /// paused runtime, `tokio::time::sleep` for a store with a real clock.
    pub fn new<F, Fut>(advance: F) -> TestClock
    where
        F: Fn(Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        TestClock {
            advance: Box::new(move |by| Box::pin(advance(by))),
        }
    }

    async fn advance(&self, by: Duration) {
        (self.advance)(by).await;
    }
}

impl fmt::Debug for TestClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TestClock")
    }
}

const SECOND: Duration = Duration::from_secs(1);

fn b(value: &str) -> Bytes {
    Bytes::copy_from_slice(value.as_bytes())
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Runs every sequential check. The store should be empty and used by nothing else; the checks
/// clear it.
pub async fn run(store: &dyn Store, clock: &TestClock) {
    store.clear().await.expect("clear");
    set_get_and_overwrite(store).await;
    binary_empty_and_unicode(store).await;
    large_values(store).await;
    add_only_when_absent(store).await;
    get_many_in_order(store).await;
    set_many_and_delete_many(store).await;
    delete_reports_live_values(store).await;
    incr_and_decr(store).await;
    expiry(store, clock).await;
    add_keeps_the_existing_expiry(store, clock).await;
    incr_keeps_the_expiry(store, clock).await;
    touch(store, clock).await;
    zero_ttl_keeps_nothing(store).await;
    long_and_missing_ttls(store, clock).await;
    overwrite_replaces_the_expiry(store, clock).await;
    locks(store, clock).await;
    pattern_delete(store, clock).await;
    clear_empties_the_namespace(store).await;
}

/// Runs the concurrency checks: 1,000 tasks racing `add` on one key, and 1,000 concurrent
/// `incr`s. Call it from a multi-threaded runtime so that the tasks really run in parallel.
pub async fn run_concurrent(store: Arc<dyn Store>) {
    add_race_has_one_winner(Arc::clone(&store)).await;
    incr_loses_no_update(Arc::clone(&store)).await;
    readers_never_see_torn_values(store).await;
}

/// `set` then `get` returns the value; `set` again replaces it; unknown keys are `None`.
pub async fn set_get_and_overwrite(store: &dyn Store) {
    assert_eq!(store.get("c:missing").await.unwrap(), None, "missing key");
    store.set("c:key", b("value"), None).await.unwrap();
    assert_eq!(
        store.get("c:key").await.unwrap(),
        Some(b("value")),
        "set then get"
    );
    assert!(store.has_key("c:key").await.unwrap(), "has_key after set");
    assert!(
        !store.has_key("c:missing").await.unwrap(),
        "has_key of missing key"
    );
    store
        .set("c:key", b("other"), Some(60 * SECOND))
        .await
        .unwrap();
    assert_eq!(
        store.get("c:key").await.unwrap(),
        Some(b("other")),
        "overwrite"
    );
}

/// Every byte value round-trips, an empty value is present (not missing), and keys may be any
/// UTF-8 without spaces or control characters.
pub async fn binary_empty_and_unicode(store: &dyn Store) {
    let every_byte: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    store
        .set("c:binary", every_byte.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        store.get("c:binary").await.unwrap(),
        Some(every_byte),
        "binary value"
    );

    store.set("c:empty", Bytes::new(), None).await.unwrap();
    assert_eq!(
        store.get("c:empty").await.unwrap(),
        Some(Bytes::new()),
        "empty value"
    );
    assert!(
        store.has_key("c:empty").await.unwrap(),
        "an empty value is present"
    );

    for key in ["c:Iñtërnâtiônàlizætiøn", "c:ключ", "c:😀", "c:a/b?c=d&e"] {
        let value = Bytes::from(format!("value of {key}"));
        store.set(key, value.clone(), None).await.unwrap();
        assert_eq!(store.get(key).await.unwrap(), Some(value), "key {key:?}");
    }
}

/// A value of 1 MiB round-trips intact.
pub async fn large_values(store: &dyn Store) {
    let large: Bytes = (0..1 << 20)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    store.set("c:large", large.clone(), None).await.unwrap();
    assert_eq!(
        store.get("c:large").await.unwrap(),
        Some(large),
        "1 MiB value"
    );
    assert!(store.delete("c:large").await.unwrap());
}

/// `add` stores only into a free key, never overwrites, and works again after a delete.
pub async fn add_only_when_absent(store: &dyn Store) {
    assert!(
        store.add("c:add", b("first"), None).await.unwrap(),
        "add to free key"
    );
    assert!(
        !store.add("c:add", b("second"), None).await.unwrap(),
        "add to taken key"
    );
    assert_eq!(
        store.get("c:add").await.unwrap(),
        Some(b("first")),
        "add must not overwrite"
    );
    store.delete("c:add").await.unwrap();
    assert!(
        store.add("c:add", b("third"), None).await.unwrap(),
        "add after delete"
    );
    assert_eq!(store.get("c:add").await.unwrap(), Some(b("third")));
}

/// `get_many` answers position by position, with `None` for missing keys.
pub async fn get_many_in_order(store: &dyn Store) {
    store.set("c:many:a", b("a"), None).await.unwrap();
    store.set("c:many:b", b("b"), None).await.unwrap();
    let found = store
        .get_many(&keys(&["c:many:b", "c:many:x", "c:many:a", "c:many:b"]))
        .await
        .unwrap();
    assert_eq!(
        found,
        [Some(b("b")), None, Some(b("a")), Some(b("b"))],
        "get_many"
    );
    assert!(
        store.get_many(&[]).await.unwrap().is_empty(),
        "get_many of nothing"
    );
}

/// `set_many` stores every pair and reports no failure; `delete_many` removes only the listed
/// keys and counts them.
pub async fn set_many_and_delete_many(store: &dyn Store) {
    let entries = vec![
        ("c:sm:a".to_owned(), b("1")),
        ("c:sm:b".to_owned(), b("2")),
        ("c:sm:c".to_owned(), b("3")),
    ];
    let failed = store.set_many(entries, None).await.unwrap();
    assert!(failed.is_empty(), "set_many failed for {failed:?}");
    assert!(store.set_many(Vec::new(), None).await.unwrap().is_empty());
    for (key, value) in [("c:sm:a", "1"), ("c:sm:b", "2"), ("c:sm:c", "3")] {
        assert_eq!(
            store.get(key).await.unwrap(),
            Some(b(value)),
            "set_many {key}"
        );
    }
    let deleted = store
        .delete_many(&keys(&["c:sm:a", "c:sm:b", "c:sm:missing"]))
        .await
        .unwrap();
    assert_eq!(deleted, 2, "delete_many counts live keys removed");
    assert_eq!(store.get("c:sm:a").await.unwrap(), None);
    assert_eq!(store.get("c:sm:b").await.unwrap(), None);
    assert_eq!(
        store.get("c:sm:c").await.unwrap(),
        Some(b("3")),
        "unlisted key kept"
    );
    assert_eq!(store.delete_many(&[]).await.unwrap(), 0);
}

/// `delete` reports whether it removed something and leaves other keys alone.
pub async fn delete_reports_live_values(store: &dyn Store) {
    store.set("c:del:a", b("a"), None).await.unwrap();
    store.set("c:del:b", b("b"), None).await.unwrap();
    assert!(
        store.delete("c:del:a").await.unwrap(),
        "delete of a present key"
    );
    assert!(
        !store.delete("c:del:a").await.unwrap(),
        "delete of a missing key"
    );
    assert_eq!(store.get("c:del:a").await.unwrap(), None);
    assert_eq!(
        store.get("c:del:b").await.unwrap(),
        Some(b("b")),
        "other key kept"
    );
}

/// `incr` adds to decimal integers, fails on missing keys without creating them, and refuses
/// anything that is not an integer or would overflow.
pub async fn incr_and_decr(store: &dyn Store) {
    store.set("c:n", b("41"), None).await.unwrap();
    assert_eq!(store.incr("c:n", 1).await.unwrap(), 42);
    assert_eq!(store.incr("c:n", 10).await.unwrap(), 52);
    assert_eq!(store.incr("c:n", -10).await.unwrap(), 42);
    assert_eq!(store.incr("c:n", -50).await.unwrap(), -8);
    assert_eq!(
        store.get("c:n").await.unwrap(),
        Some(b("-8")),
        "stored as decimal"
    );

    for delta in [1, -1] {
        let error = store.incr("c:n:missing", delta).await.unwrap_err();
        assert!(
            matches!(error, StoreError::NotFound),
            "missing key: {error:?}"
        );
    }
    assert_eq!(
        store.get("c:n:missing").await.unwrap(),
        None,
        "incr must not create"
    );

    for (key, value) in [
        ("c:n:text", "abc"),
        ("c:n:blank", ""),
        ("c:n:spaced", "4 2"),
    ] {
        store.set(key, b(value), None).await.unwrap();
        let error = store.incr(key, 1).await.unwrap_err();
        assert!(
            matches!(error, StoreError::NotAnInteger),
            "{value:?}: {error:?}"
        );
        assert_eq!(store.get(key).await.unwrap(), Some(b(value)), "unchanged");
    }

    store
        .set("c:n:max", Bytes::from(i64::MAX.to_string()), None)
        .await
        .unwrap();
    let error = store.incr("c:n:max", 1).await.unwrap_err();
    assert!(matches!(error, StoreError::Overflow), "overflow: {error:?}");
    assert_eq!(
        store.get("c:n:max").await.unwrap(),
        Some(Bytes::from(i64::MAX.to_string()))
    );
}

/// An expired key is gone for every operation, and `add` may take it.
pub async fn expiry(store: &dyn Store, clock: &TestClock) {
    store.set("c:exp", b("v"), Some(SECOND)).await.unwrap();
    store.set("c:exp:n", b("1"), Some(SECOND)).await.unwrap();
    store
        .set("c:exp:kept", b("k"), Some(60 * SECOND))
        .await
        .unwrap();
    assert_eq!(
        store.get("c:exp").await.unwrap(),
        Some(b("v")),
        "before expiry"
    );
    clock.advance(2 * SECOND).await;
    assert_eq!(store.get("c:exp").await.unwrap(), None, "get after expiry");
    assert!(
        !store.has_key("c:exp").await.unwrap(),
        "has_key after expiry"
    );
    assert_eq!(store.get_many(&keys(&["c:exp"])).await.unwrap(), [None]);
    assert!(
        !store.touch("c:exp", None).await.unwrap(),
        "touch after expiry"
    );
    let error = store.incr("c:exp:n", 1).await.unwrap_err();
    assert!(
        matches!(error, StoreError::NotFound),
        "incr after expiry: {error:?}"
    );
    assert_eq!(
        store.get("c:exp:kept").await.unwrap(),
        Some(b("k")),
        "unexpired key"
    );
    assert!(
        store.add("c:exp", b("new"), None).await.unwrap(),
        "add to expired key"
    );
    assert_eq!(store.get("c:exp").await.unwrap(), Some(b("new")));
}

/// A failed `add` leaves the existing value's expiry alone.
pub async fn add_keeps_the_existing_expiry(store: &dyn Store, clock: &TestClock) {
    store.set("c:addexp", b("v"), Some(SECOND)).await.unwrap();
    assert!(!store.add("c:addexp", b("w"), None).await.unwrap());
    clock.advance(2 * SECOND).await;
    assert_eq!(
        store.get("c:addexp").await.unwrap(),
        None,
        "add must not extend the TTL"
    );
}

/// `incr` keeps the key's expiry.
pub async fn incr_keeps_the_expiry(store: &dyn Store, clock: &TestClock) {
    store
        .set("c:incrttl", b("1"), Some(2 * SECOND))
        .await
        .unwrap();
    clock.advance(SECOND).await;
    assert_eq!(store.incr("c:incrttl", 1).await.unwrap(), 2);
    clock.advance(2 * SECOND).await;
    assert_eq!(
        store.get("c:incrttl").await.unwrap(),
        None,
        "incr must keep the TTL"
    );
}

/// `touch` gives a live key a new expiry (`None`: persistent, zero: gone) and reports whether
/// the key was there.
pub async fn touch(store: &dyn Store, clock: &TestClock) {
    store.set("c:touch", b("v"), Some(SECOND)).await.unwrap();
    assert!(
        store.touch("c:touch", Some(3 * SECOND)).await.unwrap(),
        "touch live key"
    );
    clock.advance(2 * SECOND).await;
    assert_eq!(
        store.get("c:touch").await.unwrap(),
        Some(b("v")),
        "touch extended the TTL"
    );
    clock.advance(2 * SECOND).await;
    assert_eq!(store.get("c:touch").await.unwrap(), None, "new TTL applies");
    assert!(
        !store.touch("c:touch:missing", None).await.unwrap(),
        "touch missing key"
    );

    store
        .set("c:touch:persist", b("p"), Some(SECOND))
        .await
        .unwrap();
    assert!(store.touch("c:touch:persist", None).await.unwrap());
    store.set("c:touch:zero", b("z"), None).await.unwrap();
    assert!(
        store
            .touch("c:touch:zero", Some(Duration::ZERO))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("c:touch:zero").await.unwrap(),
        None,
        "touch with zero TTL"
    );
    clock.advance(2 * SECOND).await;
    assert_eq!(
        store.get("c:touch:persist").await.unwrap(),
        Some(b("p")),
        "touch(None)"
    );
}

/// A zero TTL stores nothing: `set` removes the current value, `add` reports whether the key
/// was free, `set_many` leaves nothing readable.
pub async fn zero_ttl_keeps_nothing(store: &dyn Store) {
    store.set("c:zero", b("old"), None).await.unwrap();
    store
        .set("c:zero", b("new"), Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        store.get("c:zero").await.unwrap(),
        None,
        "set with zero TTL"
    );

    assert!(
        store
            .add("c:zero:add", b("v"), Some(Duration::ZERO))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("c:zero:add").await.unwrap(),
        None,
        "add with zero TTL"
    );
    store.set("c:zero:taken", b("kept"), None).await.unwrap();
    assert!(
        !store
            .add("c:zero:taken", b("v"), Some(Duration::ZERO))
            .await
            .unwrap()
    );
    assert_eq!(store.get("c:zero:taken").await.unwrap(), Some(b("kept")));

    let entries = vec![
        ("c:zero:m1".to_owned(), b("1")),
        ("c:zero:m2".to_owned(), b("2")),
    ];
    store.set_many(entries, Some(Duration::ZERO)).await.unwrap();
    let found = store
        .get_many(&keys(&["c:zero:m1", "c:zero:m2"]))
        .await
        .unwrap();
    assert_eq!(found, [None, None], "set_many with zero TTL");
}

/// TTLs over 30 days (memcached's cut-over to timestamps), huge TTLs and no TTL all keep the
/// value.
pub async fn long_and_missing_ttls(store: &dyn Store, clock: &TestClock) {
    let month = Duration::from_secs(30 * 24 * 3600 + 1);
    let huge = Duration::from_secs(u64::MAX);
    store.set("c:ttl:month", b("m"), Some(month)).await.unwrap();
    assert!(
        store
            .add("c:ttl:month:add", b("a"), Some(month))
            .await
            .unwrap()
    );
    let entries = vec![("c:ttl:month:many".to_owned(), b("s"))];
    assert!(
        store
            .set_many(entries, Some(month))
            .await
            .unwrap()
            .is_empty()
    );
    store.set("c:ttl:huge", b("h"), Some(huge)).await.unwrap();
    store.set("c:ttl:none", b("n"), None).await.unwrap();
    assert!(store.add("c:ttl:none:add", b("a"), None).await.unwrap());
    assert!(!store.add("c:ttl:none:add", b("b"), None).await.unwrap());
    store
        .set("c:ttl:short", b("s"), Some(SECOND))
        .await
        .unwrap();
    clock.advance(2 * SECOND).await;
    assert_eq!(store.get("c:ttl:short").await.unwrap(), None);
    for (key, value) in [
        ("c:ttl:month", "m"),
        ("c:ttl:month:add", "a"),
        ("c:ttl:month:many", "s"),
        ("c:ttl:huge", "h"),
        ("c:ttl:none", "n"),
        ("c:ttl:none:add", "a"),
    ] {
        assert_eq!(
            store.get(key).await.unwrap(),
            Some(b(value)),
            "{key} must be kept"
        );
    }
}

/// `set` replaces the expiry along with the value.
pub async fn overwrite_replaces_the_expiry(store: &dyn Store, clock: &TestClock) {
    store.set("c:re:a", b("1"), Some(SECOND)).await.unwrap();
    store.set("c:re:a", b("2"), None).await.unwrap();
    store.set("c:re:b", b("1"), None).await.unwrap();
    store.set("c:re:b", b("2"), Some(SECOND)).await.unwrap();
    clock.advance(2 * SECOND).await;
    assert_eq!(
        store.get("c:re:a").await.unwrap(),
        Some(b("2")),
        "TTL removed by set"
    );
    assert_eq!(store.get("c:re:b").await.unwrap(), None, "TTL added by set");
}

/// `try_lock` gives a lock to one holder at a time, `unlock` only frees it for that holder, and
/// a lock whose holder vanished expires.
pub async fn locks(store: &dyn Store, clock: &TestClock) {
    let token = store
        .try_lock("c:lock", 2 * SECOND)
        .await
        .unwrap()
        .expect("free lock");
    assert!(
        store
            .try_lock("c:lock", 2 * SECOND)
            .await
            .unwrap()
            .is_none(),
        "lock held"
    );
    let stranger = LockToken::random().expect("random lock token");
    assert!(
        !store.unlock("c:lock", &stranger).await.unwrap(),
        "unlock by a stranger"
    );
    assert!(
        store
            .try_lock("c:lock", 2 * SECOND)
            .await
            .unwrap()
            .is_none(),
        "still held"
    );
    assert!(
        store.unlock("c:lock", &token).await.unwrap(),
        "unlock by the holder"
    );
    assert!(
        !store.unlock("c:lock", &token).await.unwrap(),
        "unlock twice"
    );
    let abandoned = store.try_lock("c:lock", SECOND).await.unwrap();
    assert!(abandoned.is_some(), "lock free again after unlock");
    clock.advance(2 * SECOND).await;
    assert!(
        store.try_lock("c:lock", SECOND).await.unwrap().is_some(),
        "expired lock"
    );
}

/// `delete_pattern` removes exactly the keys its glob matches and counts the live ones (a store
/// may answer [`StoreError::Unsupported`] instead).
pub async fn pattern_delete(store: &dyn Store, clock: &TestClock) {
    // A small store could have evicted these keys to make room; start from an empty one.
    store.clear().await.unwrap();
    for key in [
        "c:pd:user:1",
        "c:pd:user:22",
        "c:pd:users",
        "c:pd:u*r",
        "c:pd:other",
    ] {
        store.set(key, b("v"), None).await.unwrap();
    }
    store
        .set("c:pd:user:expired", b("v"), Some(SECOND))
        .await
        .unwrap();
    clock.advance(2 * SECOND).await;
    match store.delete_pattern("c:pd:user:*").await {
        Err(StoreError::Unsupported(_)) => return,
        result => assert_eq!(result.unwrap(), 2, "live keys matching c:pd:user:*"),
    }
    let left = store
        .get_many(&keys(&[
            "c:pd:user:1",
            "c:pd:user:22",
            "c:pd:users",
            "c:pd:u*r",
            "c:pd:other",
        ]))
        .await
        .unwrap();
    assert_eq!(
        left,
        [None, None, Some(b("v")), Some(b("v")), Some(b("v"))],
        "only matches go"
    );
    assert_eq!(
        store.delete_pattern(r"c:pd:u\*r").await.unwrap(),
        1,
        "escaped star"
    );
    assert_eq!(store.get("c:pd:users").await.unwrap(), Some(b("v")));
    assert_eq!(store.delete_pattern("c:pd:nothing*").await.unwrap(), 0);
}

/// `clear` removes every key of the store.
pub async fn clear_empties_the_namespace(store: &dyn Store) {
    store.set("c:clear:a", b("a"), None).await.unwrap();
    store
        .set("c:clear:b", b("b"), Some(60 * SECOND))
        .await
        .unwrap();
    store.clear().await.unwrap();
    let found = store
        .get_many(&keys(&["c:clear:a", "c:clear:b"]))
        .await
        .unwrap();
    assert_eq!(found, [None, None], "clear");
    assert!(
        store.add("c:clear:a", b("again"), None).await.unwrap(),
        "usable after clear"
    );
}

const TASKS: usize = 1_000;

/// 1,000 tasks `add` the same key at once: exactly one succeeds and its value is stored.
pub async fn add_race_has_one_winner(store: Arc<dyn Store>) {
    store.delete("c:race:add").await.unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let won = store
                    .add("c:race:add", Bytes::from(i.to_string()), Some(60 * SECOND))
                    .await
                    .unwrap();
                won.then_some(i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.expect("task panicked"));
    }
    assert_eq!(winners.len(), 1, "exactly one add may win, got {winners:?}");
    let stored = store.get("c:race:add").await.unwrap();
    assert_eq!(
        stored,
        Some(Bytes::from(winners[0].to_string())),
        "winner's value stored"
    );
}

/// 1,000 concurrent `incr(1)` on one key: every result is distinct and the total is exact.
pub async fn incr_loses_no_update(store: Arc<dyn Store>) {
    store
        .set("c:race:incr", b("0"), Some(60 * SECOND))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store.incr("c:race:incr", 1).await.unwrap()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        let value = task.await.expect("task panicked");
        assert!(seen.insert(value), "two increments returned {value}");
    }
    let expected: HashSet<i64> = (1..=TASKS as i64).collect();
    assert_eq!(seen, expected, "increments must return 1..=1000");
    assert_eq!(
        store.get("c:race:incr").await.unwrap(),
        Some(Bytes::from(TASKS.to_string()))
    );
}

/// Concurrent writers of whole values and readers: a reader only ever sees a value some writer
/// wrote in full.
pub async fn readers_never_see_torn_values(store: Arc<dyn Store>) {
    let value = |i: usize| Bytes::from(vec![b'a' + (i % 26) as u8; 4096 + i]);
    store.set("c:race:torn", value(0), None).await.unwrap();
    let writers = (1..50).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store.set("c:race:torn", value(i), None).await.unwrap();
        })
    });
    let readers = (0..50).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let read = store.get("c:race:torn").await.unwrap().expect("present");
            let i = read.len().checked_sub(4096).expect("value too short");
            assert_eq!(read, value(i), "torn value of length {}", read.len());
        })
    });
    let tasks: Vec<_> = writers.chain(readers).collect();
    for task in tasks {
        task.await.expect("task panicked");
    }
}
