//! Accepted findings: a baseline file of the findings a project already knows, and
//! suppressions with a reason in the project file. A run then fails only on what is new.
//!
//! A finding is one failing probe at one place: the probe id, the tool and the attack point
//! (a JSON pointer) of its evidence, or the probe alone when the evidence names no tool (a
//! transport probe). Its fingerprint is those three, so it is the same from run to run: it
//! never contains a canary value, a nonce or a temporary path.
//!
//! Cost: a linear match of the run's findings against the baseline and the suppressions.
//! Failure: a baseline file that cannot be read or parsed is an error naming it; dates are
//! `YYYY-MM-DD` (UTC), and an invalid one is an error naming it.

use crate::probe::Verdict;
use crate::project::Suppression;
use crate::report::{Report, RunVerdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The version of the baseline file format.
pub const BASELINE_VERSION: u32 = 1;

/// A finding's stable identity.
pub fn fingerprint(probe: &str, tool: Option<&str>, point: Option<&str>) -> String {
    match (tool, point) {
        (Some(tool), Some(point)) => format!("{probe}:{tool}:{point}"),
        (Some(tool), None) => format!("{probe}:{tool}"),
        _ => probe.to_owned(),
    }
}

/// What the run decided about one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Acceptance {
    /// Not accepted: it counts against the gate.
    New,
    /// In the baseline file.
    Baselined,
    /// Matched by a suppression of the project file.
    Suppressed {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<String>,
    },
}

/// One finding of a failing probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    #[serde(flatten)]
    pub acceptance: Acceptance,
}

/// A line of the baseline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    /// The project file's target it was found on (`None`: any target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub fingerprint: String,
    pub probe: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    /// The probe's title, for a reader of the file.
    #[serde(default)]
    pub title: String,
}

/// The baseline file: the findings a project accepted as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    pub findings: Vec<BaselineEntry>,
}

impl Baseline {
    /// The findings of `report`, as a baseline.
    pub fn of(report: &Report) -> Self {
        let mut findings: Vec<BaselineEntry> = report
            .probes
            .iter()
            .filter(|p| p.verdict == Verdict::Fail)
            .flat_map(|p| {
                p.findings.iter().map(|f| BaselineEntry {
                    target: None,
                    fingerprint: f.fingerprint.clone(),
                    probe: p.id.to_owned(),
                    tool: f.tool.clone(),
                    point: f.point.clone(),
                    title: p.title.to_owned(),
                })
            })
            .collect();
        findings.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        findings.dedup_by(|a, b| a.fingerprint == b.fingerprint);
        Self {
            version: BASELINE_VERSION,
            findings,
        }
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the baseline {}: {e}", path.display()))?;
        let baseline: Baseline = serde_json::from_str(&text)
            .map_err(|e| format!("the baseline {} is invalid: {e}", path.display()))?;
        if baseline.version != BASELINE_VERSION {
            return Err(format!(
                "the baseline {} has version {}; this harness reads version {BASELINE_VERSION}",
                path.display(),
                baseline.version
            ));
        }
        Ok(baseline)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// What accepting findings did to a run, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcceptanceSummary {
    /// The baseline file given, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Findings of the baseline this run did not find: fixed (or no longer reached).
    pub fixed: Vec<BaselineEntry>,
    /// Suppressions past their expiry date: each fails the run.
    pub expired: Vec<String>,
    /// Suppressions that matched nothing (a warning).
    pub unused: Vec<String>,
    pub new: usize,
    pub baselined: usize,
    pub suppressed: usize,
}

/// A date as days since 1970-01-01, from `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<i64, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(format!("{text:?} is not YYYY-MM-DD"));
    };
    let (Ok(year), Ok(month), Ok(day)) = (
        year.parse::<i64>(),
        month.parse::<u32>(),
        day.parse::<u32>(),
    ) else {
        return Err(format!("{text:?} is not YYYY-MM-DD"));
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if text.len() != 10
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month[month as usize - 1]
    {
        return Err(format!("{text:?} is not a date (YYYY-MM-DD)"));
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok(era * 146_097 + doe - 719_468)
}

/// Today, as days since 1970-01-01 (UTC).
pub fn today() -> i64 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    seconds.div_euclid(86_400)
}

fn describe(suppression: &Suppression) -> String {
    let place = match (&suppression.fingerprint, &suppression.probe) {
        (Some(fingerprint), _) => fingerprint.clone(),
        (None, Some(probe)) => fingerprint(
            probe,
            suppression.tool.as_deref(),
            suppression.point.as_deref(),
        ),
        (None, None) => String::new(),
    };
    format!("{place} ({})", suppression.reason)
}

fn matches(suppression: &Suppression, probe: &str, finding: &Finding) -> bool {
    if let Some(fingerprint) = &suppression.fingerprint {
        return *fingerprint == finding.fingerprint;
    }
    suppression.probe.as_deref() == Some(probe)
        && suppression
            .tool
            .as_ref()
            .is_none_or(|tool| finding.tool.as_ref() == Some(tool))
        && suppression
            .point
            .as_ref()
            .is_none_or(|point| finding.point.as_ref() == Some(point))
}

/// Marks each finding of `report` new, baselined or suppressed, and decides the run again: it
/// fails on a new finding at or above the threshold, or on an expired suppression. `today` is
/// days since 1970-01-01 ([`today`]).
pub fn accept(
    report: &mut Report,
    baseline: Option<(&str, &Baseline)>,
    suppressions: &[Suppression],
    today: i64,
) {
    let mut summary = AcceptanceSummary {
        baseline: baseline.map(|(path, _)| path.to_owned()),
        ..Default::default()
    };
    let mut used = vec![false; suppressions.len()];
    let mut found = BTreeSet::new();
    let baselined: BTreeSet<&str> = baseline
        .map(|(_, b)| b.findings.iter().map(|f| f.fingerprint.as_str()).collect())
        .unwrap_or_default();
    let fail_on = report.fail_on;
    let mut failing_at_threshold = 0;
    for record in &mut report.probes {
        if record.verdict != Verdict::Fail {
            continue;
        }
        let mut counts = false;
        for finding in &mut record.findings {
            found.insert(finding.fingerprint.clone());
            let suppression = suppressions
                .iter()
                .enumerate()
                .find(|(_, s)| matches(s, record.id, finding));
            finding.acceptance = if let Some((index, suppression)) = suppression {
                used[index] = true;
                summary.suppressed += 1;
                Acceptance::Suppressed {
                    reason: suppression.reason.clone(),
                    expires: suppression.expires.clone(),
                }
            } else if baselined.contains(finding.fingerprint.as_str()) {
                summary.baselined += 1;
                Acceptance::Baselined
            } else {
                summary.new += 1;
                counts = true;
                Acceptance::New
            };
        }
        if counts && record.severity >= fail_on {
            failing_at_threshold += 1;
        }
    }
    for (suppression, used) in suppressions.iter().zip(&used) {
        let expired = suppression
            .expires
            .as_deref()
            .and_then(|date| parse_date(date).ok())
            .is_some_and(|expires| expires < today);
        if expired {
            summary.expired.push(describe(suppression));
        } else if !used {
            summary.unused.push(describe(suppression));
        }
    }
    if let Some((_, baseline)) = baseline {
        summary.fixed = baseline
            .findings
            .iter()
            .filter(|entry| !found.contains(&entry.fingerprint))
            .cloned()
            .collect();
    }
    report.summary.failing_at_threshold = failing_at_threshold;
    let reached_nothing = report.summary.verdict == RunVerdict::NothingReached;
    report.summary.verdict = if failing_at_threshold > 0 || !summary.expired.is_empty() {
        RunVerdict::NotCertified
    } else if reached_nothing {
        RunVerdict::NothingReached
    } else {
        RunVerdict::Certified
    };
    report.acceptance = Some(summary);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_since_the_epoch() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("1970-01-02"), Ok(1));
        assert_eq!(parse_date("2000-03-01"), Ok(11_017));
        assert_eq!(parse_date("2024-02-29"), Ok(19_782));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "tomorrow",
            "2026-00-10",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_name_probe_tool_and_point() {
        assert_eq!(
            fingerprint("TRAV-PREFIX", Some("read_file"), Some("/path")),
            "TRAV-PREFIX:read_file:/path"
        );
        assert_eq!(fingerprint("TRANS-ORIGIN", None, None), "TRANS-ORIGIN");
    }
}
