//! The probe engine: a registry of probes, each with a stable id, and the context they run in.
//!
//! A probe family is a module with one `static` [`ProbeInfo`] per probe (what it is, what it
//! enforces, how to fix a failure), referenced by value (`&rate::RATE_FLOOD`: a typo does not
//! compile), a `PROBES` list of them, and an `async fn run(run: &mut Run) -> Vec<Outcome>`
//! that makes the calls and returns one [`Outcome`] per probe; its `pub mod` line and one
//! line in [`FAMILIES`] (family, budget weight, `PROBES`, `run`) add it to the registry and to
//! the run. Every input a family needs (credentials, expectations, the selection, the
//! budget) is in [`Run`]. Verdicts follow one rule: `fail` only when an oracle confirms the finding (a canary in
//! a reply, a proof file created, a listener hit, a status code the spec forbids); weaker
//! signals are `inconclusive`; a probe with nothing to attack is `not-applicable`.
//!
//! Every exchange goes through [`Run`], which records it (bounded) for the passive leak scan
//! and stops the run when the target stops answering.

pub mod auth;
pub mod authorization_server;
mod context;
pub mod figure;
pub mod inject;
pub mod leak;
pub mod meta;
pub mod proto;
pub mod rate;
pub mod res;
pub mod ssrf;
pub mod time;
pub mod trans;
pub mod trans_sse;
pub mod trav;

pub use context::{BASELINE_SHARE, HttpView, MAX_LIVENESS_WAITS, MAX_RATE_LIMIT_RETRIES, Run};

use crate::connection::{Reply, TargetError, excerpt};
use crate::coverage::{Answer, BaselineCheck, CoverageLedger};
use crate::discover::{BASELINE_VARIANTS, Baselines, PointKind, ToolInfo, with_value_at};
use crate::oracle::access::Touch;
use crate::oracle::leak::decoded_strings;
use crate::oracle::refusal::RefusalClassifier;
use crate::stage::Stage;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A probe family, named as every report names it. A family is data: its name here (or a
/// `Family::named` constant in its own module) and its line in [`FAMILIES`], whose order is
/// the order families run and are reported in (`Ord` follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Family(&'static str);

impl Family {
    pub const TRAV: Family = Family("TRAV");
    pub const INJ_CMD: Family = Family("INJ-CMD");
    pub const INJ_ARG: Family = Family("INJ-ARG");
    pub const INJ_SQL: Family = Family("INJ-SQL");
    pub const SSRF: Family = Family("SSRF");
    pub const TRANS: Family = Family("TRANS");
    pub const AUTH: Family = Family("AUTH");
    pub const TIME: Family = Family("TIME");
    pub const RATE: Family = Family("RATE");
    pub const RES: Family = Family("RES");
    pub const LEAK: Family = Family("LEAK");
    pub const PROTO: Family = Family("PROTO");

    /// A family called `name` (upper case, as reports show it).
    pub const fn named(name: &'static str) -> Family {
        Family(name)
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    /// Where it runs: its position in [`FAMILIES`] (families not listed come last).
    fn position(self) -> usize {
        FAMILIES
            .iter()
            .position(|spec| spec.family == self)
            .unwrap_or(usize::MAX)
    }
}

impl Ord for Family {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.position()
            .cmp(&other.position())
            .then_with(|| self.0.cmp(other.0))
    }
}

impl PartialOrd for Family {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a probe is. Ids are stable once published.
#[derive(Debug, serde::Serialize)]
pub struct ProbeInfo {
    pub id: &'static str,
    pub family: Family,
    pub title: &'static str,
    pub severity: Severity,
    pub cwe: Option<u32>,
    /// The practice or specification sentence the probe enforces.
    pub enforces: &'static str,
    pub remediation: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
    NotApplicable,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotApplicable => "not-applicable",
        }
    }
}

/// What proved (or suggested) a finding: the request, the start of the reply, and the oracle.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The attack point (a JSON pointer into the tool's arguments) the payload went into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    pub request: String,
    pub reply: String,
    /// The canary or signal that decided the verdict.
    pub oracle: String,
}

/// A way of failing that [`crate::severity`] weighs on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// One message stopped the target answering while its process kept running.
    Wedged,
}

/// One probe's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    #[serde(serialize_with = "serialize_probe_id")]
    pub probe: &'static ProbeInfo,
    pub verdict: Verdict,
    /// The severity in the run's context ([`crate::severity`]); the probe's own by default.
    pub severity: Severity,
    /// Why `severity` differs from the probe's, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_reason: Option<String>,
    /// How the probe failed, when a failure mode weighs more than the probe's usual finding.
    #[serde(skip)]
    pub mode: Option<FailureMode>,
    /// One sentence: what was tried and what was seen.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// What the probe measured, for a picture (the HTML report draws it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figure: Option<Box<figure::Figure>>,
}

fn serialize_probe_id<S: serde::Serializer>(
    probe: &&'static ProbeInfo,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(probe.id)
}

impl Outcome {
    pub fn new(probe: &'static ProbeInfo, verdict: Verdict, summary: impl Into<String>) -> Self {
        Self {
            probe,
            verdict,
            severity: probe.severity,
            severity_reason: None,
            mode: None,
            summary: summary.into(),
            evidence: Vec::new(),
            figure: None,
        }
    }

    pub fn with_figure(mut self, figure: Option<figure::Figure>) -> Self {
        self.figure = figure.map(Box::new);
        self
    }

    pub fn with_mode(mut self, mode: FailureMode) -> Self {
        self.mode = Some(mode);
        self
    }

    pub fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }
}

/// The probe set's version: bumped whenever a probe is added, removed or renamed, so that a
/// report (and `mcp-harness --version`) says which set judged a server. A test pins it to
/// [`probe_set_digest`] of the registry.
pub const PROBE_SET_VERSION: u32 = 9;
/// [`probe_set_digest`] for [`PROBE_SET_VERSION`].
pub const PROBE_SET_DIGEST: &str = "554ce404";

/// A digest of the registry's probe ids, in order (FNV-1a, 32 bits, hex).
pub fn probe_set_digest() -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for info in registry() {
        for byte in info.id.bytes().chain([b'\n']) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    format!("{hash:08x}")
}

/// `0.1.0 (probe set 6: 48 probes)`: what `--version` says.
pub fn version_line() -> String {
    format!(
        "{} (probe set {PROBE_SET_VERSION}: {} probes)",
        env!("CARGO_PKG_VERSION"),
        registry().len()
    )
}

/// Every probe the harness knows, across families, in [`FAMILIES`] order.
pub fn registry() -> Vec<&'static ProbeInfo> {
    FAMILIES
        .iter()
        .flat_map(|spec| spec.declares)
        .copied()
        .collect()
}

/// How hard to try.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A few payloads per parameter.
    Quick,
    /// Every payload against every matching parameter.
    #[default]
    Standard,
    /// Standard, plus payloads against parameters of every string kind.
    Deep,
}

/// One recorded exchange, for the passive leak scan.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: String,
    pub reply: String,
}

/// What a tool call produced.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub request: String,
    pub reply: Result<Reply, TargetError>,
    /// Planted paths outside the sandbox the target touched while answering (the access
    /// oracle, [`crate::oracle::access`]).
    pub touches: Vec<Touch>,
    /// For a call at an attack point: whether it reached the tool (see [`crate::coverage`]).
    pub reached: bool,
}

impl CallResult {
    /// The decoded text of the reply (string leaves of a result, or the error), or the
    /// transport error.
    pub fn text(&self) -> String {
        match &self.reply {
            Ok(Reply::Result(value)) => decoded_strings(value),
            Ok(reply) => reply.text(),
            Err(error) => format!("transport: {error}"),
        }
    }

    pub fn evidence(&self, tool: &str, oracle: impl Into<String>) -> Evidence {
        Evidence {
            tool: Some(tool.to_owned()),
            point: None,
            request: excerpt(&self.request, 600),
            reply: self.shown(600),
            oracle: oracle.into(),
        }
    }

    /// The reply as a person reads it: the text of its content blocks, or the error; the
    /// whole result as JSON when the content blocks say nothing.
    pub fn shown(&self, max: usize) -> String {
        match &self.reply {
            Ok(Reply::Result(value)) if value.get("content").is_none() => {
                excerpt(&value.to_string(), max)
            }
            Ok(reply) => reply.summary(max),
            Err(error) => format!("transport: {error}"),
        }
    }

    /// Evidence for a finding at an attack point.
    pub fn evidence_at(&self, point: &AttackPoint, oracle: impl Into<String>) -> Evidence {
        Evidence {
            point: Some(point.pointer.clone()),
            ..self.evidence(&point.tool, oracle)
        }
    }

    /// The first touch of a planted path, described, if the call made one; `writes_only`
    /// keeps only creations, changes and deletions.
    pub fn touched(&self, writes_only: bool) -> Option<String> {
        self.touches
            .iter()
            .find(|t| !writes_only || t.kind.is_write())
            .map(|t| t.describe())
    }
}

/// One place a family puts payloads: a string leaf of a tool's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackPoint {
    pub tool: String,
    pub pointer: String,
    pub kind: PointKind,
    /// True when the point's classification is one the family is about (it gets the full
    /// payload set); other points get the family's short set.
    pub matched: bool,
    /// True when the point names a directory or repository rather than a file.
    pub directory: bool,
}

/// How many of a family's payloads go into `point`: every one at a point of the kinds the
/// family is about (and at every point with `deep`), the first `short` elsewhere; `quick`
/// keeps the first `quick` at matched points and sends nothing elsewhere.
pub fn payloads_for(
    profile: Profile,
    point: &AttackPoint,
    all: usize,
    short: usize,
    quick: usize,
) -> usize {
    match (profile, point.matched) {
        (Profile::Deep, _) | (Profile::Standard, true) => all,
        (Profile::Standard, false) => short.min(all),
        (Profile::Quick, true) => quick.min(all),
        (Profile::Quick, false) => 0,
    }
}

/// Counts one probe's calls at points, for its verdict.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub sent: usize,
    pub reached: usize,
    points: BTreeSet<(String, String)>,
    points_reached: BTreeSet<(String, String)>,
    /// Set when the probe stopped before sending everything it meant to.
    pub stopped: Option<String>,
}

impl Tally {
    pub fn count(&mut self, point: &AttackPoint, result: &CallResult) {
        self.sent += 1;
        let key = (point.tool.clone(), point.pointer.clone());
        if result.reached {
            self.reached += 1;
            self.points_reached.insert(key.clone());
        }
        self.points.insert(key);
    }

    pub fn points(&self) -> usize {
        self.points.len()
    }

    pub fn points_reached(&self) -> usize {
        self.points_reached.len()
    }

    /// Notes that the probe stopped early (the run or the family is out of budget).
    pub fn stop(&mut self, run: &Run<'_>) {
        if self.stopped.is_none() {
            self.stopped = Some(
                run.stop_reason()
                    .unwrap_or_else(|| "the run stopped".to_owned()),
            );
        }
    }
}

/// How much of the run's remaining time (and of the input calls) a family may use, as a
/// weight among the families still to run.
pub fn budget_weight(family: Family) -> u32 {
    spec(family).weight
}

/// A family's run: its probes' outcomes, from the one context every family gets.
pub type RunFamily =
    for<'r, 'a> fn(&'r mut Run<'a>) -> futures::future::BoxFuture<'r, Vec<Outcome>>;

/// One probe family as data: which it is, its share of the budget, and how it runs. The
/// engine walks [`FAMILIES`] in order; nothing else lists the families' code.
pub struct FamilySpec {
    pub family: Family,
    /// Its share of the run's remaining time and of the input call budget.
    pub weight: u32,
    /// The probes its module declares (the registry is these, in this table's order). A
    /// module may declare another family's probes when one run produces both (trans.rs holds
    /// the AUTH probes its exchanges judge; inject.rs the three INJ families').
    pub declares: &'static [&'static ProbeInfo],
    /// Runs the family; `None` for a family whose probes another family's run produces
    /// (AUTH's come from TRANS's run, which needs the same HTTP exchanges).
    pub run: Option<RunFamily>,
    /// The family whose run produces this one's probes, when `run` is `None`.
    pub runs_with: Option<Family>,
    /// Judges after every family has run, over everything the run saw (LEAK's passive scan
    /// covers the replies of the families after it and of every raw send).
    pub after_run: Option<fn(&Run<'_>) -> Vec<Outcome>>,
}

/// Every family, in the order they run.
pub static FAMILIES: &[FamilySpec] = &[
    FamilySpec::new(Family::TRAV, 3, trav::PROBES, |run| {
        Box::pin(trav::run(run))
    }),
    FamilySpec::new(Family::INJ_CMD, 2, inject::PROBES, |run| {
        Box::pin(inject::run_cmd(run))
    }),
    FamilySpec::new(Family::INJ_ARG, 1, &[], |run| {
        Box::pin(inject::run_arg(run))
    }),
    FamilySpec::new(Family::INJ_SQL, 2, &[], |run| {
        Box::pin(inject::run_sql(run))
    }),
    FamilySpec::new(Family::SSRF, 1, ssrf::PROBES, |run| {
        Box::pin(ssrf::run(run))
    }),
    FamilySpec::new(Family::TRANS, 1, trans::PROBES, |run| {
        Box::pin(transport_and_auth(run))
    }),
    FamilySpec {
        family: Family::AUTH,
        weight: 1,
        declares: auth::PROBES,
        run: None,
        runs_with: Some(Family::TRANS),
        after_run: None,
    },
    FamilySpec::new(Family::TIME, 2, time::PROBES, |run| {
        Box::pin(time::run(run))
    }),
    FamilySpec::new(Family::RATE, 2, rate::PROBES, |run| {
        Box::pin(rate::run(run))
    }),
    FamilySpec::new(Family::RES, 2, res::PROBES, |run| Box::pin(res::run(run))),
    FamilySpec {
        after_run: Some(leak::after_run),
        ..FamilySpec::new(Family::LEAK, 1, leak::PROBES, |run| {
            Box::pin(leak::run(run))
        })
    },
    FamilySpec::new(Family::PROTO, 1, proto::PROBES, |run| {
        Box::pin(proto_and_stdout(run))
    }),
    // Last: META-RUG-PULL lists again after everything else has run.
    FamilySpec::new(Family::META, 1, meta::PROBES, |run| {
        Box::pin(meta::run(run))
    }),
];

impl FamilySpec {
    const fn new(
        family: Family,
        weight: u32,
        declares: &'static [&'static ProbeInfo],
        run: RunFamily,
    ) -> Self {
        Self {
            family,
            weight,
            declares,
            run: Some(run),
            runs_with: None,
            after_run: None,
        }
    }
}

/// The entry of `family` in [`FAMILIES`].
pub fn spec(family: Family) -> &'static FamilySpec {
    FAMILIES
        .iter()
        .find(|spec| spec.family == family)
        .expect("every family is in FAMILIES (a test checks it)")
}

/// The run that produces `family`'s probes: its own, or that of the family it runs with.
pub fn runner_of(family: Family) -> RunFamily {
    let spec = spec(family);
    spec.run
        .or_else(|| spec.runs_with.and_then(|with| self::spec(with).run))
        .expect("every family runs, itself or with another (a test checks it)")
}

/// TRANS and AUTH: one pass over the HTTP transport, then the token probes.
async fn transport_and_auth(run: &mut Run<'_>) -> Vec<Outcome> {
    let mut outcomes = trans::run(run).await;
    outcomes.extend(auth::run(run).await);
    outcomes
}

/// PROTO, and the stdout hygiene the whole run observed.
async fn proto_and_stdout(run: &mut Run<'_>) -> Vec<Outcome> {
    let mut outcomes = proto::run(run).await;
    outcomes.push(proto::stdout_hygiene(run));
    outcomes
}

/// The calls the input families may make in all, by profile; each gets its weight's share.
pub fn input_call_budget(profile: Profile) -> u64 {
    match profile {
        Profile::Quick => 1_500,
        Profile::Standard => 8_000,
        Profile::Deep => 80_000,
    }
}

/// Replies this many times slower than the baselines' (and at least
/// [`SLOW_REPLY_FLOOR`] slower) mean the target is struggling: the family stops.
pub const SLOWDOWN_FACTOR: u32 = 10;
pub const SLOW_REPLY_FLOOR: Duration = Duration::from_secs(1);
/// The replies a slowdown is judged on (their median).
const SLOWDOWN_WINDOW: usize = 8;

/// The context probes run in.
/// Everything secret the user gave the run, in one place: families read their credentials
/// here (none takes one as an argument), and the report redacts every value of it, so a
/// credential added here is redacted without another line ([`Credentials::secrets`]).
#[derive(Default)]
pub struct Credentials {
    /// The user's `Authorization` value for an HTTP target, when given.
    pub primary: Option<String>,
    /// Other credential-carrying header values the user gave (API-key headers, cookies).
    pub other_headers: Vec<String>,
    /// A second principal's `Authorization` value (`--token2`).
    pub second: Option<String>,
    /// A valid credential lacking scopes some tools need (`--token-low`).
    pub low_scope: Option<String>,
    /// A valid key for a stdio target's credential argument (`--argument-key`).
    pub argument_key: Option<String>,
    /// A key the target trusts for JWTs (`--jwt-signing-key`).
    pub jwt_signing_key: Option<auth::SigningKey>,
}

impl Credentials {
    /// Every secret string, longest first (so a value is redacted before a part of it), with
    /// the token inside each `Scheme token` value too; values under 4 bytes are left alone
    /// (redacting "ab" would shred a report).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = Vec::new();
        let values = [
            &self.primary,
            &self.second,
            &self.low_scope,
            &self.argument_key,
        ]
        .into_iter()
        .flatten()
        .chain(&self.other_headers);
        for value in values {
            secrets.push(value.clone());
            if let Some(token) = value.split_whitespace().nth(1) {
                secrets.push(token.to_owned());
            }
        }
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        secrets
    }
}

/// One outcome per probe of `probes`, all with `verdict` for the same reason (a family with
/// nothing to attack, or nothing it could judge).
pub fn every(probes: &[&'static ProbeInfo], verdict: Verdict, why: &str) -> Vec<Outcome> {
    probes
        .iter()
        .map(|info| Outcome::new(info, verdict, why))
        .collect()
}

/// "1 point", "2 points".
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The verdict rule every oracle-backed probe follows: any evidence is a failure; a probe
/// that had no point to send to is not applicable; one none of whose payloads reached a tool
/// (see [`crate::coverage`]) is inconclusive, and so is one that stopped early; otherwise a
/// pass that says how much was tried. `looked_for` names what the oracle looked for ("a
/// canary", "a listener hit"), `points_of` the points the probe is for ("path-like").
pub fn oracle_outcome(
    info: &'static ProbeInfo,
    evidence: Vec<Evidence>,
    tally: &Tally,
    confirmed_by: &str,
    looked_for: &str,
    points_of: &str,
) -> Outcome {
    if !evidence.is_empty() {
        return Outcome::new(
            info,
            Verdict::Fail,
            format!("{}: {confirmed_by}", info.title),
        )
        .with_evidence(evidence);
    }
    let tried = format!(
        "{} at {}, {} reaching the tool at {}",
        plural(tally.sent, "payload"),
        plural(tally.points(), "point"),
        tally.reached,
        plural(tally.points_reached(), "point")
    );
    if let Some(stopped) = &tally.stopped {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            format!("stopped early ({stopped}) after {tried}: no {looked_for} so far"),
        );
    }
    if tally.sent == 0 {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            if points_of.is_empty() {
                "no tool has a string argument".to_owned()
            } else {
                format!("no tool has a {points_of} string argument")
            },
        );
    }
    if tally.reached == 0 {
        return Outcome::new(
            info,
            Verdict::Inconclusive,
            format!(
                "no payload reached a tool ({tried}): each was refused by validation or the rate limiter, answered as the tool answered its refused baseline, or unanswered"
            ),
        );
    }
    Outcome::new(
        info,
        Verdict::Pass,
        format!("no {looked_for} after {tried}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_in_the_table_once_in_running_order_and_runs() {
        let listed: Vec<Family> = FAMILIES.iter().map(|spec| spec.family).collect();
        let distinct: BTreeSet<&str> = listed.iter().map(|f| f.name()).collect();
        assert_eq!(distinct.len(), listed.len(), "a family listed twice");
        // Families order as they run.
        assert!(listed.windows(2).all(|w| w[0] < w[1]));
        for family in &listed {
            let _ = runner_of(*family);
            assert!(spec(*family).weight > 0);
            let name = family.name();
            assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'-'));
        }
        // Every probe belongs to a listed family, and every family has a probe.
        for info in registry() {
            assert!(listed.contains(&info.family), "{}", info.id);
        }
        for family in &listed {
            assert!(
                registry().iter().any(|info| info.family == *family),
                "{}",
                family.name()
            );
        }
    }

    /// Changing the probes changes what a certification means: bump PROBE_SET_VERSION and
    /// pin the new digest here when this fails.
    #[test]
    fn the_probe_set_version_is_pinned_to_the_registry() {
        assert_eq!(
            probe_set_digest(),
            PROBE_SET_DIGEST,
            "the probe registry changed: bump PROBE_SET_VERSION and set PROBE_SET_DIGEST to {}",
            probe_set_digest()
        );
    }

    #[test]
    fn the_report_schema_lists_the_families_of_the_table() {
        let schema: Value =
            serde_json::from_str(include_str!("../../report.schema.json")).expect("valid JSON");
        let names: Vec<&str> = FAMILIES.iter().map(|spec| spec.family.name()).collect();
        let mut found = 0;
        let mut stack = vec![&schema];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::Object(family)) = map.get("family")
                        && let Some(Value::Array(listed)) = family.get("enum")
                    {
                        let listed: Vec<&str> = listed.iter().filter_map(Value::as_str).collect();
                        // Coverage lists only the input families; every other list has all.
                        let inputs: Vec<&str> = crate::coverage::INPUT_FAMILIES
                            .iter()
                            .map(|family| family.name())
                            .collect();
                        assert!(
                            listed == names || listed == inputs,
                            "a family enum in report.schema.json: {listed:?}"
                        );
                        found += 1;
                    }
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(found >= 2, "the schema's family enums were not found");
    }

    #[test]
    fn every_credential_is_a_secret_to_redact_with_the_token_inside_it() {
        let credentials = Credentials {
            primary: Some("Bearer primary-token".into()),
            other_headers: vec!["header-key-value".into()],
            second: Some("Bearer second-token".into()),
            low_scope: Some("Bearer low-token".into()),
            argument_key: Some("argument-key".into()),
            jwt_signing_key: None,
        };
        let secrets = credentials.secrets();
        for expected in [
            "Bearer primary-token",
            "primary-token",
            "header-key-value",
            "second-token",
            "low-token",
            "argument-key",
        ] {
            assert!(
                secrets.iter().any(|s| s == expected),
                "{expected}: {secrets:?}"
            );
        }
        assert!(secrets.windows(2).all(|w| w[0].len() >= w[1].len()));
    }
}
