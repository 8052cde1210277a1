//! How long a value stays in a cache.

use std::time::Duration;

use crate::store::Ttl;

/// How long a value written through a [`Cache`](crate::Cache) stays there.
///
/// | Value | Meaning | Django |
/// |---|---|---|
/// | [`Timeout::Default`] | the cache's default timeout (300 s unless configured) | argument left out |
/// | [`Timeout::Never`] | kept until deleted or evicted | `None` |
/// | [`Timeout::After`]`(d)` | kept for `d` | a number of seconds |
/// | [`Timeout::EXPIRE_NOW`], `secs(0)`, `secs(-5)` | not kept: a write removes the current value | `0` or negative |
///
/// A duration beyond what the clock can represent (centuries) is treated as [`Timeout::Never`].
///
/// ```
/// use axum_cache::Timeout;
/// use std::time::Duration;
///
/// assert_eq!(Timeout::secs(300), Timeout::After(Duration::from_secs(300)));
/// assert_eq!(Timeout::secs(-1), Timeout::EXPIRE_NOW);
/// assert_eq!(Timeout::secs_f64(0.5), Timeout::After(Duration::from_millis(500)));
/// assert_eq!(Timeout::secs_f64(f64::INFINITY), Timeout::Never);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Timeout {
    /// The cache's default timeout.
    #[default]
    Default,
    /// No expiry.
    Never,
    /// Expires after this long; [`Duration::ZERO`] means the value is not kept.
    After(Duration),
}

impl Timeout {
    /// Not kept at all: writing with it removes any current value, as Django's timeout `0`.
    pub const EXPIRE_NOW: Timeout = Timeout::After(Duration::ZERO);

    /// A timeout in whole seconds; zero and negative values mean [`Timeout::EXPIRE_NOW`].
    pub const fn secs(secs: i64) -> Timeout {
        if secs <= 0 {
            Timeout::EXPIRE_NOW
        } else {
            Timeout::After(Duration::from_secs(secs.unsigned_abs()))
        }
    }

    /// A timeout in fractional seconds (Django accepts `100.2`). Zero, negative and NaN mean
    /// [`Timeout::EXPIRE_NOW`]; values too large for a [`Duration`] (including infinity) mean
    /// [`Timeout::Never`].
    pub fn secs_f64(secs: f64) -> Timeout {
        if secs.is_nan() || secs <= 0.0 {
            return Timeout::EXPIRE_NOW;
        }
        Duration::try_from_secs_f64(secs).map_or(Timeout::Never, Timeout::After)
    }

    /// The time to live to give a store, with [`Timeout::Default`] replaced by `default`.
    pub(crate) fn resolve(self, default: Ttl) -> Ttl {
        match self {
            Timeout::Default => default,
            Timeout::Never => None,
            Timeout::After(duration) => Some(duration),
        }
    }
}

impl From<Duration> for Timeout {
    fn from(duration: Duration) -> Self {
        Timeout::After(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_map_to_durations_and_non_positive_to_expire_now() {
        assert_eq!(Timeout::secs(1), Timeout::After(Duration::from_secs(1)));
        assert_eq!(Timeout::secs(0), Timeout::EXPIRE_NOW);
        assert_eq!(Timeout::secs(i64::MIN), Timeout::EXPIRE_NOW);
        assert_eq!(
            Timeout::secs(i64::MAX),
            Timeout::After(Duration::from_secs(i64::MAX as u64))
        );
    }

    #[test]
    fn fractional_seconds_are_kept() {
        assert_eq!(
            Timeout::secs_f64(100.2),
            Timeout::After(Duration::from_secs_f64(100.2))
        );
        assert_eq!(Timeout::secs_f64(-0.5), Timeout::EXPIRE_NOW);
        assert_eq!(Timeout::secs_f64(f64::NAN), Timeout::EXPIRE_NOW);
        assert_eq!(Timeout::secs_f64(f64::MAX), Timeout::Never);
    }

    #[test]
    fn resolve_substitutes_the_default_only() {
        let default = Some(Duration::from_secs(300));
        assert_eq!(Timeout::Default.resolve(default), default);
        assert_eq!(Timeout::Default.resolve(None), None);
        assert_eq!(Timeout::Never.resolve(default), None);
        assert_eq!(
            Timeout::secs(5).resolve(default),
            Some(Duration::from_secs(5))
        );
        assert_eq!(Timeout::EXPIRE_NOW.resolve(None), Some(Duration::ZERO));
    }
}
