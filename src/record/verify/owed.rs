//! Approvals owed (`approval_owed`): a break-glass rotation rotor recorded that no second
//! `internal_admin` has countersigned yet, `overdue` once its environment's
//! `break_glass.countersign_within` has passed. Only rotor's own version of the artifact
//! counts: a `## Countersigned` section written by hand settles nothing.

use chrono::{DateTime, Utc};

use super::{Entry, Finding, Kind};
use crate::config::Config;

/// The finding of each artifact on the default branch whose break-glass approval is owed at
/// `now` (for `evidence`, the period's end).
pub(crate) fn approvals_owed(
    entries: &[Entry],
    config: &Config,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.present()) {
        // With no version of rotor's (the artifact is `tampered`), the break-glass it claims is
        // owed all the same: a countersignature only rotor's commit can give.
        let Some((meta, countersigned)) = e.rotors_record() else {
            continue;
        };
        let (Some(glass), None) = (&meta.break_glass, countersigned) else {
            continue;
        };
        let within = config.countersign_within(glass.environment.as_deref());
        let overdue = glass.past(within, now);
        let mut f = Finding::new(
            Kind::ApprovalOwed,
            &e.path,
            format!(
                "{}: rotation {} was rotated by break-glass by {} at {}, and no second internal_admin has countersigned it{}",
                e.path,
                meta.rotation_id,
                glass.by,
                glass.at,
                if overdue {
                    format!(
                        "; overdue: countersign_within ({}) has passed",
                        crate::config::said(within)
                    )
                } else {
                    format!(" (due within {} of it)", crate::config::said(within))
                }
            ),
        );
        f.commit = e.origin.clone();
        f.overdue = Some(overdue);
        out.push(f);
    }
    out
}
