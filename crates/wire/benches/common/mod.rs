//! Timing helpers shared by the benchmarks.
//!
//! Criterion measures each benchmark on its own; the ratios the benchmarks
//! report are measured here instead, with plain [`Instant`] loops that
//! alternate between the two sides in short rounds. Load from other processes
//! on this shared machine then hits both sides alike, and the reported ratio
//! is the median of the per-round ratios.

use std::time::{Duration, Instant};

use criterion::Criterion;

/// How much of the ratio summary to run, from the arguments criterion sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SummaryMode {
    /// `cargo bench`: measure for real (about one second per side).
    Full,
    /// `cargo test --benches` or `cargo bench -- --test`: run each side a
    /// few times to check that it works; the numbers mean nothing.
    Smoke,
    /// `--list` or `--profile-time`: print nothing.
    Skip,
}

impl SummaryMode {
    /// Mirrors criterion's own reading of its command line: without
    /// `--bench`, or with `--test`, it only tests.
    pub(crate) fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let has = |flag: &str| args.iter().any(|arg| arg == flag);
        if has("--list") || args.iter().any(|arg| arg.starts_with("--profile-time")) {
            Self::Skip
        } else if has("--bench") && !has("--test") {
            Self::Full
        } else {
            Self::Smoke
        }
    }

    /// Whether `ratio` meets `target`, as the summary says it.
    pub(crate) fn verdict(self, ratio: f64, target: f64) -> &'static str {
        match self {
            Self::Full if ratio >= target => "meets",
            Self::Full => "MISSES",
            Self::Smoke | Self::Skip => "not judged (smoke test)",
        }
    }

    /// Prints the summary's heading: `what` was measured, or that a smoke
    /// test's numbers are not measurements.
    pub(crate) fn print_heading(self, what: &str) {
        println!();
        if self == Self::Smoke {
            println!("ratio (smoke test only: these numbers are not measurements)");
        } else {
            println!("ratio ({what})");
        }
    }

    /// Rounds and time per side per round.
    const fn plan(self) -> (usize, Duration) {
        match self {
            // 5 rounds of 200 ms: about 1 s per side.
            Self::Full => (5, Duration::from_millis(200)),
            Self::Smoke | Self::Skip => (1, Duration::from_millis(1)),
        }
    }
}

/// The outcome of [`compare`]: median time per call of each side and the
/// median over rounds of `baseline time / subject time`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Comparison {
    /// Median time per call of the subject (the code under test).
    pub(crate) subject: Duration,
    /// Median time per call of the baseline it is compared with.
    pub(crate) baseline: Duration,
    /// Median over rounds of `baseline / subject`: 1.0 means the subject is
    /// as fast as the baseline, 0.5 that it takes twice as long.
    pub(crate) ratio: f64,
    /// Smallest and largest per-round ratio, to judge the noise.
    pub(crate) ratio_range: (f64, f64),
}

/// Times `subject` and `baseline` in alternating rounds (see the module
/// documentation), each for the time `mode` allows, after one warm-up round.
pub(crate) fn compare(
    mode: SummaryMode,
    mut subject: impl FnMut(),
    mut baseline: impl FnMut(),
) -> Comparison {
    let (rounds, per_side) = mode.plan();
    time_per_call(per_side, &mut subject);
    time_per_call(per_side, &mut baseline);
    let mut subject_times = Vec::with_capacity(rounds);
    let mut baseline_times = Vec::with_capacity(rounds);
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let s = time_per_call(per_side, &mut subject);
        let b = time_per_call(per_side, &mut baseline);
        subject_times.push(s);
        baseline_times.push(b);
        ratios.push(b.as_secs_f64() / s.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    Comparison {
        subject: median(&mut subject_times),
        baseline: median(&mut baseline_times),
        ratio: ratios[ratios.len() / 2],
        ratio_range: (ratios[0], ratios[ratios.len() - 1]),
    }
}

/// Calls `f` in batches until `budget` has elapsed and returns the mean time
/// per call.
pub(crate) fn time_per_call(budget: Duration, f: &mut impl FnMut()) -> Duration {
    const BATCH: u32 = 8;
    let start = Instant::now();
    let mut calls = 0u32;
    loop {
        for _ in 0..BATCH {
            f();
        }
        calls += BATCH;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return elapsed / calls;
        }
    }
}

/// The median of `times` (the upper one for an even count).
fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// A bench's `main`: its criterion `groups` measured for `measurement` each,
/// then its ratio `summary` unless criterion was only listing.
pub(crate) fn run(measurement: Duration, groups: fn(&mut Criterion), summary: fn(SummaryMode)) {
    let mode = SummaryMode::from_args();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measurement)
        .configure_from_args();
    groups(&mut criterion);
    criterion.final_summary();
    if mode != SummaryMode::Skip {
        summary(mode);
    }
}
