//! Protection against cache stampedes, shared by `Cache::get_or_set` and the response caches:
//! the settings ([`Stampede`]), flights that coalesce concurrent work on one key, locks held
//! through a store across processes, and TTL jitter.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{LockToken, Store, StoreError};
use crate::util::random_u64;

/// Default bound on how long a task waits for another one doing the same work.
pub(crate) const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a task looks again (after waiting for others) before it does the work
/// without waiting any more.
pub(crate) const MAX_ROUNDS: usize = 3;

/// How often a task waiting for another process's lock looks for the result.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// How a cache keeps concurrent misses of one key from all doing the work. A `Cache` has one
/// (for `get_or_set` and fragments), and the response caches built on it start from a copy,
/// which their own settings then override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stampede {
    /// The longest a task waits for another task of this process doing the same work.
    pub(crate) wait_timeout: Duration,
    /// The opt-in lock through a remote store that coalesces the work across processes.
    pub(crate) lock: Option<StoreLock>,
}

impl Default for Stampede {
    fn default() -> Self {
        Stampede {
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            lock: None,
        }
    }
}

/// The settings of a lock taken through a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreLock {
    /// How long a lock lives if its holder never releases it.
    pub(crate) ttl: Duration,
    /// How long a task waits for another process's lock before doing the work itself.
    pub(crate) wait: Duration,
    /// How often a waiting task looks for the result.
    pub(crate) poll: Duration,
}

impl StoreLock {
    pub(crate) fn new(ttl: Duration, wait: Duration) -> StoreLock {
        StoreLock {
            ttl,
            wait,
            poll: LOCK_POLL,
        }
    }
}

/// How taking a lock through a store ended.
pub(crate) enum Locked<T> {
    /// This task holds the lock. `found` is what a look right after taking it found (another
    /// process may have finished just before); `waited` says whether it waited for another
    /// holder first.
    Held {
        lock: HeldLock,
        found: Option<T>,
        waited: bool,
    },
    /// Another process finished the work while this task waited for its lock.
    Found(T),
    /// The wait ran out: do the work without the lock.
    GaveUp,
    /// The store failed to lock: do the work without the lock.
    Failed { key: String, error: StoreError },
}

/// Takes the lock `key` in `store`, or waits for the process holding it: `look` is called
/// after the lock is taken and at every poll while waiting, and a result it finds ends the
/// wait. `on_wait` is called once, when the lock is first found held by another.
pub(crate) async fn lock_or_wait<T, E, F, Fut>(
    store: &Arc<dyn Store>,
    key: String,
    settings: StoreLock,
    mut look: F,
    on_wait: impl FnOnce(),
) -> Result<Locked<T>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    // `None`: a wait too long to represent, that is, no deadline.
    let deadline = tokio::time::Instant::now().checked_add(settings.wait);
    let mut on_wait = Some(on_wait);
    loop {
        match store.try_lock(&key, settings.ttl).await {
            Ok(Some(token)) => {
                let lock = HeldLock::new(Arc::clone(store), key, token);
                let found = look().await?;
                let waited = on_wait.is_none();
                return Ok(Locked::Held {
                    lock,
                    found,
                    waited,
                });
            }
            Ok(None) => {
                if let Some(on_wait) = on_wait.take() {
                    on_wait();
                }
                if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
                    return Ok(Locked::GaveUp);
                }
                tokio::time::sleep(settings.poll).await;
                if let Some(found) = look().await? {
                    return Ok(Locked::Found(found));
                }
            }
            Err(error) => return Ok(Locked::Failed { key, error }),
        }
    }
}

/// The work in progress, by key: one leader per key does it, the others wait for its result.
#[derive(Debug)]
pub(crate) struct Flights<V> {
    running: Mutex<HashMap<String, watch::Receiver<Option<V>>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            running: Mutex::default(),
        }
    }
}

/// A task's part in a flight.
pub(crate) enum Joined<V: Send + Sync + 'static> {
    /// Does the work; its waiters are released when it finishes or is dropped.
    Leader(FlightLeader<V>),
    /// Waits for the leader.
    Waiter(watch::Receiver<Option<V>>),
}

impl<V: Send + Sync + 'static> Flights<V> {
    /// Joins the flight for `key`, or starts it.
    pub(crate) fn join(self: &Arc<Self>, key: String) -> Joined<V> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(receiver) = running.get(&key) {
            return Joined::Waiter(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        running.insert(key.clone(), receiver);
        Joined::Leader(FlightLeader {
            flights: Arc::clone(self),
            key,
            sender,
        })
    }
}

/// The task doing the work for a key.
pub(crate) struct FlightLeader<V: Send + Sync + 'static> {
    flights: Arc<Flights<V>>,
    key: String,
    sender: watch::Sender<Option<V>>,
}

impl<V: Send + Sync + 'static> FlightLeader<V> {
    /// Hands the result to the waiters.
    pub(crate) fn finish(self, value: V) {
        self.sender.send_replace(Some(value));
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

impl<V: Send + Sync + 'static> Drop for FlightLeader<V> {
    fn drop(&mut self) {
        let mut running = self
            .flights
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if running
            .get(&self.key)
            .is_some_and(|receiver| receiver.same_channel(&self.sender.subscribe()))
        {
            running.remove(&self.key);
        }
        // Dropping the sender wakes every waiter, whether or not a result was sent.
    }
}

impl<V: Send + Sync + 'static> std::fmt::Debug for FlightLeader<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightLeader")
            .field("key_hash", &crate::util::ShortHash(&self.key).to_string())
            .finish()
    }
}

/// How a wait for a leader ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Waited<V> {
    /// The leader finished with this result.
    Done(V),
    /// The leader went away without a result (it failed, or was cancelled): look again, and
    /// perhaps lead the next flight.
    LeaderGone,
    /// The wait ran out: do the work without waiting any more.
    TimedOut,
}

/// Waits for the leader, at most `timeout`.
pub(crate) async fn wait<V: Clone>(
    mut receiver: watch::Receiver<Option<V>>,
    timeout: Duration,
) -> Waited<V> {
    let finished = receiver.wait_for(Option::is_some);
    match tokio::time::timeout(timeout, finished).await {
        Ok(Ok(value)) => value.clone().map_or(Waited::LeaderGone, Waited::Done),
        Ok(Err(_)) => Waited::LeaderGone,
        Err(_) => Waited::TimedOut,
    }
}

/// `ttl` shortened by a random fraction of at most `jitter` (0 to 1), so that entries written
/// together do not all expire together.
pub(crate) fn jittered(ttl: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || !jitter.is_finite() {
        return ttl;
    }
    let fraction = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    ttl.mul_f64(1.0 - jitter.min(1.0) * fraction)
}

/// A lock held through a store; released (in a background task) when dropped.
pub(crate) struct HeldLock {
    store: Arc<dyn Store>,
    key: String,
    token: Option<LockToken>,
}

impl HeldLock {
    pub(crate) fn new(store: Arc<dyn Store>, key: String, token: LockToken) -> HeldLock {
        HeldLock {
            store,
            key,
            token: Some(token),
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        let (store, key) = (Arc::clone(&self.store), std::mem::take(&mut self.key));
        // Without a runtime the lock simply expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.unlock(&key, &token).await {
                    crate::log::store_failure("unlock", None, &key, &error);
                }
            });
        }
    }
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLock")
            .field("key_hash", &crate::util::ShortHash(&self.key).to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_only_shortens_and_stays_within_its_fraction() {
        let ttl = Duration::from_secs(100);
        assert_eq!(jittered(ttl, 0.0), ttl);
        assert_eq!(jittered(ttl, f64::NAN), ttl);
        let values: Vec<Duration> = (0..200).map(|_| jittered(ttl, 0.2)).collect();
        assert!(
            values
                .iter()
                .all(|v| *v <= ttl && *v >= Duration::from_secs(80))
        );
        assert!(
            values.iter().any(|v| *v < Duration::from_secs(99)),
            "jitter must vary"
        );
    }
}
