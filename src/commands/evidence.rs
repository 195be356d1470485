//! `rotor evidence`: one self-contained document for auditors covering a period, in markdown,
//! JSON or single-file HTML, to stdout or `--out`. It runs the same checks as `rotor verify`
//! (online when the application's token is set, offline otherwise) and exits 1 when they found
//! anything, after writing the document all the same.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};

use crate::cli::{DateArg, FormatArg};
use crate::context::Context;
use crate::error::Error;
use crate::record::evidence::{self, Period};
use crate::record::verify::{self, Mode, Options};
use crate::render::{self, Renderer};
use crate::secret::SecretString;

/// What the command line asked.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--since`.
    pub since: DateArg,
    /// `--until` (inclusive; default now).
    pub until: Option<DateArg>,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--format`: `text` and `md` are markdown.
    pub format: FormatArg,
}

/// Runs `rotor evidence`.
pub async fn run(cx: &Context, config_rel: &Path, args: &Args) -> Result<(), Error> {
    let now = Utc::now();
    let period = Period {
        since: args.since.at,
        until: args.until.map_or(now, DateArg::end),
    };
    if period.until < period.since {
        return Err(Error::BadArgument {
            name: "--until",
            problem: format!(
                "{} is before --since {}",
                period.until.to_rfc3339_opts(SecondsFormat::Secs, true),
                period.since.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        });
    }
    // Relative to where rotor was started, like any output file; checked before the work.
    let out = match &args.out {
        Some(p) => {
            let path = if p.is_absolute() {
                p.clone()
            } else {
                std::env::current_dir()?.join(p)
            };
            if !path.parent().is_some_and(Path::is_dir) {
                return Err(Error::BadArgument {
                    name: "--out",
                    problem: format!(
                        "there is no directory to write {} in; create it first",
                        path.display()
                    ),
                });
            }
            Some(path)
        }
        None => None,
    };
    let config_rel = config_rel.to_string_lossy().replace('\\', "/");
    // Online when the application's token is there: the config names its variable.
    let app_token = crate::context::load_config(&cx.config_path, &config_rel)
        .ok()
        .map_or_else(|| "ROTOR_APP_TOKEN".to_owned(), |c| c.app.token_env);
    let mode = if SecretString::from_env(&app_token).is_some() {
        Mode::Online
    } else {
        Mode::Offline
    };
    let opts = Options {
        config_rel,
        since: Some(period.since),
        until: Some(period.until),
        mode,
        token: SecretString::from_env("GITHUB_TOKEN"),
    };
    let v = verify::check(&cx.repo, &opts, &|line| cx.output.log(line))
        .await
        .map_err(|e| crate::context::reported(cx, e))?;
    let config = &v.history.config;
    let (doc, ages) = evidence::build(&v, period, config.max_age_days);
    let tip = v.history.tip.get(..7).unwrap_or(&v.history.tip);
    let context = |charts: Option<evidence::Charts>| {
        let mut value = serde_json::to_value(&doc).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            for (k, val) in [
                ("branch", serde_json::json!(v.history.branch)),
                ("tip", serde_json::json!(tip)),
                (
                    "generated",
                    serde_json::json!(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
                ),
                ("version", serde_json::json!(env!("CARGO_PKG_VERSION"))),
                ("max_age_days", serde_json::json!(config.max_age_days)),
                (
                    "artifacts_dir",
                    serde_json::json!(config.artifacts_dir.as_str()),
                ),
                ("charts", serde_json::json!(charts)),
            ] {
                map.insert(k.to_owned(), val);
            }
        }
        value
    };
    let text = match args.format {
        FormatArg::Json => {
            let mut t = serde_json::to_string(&doc).map_err(std::io::Error::other)?;
            t.push('\n');
            t
        }
        FormatArg::Html => render::render_html(
            "evidence.html.j2",
            context(Some(evidence::charts(
                &doc,
                &ages,
                period,
                config.max_age_days,
            ))),
        )?,
        FormatArg::Text | FormatArg::Md => {
            Renderer::new(Vec::new())?.render("evidence.md.j2", context(None))?
        }
    };
    for (r, f) in &v.failures {
        cx.output.log(&format!("{r}: not checked: {f}"));
    }
    for f in &v.findings {
        cx.output
            .annotate_error(&f.artifact, &format!("{}: {}", f.kind.as_str(), f.message));
    }
    // The step outputs, as verify writes them: what the document's verification found.
    crate::output::github::write_outputs(&[
        (
            "result",
            if doc.verify.findings.is_empty() {
                "clean"
            } else {
                "findings"
            }
            .to_owned(),
        ),
        ("findings", doc.verify.findings.len().to_string()),
    ])?;
    if args.format == FormatArg::Json {
        // The document is the run's one JSON object, on stdout or in --out.
        crate::output::mark_json_written();
    }
    match &out {
        Some(path) => {
            std::fs::write(path, text.as_bytes())?;
            cx.output.log(&format!(
                "rotor evidence: {}, {} ({}), written to {}",
                crate::output::count(doc.rotations.len(), "rotation"),
                crate::output::count(doc.verify.findings.len(), "finding"),
                if v.mode == Mode::Online {
                    "online"
                } else {
                    "offline"
                },
                path.display()
            ));
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
        }
    }
    if !v.failures.is_empty() {
        return Err(Error::Refs {
            total: v.refs,
            failures: v.failures.clone(),
        });
    }
    if !doc.verify.findings.is_empty() {
        return Err(Error::Findings(doc.verify.findings.len()));
    }
    Ok(())
}
