//! A test-only way to stop the process abruptly at a named step boundary, or to hold it there
//! while a test changes the world around it.
//!
//! The resume promise (a run stopped anywhere continues from its marker) is proven by stopping `rotor apply`
//! after each step and running it again. Debug builds stop at the point named by
//! `ROTOR_FAULT_AT` with exit code [`EXIT`], without unwinding or flushing anything, as a
//! killed runner would; release builds compile the hook away.
//!
//! Races are proven the same way: `ROTOR_PAUSE_AT` names a point where a debug build waits until
//! the file named by `ROTOR_PAUSE_UNTIL` exists (it writes `<that file>.held` on arrival), so
//! that a test can run another command in between, deterministically.

/// The exit code of a deliberate stop (decided with every other exit code, in `error.rs`).
pub const EXIT: i32 = crate::error::FAULT_STOP;

/// Every step boundary of `apply`, in the order a run passes them; `baseline-read` and
/// `audit-found` are inside the overlaps (the baseline beside the lock and the move; an audit
/// lookup beside the verification or a rollback's checks, and any later lookup that finds its
/// event), where they fall as the two sides race.
pub const POINTS: &[&str] = &[
    "baseline-read",
    "locked",
    "repointed",
    "recorded",
    "audit-found",
    "verified",
    "rollback-intended",
    "rolled-back",
    "rollback-recorded",
    "audited",
    "marked",
    "waved",
    "committed",
];

/// Stops the process here when `ROTOR_FAULT_AT` names this point (debug builds only).
#[inline]
pub fn point(name: &'static str) {
    debug_assert!(POINTS.contains(&name), "unknown fault point {name}");
    #[cfg(debug_assertions)]
    if std::env::var_os("ROTOR_FAULT_AT").is_some_and(|v| v == name) {
        std::process::exit(EXIT);
    }
}

/// Where a run may be held: after `apply`'s preconditions read every ref, before the first
/// change (the window in which another run can change what they read); between two waves of
/// a rollout (where a run killed between waves stops); and after the rotation, before its
/// record is committed (the window in which someone can push to the pull request's branch).
pub const PAUSES: &[&str] = &["preflighted", "between-waves", "rotated"];

/// Holds the process here, when `ROTOR_PAUSE_AT` names this point, until the file named by
/// `ROTOR_PAUSE_UNTIL` exists (at most a minute; debug builds only).
pub async fn pause(name: &'static str) {
    debug_assert!(PAUSES.contains(&name), "unknown pause point {name}");
    #[cfg(debug_assertions)]
    if std::env::var_os("ROTOR_PAUSE_AT").is_some_and(|v| v == name) {
        let Some(until) = std::env::var_os("ROTOR_PAUSE_UNTIL") else {
            return;
        };
        // Tells the test that the run is held: `<until>.held`.
        let mut held = until.clone();
        held.push(".held");
        let _ = std::fs::write(&held, name);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !std::path::Path::new(&until).exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
