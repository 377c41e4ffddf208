//! The fleet at a glance, worked out once for the reports: counts by status, a calendar of
//! first crossings by week, the spread of headroom, and a roll-up by group (`[report]
//! group_by`: by default the part of a resource's name before its first `/`, the service).

use std::collections::BTreeMap;

use crate::outcome::{ResourceForecast, RunResult};

const WEEK: i64 = 7 * 86_400;

/// Headroom buckets: (label, up to this many days).
pub const HEADROOM_BUCKETS: [(&str, f64); 5] =
    [("under 7 d", 7.0), ("7-30 d", 30.0), ("30-90 d", 90.0), ("over 90 d", f64::INFINITY), ("no crossing", f64::NAN)];

/// One week of the breach calendar: resources whose earliest crossing of soft / hard (the
/// first of its kind) falls in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Week {
    pub start: i64,
    pub soft: usize,
    pub hard: usize,
}

/// One group's roll-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub name: String,
    pub resources: usize,
    /// Alerting within their alert window.
    pub at_risk: usize,
    /// The group's earliest crossing of any threshold, and the largest capacity factor needed.
    pub earliest: Option<i64>,
    pub capacity_needed: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overview {
    pub hard: usize,
    pub soft: usize,
    pub ok: usize,
    pub failed: usize,
    /// Already at or above a threshold, counted apart from the calendar.
    pub already: usize,
    pub calendar: Vec<Week>,
    /// Resources per [`HEADROOM_BUCKETS`] entry.
    pub headroom: Vec<usize>,
    /// Most at risk first, then earliest crossing, then name.
    pub groups: Vec<Group>,
}

/// The group a resource belongs to under `template`; its whole name when it lacks what the
/// template names.
pub fn group_of(r: &ResourceForecast, template: &str) -> String {
    r.group(template).unwrap_or_else(|| r.name.clone())
}

pub fn overview(run: &RunResult, group_by: &str) -> Overview {
    let as_of = run.as_of;
    let mut o = Overview { failed: run.errors.iter().filter(|e| e.resource.is_some()).count(), ..Overview::default() };
    let horizon = run.resources.iter().map(|r| r.settings.horizon).max().unwrap_or(0);
    let weeks = ((horizon + WEEK - 1) / WEEK).max(1) as usize;
    o.calendar = (0..weeks).map(|k| Week { start: as_of + k as i64 * WEEK, ..Week::default() }).collect();
    o.headroom = vec![0; HEADROOM_BUCKETS.len()];
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for r in &run.resources {
        let v = r.view(as_of);
        match v.status {
            "ok" => o.ok += 1,
            "hard" => o.hard += 1,
            _ => o.soft += 1,
        }
        let mut already = false;
        for c in &v.crossings {
            if c.breach.already_breached {
                already = true;
                continue;
            }
            let Some(t) = c.earliest else { continue };
            let k = ((t - as_of).max(0) / WEEK) as usize;
            if let Some(w) = o.calendar.get_mut(k) {
                match c.breach.name.as_str() {
                    "hard" => w.hard += 1,
                    "soft" => w.soft += 1,
                    _ => {}
                }
            }
        }
        o.already += usize::from(already);
        let bucket = match v.headroom_days {
            None => HEADROOM_BUCKETS.len() - 1,
            Some(d) => HEADROOM_BUCKETS.iter().position(|(_, up)| d < *up).unwrap_or(HEADROOM_BUCKETS.len() - 2),
        };
        o.headroom[bucket] += 1;
        let g = groups
            .entry(group_of(r, group_by))
            .or_insert_with(|| Group { name: group_of(r, group_by), ..Group::default() });
        g.resources += 1;
        g.at_risk += usize::from(v.alert.is_some());
        let first = v.crossings.iter().filter_map(|c| c.earliest).min();
        g.earliest = match (g.earliest, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(k) = r.capacity_needed {
            g.capacity_needed = Some(g.capacity_needed.map_or(k, |c: f64| c.max(k)));
        }
    }
    o.groups = groups.into_values().collect();
    o.groups.sort_by(|a, b| {
        b.at_risk
            .cmp(&a.at_risk)
            .then(a.earliest.unwrap_or(i64::MAX).cmp(&b.earliest.unwrap_or(i64::MAX)))
            .then(a.name.cmp(&b.name))
    });
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata;

    #[test]
    fn counts_add_up_and_groups_roll_up() {
        let run = testdata::run();
        let o = overview(&run, "{1}");
        assert_eq!(o.hard + o.soft + o.ok, run.resources.len());
        assert_eq!(o.headroom.iter().sum::<usize>(), run.resources.len());
        assert_eq!(o.groups.iter().map(|g| g.resources).sum::<usize>(), run.resources.len());
        assert_eq!(o.failed, 1);
        let mut r = run.resources[0].clone();
        r.name = "patroni/disk_space".into();
        assert_eq!(group_of(&r, "{1}"), "patroni");
        assert_eq!(group_of(&r, "{type}"), "patroni/disk_space", "a missing label: the name");
        r.name = "billing-db_connections".into();
        assert_eq!(group_of(&r, "{1}"), "billing-db_connections");
        // Groups at risk come first.
        assert!(o.groups.windows(2).all(|w| w[0].at_risk >= w[1].at_risk));
    }
}
