//! Break-glass rotations in the record, for `evidence` and `report`: who rotated alone, why and
//! when, and whether a second `internal_admin` has countersigned — in time, late, or not yet
//! (overdue once `break_glass.countersign_within` has passed).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::artifact::{ArtifactMeta, MetaCountersigned};
use crate::config::Config;

/// One break-glass rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlassRow {
    /// The rotation id.
    pub rotation_id: String,
    /// The artifact.
    pub artifact: String,
    /// Who broke the glass.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
    /// `countersign_within`, as the config writes it.
    pub within: String,
    /// The countersignature, when there is one.
    pub countersigned: Option<Countersigned>,
    /// Not countersigned (by `until`).
    pub owed: bool,
    /// Owed, and `countersign_within` has passed at `until`.
    pub overdue: bool,
    /// Countersigned after `countersign_within` had passed.
    pub late: bool,
}

/// A countersignature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Countersigned {
    /// The second `internal_admin`.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why.
    pub reason: String,
    /// `dispatch` or `review`.
    pub via: String,
}

/// The row of `meta`'s rotation, if it was break-glass, as it stood at `until`, with the
/// countersignature the caller trusts (`countersigned`): one made after `until` is not one yet.
pub fn row(
    path: &str,
    meta: &ArtifactMeta,
    countersigned: Option<&MetaCountersigned>,
    config: &Config,
    until: DateTime<Utc>,
) -> Option<GlassRow> {
    let glass = meta.break_glass.as_ref()?;
    let within = config.countersign_within(glass.environment.as_deref());
    let countersigned = countersigned.filter(|c| {
        DateTime::parse_from_rfc3339(&c.at).is_ok_and(|at| at.with_timezone(&Utc) <= until)
    });
    let late = countersigned.is_some_and(|c| {
        c.late
            || DateTime::parse_from_rfc3339(&c.at)
                .is_ok_and(|at| glass.past(within, at.with_timezone(&Utc)))
    });
    Some(GlassRow {
        rotation_id: meta.rotation_id.clone(),
        artifact: path.to_owned(),
        by: glass.by.clone(),
        reason: glass.reason.clone(),
        at: glass.at.clone(),
        within: crate::config::said(within),
        countersigned: countersigned.map(|c| Countersigned {
            by: c.by.clone(),
            at: c.at.clone(),
            reason: c.reason.clone(),
            via: c.via.clone(),
        }),
        owed: countersigned.is_none(),
        overdue: countersigned.is_none() && glass.past(within, until),
        late,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{MetaBreakGlass, MetaCountersigned};

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn meta(countersigned: Option<&str>) -> ArtifactMeta {
        let mut m: ArtifactMeta = serde_json::from_str(r#"{"rotation_id":"r-1"}"#).expect("meta");
        m.break_glass = Some(MetaBreakGlass {
            by: "alice".to_owned(),
            reason: "leak".to_owned(),
            at: "2026-12-01T03:00:00Z".to_owned(),
            environment: Some("production".to_owned()),
            outside_window: None,
            sha: None,
        });
        m.countersigned = countersigned.map(|t| MetaCountersigned {
            by: "bob".to_owned(),
            at: t.to_owned(),
            reason: "checked".to_owned(),
            via: "dispatch".to_owned(),
            url: None,
            late: false,
            sha: None,
        });
        m
    }

    #[test]
    fn owed_overdue_and_late_are_judged_at_the_end_of_the_period() {
        let config = crate::config::parse(
            "c.yml",
            b"version: 1\nadmins: {users: [x]}\nenvironments: {production: {break_glass: {allowed: true, countersign_within: 2h}}}\nbackends: [{match: '*', type: vault}]\napp: {base_url: 'http://a'}\n",
        )
        .expect("config");
        let owed = row(
            "d/r-1.md",
            &meta(None),
            meta(None).countersigned.as_ref(),
            &config,
            at("2026-12-01T04:00:00Z"),
        )
        .expect("row");
        assert!(owed.owed && !owed.overdue && !owed.late);
        assert_eq!(owed.within, "2h");
        let overdue = row(
            "d/r-1.md",
            &meta(None),
            meta(None).countersigned.as_ref(),
            &config,
            at("2026-12-01T05:00:01Z"),
        )
        .expect("row");
        assert!(overdue.owed && overdue.overdue);
        let in_time = meta(Some("2026-12-01T04:30:00Z"));
        let signed = row(
            "d/r-1.md",
            &in_time,
            in_time.countersigned.as_ref(),
            &config,
            at("2026-12-09T00:00:00Z"),
        )
        .expect("row");
        assert!(!signed.owed && !signed.overdue && !signed.late);
        let late = meta(Some("2026-12-01T06:00:00Z"));
        let late = row(
            "d/r-1.md",
            &late,
            late.countersigned.as_ref(),
            &config,
            at("2026-12-09T00:00:00Z"),
        )
        .expect("row");
        assert!(!late.owed && late.late);
        // Before the countersignature, the period saw it owed.
        let before = row(
            "d/r-1.md",
            &in_time,
            in_time.countersigned.as_ref(),
            &config,
            at("2026-12-01T04:00:00Z"),
        )
        .expect("row");
        assert!(before.owed && before.countersigned.is_none());
        let plain: ArtifactMeta = serde_json::from_str(r#"{"rotation_id":"r-2"}"#).expect("meta");
        assert_eq!(
            row(
                "d/r-2.md",
                &plain,
                plain.countersigned.as_ref(),
                &config,
                at("2026-12-01T04:00:00Z")
            ),
            None
        );
    }
}
