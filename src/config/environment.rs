//! `environments.<env>`: the policy a request's environment carries — whether it needs a
//! maintenance window, how a batch rolls out in waves (`rollout`: a canary, the size of the
//! later waves, the error budget and a pause between waves), and whether one `internal_admin`
//! may rotate alone in an emergency (`break_glass`: who is told, and how long the second
//! approval may stay owed).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::parse_duration;
use crate::diagnostic::{Diagnostics, quote};
use crate::yaml::Node;

/// An environment's policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Environment {
    /// Requests for it need a maintenance window or a rollout note.
    pub requires_maintenance: bool,
    /// How a request's refs roll out.
    pub rollout: Rollout,
    /// Whether its requester may rotate alone (`/rotor break-glass`), and who is told.
    pub break_glass: BreakGlass,
}

/// `environments.<env>.break_glass`: off unless `allowed: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakGlass {
    /// Whether `/rotor break-glass` may rotate a request of this environment.
    pub allowed: bool,
    /// The team the break-glass comment mentions (the one mention rotor writes).
    pub notify: Option<super::TeamRef>,
    /// How long the countersignature may stay owed before it is overdue.
    #[serde(serialize_with = "seconds")]
    pub countersign_within: Duration,
}

/// A duration as the config writes it: `24h`, `90m`, `45s`.
pub fn said(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The default of `countersign_within`: a day.
pub const COUNTERSIGN_WITHIN: Duration = Duration::from_secs(24 * 3600);

impl Default for BreakGlass {
    fn default() -> Self {
        Self {
            allowed: false,
            notify: None,
            countersign_within: COUNTERSIGN_WITHIN,
        }
    }
}

/// A number of refs, or a share of the request's refs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// So many refs.
    Count(usize),
    /// So many percent (0 to 100).
    Percent(u8),
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `environments.<env>.rollout`: the request's refs, in its order, in waves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// The first wave's size (0: no canary).
    pub canary: usize,
    /// Each later wave's size: a count, or a share of the request's refs (rounded up, at least
    /// one).
    pub wave: Share,
    /// The error budget: more refs ended `rolled_back` or `failed` than this, and no further
    /// wave starts. `None`: never halts.
    pub max_failures: Option<Share>,
    /// The wait between two waves.
    #[serde(serialize_with = "seconds")]
    pub pause: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}s", d.as_secs()))
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            canary: 0,
            wave: Share::Percent(100),
            max_failures: None,
            pause: Duration::ZERO,
        }
    }
}

impl Rollout {
    /// The sizes of the waves for `n` refs: the canary (when there is one), then waves of
    /// `wave` refs until every ref has one.
    pub fn sizes(&self, n: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let canary = self.canary.min(n);
        if canary > 0 {
            sizes.push(canary);
        }
        let each = match self.wave {
            Share::Count(k) => k,
            Share::Percent(p) => (n * usize::from(p)).div_ceil(100),
        }
        .max(1);
        let mut left = n - canary;
        while left > 0 {
            let size = each.min(left);
            sizes.push(size);
            left -= size;
        }
        sizes
    }

    /// Whether `failures` among the `finished` refs exceed the budget. A count is compared with
    /// the failures; a percentage halts when `failures × 100 > P × finished`, without
    /// rounding, so that after a small canary a percentage budget halts on its first failure.
    pub fn over_budget(&self, failures: usize, finished: usize) -> bool {
        match self.max_failures {
            None => false,
            Some(Share::Count(k)) => failures > k,
            Some(Share::Percent(p)) => failures * 100 > usize::from(p) * finished,
        }
    }
}

/// The `environments` mapping.
pub(super) fn environments(
    node: &Node<'_>,
    diags: &mut Diagnostics,
) -> Option<BTreeMap<String, Environment>> {
    let map = node.mapping(diags, &[])?;
    let before = diags.len();
    let mut out = BTreeMap::new();
    for (name, value) in map.entries() {
        let valid_name = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            diags.push(
                value
                    .error(
                        "invalid_environment_name",
                        format!("environment name {} is not valid", quote(name)),
                    )
                    .help("use letters, digits, `-` and `_`"),
            );
            continue;
        }
        if let Some(policy) = environment(&value, diags) {
            out.insert(name.to_owned(), policy);
        }
    }
    if out.is_empty() && diags.len() == before {
        diags.push(
            node.error("no_environments", "`environments` is empty")
                .help("define at least one, e.g. `production: {requires_maintenance: true}`"),
        );
    }
    (diags.len() == before).then_some(out)
}

fn environment(value: &Node<'_>, diags: &mut Diagnostics) -> Option<Environment> {
    if value.is_null() {
        return Some(Environment::default());
    }
    let m = value.mapping(diags, &["requires_maintenance", "rollout", "break_glass"])?;
    let requires_maintenance = match m.get("requires_maintenance") {
        None => Some(false),
        Some(b) => b.boolean(diags),
    };
    let rollout = match m.get("rollout") {
        None => Some(Rollout::default()),
        Some(r) => rollout(&r, diags),
    };
    let break_glass = match m.get("break_glass") {
        None => Some(BreakGlass::default()),
        Some(b) => break_glass(&b, diags),
    };
    Some(Environment {
        requires_maintenance: requires_maintenance?,
        rollout: rollout?,
        break_glass: break_glass?,
    })
}

fn break_glass(node: &Node<'_>, diags: &mut Diagnostics) -> Option<BreakGlass> {
    let m = node.mapping(diags, &["allowed", "notify", "countersign_within"])?;
    let allowed = match m.get("allowed") {
        None => Some(false),
        Some(b) => b.boolean(diags),
    };
    let notify = match m.get("notify") {
        None => Some(None),
        Some(n) => super::team_ref(&n, diags).map(Some),
    };
    let within = match m.get("countersign_within") {
        None => Some(COUNTERSIGN_WITHIN),
        Some(n) => duration(
            &n,
            "countersign_within",
            Duration::from_secs(1),
            Duration::from_secs(90 * 24 * 3600),
            "90 days",
            diags,
        ),
    };
    Some(BreakGlass {
        allowed: allowed?,
        notify: notify?,
        countersign_within: within?,
    })
}

fn rollout(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Rollout> {
    let m = node.mapping(diags, &["canary", "wave", "max_failures", "pause"])?;
    let canary = match m.get("canary") {
        None => Some(0),
        Some(n) => n.unsigned(diags).and_then(|v| usize::try_from(v).ok()),
    };
    let wave = match m.get("wave") {
        None => Some(Share::Percent(100)),
        Some(n) => share(&n, false, diags),
    };
    let max_failures = match m.get("max_failures") {
        None => Some(None),
        Some(n) => share(&n, true, diags).map(Some),
    };
    let pause = match m.get("pause") {
        None => Some(Duration::ZERO),
        Some(n) => pause(&n, diags),
    };
    Some(Rollout {
        canary: canary?,
        wave: wave?,
        max_failures: max_failures?,
        pause: pause?,
    })
}

/// A count (`10`) or a percentage (`10%`); a wave is never empty (`zero` only for a budget).
fn share(node: &Node<'_>, zero: bool, diags: &mut Diagnostics) -> Option<Share> {
    let example = if zero {
        "`0`, `2` or `2%`"
    } else {
        "`10` or `10%`"
    };
    let bad = |diags: &mut Diagnostics, what: String| {
        diags.push(
            node.error("invalid_rollout", what)
                .help(format!("write a count or a percentage, e.g. {example}")),
        );
        None
    };
    match node.value() {
        serde_norway::Value::Number(n) => match n.as_u64() {
            Some(k) if k > 0 || zero => usize::try_from(k).ok().map(Share::Count),
            _ => bad(
                diags,
                format!(
                    "{} must be a whole number of refs{}",
                    node.describe(),
                    if zero { "" } else { " above 0" }
                ),
            ),
        },
        serde_norway::Value::String(text) => {
            let Some(digits) = text.trim().strip_suffix('%') else {
                return bad(
                    diags,
                    format!("{} is neither a count nor a percentage", quote(text)),
                );
            };
            match digits.trim().parse::<u8>() {
                Ok(p) if p <= 100 && (p > 0 || zero) => Some(Share::Percent(p)),
                _ => bad(
                    diags,
                    format!(
                        "{} is not a percentage {}",
                        quote(text),
                        if zero {
                            "from 0% to 100%"
                        } else {
                            "from 1% to 100%"
                        }
                    ),
                ),
            }
        }
        _ => bad(
            diags,
            format!("{} is neither a count nor a percentage", node.describe()),
        ),
    }
}

/// The pause between waves: a duration with a unit, from `0s` to 6h.
fn pause(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Duration> {
    duration(
        node,
        "pause",
        Duration::ZERO,
        Duration::from_secs(6 * 3600),
        "6h",
        diags,
    )
}

/// A duration with a unit (`10m`, `24h`), from `min` to `max` (`max_text` as the config would
/// write it).
fn duration(
    node: &Node<'_>,
    name: &str,
    min: Duration,
    max: Duration,
    max_text: &str,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let help = "write a number and a unit (ms, s, m, h), e.g. `0s`, `10m` or `24h`";
    if let serde_norway::Value::Number(n) = node.value() {
        diags.push(
            node.error("invalid_duration", format!("duration {n} has no unit"))
                .help(help),
        );
        return None;
    }
    let text = node.string(diags)?;
    match parse_duration(text) {
        Ok(d) if d >= min && d <= max => Some(d),
        Ok(_) => {
            let least = if min.is_zero() {
                "0s".to_owned()
            } else {
                format!("{}s", min.as_secs())
            };
            diags.push(
                node.error(
                    "out_of_range",
                    format!("`{name}` must be from {least} to {max_text}"),
                )
                .help(help),
            );
            None
        }
        Err(e) => {
            diags.push(
                node.error(
                    "invalid_duration",
                    format!("invalid duration {}: {e}", quote(text)),
                )
                .help(help),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(canary: usize, wave: Share, budget: Option<Share>) -> Rollout {
        Rollout {
            canary,
            wave,
            max_failures: budget,
            pause: Duration::ZERO,
        }
    }

    #[test]
    fn waves_follow_the_request_a_canary_first() {
        assert_eq!(
            Rollout::default().sizes(40),
            vec![40],
            "one wave by default"
        );
        assert_eq!(
            rollout(5, Share::Percent(10), None).sizes(40),
            vec![5, 4, 4, 4, 4, 4, 4, 4, 4, 3]
        );
        assert_eq!(
            rollout(0, Share::Count(15), None).sizes(40),
            vec![15, 15, 10]
        );
        // P% of the request's refs, canary included, rounded up, at least one.
        assert_eq!(
            rollout(2, Share::Percent(1), None).sizes(5),
            vec![2, 1, 1, 1]
        );
        assert_eq!(
            rollout(10, Share::Percent(100), None).sizes(3),
            vec![3],
            "a canary larger than the request"
        );
        assert!(Rollout::default().sizes(0).is_empty());
    }

    #[test]
    fn durations_are_said_as_the_config_writes_them() {
        assert_eq!(said(COUNTERSIGN_WITHIN), "24h");
        assert_eq!(said(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(said(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn the_budget_counts_failures_or_compares_shares_without_rounding() {
        let none = rollout(1, Share::Percent(100), None);
        assert!(!none.over_budget(40, 40));
        let two = rollout(1, Share::Percent(100), Some(Share::Count(2)));
        assert!(!two.over_budget(2, 10));
        assert!(two.over_budget(3, 10));
        let zero = rollout(1, Share::Percent(100), Some(Share::Count(0)));
        assert!(zero.over_budget(1, 1));
        let pct = rollout(5, Share::Percent(10), Some(Share::Percent(2)));
        // After a canary of 5, one failure is 20% > 2%: halt.
        assert!(pct.over_budget(1, 5));
        // 1 of 100 is 1%: within 2%.
        assert!(!pct.over_budget(1, 100));
        // 2 of 100 is exactly 2%: within; 3 is over.
        assert!(!pct.over_budget(2, 100));
        assert!(pct.over_budget(3, 100));
    }
}
