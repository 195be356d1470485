//! Running one async job per ref, at most `limit` at a time, results in input order.
//!
//! Batches of hundreds of refs must not open hundreds of connections at once, and each ref's
//! outcome is its own: one failure never cancels the others.

use std::future::Future;

use tokio::task::JoinSet;

/// Runs `job` on every item with at most `limit` in flight; returns the results in the items'
/// order. A job that panics yields `None` in its place rather than taking the batch down.
pub async fn map_bounded<T, R, F, Fut>(items: Vec<T>, limit: usize, job: F) -> Vec<Option<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    // A sliding window: at most `limit` tasks exist at once, so memory follows the
    // concurrency, not the batch (2000 refs would otherwise be 2000 suspended futures).
    let limit = limit.max(1);
    let count = items.len();
    let mut pending = items.into_iter().enumerate();
    let mut set = JoinSet::new();
    let mut out: Vec<Option<R>> = (0..count).map(|_| None).collect();
    loop {
        while set.len() < limit {
            let Some((index, item)) = pending.next() else {
                break;
            };
            let fut = job(item);
            set.spawn(async move { (index, fut.await) });
        }
        match set.join_next().await {
            Some(Ok((index, result))) => out[index] = Some(result),
            // A panicked task leaves its slot `None`; the caller reports it.
            Some(Err(_)) => {}
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn keeps_order_and_bounds_concurrency() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let results = map_bounded((0..40u64).collect(), 5, |i| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(40 - i)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(results, (0..40u64).map(|i| Some(i * 2)).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 5);
        assert_eq!(peak.load(Ordering::SeqCst), 5);
    }
}
