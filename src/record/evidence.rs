//! The auditors' document (`rotor evidence`): every rotation and rollback finished in a period,
//! with its requester, approvals, run, audit events and rotor's own commit of the artifact;
//! the totals; the refs over `policy.max_age_days` or never rotated; and what `rotor verify`
//! found over the same artifacts.
//!
//! [`build`] aggregates what the verification read (pure, tested here); [`Evidence`] is the
//! JSON document; [`charts`] draws the two pictures of the HTML form as plain geometry that the
//! template turns into inline SVG.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};
use serde::Serialize;

use super::verify::{Entry, Finding, Mode, Verified, time};
use crate::artifact::ArtifactMeta;

/// The period covered, both ends inclusive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Period {
    /// The first moment.
    pub(crate) since: DateTime<Utc>,
    /// The last moment.
    pub(crate) until: DateTime<Utc>,
}

impl Period {
    fn contains(self, t: Option<DateTime<Utc>>) -> bool {
        t.is_some_and(|t| t >= self.since && t <= self.until)
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The document, in the JSON shape of `rotor evidence --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// `evidence`.
    pub command: &'static str,
    /// The period's start (RFC 3339).
    pub since: String,
    /// The period's end (RFC 3339).
    pub until: String,
    /// What verification found.
    pub verify: VerifySection,
    /// Every rotation finished, or rolled back by dispatch, in the period; oldest first.
    pub rotations: Vec<Rotation>,
    /// The period's totals.
    pub totals: Totals,
    /// Managed refs over `policy.max_age_days` at `until`, or never rotated.
    pub overdue_refs: Vec<Overdue>,
    /// Break-glass rotations: those finished in the period, and any earlier one still owing
    /// its countersignature at `until`.
    pub break_glass: Vec<crate::record::glass::GlassRow>,
}

/// Verification over the period's artifacts.
#[derive(Debug, Clone, Serialize)]
pub struct VerifySection {
    /// `online` or `offline`.
    pub mode: Mode,
    /// Its findings, as `rotor verify` reports them.
    pub findings: Vec<Finding>,
}

/// One rotation.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The rotation id.
    pub rotation_id: String,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Its overall result.
    pub result: Option<String>,
    /// Each ref.
    pub refs: Vec<RefRow>,
    /// The requester.
    pub requester: Option<String>,
    /// The approvals that counted.
    pub approvers: Vec<Approver>,
    /// The workflow run's page.
    pub run_url: Option<String>,
    /// Every audit event the rotation cites.
    pub audit_event_ids: Vec<String>,
    /// rotor's own commit of the artifact, when provenance found it.
    pub artifact_commit: Option<String>,
    /// Each dispatched rollback.
    pub rollbacks: Vec<Rollback>,
}

/// One ref of a rotation.
#[derive(Debug, Clone, Serialize)]
pub struct RefRow {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// The backend.
    pub backend: String,
    /// The version it moved from.
    pub from: String,
    /// The version it moved to.
    pub to: String,
    /// Its result.
    pub result: String,
    /// Its audit events.
    pub audit_event_ids: Vec<String>,
}

/// An approval.
#[derive(Debug, Clone, Serialize)]
pub struct Approver {
    /// The reviewer.
    pub login: String,
    /// The commit approved.
    pub sha: String,
    /// The review's page.
    pub review_url: String,
}

/// A dispatched rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Rollback {
    /// The dispatcher.
    pub operator: String,
    /// Why.
    pub reason: String,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Its result.
    pub result: String,
    /// Its audit events.
    pub audit_event_ids: Vec<String>,
}

/// The period's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Rotations finished in the period.
    pub rotations: usize,
    /// Their ref entries whose result is `success`.
    pub refs_rotated: usize,
    /// Rotations rolled back in the period, automatically or by dispatch.
    pub rolled_back: usize,
    /// Rotations finished in the period with result `failed`.
    pub failed: usize,
    /// Break-glass rotations finished in the period.
    pub break_glass: usize,
    /// Break-glass rotations (of any period) whose countersignature is owed at `until`.
    pub approvals_owed: usize,
    /// Break-glass rotations countersigned after `countersign_within` had passed.
    pub countersigned_late: usize,
}

/// A managed ref over age or never rotated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overdue {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// Its last successful rotation that still stood at `until` (RFC 3339).
    pub last_rotated: Option<String>,
    /// Its age in days at `until`.
    pub age_days: Option<i64>,
}

/// A managed ref's age at `until`, for the picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Age {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// Days since its last successful rotation; `None`: never rotated.
    pub days: Option<i64>,
    /// That rotation's finish.
    #[serde(skip)]
    pub last: Option<DateTime<Utc>>,
}

/// The requester from the visible `- Operator:` line, for blocks written before it was kept.
fn operator_line(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("- Operator: "))
        .map(|v| v.trim_end_matches(" (internal_admin)").to_owned())
}

fn rotation(e: &Entry, meta: &ArtifactMeta) -> Rotation {
    let ids = |events: &[crate::artifact::MetaEvent]| -> Vec<String> {
        events.iter().map(|ev| ev.id.clone()).collect()
    };
    Rotation {
        rotation_id: meta.rotation_id.clone(),
        finished_at: meta.finished_at.clone(),
        result: meta.result.clone(),
        refs: meta
            .refs
            .iter()
            .map(|r| RefRow {
                secret_ref: r.secret_ref.clone(),
                backend: r.backend.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
                result: r.result.clone(),
                audit_event_ids: ids(&r.audit_events),
            })
            .collect(),
        requester: meta
            .operator
            .clone()
            .or_else(|| e.text.as_deref().and_then(operator_line)),
        approvers: meta
            .approvals
            .iter()
            .map(|a| Approver {
                login: a.reviewer.clone(),
                sha: a.sha.clone(),
                review_url: a.url.clone(),
            })
            .collect(),
        run_url: meta.run_url.clone(),
        audit_event_ids: meta
            .refs
            .iter()
            .flat_map(|r| ids(&r.audit_events))
            .collect(),
        artifact_commit: e.origin.clone(),
        rollbacks: meta
            .rollbacks
            .iter()
            .map(|rb| Rollback {
                operator: rb.operator.clone(),
                reason: rb.reason.clone(),
                finished_at: Some(rb.finished_at.clone()),
                result: rb.result.clone(),
                audit_event_ids: rb.refs.iter().flat_map(|r| ids(&r.audit_events)).collect(),
            })
            .collect(),
    }
}

/// When each ref of `meta` was rolled back by dispatch, if it was.
fn rolled_back_at(meta: &ArtifactMeta, secret_ref: &str) -> Option<DateTime<Utc>> {
    let recorded = meta.rollbacks.iter().find_map(|rb| {
        rb.refs
            .iter()
            .any(|r| r.secret_ref == secret_ref && r.result == "rolled_back")
            .then(|| time(Some(&rb.finished_at)))
            .flatten()
    });
    // Blocks written before rollbacks were kept whole say only when the last one finished.
    recorded.or_else(|| {
        meta.refs
            .iter()
            .any(|r| r.secret_ref == secret_ref && r.rollback.as_deref() == Some("rolled_back"))
            .then(|| time(meta.rolled_back_at.as_deref()))
            .flatten()
    })
}

/// Every managed ref's age at `until` (a ref first recorded after `until` was not managed yet).
pub(crate) fn ages(entries: &[Entry], until: DateTime<Utc>) -> Vec<Age> {
    let mut last: BTreeMap<&str, Option<DateTime<Utc>>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.present()) {
        let (Some(meta), Some(at)) = (e.meta(), e.finished_at) else {
            continue;
        };
        if at > until {
            continue;
        }
        // A ref a halted rollout skipped was not managed by that record.
        for r in meta.refs.iter().filter(|r| r.result != "skipped") {
            let slot = last.entry(&r.secret_ref).or_insert(None);
            let stood = r.result == "success"
                && rolled_back_at(meta, &r.secret_ref).is_none_or(|rb| rb > until);
            if stood && slot.is_none_or(|t| at > t) {
                *slot = Some(at);
            }
        }
    }
    last.into_iter()
        .map(|(r, at)| Age {
            secret_ref: r.to_owned(),
            days: at.map(|t| (until - t).num_days()),
            last: at,
        })
        .collect()
}

/// The document for `period` from what the verification read and found.
pub(crate) fn build(v: &Verified, period: Period, max_age_days: u32) -> (Evidence, Vec<Age>) {
    let mut rotations = Vec::new();
    let mut totals = Totals::default();
    let mut present: Vec<&Entry> = v.entries.iter().filter(|e| e.present()).collect();
    present.sort_by(|a, b| {
        (a.finished_at, a.introduced, &a.path).cmp(&(b.finished_at, b.introduced, &b.path))
    });
    for e in present {
        let Some(meta) = e.meta() else { continue };
        let finished = period.contains(e.finished_at);
        let rollbacks_in: Vec<bool> = meta
            .rollbacks
            .iter()
            .map(|rb| period.contains(time(Some(&rb.finished_at))))
            .collect();
        let dispatched = rollbacks_in.iter().any(|x| *x)
            || (meta.rollbacks.is_empty()
                && meta.rolled_back
                && period.contains(time(meta.rolled_back_at.as_deref())));
        if !finished && !dispatched {
            continue;
        }
        let result = meta.result.as_deref().unwrap_or("");
        if finished {
            totals.rotations += 1;
            totals.refs_rotated += meta.refs.iter().filter(|r| r.result == "success").count();
            if result == "failed" {
                totals.failed += 1;
            }
        }
        if (finished && result == "rolled_back") || dispatched {
            totals.rolled_back += 1;
        }
        rotations.push(rotation(e, meta));
    }
    let mut break_glass = Vec::new();
    for e in v.entries.iter().filter(|e| e.present()) {
        // rotor's own version: a countersignature written by hand is not one.
        let Some((meta, countersigned)) = e.rotors_record() else {
            continue;
        };
        let finished = period.contains(e.finished_at);
        let Some(row) = crate::record::glass::row(
            &e.path,
            meta,
            countersigned,
            &v.history.config,
            period.until,
        ) else {
            continue;
        };
        let before = e.finished_at.is_some_and(|t| t < period.since);
        if !(finished || (before && row.owed)) {
            continue;
        }
        totals.break_glass += usize::from(finished);
        totals.approvals_owed += usize::from(row.owed);
        totals.countersigned_late += usize::from(row.late);
        break_glass.push(row);
    }
    let max_age = i64::from(max_age_days);
    let ages = ages(&v.entries, period.until);
    let overdue_refs = ages
        .iter()
        .filter(|a| a.days.is_none_or(|d| d > max_age))
        .map(|a| Overdue {
            secret_ref: a.secret_ref.clone(),
            last_rotated: a.last.map(rfc3339),
            age_days: a.days,
        })
        .collect();
    (
        Evidence {
            command: "evidence",
            since: rfc3339(period.since),
            until: rfc3339(period.until),
            verify: VerifySection {
                mode: v.mode,
                findings: v.findings.clone(),
            },
            rotations,
            totals,
            overdue_refs,
            break_glass,
        },
        ages,
    )
}

/// A rectangle of a chart, with what hovering over it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// CSS class: `success`, `rolled_back`, `failed`, `ok`, `overdue` or `never`.
    pub class: &'static str,
    /// The tooltip.
    pub title: String,
}

/// A text label of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Label {
    /// Anchor x.
    pub x: f64,
    /// Baseline y.
    pub y: f64,
    /// `start`, `middle` or `end`.
    pub anchor: &'static str,
    /// The text.
    pub text: String,
}

/// One chart: its size, bars, labels and a marker line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// The bars.
    pub bars: Vec<Bar>,
    /// The labels.
    pub labels: Vec<Label>,
    /// A vertical line (x, y1, y2), e.g. the maximum age.
    pub line: Option<(f64, f64, f64)>,
}

/// The two pictures of the HTML document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charts {
    /// Rotations per week, stacked by result.
    pub weekly: Chart,
    /// Each managed ref's age against `max_age_days`.
    pub ages: Chart,
}

fn monday(t: DateTime<Utc>) -> DateTime<Utc> {
    let day = t.date_naive() - Duration::days(i64::from(t.weekday().num_days_from_monday()));
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Draws the two pictures.
pub(crate) fn charts(e: &Evidence, ages: &[Age], period: Period, max_age_days: u32) -> Charts {
    Charts {
        weekly: weekly(e, period),
        ages: age_chart(ages, max_age_days),
    }
}

const WIDTH: f64 = 760.0;
const LEFT: f64 = 44.0;

fn weekly(e: &Evidence, period: Period) -> Chart {
    let first = monday(period.since);
    let weeks = usize::try_from(((monday(period.until) - first).num_days() / 7).max(0))
        .unwrap_or(0)
        .saturating_add(1);
    // Per week: success, rolled back, failed.
    let mut counts = vec![[0usize; 3]; weeks];
    for r in &e.rotations {
        let Some(at) = time(r.finished_at.as_deref()).filter(|t| period.contains(Some(*t))) else {
            continue;
        };
        let week = usize::try_from((at - first).num_days() / 7).unwrap_or(0);
        // A rotation rolled back by dispatch by the period's end is shown as rolled back, as
        // the totals count it: what stood, not what the rotation first reported.
        let dispatched = r.rollbacks.iter().any(|rb| {
            rb.result == "rolled_back"
                && time(rb.finished_at.as_deref()).is_some_and(|t| t <= period.until)
        });
        let slot = match r.result.as_deref() {
            Some("rolled_back") => 1,
            Some("success") if dispatched => 1,
            Some("success") => 0,
            _ => 2,
        };
        if let Some(c) = counts.get_mut(week) {
            c[slot] += 1;
        }
    }
    let (top, plot_h) = (16.0, 160.0);
    let height = top + plot_h + 34.0;
    let most = counts
        .iter()
        .map(|c| c.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1);
    let step = (WIDTH - LEFT - 8.0) / weeks as f64;
    let unit = plot_h / most as f64;
    let mut bars = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        let week = first + Duration::days(7 * i as i64);
        let mut y = top + plot_h;
        for (slot, class) in ["success", "rolled_back", "failed"].into_iter().enumerate() {
            if c[slot] == 0 {
                continue;
            }
            let h = c[slot] as f64 * unit;
            y -= h;
            bars.push(Bar {
                x: LEFT + i as f64 * step + step * 0.1,
                y,
                w: (step * 0.8).max(1.0),
                h,
                class,
                title: format!(
                    "week of {}: {} {}",
                    week.format("%Y-%m-%d"),
                    c[slot],
                    class.replace('_', " ")
                ),
            });
        }
    }
    let base = top + plot_h;
    let mut labels = vec![
        Label {
            x: LEFT - 6.0,
            y: top + 4.0,
            anchor: "end",
            text: most.to_string(),
        },
        Label {
            x: LEFT - 6.0,
            y: base,
            anchor: "end",
            text: "0".to_owned(),
        },
        Label {
            x: LEFT,
            y: base + 16.0,
            anchor: "start",
            text: first.format("%Y-%m-%d").to_string(),
        },
    ];
    if weeks > 1 {
        labels.push(Label {
            x: WIDTH - 8.0,
            y: base + 16.0,
            anchor: "end",
            text: format!("week of {}", monday(period.until).format("%Y-%m-%d")),
        });
    }
    Chart {
        width: WIDTH,
        height,
        bars,
        labels,
        line: None,
    }
}

fn age_chart(ages: &[Age], max_age_days: u32) -> Chart {
    let max_age = f64::from(max_age_days);
    let mut sorted: Vec<&Age> = ages.iter().collect();
    // Never rotated first, then the oldest.
    sorted.sort_by(|a, b| {
        b.days
            .map_or(i64::MAX, |d| d)
            .cmp(&a.days.map_or(i64::MAX, |d| d))
            .then(a.secret_ref.cmp(&b.secret_ref))
    });
    let n = sorted.len().max(1);
    // Bars stay readable for a few dozen refs and the picture bounded for thousands.
    let row = if n <= 60 {
        16.0
    } else {
        (960.0 / n as f64).max(2.0)
    };
    let labelled = row >= 12.0;
    let left = if labelled { 300.0 } else { LEFT };
    let (top, plot_w) = (22.0, WIDTH - left - 60.0);
    let oldest = sorted
        .iter()
        .filter_map(|a| a.days)
        .max()
        .map_or(0.0, |d| d as f64);
    let scale_max = (max_age * 1.25).max(oldest).max(1.0);
    let x_of = |days: f64| left + plot_w * (days / scale_max).min(1.0);
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, a) in sorted.iter().enumerate() {
        let y = top + i as f64 * row;
        let (w, class, title) = match a.days {
            None => (plot_w, "never", format!("{}: never rotated", a.secret_ref)),
            Some(d) => (
                (x_of(d as f64) - left).max(1.0),
                if d as f64 > max_age { "overdue" } else { "ok" },
                format!("{}: {d} days", a.secret_ref),
            ),
        };
        bars.push(Bar {
            x: left,
            y,
            w,
            h: (row * 0.75).max(1.0),
            class,
            title,
        });
        if labelled {
            labels.push(Label {
                x: left - 6.0,
                y: y + row * 0.7,
                anchor: "end",
                text: a.secret_ref.clone(),
            });
        }
    }
    let bottom = top + n as f64 * row;
    labels.push(Label {
        x: x_of(max_age),
        y: top - 8.0,
        anchor: "middle",
        text: format!("max {max_age_days} days"),
    });
    Chart {
        width: WIDTH,
        height: bottom + 10.0,
        bars,
        labels,
        line: Some((x_of(max_age), top - 4.0, bottom)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{MetaEvent, MetaRef, MetaRollback, MetaRollbackRef};
    use crate::record::history::History;

    fn at(s: &str) -> DateTime<Utc> {
        time(Some(s)).expect("time")
    }

    fn meta(id: &str, finished: &str, refs: &[(&str, &str)], result: &str) -> ArtifactMeta {
        ArtifactMeta {
            break_glass: None,
            countersigned: None,
            app_clock_offset_s: None,
            started_at: None,
            version: 1,
            rotation_id: id.to_owned(),
            pull_request: Some(7),
            result: Some(result.to_owned()),
            finished_at: Some(finished.to_owned()),
            refs: refs
                .iter()
                .map(|(r, res)| MetaRef {
                    secret_ref: (*r).to_owned(),
                    backend: "vault".to_owned(),
                    from: "1".to_owned(),
                    to: "2".to_owned(),
                    result: (*res).to_owned(),
                    pointer: None,
                    rollback: None,
                    audit_events: vec![MetaEvent {
                        id: format!("evt-{id}-{r}"),
                        operation: "rotate".to_owned(),
                    }],
                    reason: None,
                })
                .collect(),
            rolled_back: false,
            rolled_back_at: None,
            operator: Some("alice".to_owned()),
            approvals: vec![crate::artifact::MetaApproval {
                reviewer: "bob".to_owned(),
                sha: "a".repeat(40),
                url: "https://github.com/o/r/pull/7#pullrequestreview-1".to_owned(),
            }],
            run_url: Some("https://github.com/o/r/actions/runs/1".to_owned()),
            rollbacks: Vec::new(),
            rollout: None,
        }
    }

    fn entry(m: ArtifactMeta) -> Entry {
        Entry {
            path: format!("d/{}.md", m.rotation_id),
            text: Some(String::new()),
            finished_at: time(m.finished_at.as_deref()),
            moments: crate::record::verify::moments(&m),
            trusted: Some(m.clone()),
            meta: Ok(Some(m)),
            origin: Some("c".repeat(40)),
            removed: None,
            introduced: 0,
        }
    }

    fn verified(entries: Vec<Entry>) -> Verified {
        Verified {
            history: History {
                branch: "main".to_owned(),
                tip: "t".repeat(40),
                config: crate::config::parse(
                    "c.yml",
                    b"version: 1\nadmins: {users: [a]}\nenvironments: {s: {}}\nbackends: [{match: \"*\", type: vault, address: \"http://127.0.0.1:1\"}]\napp: {base_url: \"http://127.0.0.1:1\"}\n",
                )
                .expect("config"),
                judge: crate::record::history::Judge {
                    identities: crate::record::history::Identities::default(),
                    keys: crate::record::signing::SigningKeys::github(),
                },
                artifacts: BTreeMap::new(),
                trust_changes: Vec::new(),
            },
            artifacts: entries.len(),
            refs: 0,
            entries,
            findings: Vec::new(),
            mode: Mode::Offline,
            failures: Vec::new(),
        }
    }

    const A: &str = "tenant.a.supabase.k";
    const B: &str = "tenant.b.stripe.k";
    const C: &str = "tenant.c.stripe.k";

    #[test]
    fn the_period_its_totals_and_the_refs_over_age() {
        let old = meta("old", "2026-01-10T00:00:00Z", &[(C, "success")], "success");
        let ok = meta(
            "ok",
            "2026-11-05T00:00:00Z",
            &[(A, "success"), (B, "success")],
            "success",
        );
        let auto = meta(
            "auto",
            "2026-11-10T00:00:00Z",
            &[(B, "rolled_back")],
            "rolled_back",
        );
        let failed = meta("bad", "2026-11-12T00:00:00Z", &[(A, "failed")], "failed");
        // Rotated before the period, rolled back by dispatch inside it.
        let mut dispatched = meta("dis", "2026-10-01T00:00:00Z", &[(C, "success")], "success");
        dispatched.rolled_back = true;
        dispatched.rollbacks.push(MetaRollback {
            app_clock_offset_s: None,
            started_at: None,
            operator: "carol".to_owned(),
            reason: "errors".to_owned(),
            finished_at: "2026-11-20T00:00:00Z".to_owned(),
            result: "rolled_back".to_owned(),
            forced: false,
            run_url: None,
            refs: vec![MetaRollbackRef {
                secret_ref: C.to_owned(),
                result: "rolled_back".to_owned(),
                audit_events: vec![MetaEvent {
                    id: "evt-rb".to_owned(),
                    operation: "rollback".to_owned(),
                }],
            }],
        });
        let after = meta(
            "late",
            "2026-12-05T00:00:00Z",
            &[("tenant.d.x.k", "success")],
            "success",
        );
        let v = verified(vec![
            entry(old),
            entry(ok),
            entry(auto),
            entry(failed),
            entry(dispatched),
            entry(after),
        ]);
        let period = Period {
            since: at("2026-11-01T00:00:00Z"),
            until: at("2026-11-30T23:59:59Z"),
        };
        let (e, ages) = build(&v, period, 90);
        let ids: Vec<&str> = e.rotations.iter().map(|r| r.rotation_id.as_str()).collect();
        assert_eq!(ids, ["dis", "ok", "auto", "bad"]);
        assert_eq!(
            e.totals,
            Totals {
                rotations: 3,
                refs_rotated: 2,
                rolled_back: 2,
                failed: 1,
                ..Totals::default()
            }
        );
        assert_eq!(e.rotations[0].rollbacks[0].audit_event_ids, ["evt-rb"]);
        assert_eq!(e.rotations[1].approvers[0].sha, "a".repeat(40));
        // C's last standing rotation is January's (October's was rolled back): overdue. A and
        // B were rotated on Nov 5. The ref first recorded in December is not counted.
        assert_eq!(
            e.overdue_refs,
            [Overdue {
                secret_ref: C.to_owned(),
                last_rotated: Some("2026-01-10T00:00:00Z".to_owned()),
                age_days: Some(324),
            }]
        );
        assert_eq!(ages.len(), 3);
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["verify"]["mode"], "offline");
        assert_eq!(json["rotations"][1]["refs"][0]["ref"], A);
        let c = charts(&e, &ages, period, 90);
        // Five weeks from the Monday before Nov 1 (Oct 26) to the week of Nov 30.
        assert_eq!(c.weekly.labels[2].text, "2026-10-26");
        assert_eq!(c.weekly.bars.len(), 3, "{:?}", c.weekly.bars);
        assert_eq!(c.ages.bars.len(), 3);
        assert_eq!(c.ages.bars[0].class, "overdue");
        assert!(c.ages.line.is_some());
    }

    #[test]
    fn a_hostile_rollback_reason_is_text_in_the_evidence() {
        let mut m = meta("dis", "2026-11-05T00:00:00Z", &[(A, "success")], "success");
        m.rolled_back = true;
        m.rollbacks.push(MetaRollback {
            app_clock_offset_s: None,
            started_at: None,
            operator: "carol".to_owned(),
            reason: crate::report::tests::HOSTILE.to_owned(),
            finished_at: "2026-11-20T00:00:00Z".to_owned(),
            result: "rolled_back".to_owned(),
            forced: false,
            run_url: None,
            refs: Vec::new(),
        });
        let v = verified(vec![entry(m)]);
        let period = Period {
            since: at("2026-11-01T00:00:00Z"),
            until: at("2026-11-30T23:59:59Z"),
        };
        let (e, _) = build(&v, period, 90);
        let mut context = serde_json::to_value(&e).expect("json");
        if let Some(map) = context.as_object_mut() {
            for (k, val) in [
                ("branch", serde_json::json!("main")),
                ("tip", serde_json::json!("abcdef0")),
                ("generated", serde_json::json!("2026-12-01T00:00:00Z")),
                ("version", serde_json::json!("0")),
                ("max_age_days", serde_json::json!(90)),
                (
                    "artifacts_dir",
                    serde_json::json!("docs/security/rotations"),
                ),
                ("charts", serde_json::Value::Null),
            ] {
                map.insert(k.to_owned(), val);
            }
        }
        let md = crate::render::Renderer::new(Vec::new())
            .expect("renderer")
            .render("evidence.md.j2", &context)
            .expect("md");
        assert!(md.contains("reason: cc &amp;#64;mallory"), "{md}");
        crate::report::tests::assert_neutral(&md);
    }

    #[test]
    fn a_rotation_rolled_back_by_dispatch_is_drawn_rolled_back() {
        let mut m = meta("dis", "2026-11-05T00:00:00Z", &[(A, "success")], "success");
        m.rolled_back = true;
        m.rollbacks.push(MetaRollback {
            app_clock_offset_s: None,
            started_at: None,
            operator: "carol".to_owned(),
            reason: "errors".to_owned(),
            finished_at: "2026-11-06T00:00:00Z".to_owned(),
            result: "rolled_back".to_owned(),
            forced: false,
            run_url: None,
            refs: Vec::new(),
        });
        let v = verified(vec![entry(m)]);
        let period = Period {
            since: at("2026-11-01T00:00:00Z"),
            until: at("2026-11-30T23:59:59Z"),
        };
        let (e, ages) = build(&v, period, 90);
        assert_eq!(e.totals.rolled_back, 1);
        let c = charts(&e, &ages, period, 90);
        let classes: Vec<&str> = c.weekly.bars.iter().map(|b| b.class).collect();
        assert_eq!(classes, ["rolled_back"], "as the totals count it");
        // A period that ends before the rollback shows the rotation as it stood then.
        let early = Period {
            since: period.since,
            until: at("2026-11-05T12:00:00Z"),
        };
        let (e, ages) = build(&v, early, 90);
        let c = charts(&e, &ages, early, 90);
        let classes: Vec<&str> = c.weekly.bars.iter().map(|b| b.class).collect();
        assert_eq!(classes, ["success"]);
    }

    #[test]
    fn a_ref_never_rotated_successfully_is_overdue_with_no_date() {
        let failed = meta("f", "2026-11-05T00:00:00Z", &[(A, "failed")], "failed");
        let v = verified(vec![entry(failed)]);
        let period = Period {
            since: at("2026-11-01T00:00:00Z"),
            until: at("2026-11-30T00:00:00Z"),
        };
        let (e, ages) = build(&v, period, 90);
        assert_eq!(
            e.overdue_refs,
            [Overdue {
                secret_ref: A.to_owned(),
                last_rotated: None,
                age_days: None
            }]
        );
        let c = charts(&e, &ages, period, 90);
        assert_eq!(c.ages.bars[0].class, "never");
    }

    #[test]
    fn thousands_of_refs_keep_the_picture_bounded() {
        let ages: Vec<Age> = (0..2000)
            .map(|i| Age {
                secret_ref: format!("tenant.t{i}.p.k"),
                days: Some(i % 200),
                last: None,
            })
            .collect();
        let c = age_chart(&ages, 90);
        assert_eq!(c.bars.len(), 2000);
        assert!(c.height < 4100.0, "{}", c.height);
        assert_eq!(c.labels.len(), 1, "no per-ref labels when rows are thin");
    }
}
