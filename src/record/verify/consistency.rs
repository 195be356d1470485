//! Self-consistency (`inconsistent`): the artifact's visible fields against its
//! machine-readable block.

use std::collections::BTreeSet;

use super::{Finding, Kind};
use crate::artifact::ArtifactMeta;
use crate::render::escape_md;

/// The value of the runbook field `- <name>: ` among `lines`.
fn field<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    let prefix = format!("- {name}: ");
    lines.iter().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// The cells of a markdown table row, split on unescaped `|`.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|');
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cell.push(c);
                if let Some(n) = chars.next() {
                    cell.push(n);
                }
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            c => cell.push(c),
        }
    }
    if !cell.trim().is_empty() {
        out.push(cell.trim().to_owned());
    }
    out
}

/// A break-glass record's `## Countersigned` section against its block: there is one exactly
/// when the block records a countersignature, by whom it says, and never by the operator.
fn countersigned(lines: &[&str], meta: &ArtifactMeta) -> Vec<String> {
    let mut problems = Vec::new();
    let shown: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "## Countersigned")
        .map(|(i, _)| i)
        .collect();
    match (&meta.countersigned, shown.as_slice()) {
        (None, []) => {}
        (None, _) => problems.push(format!(
            "it shows {} `## Countersigned` section(s), the block records no countersignature",
            shown.len()
        )),
        (Some(_), []) => problems.push(
            "the block records a countersignature that no `## Countersigned` section shows"
                .to_owned(),
        ),
        (Some(cs), [start]) => {
            let by = lines[*start..]
                .iter()
                .skip(1)
                .take_while(|l| !l.starts_with("## "))
                .find_map(|l| l.strip_prefix("- By: "));
            let expected = format!("{} (internal_admin)", escape_md(&cs.by));
            if by != Some(expected.as_str()) {
                problems.push(format!(
                    "the countersignature shows {:?}, the block says {expected:?}",
                    by.unwrap_or("no `- By:` line")
                ));
            }
        }
        (Some(_), many) => problems.push(format!(
            "it shows {} `## Countersigned` sections; a rotation is countersigned once",
            many.len()
        )),
    }
    match (&meta.break_glass, &meta.countersigned) {
        (None, Some(_)) => problems.push(
            "the block records a countersignature of a rotation that was not break-glass"
                .to_owned(),
        ),
        (Some(g), Some(cs)) if g.by.eq_ignore_ascii_case(&cs.by) => problems.push(format!(
            "the block records {} countersigning their own break-glass rotation",
            cs.by
        )),
        _ => {}
    }
    problems
}

/// Self-consistency: the visible fields (heading, Operator, Secret Ref, Provider, Result, the
/// batch table, each rollback section's Operator and Result) against the machine-readable
/// block, and the block's rotation id against the file name.
pub(crate) fn consistency(path: &str, text: &str, meta: &ArtifactMeta) -> Vec<Finding> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let sections: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "## Rollback")
        .map(|(i, _)| i)
        .collect();
    // A rollback's section ends where the next section starts.
    let sections_end = |start: usize| {
        lines
            .iter()
            .skip(start + 1)
            .position(|l| l.starts_with("## "))
            .map_or(lines.len(), |i| i + start + 1)
    };
    let end = lines
        .iter()
        .skip(1)
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| i + 1);
    let head = &lines[..end.min(lines.len())];
    let stem = path
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".md"))
        .unwrap_or("");
    if meta.rotation_id != stem {
        problems.push(format!(
            "the block records rotation {:?} but the file is named {stem:?}",
            meta.rotation_id
        ));
    }
    // Only the results rotor writes: any other word would let a record move the chain unseen.
    const RESULTS: &[&str] = &["success", "rolled_back", "failed", "not_started", "skipped"];
    for r in meta
        .refs
        .iter()
        .filter(|r| !RESULTS.contains(&r.result.as_str()))
    {
        problems.push(format!(
            "{} has the result {:?}, which rotor never writes (it writes {})",
            r.secret_ref,
            r.result,
            RESULTS.join(", ")
        ));
    }
    // The pointer a ref's record leaves must be the one its results say: rotor writes
    // `success` on `to`, `rolled_back` (automatically, or by a dispatched rollback it lists)
    // on `from`; a `rollback` result only with a dispatched rollback that lists the ref with it.
    for r in &meta.refs {
        let listed = meta.rollbacks.iter().rev().find_map(|rb| {
            rb.refs
                .iter()
                .find(|x| x.secret_ref == r.secret_ref)
                .map(|x| x.result.as_str())
        });
        if let Some(rb) = r.rollback.as_deref()
            && listed != Some(rb)
        {
            problems.push(format!(
                "{} records the rollback result {rb:?}, but no rollback of the record lists it so",
                r.secret_ref
            ));
        }
        let back = r.result == "rolled_back" || r.rollback.as_deref() == Some("rolled_back");
        let expected = match r.result.as_str() {
            _ if back => Some(r.from.as_str()),
            // A failed rollback may or may not have moved the pointer back before it failed.
            _ if r.rollback.as_deref() == Some("failed") => None,
            "success" => Some(r.to.as_str()),
            "failed" => None,
            _ => Some(r.from.as_str()),
        };
        if let (Some(expected), Some(pointer)) = (expected, r.pointer.as_deref())
            && pointer != expected
        {
            problems.push(format!(
                "{} is recorded as {}{} but its pointer as {pointer}, not {expected}",
                r.secret_ref,
                r.result,
                r.rollback
                    .as_deref()
                    .map(|rb| format!(" (rollback: {rb})"))
                    .unwrap_or_default()
            ));
        }
        if r.result == "failed"
            && let Some(pointer) = r.pointer.as_deref()
            && pointer != r.to
            && pointer != r.from
        {
            problems.push(format!(
                "{} is recorded as failed with its pointer on {pointer}, neither its from ({}) nor its to ({})",
                r.secret_ref, r.from, r.to
            ));
        }
    }
    let heading = format!(
        "# Rotation {}{}",
        escape_md(&meta.rotation_id),
        if meta.break_glass.is_some() {
            " (break-glass)"
        } else {
            ""
        }
    );
    if lines.first() != Some(&heading.as_str()) {
        problems.push(format!(
            "the heading is {:?}, the block says {heading:?}",
            lines.first().unwrap_or(&"")
        ));
    }
    fn compare(problems: &mut Vec<String>, name: &str, seen: Option<&str>, expected: String) {
        match seen {
            Some(v) if v == expected => {}
            Some(v) => problems.push(format!("{name} shows {v:?}, the block says {expected:?}")),
            None => problems.push(format!("there is no `- {name}:` line")),
        }
    }
    if let Some(result) = &meta.result {
        compare(
            &mut problems,
            "Result",
            field(head, "Result"),
            escape_md(result),
        );
    }
    let refs = &meta.refs;
    let secret_ref = match refs.as_slice() {
        [one] => escape_md(&one.secret_ref),
        many => format!("{} refs", many.len()),
    };
    compare(
        &mut problems,
        "Secret Ref",
        field(head, "Secret Ref"),
        secret_ref,
    );
    let mut providers: Vec<&str> = refs
        .iter()
        .filter_map(|r| r.secret_ref.split('.').nth(2))
        .collect();
    providers.sort_unstable();
    providers.dedup();
    compare(
        &mut problems,
        "Provider",
        field(head, "Provider"),
        escape_md(&providers.join(", ")),
    );
    if let Some(operator) = &meta.operator {
        compare(
            &mut problems,
            "Operator",
            field(head, "Operator"),
            format!("{} (internal_admin)", escape_md(operator)),
        );
    }
    if refs.len() > 1 {
        let shown: BTreeSet<Vec<String>> = head
            .iter()
            .filter(|l| l.starts_with('|') && !l.starts_with("| ref |") && !l.starts_with("| ---"))
            .map(|l| cells(l).into_iter().take(3).collect())
            .collect();
        let recorded: BTreeSet<Vec<String>> = refs
            .iter()
            .map(|r| {
                vec![
                    escape_md(&r.secret_ref),
                    format!("{} → {}", escape_md(&r.from), escape_md(&r.to)),
                    escape_md(&r.result),
                ]
            })
            .collect();
        for row in recorded.difference(&shown) {
            problems.push(format!(
                "the table has no row `{}` that the block records",
                row.join(" | ")
            ));
        }
        for row in shown.difference(&recorded) {
            problems.push(format!(
                "the table shows `{}`, which the block does not record",
                row.join(" | ")
            ));
        }
    }
    problems.extend(countersigned(&lines, meta));
    let recorded_rollbacks = if meta.rollbacks.is_empty() {
        usize::from(meta.rolled_back)
    } else {
        meta.rollbacks.len()
    };
    if sections.len() != recorded_rollbacks {
        problems.push(format!(
            "it shows {} `## Rollback` sections, the block records {recorded_rollbacks}",
            sections.len()
        ));
    } else {
        for (n, (&start, rb)) in sections.iter().zip(&meta.rollbacks).enumerate() {
            let part = &lines[start..sections_end(start)];
            let name = |f: &str| format!("rollback {}'s {f}", n + 1);
            let (r, o) = (field(part, "Result"), field(part, "Operator"));
            compare(&mut problems, &name("Result"), r, escape_md(&rb.result));
            compare(
                &mut problems,
                &name("Operator"),
                o,
                format!("{} (internal_admin)", escape_md(&rb.operator)),
            );
        }
    }
    problems
        .into_iter()
        .map(|p| Finding::new(Kind::Inconsistent, path, format!("{path}: {p}")))
        .collect()
}
