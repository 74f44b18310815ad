//! Durations from input that may be huge, infinite, negative or NaN (`timeout: 1e300`): clamped,
//! so that a deadline computed from one never overflows the clock, which would panic the agent.

use std::time::Duration;

/// The longest wait honoured: a hundred years stands for "no deadline".
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `s` seconds, with what no clock can hold clamped: negative and NaN are 0, past a hundred
/// years (and infinity) is [`FOREVER`].
pub(crate) fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).map_or(FOREVER, |d| d.min(FOREVER))
}

/// Whole seconds, clamped to [`FOREVER`].
pub(crate) fn whole_seconds(s: u64) -> Duration {
    Duration::from_secs(s).min(FOREVER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn input_that_no_clock_holds_is_clamped_not_a_panic() {
        let now = Instant::now();
        for s in [
            f64::INFINITY,
            1e300,
            f64::MAX,
            f64::NAN,
            -1.0,
            -f64::INFINITY,
        ] {
            let _ = now + seconds(s);
        }
        let _ = now + whole_seconds(u64::MAX);
        assert_eq!(seconds(1.5), Duration::from_millis(1500));
        assert_eq!(seconds(f64::NAN), Duration::ZERO);
        assert_eq!(seconds(f64::INFINITY), FOREVER);
    }
}
