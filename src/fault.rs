//! A test-only way to stop the process abruptly at a named step boundary.
//!
//! The resume promise (a run stopped anywhere continues from its marker) is proven by stopping `rotor apply`
//! after each step and running it again. Debug builds stop at the point named by
//! `ROTOR_FAULT_AT` with exit code [`EXIT`], without unwinding or flushing anything, as a
//! killed runner would; release builds compile the hook away.

/// The exit code of a deliberate stop (decided with every other exit code, in `error.rs`).
pub const EXIT: i32 = crate::error::FAULT_STOP;

/// Every step boundary of `apply`, in the order a run passes them.
pub const POINTS: &[&str] = &[
    "locked",
    "repointed",
    "recorded",
    "verified",
    "rollback-intended",
    "rolled-back",
    "rollback-recorded",
    "audited",
    "marked",
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
