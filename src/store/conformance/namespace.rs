//! The namespace as a whole: pattern deletes and `clear`.

use super::{SECOND, TestClock, assert_get, b, keys};
use crate::store::{Store, StoreError};

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
    assert_get(
        store,
        "c:pd:users",
        Some(b("v")),
        "an escaped star matches only itself",
    )
    .await;
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
