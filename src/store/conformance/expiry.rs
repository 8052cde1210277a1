//! Expiry: when values go, which operations keep or replace a key's expiry, and zero, long and
//! missing TTLs.

use std::time::Duration;

use super::{SECOND, TestClock, assert_get, b, keys};
use crate::store::{Store, StoreError};

/// An expired key is gone for every operation, and `add` may take it.
pub async fn expiry(store: &dyn Store, clock: &TestClock) {
    store.set("c:exp", b("v"), Some(SECOND)).await.unwrap();
    store.set("c:exp:n", b("1"), Some(SECOND)).await.unwrap();
    store
        .set("c:exp:kept", b("k"), Some(60 * SECOND))
        .await
        .unwrap();
    assert_get(store, "c:exp", Some(b("v")), "before expiry").await;
    clock.advance(2 * SECOND).await;
    assert_get(store, "c:exp", None, "get after expiry").await;
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
    assert_get(store, "c:exp:kept", Some(b("k")), "unexpired key").await;
    assert!(
        store.add("c:exp", b("new"), None).await.unwrap(),
        "add to expired key"
    );
    assert_get(
        store,
        "c:exp",
        Some(b("new")),
        "add into the expired key stores",
    )
    .await;
}

/// A failed `add` leaves the existing value's expiry alone.
pub async fn add_keeps_the_existing_expiry(store: &dyn Store, clock: &TestClock) {
    store.set("c:addexp", b("v"), Some(SECOND)).await.unwrap();
    assert!(!store.add("c:addexp", b("w"), None).await.unwrap());
    clock.advance(2 * SECOND).await;
    assert_get(store, "c:addexp", None, "add must not extend the TTL").await;
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
    assert_get(store, "c:incrttl", None, "incr must keep the TTL").await;
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
    assert_get(store, "c:touch", Some(b("v")), "touch extended the TTL").await;
    clock.advance(2 * SECOND).await;
    assert_get(store, "c:touch", None, "new TTL applies").await;
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
    assert_get(store, "c:touch:zero", None, "touch with zero TTL").await;
    clock.advance(2 * SECOND).await;
    assert_get(store, "c:touch:persist", Some(b("p")), "touch(None)").await;
}

/// A zero TTL stores nothing: `set` removes the current value, `add` reports whether the key
/// was free, `set_many` leaves nothing readable.
pub async fn zero_ttl_keeps_nothing(store: &dyn Store) {
    store.set("c:zero", b("old"), None).await.unwrap();
    store
        .set("c:zero", b("new"), Some(Duration::ZERO))
        .await
        .unwrap();
    assert_get(store, "c:zero", None, "set with zero TTL").await;

    assert!(
        store
            .add("c:zero:add", b("v"), Some(Duration::ZERO))
            .await
            .unwrap()
    );
    assert_get(store, "c:zero:add", None, "add with zero TTL").await;
    store.set("c:zero:taken", b("kept"), None).await.unwrap();
    assert!(
        !store
            .add("c:zero:taken", b("v"), Some(Duration::ZERO))
            .await
            .unwrap()
    );
    assert_get(
        store,
        "c:zero:taken",
        Some(b("kept")),
        "a zero-TTL add leaves a taken key alone",
    )
    .await;

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
    assert_get(store, "c:ttl:short", None, "a short TTL still expires").await;
    for (key, value) in [
        ("c:ttl:month", "m"),
        ("c:ttl:month:add", "a"),
        ("c:ttl:month:many", "s"),
        ("c:ttl:huge", "h"),
        ("c:ttl:none", "n"),
        ("c:ttl:none:add", "a"),
    ] {
        assert_get(store, key, Some(b(value)), &format!("{key} must be kept")).await;
    }
}

/// `set` replaces the expiry along with the value.
pub async fn overwrite_replaces_the_expiry(store: &dyn Store, clock: &TestClock) {
    store.set("c:re:a", b("1"), Some(SECOND)).await.unwrap();
    store.set("c:re:a", b("2"), None).await.unwrap();
    store.set("c:re:b", b("1"), None).await.unwrap();
    store.set("c:re:b", b("2"), Some(SECOND)).await.unwrap();
    clock.advance(2 * SECOND).await;
    assert_get(store, "c:re:a", Some(b("2")), "TTL removed by set").await;
    assert_get(store, "c:re:b", None, "TTL added by set").await;
}
