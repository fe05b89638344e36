//! Bounded, cancellable retries for 429 and 5xx answers (and transport failures), honouring
//! `Retry-After`.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry when the server gives no `Retry-After`; doubles each time.
    pub initial_delay: Duration,
    /// Upper bound of any single delay, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }
    /// The delay before retry number `retry` (1-based), given the server's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .initial_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
    /// Whether an answer with this status is worth retrying.
    pub fn is_retryable_status(status: u16) -> bool {
        status == 429 || (500..600).contains(&status)
    }
}

/// Parse `Retry-After` (delta seconds; HTTP dates are not used by DPS).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sleep for `d` unless cancelled first; `false` when cancelled.
pub async fn sleep_cancellable(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_retry_after_within_bounds() {
        let p = RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        };
        assert_eq!(p.delay(1, None), Duration::from_millis(100));
        assert_eq!(p.delay(3, None), Duration::from_millis(400));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert!(RetryPolicy::is_retryable_status(429) && RetryPolicy::is_retryable_status(503));
        assert!(!RetryPolicy::is_retryable_status(412));
    }

    #[tokio::test]
    async fn sleeping_stops_on_cancel() {
        let c = CancellationToken::new();
        c.cancel();
        assert!(!sleep_cancellable(Duration::from_secs(3600), &c).await);
    }
}
