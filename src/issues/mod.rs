//! Capacity issues in the tracker (GitLab): after a run, one issue per group of resources
//! forecast to breach, kept in line with each later run. `plan` decides, `gitlab` calls.

pub mod gitlab;
pub mod plan;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::config::IssuesConfig;
use crate::outcome::RunResult;
use gitlab::{GitLab, GitLabError};
use plan::{Call, PLOT_SLOT, Plan};

/// Groups in a row whose calls failed, after which the rest are not tried: the tracker is
/// down or refuses us, and each further group would only wait out the same timeouts.
const GIVE_UP_AFTER: usize = 3;

/// What syncing did: the plan, the calls made, and one line per failure.
#[derive(Debug, Default)]
pub struct Synced {
    pub plan: Plan,
    /// The tracker's issues were read, so `plan` is a plan (else only `errors` say anything).
    pub planned: bool,
    pub calls_made: usize,
    pub errors: Vec<String>,
}

/// Reads the tracker's issues, plans, and unless `dry` makes the calls. A dry run only reads
/// (the issue list), so its plan is the one a real run would carry out.
pub fn sync(run: &RunResult, cfg: &IssuesConfig, plots: &BTreeMap<String, PathBuf>, dry: bool) -> Synced {
    let mut out = Synced::default();
    let gitlab = match GitLab::connect(cfg) {
        Ok(g) => g,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    let issues = match gitlab.issues(&cfg.labels[0]) {
        Ok(i) => i,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    out.plan = plan::plan(run, cfg, &issues, plots);
    out.planned = true;
    out.errors.extend(out.plan.errors.iter().map(|e| gitlab.redact(e)));
    if dry {
        return out;
    }
    let mut failed_in_a_row = 0;
    for (done, p) in out.plan.planned.iter().enumerate() {
        if failed_in_a_row >= GIVE_UP_AFTER {
            let left = out.plan.planned[done..].iter().filter(|p| !p.calls.is_empty()).count();
            out.errors.push(format!(
                "[issues] {GIVE_UP_AFTER} groups in a row failed: the other {left} groups' changes were not tried"
            ));
            break;
        }
        match apply(&gitlab, &p.calls) {
            Ok(n) => {
                out.calls_made += n;
                failed_in_a_row = 0;
            }
            Err((n, e)) => {
                out.calls_made += n;
                out.errors.push(format!("{} (issue for {})", crate::error::line(&e), gitlab.redact(&p.key)));
                failed_in_a_row += 1;
            }
        }
    }
    out
}

/// One group's calls in order; a failure stops the group's remaining calls. Calls made, or
/// the calls made and the failure.
/// Why one group's calls stopped.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    GitLab(#[from] GitLabError),
    #[error("[issues] cannot read {}", path.display())]
    Plot {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn apply(g: &GitLab, calls: &[Call]) -> Result<usize, (usize, CallError)> {
    let mut plot = String::new();
    let mut made = 0;
    let with_plot = |text: &str, plot: &str| text.replace(PLOT_SLOT, plot);
    for c in calls {
        match c {
            Call::Upload { file } => {
                let bytes =
                    std::fs::read(file).map_err(|source| (made, CallError::Plot { path: file.clone(), source }))?;
                let name = file.file_name().map_or("plot.png".into(), |n| n.to_string_lossy().to_string());
                plot = g.upload(&name, &bytes).map_err(|e| (made, e.into()))?;
            }
            Call::Create { title, description, labels } => {
                g.create(title, &with_plot(description, &plot), labels).map_err(|e| (made, e.into()))?;
            }
            Call::Edit { iid, title, description, add_labels, remove_labels, state_event } => {
                let mut fields = serde_json::Map::new();
                if let Some(t) = title {
                    fields.insert("title".into(), t.clone().into());
                }
                if let Some(d) = description {
                    fields.insert("description".into(), with_plot(d, &plot).into());
                }
                if !add_labels.is_empty() {
                    fields.insert("add_labels".into(), add_labels.join(",").into());
                }
                if !remove_labels.is_empty() {
                    fields.insert("remove_labels".into(), remove_labels.join(",").into());
                }
                if let Some(s) = state_event {
                    fields.insert("state_event".into(), (*s).into());
                }
                g.edit(*iid, fields.into()).map_err(|e| (made, e.into()))?;
            }
            Call::Note { iid, body } => g.note(*iid, &with_plot(body, &plot)).map_err(|e| (made, e.into()))?,
        }
        made += 1;
    }
    Ok(made)
}

/// The plan as Markdown: each group's action, why, the calls, and the texts sent.
pub fn plan_markdown(plan: &Plan, dry: bool) -> String {
    let mut s = String::new();
    let acting: Vec<_> = plan.planned.iter().filter(|p| !p.calls.is_empty()).collect();
    let _ = writeln!(
        s,
        "# Capacity issues: {} to change, {} left alone{}\n",
        acting.len(),
        plan.planned.len() - acting.len(),
        if dry { " (dry run: nothing was sent)" } else { "" }
    );
    for p in &plan.planned {
        let iid = p.iid.map_or(String::new(), |i| format!(" #{i}"));
        let _ = writeln!(s, "## {}{iid}: {}\n\n{}\n", p.action, p.title, p.why);
        for c in &p.calls {
            match c {
                Call::Upload { file } => {
                    let _ = writeln!(s, "- `POST /projects/:id/uploads` {}", file.display());
                }
                Call::Create { labels, description, .. } => {
                    let _ = writeln!(s, "- `POST /projects/:id/issues` labels {}\n", labels.join(", "));
                    let _ = writeln!(s, "{}\n", quote(description));
                }
                Call::Edit { iid, add_labels, remove_labels, state_event, description, .. } => {
                    let mut what = vec![];
                    if let Some(e) = state_event {
                        what.push(format!("state_event {e}"));
                    }
                    if !add_labels.is_empty() {
                        what.push(format!("add_labels {}", add_labels.join(",")));
                    }
                    if !remove_labels.is_empty() {
                        what.push(format!("remove_labels {}", remove_labels.join(",")));
                    }
                    if description.is_some() {
                        what.push("description".into());
                    }
                    let _ = writeln!(s, "- `PUT /projects/:id/issues/{iid}` {}", what.join(", "));
                }
                Call::Note { iid, body } => {
                    let _ = writeln!(s, "- `POST /projects/:id/issues/{iid}/notes`\n\n{}\n", quote(body));
                }
            }
        }
        s.push('\n');
    }
    s
}

fn quote(text: &str) -> String {
    text.lines().map(|l| if l.is_empty() { ">".to_string() } else { format!("> {l}") }).collect::<Vec<_>>().join("\n")
}
