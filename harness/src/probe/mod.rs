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
pub mod inject;
pub mod leak;
pub mod proto;
pub mod rate;
pub mod res;
pub mod ssrf;
pub mod time;
pub mod trans;
pub mod trav;

use crate::connection::{Connection, Reply, TargetError, excerpt};
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
        }
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

const MAX_TRANSCRIPT: usize = 5000;
const TRANSCRIPT_REPLY_BYTES: usize = 16 * 1024;

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

/// How many times [`Run::liveness`] waits out a refused ping.
pub const MAX_LIVENESS_WAITS: usize = 4;

pub struct Run<'a> {
    pub connection: &'a mut Connection,
    pub stage: &'a Stage,
    pub tools: &'a [ToolInfo],
    pub profile: Profile,
    pub transcript: Vec<Exchange>,
    /// The credentials the user gave (read by AUTH, TIME, RATE and LEAK).
    pub credentials: &'a Credentials,
    /// What the user expects of the target's rate limit.
    pub expect: rate::Expectations,
    pub deadline: Instant,
    consecutive_timeouts: u32,
    pub calls: u64,
    /// Requests during which the target exited (each is restarted, up to a limit).
    pub crashes: Vec<Evidence>,
    /// What baseline strings point at (the sandbox and the listener, for stdio targets).
    pub baselines: Baselines,
    /// How each tool's baseline calls went (see [`Run::check_baselines`]).
    pub accepted: BTreeMap<String, BaselineCheck>,
    /// Every call at a point, for the report's coverage.
    pub coverage: CoverageLedger,
    /// How long one request may take (families with their own clients use it).
    pub request_timeout: Duration,
    /// Where a family states something the user should know before it goes on (for example
    /// how long `--profile deep` will take).
    pub events: Option<&'a (dyn Fn(crate::Event<'_>) + Send + Sync)>,
    /// The probes `--only` / `--skip` left in; families whose probes are costly skip the work of
    /// those left out (the rest run whole and their outcomes are filtered afterwards).
    pub selected_ids: Vec<&'static str>,
    /// Wait and retry when the target refuses a call for its rate limit (on by default; the
    /// RATE family turns it off to see the refusals).
    pub back_off_when_limited: bool,
    /// How many calls were retried after a rate-limit refusal.
    pub rate_limited_retries: u64,
    /// What a rate-limit refusal looks like: the explicit signals, and the shapes the RATE
    /// family learned from behaviour.
    pub refusals: RefusalClassifier,
    /// Whether exchanges go into the transcript; floods turn it off after their first calls,
    /// so that thousands of identical exchanges do not crowd out the rest of the run.
    pub recording: bool,
    /// The family running now, its share of the budget and why it stopped, if it did.
    family: Option<Family>,
    family_deadline: Option<Instant>,
    family_call_cap: Option<u64>,
    family_calls: u64,
    family_stop: Option<String>,
    recent_latencies: VecDeque<Duration>,
    /// The median latency of the accepted baseline calls.
    typical_latency: Option<Duration>,
    /// Arguments that reach each point, built once.
    arguments_cache: HashMap<(String, String), Result<Value, String>>,
}

/// The baseline check may use one part in this many of the run's remaining time.
pub const BASELINE_SHARE: u32 = 8;

/// Most retries of one call refused by a rate limit.
pub const MAX_RATE_LIMIT_RETRIES: u32 = 20;
impl<'a> Run<'a> {
    pub fn new(
        connection: &'a mut Connection,
        stage: &'a Stage,
        tools: &'a [ToolInfo],
        profile: Profile,
        credentials: &'a Credentials,
        deadline: Instant,
    ) -> Self {
        let connection_is_stdio = connection.is_stdio();
        Self {
            connection,
            stage,
            tools,
            profile,
            transcript: Vec::new(),
            credentials,
            expect: rate::Expectations::default(),
            deadline,
            consecutive_timeouts: 0,
            calls: 0,
            crashes: Vec::new(),
            baselines: Baselines {
                sandbox: connection_is_stdio.then(|| stage.sandbox.to_string_lossy().into_owned()),
                listener: stage.listener.as_ref().map(|l| l.url()),
            },
            accepted: BTreeMap::new(),
            coverage: CoverageLedger::default(),
            request_timeout: crate::connection::Budget::default().request_timeout,
            events: None,
            selected_ids: registry().iter().map(|info| info.id).collect(),
            back_off_when_limited: true,
            rate_limited_retries: 0,
            refusals: RefusalClassifier::default(),
            recording: true,
            family: None,
            family_deadline: None,
            family_call_cap: None,
            family_calls: 0,
            family_stop: None,
            recent_latencies: VecDeque::new(),
            typical_latency: None,
            arguments_cache: HashMap::new(),
        }
    }

    /// Whether the user's selection includes `probe`.
    pub fn wants(&self, probe: &ProbeInfo) -> bool {
        self.selected_ids.contains(&probe.id)
    }

    pub fn budget_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Tells the user something now (on stderr, by the binary), not only in the report.
    pub fn notice(&self, message: &str) {
        self.event(crate::Event::Notice(message));
    }

    /// Tells the caller what happened ([`crate::Event`]).
    pub fn event(&self, event: crate::Event<'_>) {
        if let Some(events) = self.events {
            events(event);
        }
    }

    /// Starts `family` with its share of what is left: `weight` out of `remaining_weight` of
    /// the run's remaining time, and (for input families) of the input call budget.
    pub fn begin_family(&mut self, family: Family, weight: u32, remaining_weight: u32) {
        let now = Instant::now();
        let left = self.deadline.saturating_duration_since(now);
        let share = left.mul_f64(f64::from(weight) / f64::from(remaining_weight.max(weight)));
        self.family = Some(family);
        self.family_deadline = Some(now + share);
        self.family_calls = 0;
        self.family_call_cap = crate::coverage::INPUT_FAMILIES.contains(&family).then(|| {
            let total: u32 = crate::coverage::INPUT_FAMILIES
                .iter()
                .map(|f| budget_weight(*f))
                .sum();
            input_call_budget(self.profile) * u64::from(weight) / u64::from(total)
        });
        self.family_stop = None;
        self.recent_latencies.clear();
    }

    /// Ends the current family, noting in the coverage why it stopped, if it did.
    pub fn end_family(&mut self) {
        if let (Some(family), Some(reason)) = (self.family, self.family_stop.clone()) {
            self.coverage.stopped(family, &reason);
        }
        self.family = None;
        self.family_deadline = None;
        self.family_call_cap = None;
        self.family_stop = None;
    }

    /// Why no more calls should be made now, if so: the run's deadline, the family's share,
    /// a slowed-down target, or a target that stopped answering three times in a row.
    pub fn stop_reason(&self) -> Option<String> {
        let now = Instant::now();
        if let Some(reason) = &self.family_stop {
            return Some(reason.clone());
        }
        if now >= self.deadline {
            return Some("the run's --max-duration was reached".to_owned());
        }
        if self.consecutive_timeouts >= 3 {
            return Some("the target stopped answering".to_owned());
        }
        if let Some(deadline) = self.family_deadline
            && now >= deadline
        {
            return Some("the family used its share of the run's time".to_owned());
        }
        if let Some(cap) = self.family_call_cap
            && self.family_calls >= cap
        {
            return Some(format!("the family used its share of the calls ({cap})"));
        }
        None
    }

    /// False once [`Run::stop_reason`] has a reason: families then skip their remaining calls.
    pub fn can_continue(&self) -> bool {
        self.stop_reason().is_none()
    }

    /// Latches the current stop reason as the family's, when a call was not sent for it, so
    /// that the coverage reports it even if the condition passes.
    fn latch_stop(&mut self) {
        if self.family.is_some()
            && self.family_stop.is_none()
            && let Some(reason) = self.stop_reason()
        {
            self.family_stop = Some(reason);
        }
    }

    /// Sends arbitrary bytes ([`Connection::raw`]): counted, and recorded for the passive leak
    /// scan like every other exchange (at most the first 300 bytes of what was sent).
    pub async fn raw(
        &mut self,
        bytes: &[u8],
        extra_headers: &[(&str, &str)],
        drop_headers: &[&str],
    ) -> Result<crate::connection::RawOutcome, TargetError> {
        self.calls += 1;
        let outcome = self
            .connection
            .raw(bytes, extra_headers, drop_headers)
            .await;
        if let Ok(raw) = &outcome {
            let sent = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            self.record(&sent, &raw.excerpt);
        }
        outcome
    }

    /// Sends one `method` request per entry of `params` all at once
    /// ([`Connection::requests_at_once`]), counted; the replies are in order.
    pub async fn at_once(
        &mut self,
        method: &str,
        params: Vec<Value>,
    ) -> Vec<Result<Reply, TargetError>> {
        self.calls += params.len() as u64;
        self.connection.requests_at_once(method, params).await
    }

    /// Whether the target is a stdio child (else Streamable HTTP).
    pub fn is_stdio(&self) -> bool {
        self.connection.is_stdio()
    }

    pub fn record(&mut self, request: &str, reply: &str) {
        if self.recording && self.transcript.len() < MAX_TRANSCRIPT {
            self.transcript.push(Exchange {
                request: request.to_owned(),
                reply: excerpt(reply, TRANSCRIPT_REPLY_BYTES),
            });
        }
    }

    /// The baseline arguments of `tool`: the variant its baseline check accepted (or the
    /// first), `{}` when its schema admits no call.
    pub fn baseline(&self, tool: &ToolInfo) -> Map<String, Value> {
        match self.arguments_at(tool, None) {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// Arguments for `tool` that contain `point` (at its baseline value), in the baseline
    /// variant the tool accepted; `{}` when its schema admits no call.
    pub fn arguments_at(&self, tool: &ToolInfo, point: Option<&crate::discover::Point>) -> Value {
        let variant = self.accepted.get(&tool.name).map_or(0, |c| c.variant);
        tool.arguments(point, &self.baselines, variant)
            .unwrap_or_else(|_| json!({}))
    }

    /// `point` of `tool` as an attack point.
    pub fn attack_point(tool: &ToolInfo, point: &crate::discover::Point) -> AttackPoint {
        AttackPoint {
            tool: tool.name.clone(),
            pointer: point.pointer.clone(),
            kind: point.kind,
            matched: true,
            directory: point.directory,
        }
    }

    /// Calls each tool with its baseline arguments before any attack, trying up to
    /// [`BASELINE_VARIANTS`] variants until one is served (a result that is not an error), so
    /// that payloads meet calls the tool accepts, and the report can list tools that refused
    /// every baseline with their refusal.
    ///
    /// Bounded: at most [`BASELINE_SHARE`] of the run's remaining time; a tool that does not
    /// answer at all is not tried with more variants. Tools left unchecked are attacked as if
    /// accepted, and the coverage counts only the checked ones.
    pub async fn check_baselines(&mut self) {
        let tools: Vec<&ToolInfo> = self.tools.iter().collect();
        let mut latencies = Vec::new();
        let until = Instant::now()
            + self.deadline.saturating_duration_since(Instant::now()) / BASELINE_SHARE;
        for tool in tools {
            if !self.can_continue() || Instant::now() >= until {
                break;
            }
            let mut check = BaselineCheck::default();
            let mut tried: Vec<Value> = Vec::new();
            let mut refusals: Vec<String> = Vec::new();
            for variant in 0..BASELINE_VARIANTS {
                let arguments = match tool.arguments(None, &self.baselines, variant) {
                    Ok(arguments) => arguments,
                    Err(error) => {
                        check.refusal = Some(format!("no valid call could be built: {error}"));
                        break;
                    }
                };
                if tried.contains(&arguments) {
                    continue;
                }
                tried.push(arguments.clone());
                check.variant = variant;
                let started = Instant::now();
                let result = self.call_tool(&tool.name, arguments).await;
                let elapsed = started.elapsed();
                let served =
                    matches!(&result.reply, Ok(reply @ Reply::Result(_)) if !reply.is_tool_error());
                if served {
                    check.accepted = true;
                    check.latency = Some(elapsed);
                    check.refusal = None;
                    latencies.push(elapsed);
                    break;
                }
                refusals.push(match &result.reply {
                    Ok(reply) => reply.summary(300),
                    Err(error) => excerpt(&error.to_string(), 300),
                });
                // The first refusal is the telling one: later variants are fallbacks.
                check.refusal = refusals.first().cloned();
                // No answer at all: another variant would fare no better.
                if result.reply.is_err() || Instant::now() >= until {
                    break;
                }
            }
            if !check.accepted {
                check.variant = 0;
                check.uniform = refusals
                    .iter()
                    .all(|r| crate::coverage::same_answer(r, &refusals[0]));
            }
            self.accepted.insert(tool.name.clone(), check);
        }
        latencies.sort();
        self.typical_latency = latencies.get(latencies.len() / 2).copied();
    }

    /// Every string point of every tool, those of `kinds` first (marked `matched`), then the
    /// rest; within each, tools whose baseline was accepted first.
    pub fn points(&self, kinds: &[PointKind]) -> Vec<AttackPoint> {
        let mut points: Vec<(bool, bool, usize, AttackPoint)> = Vec::new();
        for (index, tool) in self.tools.iter().enumerate() {
            let accepted = self.accepted.get(&tool.name).is_none_or(|c| c.accepted);
            for point in &tool.points {
                let matched = kinds.contains(&point.kind);
                points.push((
                    !matched,
                    !accepted,
                    index,
                    AttackPoint {
                        tool: tool.name.clone(),
                        pointer: point.pointer.clone(),
                        kind: point.kind,
                        matched,
                        directory: point.directory,
                    },
                ));
            }
        }
        points.sort_by_key(|(unmatched, refused, index, _)| (*unmatched, *refused, *index));
        points.into_iter().map(|(.., point)| point).collect()
    }

    /// The arguments that reach `point`, with the point's value left at its baseline.
    fn arguments_for(&mut self, point: &AttackPoint) -> Result<Value, String> {
        let key = (point.tool.clone(), point.pointer.clone());
        if let Some(cached) = self.arguments_cache.get(&key) {
            return cached.clone();
        }
        let variant = self.accepted.get(&point.tool).map_or(0, |c| c.variant);
        let built = match self.tools.iter().find(|t| t.name == point.tool) {
            Some(tool) => tool
                .arguments(tool.point(&point.pointer), &self.baselines, variant)
                .map_err(|e| e.to_string()),
            None => Err(format!("no tool is called {}", point.tool)),
        };
        self.arguments_cache.insert(key, built.clone());
        built
    }

    /// Calls `point`'s tool with `value` at the point and everything else at its baseline: one
    /// payload in an otherwise valid call. Counted in the coverage.
    pub async fn call_at(&mut self, point: &AttackPoint, value: Value) -> CallResult {
        let arguments = match self.arguments_for(point) {
            Ok(arguments) => with_value_at(arguments, &point.pointer, value),
            Err(reason) => {
                return CallResult {
                    request: format!("{} at {}", point.tool, point.pointer),
                    reply: Err(TargetError::NotSent(format!(
                        "no valid call reaches this point: {reason}"
                    ))),
                    touches: Vec::new(),
                    reached: false,
                };
            }
        };
        let schema_allows = self
            .tools
            .iter()
            .find(|t| t.name == point.tool)
            .and_then(|t| t.schema.as_ref())
            .and_then(|s| s.is_valid(&arguments));
        let started = Instant::now();
        let mut result = self.call_tool(&point.tool, arguments).await;
        self.watch_for_slowdown(started.elapsed());
        if let Some(family) = self.family {
            let refused_baseline = self
                .accepted
                .get(&point.tool)
                .filter(|check| !check.accepted && check.uniform)
                .and_then(|check| check.refusal.as_deref());
            let throttled = self.refusals.wait(&result.reply).is_some();
            result.reached = self.coverage.record(
                family,
                &point.tool,
                &point.pointer,
                schema_allows,
                Answer::compared(&result.reply, throttled, refused_baseline),
            );
        }
        result
    }

    /// One payload at `point`, counted in `tally`; `None` (and the tally marked stopped) when
    /// the run or the family may make no more calls.
    pub async fn attack(
        &mut self,
        point: &AttackPoint,
        payload: Value,
        tally: &mut Tally,
    ) -> Option<CallResult> {
        if !self.can_continue() {
            tally.stop(self);
            return None;
        }
        let result = self.call_at(point, payload).await;
        tally.count(point, &result);
        Some(result)
    }

    /// Stops the family when its recent replies are much slower than the baselines' were.
    fn watch_for_slowdown(&mut self, latency: Duration) {
        let Some(typical) = self.typical_latency else {
            return;
        };
        self.recent_latencies.push_back(latency);
        if self.recent_latencies.len() > SLOWDOWN_WINDOW {
            self.recent_latencies.pop_front();
        }
        if self.recent_latencies.len() < SLOWDOWN_WINDOW || self.family_stop.is_some() {
            return;
        }
        let mut sorted: Vec<Duration> = self.recent_latencies.iter().copied().collect();
        sorted.sort();
        let median = sorted[SLOWDOWN_WINDOW / 2];
        if median > typical * SLOWDOWN_FACTOR && median > typical + SLOW_REPLY_FLOOR {
            self.family_stop = Some(format!(
                "the target slowed down without refusing: the last replies took {} ms (median), the baseline calls {} ms",
                median.as_millis(),
                typical.as_millis()
            ));
        }
    }

    /// Calls a tool and records the exchange.
    pub async fn call_tool(&mut self, tool: &str, arguments: Value) -> CallResult {
        let params = json!({"name": tool, "arguments": arguments});
        self.request("tools/call", params).await
    }

    /// Liveness ([`Connection::liveness`]), with a limiter's refusal of the ping waited out
    /// (at most [`MAX_LIVENESS_WAITS`] times, within the deadline): a 429 is the target's own
    /// guard answering, not a sign of death, and after a flood the ping is often refused. A
    /// ping refused every time is alive too: something on the target answered it each time.
    pub async fn liveness(&mut self) -> crate::connection::Liveness {
        let mut reply = self.connection.request("ping", None).await;
        for _ in 0..MAX_LIVENESS_WAITS {
            let Some(wait) = self.refusals.wait(&reply) else {
                return self.connection.liveness_of(reply);
            };
            if Instant::now() + wait >= self.deadline {
                break;
            }
            tokio::time::sleep(wait).await;
            reply = self.connection.request("ping", None).await;
        }
        if self.refusals.wait(&reply).is_some() {
            return crate::connection::Liveness::Alive;
        }
        self.connection.liveness_of(reply)
    }

    /// [`Self::liveness`] as a yes or no.
    pub async fn alive(&mut self) -> bool {
        self.liveness().await.is_alive()
    }

    /// Sends any request and records the exchange.
    pub async fn request(&mut self, method: &str, params: Value) -> CallResult {
        let request = json!({"method": method, "params": params}).to_string();
        if let Some(reason) = self.stop_reason() {
            self.latch_stop();
            return CallResult {
                request,
                reply: Err(TargetError::NotSent(reason)),
                touches: Vec::new(),
                reached: false,
            };
        }
        // Touches before this call belong to the one before it, which has been judged.
        self.stage.drain_touches();
        self.calls += 1;
        self.family_calls += 1;
        let mut reply = self.connection.request(method, Some(params.clone())).await;
        // A rate-limit refusal answers nothing the probe asked: wait as told and ask again, so
        // that no verdict rests on a refusal by the limiter (bounded by the run's deadline).
        let mut retries = 0;
        while self.back_off_when_limited
            && retries < MAX_RATE_LIMIT_RETRIES
            && let Some(wait) = self.refusals.wait(&reply)
        {
            if Instant::now() + wait >= self.deadline {
                break;
            }
            retries += 1;
            self.rate_limited_retries += 1;
            tokio::time::sleep(wait).await;
            self.calls += 1;
            reply = self.connection.request(method, Some(params.clone())).await;
        }
        match &reply {
            Err(TargetError::Timeout(_)) => self.consecutive_timeouts += 1,
            Err(TargetError::Closed(detail)) => {
                self.crashes.push(Evidence {
                    tool: None,
                    point: None,
                    request: excerpt(&request, 600),
                    reply: excerpt(
                        &format!("{detail}; stderr: {}", self.connection.stderr_tail()),
                        600,
                    ),
                    oracle: "the target exited while handling this request".into(),
                });
                // A dead stdio target is restarted so the run goes on (a bounded number of times).
                if !self.connection.is_stdio() || self.connection.restart().await.is_err() {
                    self.consecutive_timeouts = u32::MAX;
                }
            }
            _ => self.consecutive_timeouts = 0,
        }
        let touches = self.stage.drain_touches();
        let result = CallResult {
            request,
            reply,
            touches,
            reached: false,
        };
        let text = result.text();
        self.record(&result.request, &text);
        result
    }
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
