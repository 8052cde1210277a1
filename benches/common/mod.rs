//! What the benches with interleaved rounds share: when to run the rounds, and medians.

/// Criterion's options that take a value (`--sample-size 50`); the value is not a filter.
const OPTIONS_WITH_VALUES: &[&str] = &[
    "-c",
    "--color",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--format",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// Whether to run the interleaved rounds after criterion's benchmarks: in a benchmark run
/// (`--bench`, as `cargo bench` passes), not when listing or testing, and not when a filter
/// names other benchmarks (as a profiler's run of one benchmark does). `cargo bench --bench
/// NAME interleaved` runs only the rounds.
pub(crate) fn wants_rounds() -> bool {
    let mut args = std::env::args().skip(1);
    let (mut bench, mut filters) = (false, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => bench = true,
            "--list" | "--test" => return false,
            option if OPTIONS_WITH_VALUES.contains(&option) => {
                args.next();
            }
            option if option.starts_with('-') => {}
            filter => filters.push(filter.to_owned()),
        }
    }
    bench
        && (filters.is_empty()
            || filters
                .iter()
                .any(|filter| "interleaved".contains(filter.as_str())))
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
