//! Locks: `try_lock` and `unlock`.

use super::{SECOND, TestClock};
use crate::store::{LockToken, Store};

/// `try_lock` gives a lock to one holder at a time, `unlock` only frees it for that holder, and
/// a lock whose holder vanished expires.
pub async fn locks(store: &dyn Store, clock: &TestClock) {
    let token = store
        .try_lock("c:lock", 2 * SECOND)
        .await
        .unwrap()
        .expect("free lock");
    // Whether a second holder is refused.
    let taken = || async move {
        let second = store.try_lock("c:lock", 2 * SECOND).await.unwrap();
        second.is_none()
    };
    assert!(taken().await, "lock held");
    let stranger = LockToken::random().expect("random lock token");
    assert!(
        !store.unlock("c:lock", &stranger).await.unwrap(),
        "unlock by a stranger"
    );
    assert!(taken().await, "still held");
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
