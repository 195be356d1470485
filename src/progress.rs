//! The log of a batch while it runs. Refs run concurrently, so each ref's log is printed whole
//! when it settles (a `::group::` with one line per step and its duration); an annotation marks
//! each ref that did not succeed; and a progress line with the counts so far appears at least
//! every [`PROGRESS_EVERY`], so a long batch is never silent.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::outcome::{RefOutcome, RefResult};
use crate::output::{Level, Output, took_text};

/// The longest the log stays silent while refs are in flight.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How many refs ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `success`.
    pub success: usize,
    /// `rolled_back`.
    pub rolled_back: usize,
    /// `failed`.
    pub failed: usize,
    /// `not_started`.
    pub not_started: usize,
    /// `planned`.
    pub planned: usize,
    /// `skipped`: a halted rollout never started them.
    pub skipped: usize,
}

impl Counts {
    /// Counts `results`.
    pub fn of(results: impl IntoIterator<Item = RefResult>) -> Self {
        let mut counts = Self::default();
        for r in results {
            counts.add(r);
        }
        counts
    }

    fn add(&mut self, result: RefResult) {
        match result {
            RefResult::Success => self.success += 1,
            RefResult::RolledBack => self.rolled_back += 1,
            RefResult::Failed => self.failed += 1,
            RefResult::NotStarted => self.not_started += 1,
            RefResult::Planned => self.planned += 1,
            RefResult::Skipped => self.skipped += 1,
        }
    }

    /// How many refs are counted.
    pub const fn total(&self) -> usize {
        self.success
            + self.rolled_back
            + self.failed
            + self.not_started
            + self.planned
            + self.skipped
    }

    /// The counts that are not zero, most common outcome first in a fixed order:
    /// `497 success, 2 rolled back, 1 failed`.
    pub fn words(&self) -> String {
        let parts: Vec<String> = [
            (self.success, "success"),
            (self.planned, "planned"),
            (self.rolled_back, "rolled back"),
            (self.failed, "failed"),
            (self.not_started, "not started"),
            (self.skipped, "skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect();
        if parts.is_empty() {
            "nothing yet".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// The line that opens the comment and the summary: `500 refs: 497 success, 2 rolled
    /// back, 1 failed`.
    pub fn headline(&self) -> String {
        let n = self.total();
        format!(
            "{n} {}: {}",
            if n == 1 { "ref" } else { "refs" },
            self.words()
        )
    }
}

/// The progress of one batch.
#[derive(Debug)]
pub struct Progress {
    output: Output,
    total: usize,
    /// The request file the refs come from, for the annotations.
    file: Option<String>,
    /// Whether the refs move back (a dispatched rollback): the group shows to → from.
    moving_back: bool,
    counts: Mutex<Counts>,
}

impl Progress {
    /// The progress of `total` refs from `file`.
    pub fn new(output: Output, total: usize, file: Option<String>, moving_back: bool) -> Self {
        Self {
            output,
            total,
            file,
            moving_back,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().map(|c| *c).unwrap_or_default()
    }

    /// The progress line: `[120/500] 117 success, 2 rolled back, 1 failed`.
    pub fn line(&self) -> String {
        let counts = self.counts();
        format!("[{}/{}] {}", counts.total(), self.total, counts.words())
    }

    /// A line of the run's own (a wave starting, a pause, a halt).
    pub fn note(&self, line: &str) {
        self.output.log(line);
    }

    /// A group of the run's own (a wave's counts).
    pub fn group(&self, title: &str, lines: &[String]) {
        self.output.group(title, lines);
    }

    /// One ref settled: its group, its result line and its annotation.
    pub fn settled(&self, outcome: &RefOutcome) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.add(outcome.result);
        }
        let took: Duration = outcome.steps.iter().map(|s| s.took).sum();
        let (a, b) = (
            outcome.from.as_deref().unwrap_or("-"),
            outcome.to.as_deref().unwrap_or("-"),
        );
        let (a, b) = if self.moving_back { (b, a) } else { (a, b) };
        let title = format!(
            "{}: {} ({a} → {b}, {})",
            outcome.secret_ref,
            outcome.result,
            took_text(took)
        );
        let lines: Vec<String> = outcome
            .steps
            .iter()
            .map(|s| format!("{} ({})", s.what, took_text(s.took)))
            .collect();
        self.output.group(&title, &lines);
        self.not_succeeded(
            &outcome.secret_ref,
            outcome.result,
            outcome.failure.as_ref(),
        );
    }

    /// A ref that did not succeed: its annotation, which is also its result line (`-q` keeps
    /// it): an `::error` when it failed or could not start, a `::warning` when it was rolled
    /// back; with the reason and the next step.
    pub fn not_succeeded(
        &self,
        secret_ref: &str,
        result: RefResult,
        failure: Option<&crate::outcome::RefFailure>,
    ) {
        let level = match result {
            RefResult::Success | RefResult::Planned => return,
            // For a dispatched rollback, rolled back is the success.
            RefResult::RolledBack if self.moving_back => return,
            RefResult::RolledBack => Level::Warning,
            RefResult::Failed | RefResult::NotStarted => Level::Error,
            // Said once, for the whole rollout, where it halted.
            RefResult::Skipped => return,
        };
        let reason = failure.map_or_else(String::new, |f| format!(": {f}"));
        let next = failure.map_or_else(String::new, |f| format!("; next: {}", f.next_step()));
        self.output.annotate(
            level,
            self.file.as_deref(),
            &format!("rotor: {secret_ref} {result}"),
            &format!("{secret_ref}: {result}{reason}{next}"),
        );
    }

    /// Runs `work`, printing the progress line every [`PROGRESS_EVERY`] while it runs and once
    /// when it ends.
    pub async fn around<F: Future>(&self, work: F) -> F::Output {
        let mut ticks = tokio::time::interval(PROGRESS_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once: skip it, the work has not started.
        ticks.tick().await;
        tokio::pin!(work);
        let out = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = ticks.tick() => self.output.log(&self.line()),
            }
        };
        self.output.log(&self.line());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_the_contract_writes_them() {
        use RefResult::{Failed, RolledBack, Success};
        let mut results = vec![Success; 497];
        results.extend([RolledBack, RolledBack, Failed]);
        let counts = Counts::of(results);
        assert_eq!(
            counts.headline(),
            "500 refs: 497 success, 2 rolled back, 1 failed"
        );
        assert_eq!(Counts::of([Success]).headline(), "1 ref: 1 success");
    }

    #[test]
    fn the_progress_line_counts_what_settled() {
        let output = Output {
            format: crate::output::Format::Json,
            verbosity: crate::output::Verbosity::Quiet,
            github_actions: false,
        };
        let p = Progress::new(output, 500, None, false);
        for result in [RefResult::Success, RefResult::RolledBack, RefResult::Failed] {
            let mut o = RefOutcome::new("tenant.a.b.c".to_owned(), "vault");
            o.result = result;
            p.settled(&o);
        }
        assert_eq!(p.line(), "[3/500] 1 success, 1 rolled back, 1 failed");
    }
}
