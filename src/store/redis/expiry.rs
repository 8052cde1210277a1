//! Expiries in Redis terms: a [`Ttl`] as `PX` milliseconds, no expiry, or "delete now".

use std::time::Duration;

use crate::store::Ttl;

/// The longest expiry sent to Redis, in milliseconds (2^62 ms, about 146 million years). Redis
/// adds an expiry to its clock and refuses a sum past `i64::MAX`; a longer [`Ttl`] means "no
/// expiry".
const MAX_PX: u128 = 1 << 62;

/// When a value expires, in Redis terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    Now,
    Never,
    Millis(i64),
}

pub(super) fn expiry(ttl: Ttl) -> Expiry {
    match ttl {
        None => Expiry::Never,
        Some(ttl) if ttl.is_zero() => Expiry::Now,
        Some(ttl) => {
            let millis = ttl.as_nanos().div_ceil(1_000_000);
            match i64::try_from(millis) {
                Ok(millis) if millis as u128 <= MAX_PX => Expiry::Millis(millis),
                _ => Expiry::Never,
            }
        }
    }
}

/// A lock's expiry in milliseconds: at least 1, at most [`MAX_PX`].
pub(super) fn lock_millis(ttl: Duration) -> i64 {
    match expiry(Some(ttl)) {
        Expiry::Millis(millis) => millis,
        Expiry::Now => 1,
        Expiry::Never => MAX_PX as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_become_milliseconds_rounded_up() {
        assert_eq!(expiry(None), Expiry::Never);
        assert_eq!(expiry(Some(Duration::ZERO)), Expiry::Now);
        assert_eq!(expiry(Some(Duration::from_nanos(1))), Expiry::Millis(1));
        assert_eq!(expiry(Some(Duration::from_micros(1500))), Expiry::Millis(2));
        assert_eq!(expiry(Some(Duration::from_secs(2))), Expiry::Millis(2000));
        assert_eq!(
            expiry(Some(Duration::from_millis(MAX_PX as u64))),
            Expiry::Millis(MAX_PX as i64)
        );
        assert_eq!(
            expiry(Some(Duration::from_millis(MAX_PX as u64 + 1))),
            Expiry::Never
        );
        assert_eq!(expiry(Some(Duration::from_secs(u64::MAX))), Expiry::Never);
        assert_eq!(expiry(Some(Duration::MAX)), Expiry::Never);
        assert_eq!(lock_millis(Duration::ZERO), 1);
        assert_eq!(lock_millis(Duration::MAX), MAX_PX as i64);
    }
}
