//! Hostile bytes at every parser: each one is fed random, ASCII, token-soup and mutated inputs
//! (see [`inputs`]), and for every input it must return without panicking, within a time
//! bound, and allocating at most a fixed multiple of the input's length plus a constant.
//!
//! A normal test run feeds each parser [`DEFAULT_INPUTS`] inputs. `HOSTILE_INPUTS=N` feeds it
//! `N`, and `HOSTILE_SEED=S` draws another series; an input is a function of the seed, the
//! parser's name and its index, so a failure report names everything needed to replay it. The
//! long run is described in `docs/testing.md`.

mod inputs;
mod parsers;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use inputs::Rng;

/// Inputs per parser in a normal test run.
const DEFAULT_INPUTS: u64 = 2_000;

/// The series drawn when `HOSTILE_SEED` is not set.
const DEFAULT_SEED: u64 = 0x686f_7374_696c_6521;

/// The most one input may take in an optimised build (and five times that in a debug build).
/// An input over it is timed twice more, and fails only if every try was over it, so a thread
/// descheduled for a moment is not a failure.
const MAX_TIME_PER_INPUT: Duration =
    Duration::from_millis(if cfg!(debug_assertions) { 250 } else { 50 });

/// How long the watchdog waits for an input that has not returned before it reports a hang.
const HANG: Duration = Duration::from_secs(5);

/// The stack of the thread that runs a parser: what a Tokio worker thread has.
const STACK_SIZE: usize = 2 << 20;

/// A parser under test, with what its inputs are made from and what it may allocate.
pub(super) struct Target {
    /// Names the test in reports, and the series of inputs.
    name: &'static str,
    /// Valid values to mutate.
    seeds: Vec<Vec<u8>>,
    /// Pieces of valid values (names, separators, numbers) to build and mutate inputs with.
    dictionary: &'static [&'static [u8]],
    /// The longest input before mutations that lengthen it.
    max_len: usize,
    /// Bytes of allocation allowed at once per input byte, and on top of that.
    per_byte: u64,
    fixed: u64,
    /// Parses one input and checks what it can about the result; panics on a broken property.
    check: fn(&[u8]),
}

/// What a run measured.
#[derive(Debug)]
struct Report {
    inputs: u64,
    elapsed: Duration,
    /// The longest an input took, and its index.
    slowest: (Duration, u64),
    /// The allocation peak nearest its bound, with the length of its input and the bound.
    peak: (u64, usize, u64),
}

/// The input in progress, for the watchdog: its index, and when it started (nanoseconds since
/// the run started; `u64::MAX` between inputs).
struct Progress {
    index: AtomicU64,
    started: AtomicU64,
}

/// How many inputs per parser, and which series: from the environment.
fn settings() -> (u64, u64) {
    let read = |name: &str, default: u64| {
        std::env::var(name).map_or(default, |value| {
            value
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not a number"))
        })
    };
    (
        read("HOSTILE_INPUTS", DEFAULT_INPUTS),
        read("HOSTILE_SEED", DEFAULT_SEED),
    )
}

/// The input number `index` of `target`'s series.
fn input(target: &Target, seed: u64, index: u64) -> Vec<u8> {
    let stream = target
        .name
        .bytes()
        .fold(index, |hash, byte| hash.rotate_left(5) ^ u64::from(byte));
    let mut rng = Rng::new(seed, stream.wrapping_add(index.wrapping_mul(0x9e37_79b9)));
    inputs::generate(&mut rng, &target.seeds, target.dictionary, target.max_len)
}

/// Feeds `target` its inputs on a thread of its own and fails the test on the first panic,
/// hang, slow input or allocation over the bound, naming the input.
pub(super) fn run(target: Target) {
    let (count, seed) = settings();
    let target = Arc::new(target);
    let progress = Arc::new(Progress {
        index: AtomicU64::new(0),
        started: AtomicU64::new(u64::MAX),
    });
    let (sender, receiver) = mpsc::channel();
    let start = Instant::now();
    let worker = {
        let (target, progress) = (Arc::clone(&target), Arc::clone(&progress));
        std::thread::Builder::new()
            .name(format!("hostile-{}", target.name))
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let _ = sender.send(feed(&target, seed, count, &progress, start));
            })
            .expect("a thread for the parser")
    };
    let outcome = loop {
        match receiver.recv_timeout(Duration::from_millis(200)) {
            Ok(outcome) => break outcome,
            Err(RecvTimeoutError::Timeout) => {
                let started = progress.started.load(Ordering::Acquire);
                let running = start
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(started));
                if started != u64::MAX && running > HANG {
                    let index = progress.index.load(Ordering::Acquire);
                    // The worker is left running: the test process ends with the failure.
                    panic!(
                        "{}",
                        failure(
                            &target,
                            seed,
                            index,
                            &format!("no answer after {running:?}")
                        )
                    );
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: the parser's thread died", target.name)
            }
        }
    };
    let _ = worker.join();
    match outcome {
        Ok(report) => eprintln!(
            "hostile {}: {} inputs (seed {seed:#x}) in {:.1?}, slowest {:.2?} (input {}); \
             nearest its allocation bound: {} bytes at once for {} input bytes (bound {})",
            target.name,
            report.inputs,
            report.elapsed,
            report.slowest.0,
            report.slowest.1,
            report.peak.0,
            report.peak.1,
            report.peak.2
        ),
        Err(message) => panic!("{message}"),
    }
}

/// Runs every input through the target, on the calling thread.
fn feed(
    target: &Target,
    seed: u64,
    count: u64,
    progress: &Progress,
    start: Instant,
) -> Result<Report, String> {
    // Once outside the measurements: lazily built statics (a runtime, interned names) are not
    // the first input's allocations.
    (target.check)(b"");
    let mut report = Report {
        inputs: 0,
        elapsed: Duration::ZERO,
        slowest: (Duration::ZERO, 0),
        peak: (0, 0, 1),
    };
    for index in 0..count {
        let bytes = input(target, seed, index);
        progress.index.store(index, Ordering::Release);
        let mut fastest = Duration::MAX;
        let mut peak = 0;
        for _ in 0..3 {
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            progress.started.store(nanos, Ordering::Release);
            let began = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                allocation_counter::measure(|| (target.check)(&bytes))
            }));
            let took = began.elapsed();
            progress.started.store(u64::MAX, Ordering::Release);
            let allocated = outcome.map_err(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                failure(target, seed, index, &format!("panicked: {message}"))
            })?;
            fastest = fastest.min(took);
            peak = allocated.bytes_max;
            if took <= MAX_TIME_PER_INPUT {
                break;
            }
        }
        if fastest > MAX_TIME_PER_INPUT {
            return Err(failure(
                target,
                seed,
                index,
                &format!("took {fastest:?}, over {MAX_TIME_PER_INPUT:?}"),
            ));
        }
        let bound = target.per_byte * bytes.len() as u64 + target.fixed;
        if peak > bound {
            return Err(failure(
                target,
                seed,
                index,
                &format!(
                    "allocated {peak} bytes at once for {} input bytes, over {bound}",
                    bytes.len()
                ),
            ));
        }
        report.inputs += 1;
        if fastest > report.slowest.0 {
            report.slowest = (fastest, index);
        }
        // peak / bound > best peak / best bound, without division.
        if u128::from(peak) * u128::from(report.peak.2)
            > u128::from(report.peak.0) * u128::from(bound)
        {
            report.peak = (peak, bytes.len(), bound);
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// A failure report that names the input and how to draw it again.
fn failure(target: &Target, seed: u64, index: u64, what: &str) -> String {
    let bytes = input(target, seed, index);
    let shown = bytes.get(..2048).unwrap_or(&bytes);
    format!(
        "{}: input {index} of seed {seed:#x} (HOSTILE_SEED={seed} HOSTILE_INPUTS={}) {what}\n\
         {} bytes: b\"{}\"{}",
        target.name,
        index + 1,
        bytes.len(),
        shown.escape_ascii(),
        if shown.len() < bytes.len() {
            " …"
        } else {
            ""
        }
    )
}
