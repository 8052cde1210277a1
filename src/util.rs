//! Leaf helpers shared by the rest of the crate: writing numbers and bytes as text, naming keys
//! in diagnostics, randomness, and reading body frames as `Bytes`. This module imports nothing
//! from the crate.

use std::collections::hash_map::RandomState;
use std::fmt::{self, Write};
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame};
use sha2::{Digest, Sha256};

/// Appends a number in decimal without the formatting machinery (keys are built on every
/// lookup).
pub(crate) fn push_decimal(out: &mut String, number: u64) {
    if number < 10 {
        out.push(char::from(b'0' + number as u8));
        return;
    }
    if number < 100 {
        out.push(char::from(b'0' + (number / 10) as u8));
        out.push(char::from(b'0' + (number % 10) as u8));
        return;
    }
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = number;
    while rest > 0 && start > 0 {
        start -= 1;
        if let Some(digit) = digits.get_mut(start) {
            *digit = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(digits.get(start..).unwrap_or_default()).unwrap_or_default());
}

/// Appends `bytes` to `out` as lower-case hexadecimal.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
}

/// A key as diagnostics show it: the first 8 bytes of its SHA-256, in hex. Keys can hold request
/// values (a URL's query, a key function's output), so logs name a key by this alone.
pub(crate) struct ShortHash<'a>(pub(crate) &'a str);

impl fmt::Display for ShortHash<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut hex = String::with_capacity(16);
        push_hex(&mut hex, digest.get(..8).unwrap_or_default());
        f.write_str(&hex)
    }
}

/// Fills `bytes` from the operating system's random generator: the crate's one source of
/// unpredictable bits, for lock tokens. A failure is returned as it is, never replaced by bits
/// from a weaker source.
pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<(), getrandom::Error> {
    #[cfg(test)]
    if let Some(source) = test_source::current() {
        return source(bytes);
    }
    getrandom::getrandom(bytes)
}

/// A stand-in for the operating system's generator, set per thread, so tests can tell which
/// bytes a token was made from and make the generator fail.
#[cfg(test)]
pub(crate) mod test_source {
    use std::cell::Cell;

    /// What [`fill_random`](super::fill_random) calls instead of the operating system.
    pub(crate) type Source = fn(&mut [u8]) -> Result<(), getrandom::Error>;

    thread_local! {
        static SOURCE: Cell<Option<Source>> = const { Cell::new(None) };
    }

    pub(super) fn current() -> Option<Source> {
        SOURCE.with(Cell::get)
    }

    /// Runs `f` with `source` in place of the operating system's generator on this thread.
    pub(crate) fn with<R>(source: Source, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Source>);
        impl Drop for Restore {
            fn drop(&mut self) {
                SOURCE.with(|slot| slot.set(self.0));
            }
        }
        let _restore = Restore(SOURCE.with(|slot| slot.replace(Some(source))));
        f()
    }
}

/// A random 64-bit number: a process-wide randomly seeded hash (the OS seeds `RandomState`) of
/// a counter and the time, so values never repeat within a process and differ across
/// processes. Cheap, and not for secrets: for generations and jitter, where a guess gains
/// nothing. Lock tokens take [`fill_random`].
pub(crate) fn random_u64() -> u64 {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    SEED.get_or_init(RandomState::new).hash_one((count, nanos))
}

/// Microseconds since the epoch: when a computation started, or a tag was invalidated.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// Polls a body for its next frame, with the data as [`Bytes`].
pub(crate) fn poll_bytes<B>(
    body: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, B::Error>>>
where
    B: Body,
    B::Data: Buf,
{
    let frame = ready!(body.poll_frame(cx));
    Poll::Ready(frame.map(|frame| {
        frame.map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_numbers_do_not_repeat() {
        let mut seen: Vec<u64> = (0..1000).map(|_| random_u64()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn decimals_are_written_without_fmt() {
        for number in [0, 7, 10, 99, 1234, u64::from(u32::MAX) + 1, u64::MAX] {
            let mut text = String::new();
            push_decimal(&mut text, number);
            assert_eq!(text, number.to_string());
        }
    }

    #[test]
    fn short_hashes_hide_the_key() {
        let shown = ShortHash("page:G:/secret?token=abc").to_string();
        assert_eq!(shown.len(), 16);
        assert!(shown.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(shown, ShortHash("page:G:/secret?token=abd").to_string());
    }
}
