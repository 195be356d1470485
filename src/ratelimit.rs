//! A client-side write rate limit per backend client (config `backends[].rate_limit`).
//!
//! Secret managers cap writes (AWS Secrets Manager: about 50 per second per region, shared by
//! `UpdateSecretVersionStage`, `TagResource` and the rest). A batch of hundreds of refs at full
//! concurrency would hit that cap and fail refs with throttling; spacing the writes instead
//! makes a large batch slower, never broken. Reads are not limited.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces calls evenly: at most `per_second` start in any second, in arrival order.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// At most `per_second` calls per second (at least one). The spacing is 5% wider than
    /// `1/per_second`, so that calls bunched a little in transit still arrive within the limit
    /// by the server's clock.
    pub fn per_second(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) * 21 / (20 * per_second.max(1)),
            next: Mutex::new(None),
        }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_evenly_and_never_faster_than_the_limit() {
        let limit = std::sync::Arc::new(RateLimit::per_second(10));
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..25 {
            let limit = limit.clone();
            set.spawn(async move {
                limit.acquire().await;
                Instant::now()
            });
        }
        let mut times: Vec<Duration> = Vec::new();
        while let Some(t) = set.join_next().await {
            times.push(t.expect("task") - start);
        }
        times.sort();
        // 25 calls at 10/s: 105 ms apart, so no second holds more than ten.
        assert_eq!(times.first(), Some(&Duration::ZERO));
        assert_eq!(times.last(), Some(&Duration::from_millis(2520)));
        assert!(
            times
                .windows(2)
                .all(|w| w[1] - w[0] >= Duration::from_millis(105))
        );
        assert!(
            times
                .windows(11)
                .all(|w| w[10] - w[0] > Duration::from_secs(1))
        );
    }
}
