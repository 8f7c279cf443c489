//! Redial delays: exponential in the consecutive failures, capped, with
//! jitter so peers that failed together are not all retried together.

use std::time::Duration;

/// Delay after the first failure.
pub const BASE: Duration = Duration::from_secs(1);

/// Longest delay between attempts.
pub const MAX: Duration = Duration::from_secs(10 * 60);

/// How long to wait before dialing a peer again after `failures`
/// consecutive failures: `BASE × 2^(failures−1)`, capped at [`MAX`], then
/// scaled by a jitter factor in `[0.5, 1.0)` drawn from `jitter` (in
/// `[0, 1)`).
pub fn delay(failures: u32, jitter: f64) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exponent = (failures - 1).min(20);
    let full = BASE.saturating_mul(1 << exponent).min(MAX);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_then_caps_with_jitter_in_range() {
        assert_eq!(delay(0, 0.3), Duration::ZERO);
        assert_eq!(delay(1, 1.0), BASE);
        assert_eq!(delay(1, 0.0), BASE / 2);
        assert_eq!(delay(4, 1.0), BASE * 8);
        assert_eq!(delay(30, 1.0), MAX);
        assert_eq!(delay(u32::MAX, 0.0), MAX / 2);
        for failures in 1..40 {
            for jitter in [0.0, 0.25, 0.5, 0.99] {
                let d = delay(failures, jitter);
                assert!(d <= MAX && d >= delay(failures, 0.0));
            }
        }
    }
}
