//! Coalescing of concurrent misses on a page, and the memory of pages found not storable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::stampede::{FlightLeader, Flights, Joined};

pub(crate) use crate::stampede::{Waited, wait};

/// How a leader's request ended, as its waiters see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The response was stored: a new lookup finds it.
    Stored,
    /// The response may not be stored: waiters go to the origin themselves.
    NotStorable,
}

/// A request's part in a page's flight.
pub(crate) enum Role {
    /// Asks the origin; its waiters are released when it is dropped or finished.
    Leader(PageLeader),
    /// Waits for the leader.
    Waiter(tokio::sync::watch::Receiver<Option<Outcome>>),
    /// The page is known not to be storable: go to the origin at once, without a flight.
    Pass,
}

/// The page flights in progress and the pages recently found not storable ("hit-for-pass").
#[derive(Debug, Default)]
pub(crate) struct PageFlights {
    flights: Arc<Flights<Outcome>>,
    passes: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Bound on remembered not-storable pages; the memory is cleared when it is reached.
const MAX_PASSES: usize = 10_000;

impl PageFlights {
    /// Joins the flight for `key`, or starts it.
    pub(crate) fn join(&self, key: String) -> Role {
        if self.is_pass(&key) {
            return Role::Pass;
        }
        match self.flights.join(key) {
            Joined::Leader(leader) => Role::Leader(PageLeader {
                leader,
                passes: Arc::clone(&self.passes),
            }),
            Joined::Waiter(receiver) => Role::Waiter(receiver),
        }
    }

    fn is_pass(&self, key: &str) -> bool {
        let mut passes = self.passes.lock().unwrap_or_else(PoisonError::into_inner);
        match passes.get(key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                passes.remove(key);
                false
            }
            None => false,
        }
    }
}

/// The request that asks the origin for a page.
#[derive(Debug)]
pub(crate) struct PageLeader {
    leader: FlightLeader<Outcome>,
    passes: Arc<Mutex<HashMap<String, Instant>>>,
}

impl PageLeader {
    /// Tells the waiters the response was stored.
    pub(crate) fn stored(self) {
        self.leader.finish(Outcome::Stored);
    }

    /// Tells the waiters the response may not be stored, and remembers the page for `pass`.
    pub(crate) fn not_storable(self, pass: Duration) {
        if let Some(until) = Instant::now().checked_add(pass).filter(|_| !pass.is_zero()) {
            let mut passes = self.passes.lock().unwrap_or_else(PoisonError::into_inner);
            if passes.len() >= MAX_PASSES {
                passes.clear();
            }
            passes.insert(self.leader.key().to_owned(), until);
        }
        self.leader.finish(Outcome::NotStorable);
    }
}
