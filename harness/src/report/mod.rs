//! One report model, several renderers. Probes know nothing of formats: they return
//! [`crate::probe::Outcome`]s, and this module turns a run into a [`Report`] that every
//! renderer reads.
//!
//! - [`human`]: for a terminal (colour only when asked, i.e. when stdout is a terminal);
//! - [`json`]: the model itself, with a `version` field, described by `harness/report.schema.json`;
//! - [`sarif`]: SARIF 2.1.0, one rule per probe, one result per failing or inconclusive probe;
//! - [`junit`]: JUnit XML, one test case per probe;
//! - [`markdown`]: a summary for a pull-request comment or `$GITHUB_STEP_SUMMARY`;
//! - [`html`]: one self-contained page (no script, nothing from the network).

pub mod chart;
pub mod html;
pub mod human;
pub mod junit;
pub mod markdown;
pub mod sarif;

use crate::baseline::{Acceptance, AcceptanceSummary, Finding};
use crate::connection::Observations;
use crate::coverage::{Coverage, ReachVerdict};
use crate::discover::Discovery;
use crate::probe::{Evidence, Family, Outcome, Profile, Severity, Verdict};

/// The version of the JSON report format. Bumped on any incompatible change (2: attack
/// points at any depth replace top-level parameters; coverage; the run's verdict).
pub const REPORT_VERSION: &str = "2";

#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetSummary {
    /// `stdio`, `http` (Streamable HTTP) or `sse` (the legacy HTTP+SSE transport).
    pub transport: &'static str,
    /// The command line (placeholders filled) or the URL.
    pub address: String,
    pub protocol_version: String,
    pub server_name: String,
    pub server_version: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeRecord {
    pub id: &'static str,
    pub family: Family,
    pub title: &'static str,
    /// The severity in the run's context (see [`crate::severity`]): what `fail_on` compares.
    pub severity: Severity,
    /// The probe's own severity.
    pub base_severity: Severity,
    /// Why `severity` differs from `base_severity`, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwe: Option<u32>,
    pub enforces: &'static str,
    pub remediation: &'static str,
    pub verdict: Verdict,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// A failing probe's findings, one per tool and attack point of its evidence (or one for
    /// the probe when its evidence names no tool), each with a stable fingerprint and whether
    /// it is new, baselined or suppressed ([`crate::baseline`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The transport this verdict was reached over, in a report that joins runs over several
    /// ([`Report::joined`]); absent when the report has one target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<&'static str>,
    /// What the probe measured, for a picture ([`chart`] draws it in the HTML report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figure: Option<crate::probe::figure::Figure>,
}

/// The findings of a failing outcome (see [`ProbeRecord::findings`]); none for any other.
fn findings_of(outcome: &Outcome) -> Vec<Finding> {
    if outcome.verdict != Verdict::Fail {
        return Vec::new();
    }
    let mut findings: Vec<Finding> = Vec::new();
    for evidence in &outcome.evidence {
        let fingerprint = crate::baseline::fingerprint(
            outcome.probe.id,
            evidence.tool.as_deref(),
            evidence.point.as_deref(),
        );
        if !findings.iter().any(|f| f.fingerprint == fingerprint) {
            findings.push(Finding {
                fingerprint,
                tool: evidence.tool.clone(),
                point: evidence.point.clone(),
                acceptance: Acceptance::New,
            });
        }
    }
    if findings.is_empty() {
        findings.push(Finding {
            fingerprint: outcome.probe.id.to_owned(),
            tool: None,
            point: None,
            acceptance: Acceptance::New,
        });
    }
    findings
}

impl From<&Outcome> for ProbeRecord {
    fn from(outcome: &Outcome) -> Self {
        let p = outcome.probe;
        Self {
            id: p.id,
            family: p.family,
            title: p.title,
            severity: outcome.severity,
            base_severity: p.severity,
            severity_reason: outcome.severity_reason.clone(),
            cwe: p.cwe,
            enforces: p.enforces,
            remediation: p.remediation,
            verdict: outcome.verdict,
            summary: outcome.summary.clone(),
            evidence: outcome.evidence.clone(),
            findings: findings_of(outcome),
            transport: None,
            figure: outcome.figure.as_deref().cloned(),
        }
    }
}

/// What the run concludes, and its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunVerdict {
    /// No failing probe at or above the threshold, and the run reached the target's inputs:
    /// exit status 0.
    #[default]
    Certified,
    /// Failing probes at or above the threshold: exit status 1.
    NotCertified,
    /// Nothing failed, but nothing was reached either (no tools, every baseline refused, no
    /// point answered by its tool): there is nothing to certify. Exit status 2, like any run
    /// where the harness could not do its job, with the report written.
    NothingReached,
}

impl RunVerdict {
    pub fn exit_status(self) -> u8 {
        match self {
            RunVerdict::Certified => 0,
            RunVerdict::NotCertified => 1,
            RunVerdict::NothingReached => 2,
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub inconclusive: usize,
    pub not_applicable: usize,
    /// Failing probes at or above the `--fail-on` threshold: non-zero means exit status 1.
    pub failing_at_threshold: usize,
    pub verdict: RunVerdict,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub version: &'static str,
    pub harness_version: &'static str,
    pub target: TargetSummary,
    pub profile: Profile,
    pub fail_on: Severity,
    pub duration_ms: u64,
    pub calls: u64,
    /// Calls retried after the target refused them for its rate limit.
    pub rate_limited_retries: u64,
    pub discovery: Discovery,
    /// The same server reached over other transports, in a report that joins runs
    /// ([`Report::joined`]): the probes whose record names a `transport` were judged there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_over: Vec<TargetSummary>,
    pub probes: Vec<ProbeRecord>,
    pub summary: Summary,
    pub observations: Observations,
    pub coverage: Coverage,
    /// Findings accepted by a baseline or suppressions, when any were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptance: Option<AcceptanceSummary>,
    /// What the reader must know about how the run was made (for example that every family
    /// ran against a server from a client's configuration).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The command that made the report (`certify`, `fuzz`), for the human header.
    #[serde(skip)]
    pub command: &'static str,
}

impl TargetSummary {
    /// The target as `connection` met it, named by `address`.
    pub fn of(connection: &crate::connection::Connection, address: String) -> Self {
        let info = |key: &str| {
            connection
                .server_info()
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Self {
            transport: connection.transport_name(),
            address,
            protocol_version: connection.protocol_version().to_owned(),
            server_name: info("name").unwrap_or_else(|| "unknown".to_owned()),
            server_version: info("version").unwrap_or_default(),
        }
    }
}

/// The facts of a run that are not probe outcomes.
pub struct RunFacts {
    pub target: TargetSummary,
    pub profile: Profile,
    pub fail_on: Severity,
    pub duration_ms: u64,
    pub calls: u64,
    pub rate_limited_retries: u64,
    pub discovery: Discovery,
    pub observations: Observations,
    pub coverage: Coverage,
}

impl Report {
    pub fn new(facts: RunFacts, outcomes: &[Outcome]) -> Self {
        let probes: Vec<ProbeRecord> = outcomes.iter().map(ProbeRecord::from).collect();
        let summary = summarize(&probes, facts.fail_on, facts.coverage.verdict);
        Self {
            version: REPORT_VERSION,
            harness_version: env!("CARGO_PKG_VERSION"),
            target: facts.target,
            profile: facts.profile,
            fail_on: facts.fail_on,
            duration_ms: facts.duration_ms,
            calls: facts.calls,
            rate_limited_retries: facts.rate_limited_retries,
            discovery: facts.discovery,
            also_over: Vec::new(),
            probes,
            summary,
            observations: facts.observations,
            coverage: facts.coverage,
            acceptance: None,
            warnings: Vec::new(),
            command: "certify",
        }
    }

    /// The run's verdict in one sentence, the same in every renderer: `CERTIFIED` or
    /// `NOT CERTIFIED: why`.
    pub fn verdict_sentence(&self) -> String {
        let s = &self.summary;
        match s.verdict {
            RunVerdict::Certified => "CERTIFIED".to_owned(),
            RunVerdict::NotCertified if s.failing_at_threshold == 0 => {
                "NOT CERTIFIED: a suppression has expired".to_owned()
            }
            RunVerdict::NotCertified => format!(
                "NOT CERTIFIED: {} failing probe(s) at or above {}",
                s.failing_at_threshold,
                self.fail_on.name()
            ),
            RunVerdict::NothingReached => {
                "NOT CERTIFIED: the run reached nothing it could attack".to_owned()
            }
        }
    }

    /// One report of one server from two runs over different transports: `self` (the run
    /// that attacked everything it could) and `other`, a run of the probes that were not
    /// applicable to `self`'s transport. A probe keeps `self`'s record unless that record is
    /// not applicable and `other`'s is not; a record taken from `other` names its transport
    /// and says so in its summary. Calls, time and observations add up; discovery and reach
    /// are `self`'s (the input families ran there), with `other`'s touches of the planted
    /// paths added.
    pub fn joined(mut self, other: Report) -> Report {
        let transport = other.target.transport;
        for record in &mut self.probes {
            if record.verdict != Verdict::NotApplicable {
                continue;
            }
            let Some(theirs) = other.probes.iter().find(|p| p.id == record.id) else {
                continue;
            };
            if theirs.verdict == Verdict::NotApplicable {
                record.summary =
                    format!("{}; over {transport}: {}", record.summary, theirs.summary);
            } else {
                *record = ProbeRecord {
                    summary: format!("over {transport}: {}", theirs.summary),
                    transport: Some(transport),
                    ..theirs.clone()
                };
            }
        }
        self.duration_ms += other.duration_ms;
        self.calls += other.calls;
        self.rate_limited_retries += other.rate_limited_retries;
        self.observations.absorb(other.observations);
        self.coverage.planted_path_touches += other.coverage.planted_path_touches;
        for target in std::iter::once(other.target).chain(other.also_over) {
            let known =
                |t: &TargetSummary| t.transport == target.transport && t.address == target.address;
            if !known(&self.target) && !self.also_over.iter().any(known) {
                self.also_over.push(target);
            }
        }
        for warning in other.warnings {
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        self.summary = summarize(&self.probes, self.fail_on, self.coverage.verdict);
        self
    }

    pub fn failures(&self) -> impl Iterator<Item = &ProbeRecord> {
        self.probes.iter().filter(|p| p.verdict == Verdict::Fail)
    }
}

/// The counts and the verdict of a run's records.
fn summarize(probes: &[ProbeRecord], fail_on: Severity, reach: ReachVerdict) -> Summary {
    let mut summary = Summary::default();
    for record in probes {
        match record.verdict {
            Verdict::Pass => summary.pass += 1,
            Verdict::Fail => {
                summary.fail += 1;
                if record.severity >= fail_on {
                    summary.failing_at_threshold += 1;
                }
            }
            Verdict::Inconclusive => summary.inconclusive += 1,
            Verdict::NotApplicable => summary.not_applicable += 1,
        }
    }
    summary.verdict = if summary.failing_at_threshold > 0 {
        RunVerdict::NotCertified
    } else if reach == ReachVerdict::Nothing {
        RunVerdict::NothingReached
    } else {
        RunVerdict::Certified
    };
    summary
}

/// The JSON renderer: the model, pretty-printed.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}
