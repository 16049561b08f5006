//! When a failed delivery is tried again, and when the service gives up: exponential
//! backoff with full jitter, capped, until the message is older than the retry window.

use chrono::{DateTime, TimeDelta, Utc};

/// The first retry waits about this long; each further one doubles it.
const FIRST_RETRY_SECONDS: i64 = 5;
/// No wait grows beyond this.
const LONGEST_WAIT_SECONDS: i64 = 6 * 3600;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    /// The retry window is over: the delivery goes to the dead letters.
    GiveUp,
}

/// After the `attempts`-th failure of a message first queued at `queued_at`.
/// `jitter` in [0, 1) spreads retries of many deliveries that failed together.
pub fn after_failure(
    attempts: i32,
    queued_at: DateTime<Utc>,
    now: DateTime<Utc>,
    retry_window: TimeDelta,
    jitter: f64,
) -> AfterFailure {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let ceiling = (FIRST_RETRY_SECONDS << exponent).min(LONGEST_WAIT_SECONDS);
    // Half fixed, half random: never sooner than half the step, never all at once.
    let wait_ms =
        (ceiling * 1000) / 2 + ((ceiling * 1000) as f64 / 2.0 * jitter.clamp(0.0, 1.0)) as i64;
    let at = now + TimeDelta::milliseconds(wait_ms);
    if at > queued_at + retry_window {
        AfterFailure::GiveUp
    } else {
        AfterFailure::RetryAt(at)
    }
}

/// Whether an endpoint that failed this many times in a row, with no success between,
/// is turned off until an admin turns it on again.
pub fn disables(consecutive_failures: i32, limit: i32) -> bool {
    consecutive_failures >= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn waits_double_within_their_jitter() {
        let window = TimeDelta::days(3);
        let wait = |attempts, jitter| match after_failure(attempts, at(0), at(0), window, jitter) {
            AfterFailure::RetryAt(t) => (t - at(0)).num_milliseconds(),
            AfterFailure::GiveUp => panic!("gave up"),
        };
        assert_eq!(wait(1, 0.0), 2_500);
        assert_eq!(wait(1, 0.999_999), 4_999);
        assert_eq!(wait(2, 0.0), 5_000);
        assert_eq!(wait(3, 0.0), 10_000);
        assert_eq!(wait(30, 0.0), LONGEST_WAIT_SECONDS * 500);
    }

    #[test]
    fn gives_up_once_the_window_is_over() {
        let window = TimeDelta::days(3);
        let late = at(3 * 86_400 - 1);
        assert_eq!(
            after_failure(20, at(0), late, window, 0.5),
            AfterFailure::GiveUp
        );
        assert!(matches!(
            after_failure(20, at(0), at(3600), window, 0.5),
            AfterFailure::RetryAt(_)
        ));
    }

    #[test]
    fn an_endpoint_is_turned_off_at_the_limit() {
        assert!(!disables(9, 10));
        assert!(disables(10, 10));
    }
}
