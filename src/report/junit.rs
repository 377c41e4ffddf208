//! `junit.xml` for GitLab's test-report widget: one test case per resource. A hard crossing
//! (earliest, upper bound) within `alert_within` is a failure; a soft one is a note in the
//! case's output; a resource that could not be forecast is an error case.

use std::fmt::Write;

use super::{Exporter, Report, ReportError, escape_xml as esc, level, percent, threshold};
use crate::outcome::{ResourceForecast, View};
use crate::time::{format_duration, rfc3339};

pub struct Junit;

impl Exporter for Junit {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, ReportError> {
        let run = report.run;
        let failures = run.resources.iter().filter(|r| hard_alert(r, &r.view(run.as_of)).is_some()).count();
        let tests = run.resources.len() + run.errors.len();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"headroom\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\">",
            run.errors.len()
        );
        let _ = writeln!(
            x,
            "  <testsuite name=\"headroom capacity forecast as of {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\" timestamp=\"{}\">",
            rfc3339(run.as_of),
            run.errors.len(),
            esc(&report.meta.generated_at)
        );
        for r in &run.resources {
            let _ = write!(
                x,
                "    <testcase classname=\"headroom.{}\" name=\"{}\" time=\"0\">",
                esc(&r.source),
                esc(&r.name)
            );
            let v = r.view(run.as_of);
            let mut out = vec![];
            for c in &v.crossings {
                let b = c.breach;
                let line = match (c.expected, c.earliest, c.earliest_days) {
                    _ if b.already_breached => {
                        format!(
                            "{} {}: already breached (last value {})",
                            b.name,
                            threshold(r, b.threshold),
                            level(r, r.last_value)
                        )
                    }
                    (e, Some(l), Some(d)) => format!(
                        "{} {}: earliest {} ({d:.1} d), expected {}, probability {}",
                        b.name,
                        threshold(r, b.threshold),
                        rfc3339(l),
                        e.map_or("none within the horizon".into(), rfc3339),
                        percent(b.probability)
                    ),
                    _ => format!("{} {}: no crossing within the horizon", b.name, threshold(r, b.threshold)),
                };
                out.push(line);
            }
            if let Some(c) = v.alert.filter(|c| c.breach.name != "hard") {
                out.insert(
                    0,
                    format!(
                        "WARNING: {} threshold crossing within {}",
                        c.breach.name,
                        format_duration(r.settings.alert_within)
                    ),
                );
            }
            out.push(format!("model {}, last value {}", r.model, level(r, r.last_value)));
            if let Some(png) = report.plot_path(&r.name, "png") {
                out.push(format!("[[ATTACHMENT|{}/{png}]]", report.meta.out_dir.trim_end_matches('/')));
            }
            x.push('\n');
            if let Some(msg) = hard_alert(r, &v) {
                let _ = writeln!(x, "      <failure type=\"hard\" message=\"{}\">{}</failure>", esc(&msg), esc(&msg));
            }
            let _ = writeln!(x, "      <system-out>{}</system-out>", esc(&out.join("\n")));
            x.push_str("    </testcase>\n");
        }
        for e in &run.errors {
            let name = e.resource.clone().unwrap_or_else(|| "source".into());
            let _ = writeln!(
                x,
                "    <testcase classname=\"headroom.errors\" name=\"{}\" time=\"0\">\n      <error type=\"error\" message=\"{}\">{}</error>\n    </testcase>",
                esc(&name),
                esc(&e.message),
                esc(&e.to_string())
            );
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        Ok(x.into_bytes())
    }
}

/// The failure message when the hard threshold's earliest crossing is within the alert window.
fn hard_alert(r: &ResourceForecast, v: &View) -> Option<String> {
    let c = v.crossings.iter().find(|c| c.breach.name == "hard" && v.alerts(c))?;
    let b = c.breach;
    Some(if b.already_breached {
        format!("hard threshold {} already breached", threshold(r, b.threshold))
    } else {
        format!(
            "hard threshold {} may be reached by {} ({:.1} days, probability {}), within alert_within {}",
            threshold(r, b.threshold),
            c.earliest.map_or("–".into(), rfc3339),
            c.earliest_days.unwrap_or(0.0),
            percent(b.probability),
            format_duration(r.settings.alert_within)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    #[test]
    fn snapshot() {
        let xml = testdata::render(&Junit, true);
        assert!(!xml.contains("<script>"), "names are escaped");
        assert!(!xml.contains('\u{1}'), "control characters are dropped");
        insta::assert_snapshot!(xml);
    }
}
