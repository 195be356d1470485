//! A request's refs rolled out in waves (`environments.<env>.rollout`): a canary first, then
//! waves of the configured size, in the request's order. After each wave the error budget is
//! checked over every ref finished so far; a rollout over budget (or whose maintenance window
//! closed) starts no further wave, and every ref it never started is `skipped`: no lock, no
//! move, no call to the application.
//!
//! Resuming needs nothing of its own: a ref with this rotation's final marker reports what it
//! recorded without a call that changes anything, so a run started again walks the finished
//! waves quickly, re-evaluates the budget over them, and goes on from the first wave not
//! finished (or halts where the earlier run halted).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Job, Settings, rotate_all};
use crate::app::AppClient;
use crate::config::Rollout;
use crate::outcome::{RefOutcome, RefResult, RolloutSummary};
use crate::progress::{Counts, Progress};

/// How a rollout went: every ref's outcome, in the request's order, and the summary.
#[derive(Debug)]
pub struct Rolled {
    /// Every ref's outcome; the skipped ones included.
    pub outcomes: Vec<RefOutcome>,
    /// The waves, how many finished, and why it halted.
    pub summary: RolloutSummary,
}

/// The summary of a rollout that has not run (`plan`): its waves' sizes, budget and pause.
pub fn planned(rollout: &Rollout, refs: usize) -> RolloutSummary {
    let sizes = rollout.sizes(refs);
    RolloutSummary {
        waves: sizes.len().max(1),
        completed: 0,
        halted: false,
        budget: rollout.max_failures.map(|b| b.to_string()),
        reason: None,
        sizes: Some(sizes),
        pause: Some(pause_text(rollout.pause)),
    }
}

/// Rotates `jobs` in the waves `rollout` makes of them, each wave at most `concurrency` refs at
/// a time; no wave starts at or after `closes` (the maintenance window's end).
pub async fn rotate_in_waves(
    app: Arc<AppClient>,
    settings: Arc<Settings>,
    jobs: Vec<Job>,
    rollout: &Rollout,
    closes: Option<DateTime<Utc>>,
    concurrency: usize,
    progress: Arc<Progress>,
) -> Rolled {
    let sizes = rollout.sizes(jobs.len());
    let waves = sizes.len();
    let mut summary = RolloutSummary {
        waves: waves.max(1),
        completed: 0,
        halted: false,
        budget: rollout.max_failures.map(|b| b.to_string()),
        reason: None,
        sizes: None,
        pause: None,
    };
    if waves > 1 && rollout.max_failures.is_none() && rollout.pause.is_zero() && closes.is_none() {
        // Nothing can halt this rollout and nothing waits between its waves: the waves would
        // only make each ref of a wave wait for the slowest one. One pool, in the request's
        // order, starts the canary first all the same.
        progress.note(&format!(
            "{waves} waves with no budget, no pause and no window to close: run as one, in the request's order"
        ));
        let outcomes = rotate_all(app, settings, jobs, concurrency, progress).await;
        if outcomes.iter().all(|o| o.settled && !o.deferred()) {
            summary.completed = waves;
        }
        return Rolled { outcomes, summary };
    }
    // The waves an earlier run of this rotation began (one of its refs carries the rotation's
    // marker): they are finished whatever the budget, the pause or the window say now, and
    // only the first wave no run began is judged before it starts.
    let ours = |job: &Job| job.marked_by(&settings.rotation_id, settings.pull_request);
    let mut begun = Vec::with_capacity(waves);
    let mut at = 0;
    for size in &sizes {
        begun.push(jobs[at..at + size].iter().any(ours));
        at += size;
    }
    let mut outcomes: Vec<RefOutcome> = Vec::with_capacity(jobs.len());
    let mut left = jobs.into_iter();
    for (i, size) in sizes.iter().copied().enumerate() {
        let wave = i + 1;
        if i > 0 && !begun[i] {
            let mut halt = halt_before(rollout, &outcomes, i, waves, closes);
            if halt.is_none() {
                if !rollout.pause.is_zero() {
                    progress.note(&format!(
                        "pausing {} before wave {wave} of {waves}",
                        pause_text(rollout.pause)
                    ));
                    progress.around(tokio::time::sleep(rollout.pause)).await;
                }
                crate::fault::pause("between-waves").await;
                // The window may have closed during the pause.
                halt = closed(closes, i, waves);
            }
            if let Some((reason, why)) = halt {
                progress.note(&format!("rollout halted {why}"));
                summary.halted = true;
                summary.reason = Some(why);
                outcomes.extend(left.map(|job| skipped(&job, reason)));
                return Rolled { outcomes, summary };
            }
        }
        let these: Vec<Job> = left.by_ref().take(size).collect();
        if waves > 1 {
            progress.note(&format!(
                "wave {wave} of {waves}: {}",
                crate::output::count(size, "ref")
            ));
        }
        let done = rotate_all(
            app.clone(),
            settings.clone(),
            these,
            concurrency,
            progress.clone(),
        )
        .await;
        let finished = done.iter().all(|o| o.settled && !o.deferred());
        if waves > 1 {
            let counts = Counts::of(done.iter().map(|o| o.result));
            let so_far = failures(&outcomes) + failures(&done);
            let lines = vec![
                format!("{}: {}", counts.headline(), wave_refs(&done)),
                format!(
                    "failures so far: {so_far} of {} refs finished{}",
                    outcomes.len() + done.len(),
                    rollout
                        .max_failures
                        .map(|b| format!(" (budget: {b})"))
                        .unwrap_or_default()
                ),
            ];
            progress.group(
                &format!("wave {wave} of {waves}: {}", counts.words()),
                &lines,
            );
        }
        outcomes.extend(done);
        if !finished {
            // A ref without its final marker (or one another run is finishing): the wave is not
            // finished, so no budget can be judged and no further wave starts. Nothing is
            // committed for such a run; running it again goes on from here.
            let why = format!("wave {wave} of {waves} did not finish: run apply again to go on");
            outcomes.extend(left.map(|job| {
                RefOutcome::not_started(
                    job.secret.secret_ref.to_string(),
                    job.secret.backend(),
                    crate::outcome::RefFailure::Unsettled(why.clone()),
                )
            }));
            summary.reason = Some(why);
            return Rolled { outcomes, summary };
        }
        summary.completed = wave;
        if wave < waves {
            // Between two waves: a run stopped here goes on from the next wave.
            crate::fault::point("waved");
        }
    }
    Rolled { outcomes, summary }
}

/// Whether the rollout stops before wave `next + 1`: the budget over the refs finished so far,
/// then the window. The reason code and the sentence saying after which wave and why.
fn halt_before(
    rollout: &Rollout,
    outcomes: &[RefOutcome],
    next: usize,
    waves: usize,
    closes: Option<DateTime<Utc>>,
) -> Option<(&'static str, String)> {
    let failed = failures(outcomes);
    if rollout.over_budget(failed, outcomes.len()) {
        let budget = rollout
            .max_failures
            .map(|b| b.to_string())
            .unwrap_or_default();
        return Some((
            "halted",
            format!(
                "after wave {next} of {waves}: {failed} of {} refs finished so far failed or were rolled back, over the budget max_failures: {budget}",
                outcomes.len()
            ),
        ));
    }
    closed(closes, next, waves)
}

/// Whether the maintenance window has closed before wave `next + 1`.
fn closed(
    closes: Option<DateTime<Utc>>,
    next: usize,
    waves: usize,
) -> Option<(&'static str, String)> {
    let end = closes?;
    (Utc::now() >= end).then(|| {
        (
            "window_closed",
            format!(
                "after wave {next} of {waves}: the maintenance window closed at {}",
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )
    })
}

/// A pause as the config writes one: `0s`, `30s`, `500ms`.
fn pause_text(pause: std::time::Duration) -> String {
    if pause.subsec_millis() == 0 {
        format!("{}s", pause.as_secs())
    } else {
        format!("{}ms", pause.as_millis())
    }
}

/// The refs that ended `rolled_back` or `failed`.
fn failures(outcomes: &[RefOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o.result, RefResult::RolledBack | RefResult::Failed))
        .count()
}

/// The refs of a wave that did not succeed, for its group.
fn wave_refs(done: &[RefOutcome]) -> String {
    let not: Vec<String> = done
        .iter()
        .filter(|o| o.result != RefResult::Success)
        .map(|o| format!("{} {}", o.secret_ref, o.result))
        .collect();
    if !not.is_empty() {
        not.join(", ")
    } else {
        "every ref succeeded".to_owned()
    }
}

/// A ref the rollout never started: where its pointer stays and where it would have gone.
pub fn skipped(job: &Job, reason: &'static str) -> RefOutcome {
    let (from, to) = job.planned_move();
    RefOutcome {
        from: from.clone(),
        to,
        result: RefResult::Skipped,
        settled: true,
        pointer: from,
        skipped: Some(reason),
        ..RefOutcome::new(job.secret.secret_ref.to_string(), job.secret.backend())
    }
}
