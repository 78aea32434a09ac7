//! mcp-harness: connects to any MCP server (a stdio command or a Streamable HTTP URL), attacks
//! it with probes whose findings are confirmed by oracles, and reports what it proved.
//!
//! The library never prints: [`certify`] returns a [`report::Report`], and the binary renders it.
//! Layers: [`target`] reaches the server, [`stage`] plants canaries around it, [`discover`]
//! classifies its tools' parameters, [`probe`] attacks, [`oracle`] decides, [`report`] tells.

pub mod baseline;
pub mod client_config;
pub mod connection;
pub mod coverage;
pub mod discover;
pub mod fuzz;
#[cfg(feature = "in-process")]
pub mod in_process;
pub mod load;
pub mod oracle;
pub mod probe;
pub mod project;
pub mod report;
pub mod schema;
pub mod severity;
pub mod stage;
pub mod stats;
pub mod surface;

pub use connection::stdio::InProcessTarget;
use connection::{Budget, Connection, TargetError};
#[cfg(feature = "in-process")]
pub use in_process::{certify_service, service_target};
use probe::{Family, Outcome, Profile, Run, Severity};
use stage::{Stage, StageError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to reach the target.
#[derive(Debug, Clone)]
pub enum TargetOptions {
    /// A command line; `{sandbox}` and `{canary_url}` are filled in.
    Stdio { command: String },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
    /// A server in this process, served on an in-memory pipe with the stdio line protocol
    /// (see [`certify_service`] for an rmcp `ServerHandler`).
    InProcess(connection::stdio::InProcessTarget),
}

/// What a run tells its caller while it goes, in order: the binary draws its progress line and
/// prints notices from these; a library user can log or count them.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A phase started: `baselines`, then each family by name.
    Started(&'a str),
    /// Something the user should know before the run goes on (for example how long a deep
    /// timing run will take).
    Notice(&'a str),
    /// The target did not answer the ping after `family` (a stdio target is then restarted).
    TargetDied { family: &'a str, reason: &'a str },
    /// A probe's outcome, as soon as its family has finished (before selection filtering and
    /// severity in context, which need the whole run).
    ProbeFinished(&'a Outcome),
    /// Where the run is, right after each [`Event::Started`]: for a progress line.
    Progress(Progress<'a>),
}

/// Where a run is (see [`Event::Progress`]).
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The phase that just started (`baselines` or a family).
    pub phase: &'a str,
    /// Its number, from 1, among `steps`.
    pub step: usize,
    pub steps: usize,
    /// Calls made so far, and how many were retries after a rate-limit refusal.
    pub calls: u64,
    pub refusals_waited: u64,
    pub elapsed: Duration,
    /// The most the run may still take (`--max-duration`).
    pub at_most_left: Duration,
}

/// Where a run's [`Event`]s go.
pub type EventFn = Box<dyn Fn(Event<'_>) + Send + Sync>;

/// Where the stage is made.
#[derive(Debug, Clone, Default)]
pub struct StageOptions {
    /// Adopt this directory as the sandbox instead of a fresh one.
    pub sandbox: Option<PathBuf>,
    /// The stdio target's working directory; default the sandbox, so that whatever a server
    /// creates relative to its working directory lands inside the stage.
    pub cwd: Option<PathBuf>,
    /// Environment variables for a stdio target, besides the stage's canaries.
    pub env: Vec<(String, String)>,
    /// A port of 127.0.0.1 to serve an upstream on (`--upstream-port`): a listener the target
    /// is configured to call, whose requests AUTH-TOKEN-PASSTHROUGH reads (`{upstream_url}`).
    pub upstream_port: Option<u16>,
}

/// Which probes run, and how hard.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Probe ids or family names to run (empty: all).
    pub only: Vec<String>,
    /// Probe ids or family names to skip.
    pub skip: Vec<String>,
    pub profile: Profile,
}

/// Everything a certification needs, by concern.
pub struct CertifyOptions {
    pub target: TargetOptions,
    pub stage: StageOptions,
    pub selection: Selection,
    /// Exit 1 when a probe at or above this severity fails.
    pub fail_on: Severity,
    /// Per-request limits (timeouts, reply cap, protocol choice).
    pub budget: Budget,
    /// The whole run stops starting new calls after this long.
    pub max_duration: Duration,
    /// The credentials beyond the target's own headers (`--token2`, `--token-low`,
    /// `--argument-key`, `--jwt-signing-key`); the primary credential and other credential
    /// headers are taken from an HTTP target's headers.
    pub credentials: probe::Credentials,
    /// What the user expects of the target's rate limit.
    pub expect: probe::rate::Expectations,
    /// Where the run's events go.
    pub events: Option<EventFn>,
}

impl Default for CertifyOptions {
    fn default() -> Self {
        Self {
            target: TargetOptions::Stdio {
                command: String::new(),
            },
            stage: StageOptions::default(),
            selection: Selection::default(),
            fail_on: Severity::High,
            budget: Budget::default(),
            max_duration: Duration::from_secs(600),
            credentials: probe::Credentials::default(),
            expect: probe::rate::Expectations::default(),
            events: None,
        }
    }
}

/// Why a certification could not be done (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("{0}")]
    Target(#[from] TargetError),
    #[error("{0}")]
    Usage(String),
}

fn matches_selector(selector: &str, info: &probe::ProbeInfo) -> bool {
    selector.eq_ignore_ascii_case(info.id) || selector.eq_ignore_ascii_case(info.family.name())
}

/// Whether a probe is selected by `--only` / `--skip`.
pub fn selected(selection: &Selection, info: &probe::ProbeInfo) -> bool {
    (selection.only.is_empty() || selection.only.iter().any(|s| matches_selector(s, info)))
        && !selection.skip.iter().any(|s| matches_selector(s, info))
}

/// Checks `--only` / `--skip` name real probes or families.
pub fn validate_selectors(selection: &Selection) -> Result<(), HarnessError> {
    let registry = probe::registry();
    for selector in selection.only.iter().chain(&selection.skip) {
        if !registry.iter().any(|info| matches_selector(selector, info)) {
            return Err(HarnessError::Usage(format!(
                "no probe or family is called {selector:?} (mcp-harness list-probes shows them)"
            )));
        }
    }
    Ok(())
}

/// Connects to an HTTP target: Streamable HTTP, or, as the specification's backwards
/// compatibility asks of clients, the legacy HTTP+SSE transport when the `initialize` POST is
/// refused with 400, 404 or 405 and a GET of the same URL opens an event stream with an
/// `endpoint` event. A URL whose path ends in `/sse` is tried as legacy SSE first.
pub async fn connect_http(
    url: &str,
    headers: Vec<(String, String)>,
    budget: connection::Budget,
) -> Result<Connection, connection::TargetError> {
    use connection::TargetError;
    let sse_first =
        url::Url::parse(url).is_ok_and(|u| u.path().trim_end_matches('/').ends_with("/sse"));
    let mut sse_error = None;
    if sse_first {
        match connection::sse::SseConnection::connect(url, headers.clone(), budget).await {
            Ok(sse) => return Ok(Connection::Sse(Box::new(sse))),
            Err(error) => sse_error = Some(error),
        }
    }
    match connection::http::HttpConnection::connect(url, headers.clone(), budget).await {
        Ok(http) => Ok(Connection::Http(Box::new(http))),
        // A URL named like an event stream: why the stream failed is the story.
        Err(error) if sse_error.is_some() => Err(sse_error.unwrap_or(error)),
        Err(
            refused @ TargetError::HttpStatus {
                status: 400 | 404 | 405,
                ..
            },
        ) => match connection::sse::SseConnection::connect(url, headers, budget).await {
            Ok(sse) => Ok(Connection::Sse(Box::new(sse))),
            Err(_) => Err(refused),
        },
        Err(error) => Err(error),
    }
}

/// Opens the target: a stdio command with the stage's placeholders filled in, its canaries in
/// its environment and the stage as its working directory (unless told otherwise), or an HTTP
/// endpoint ([`connect_http`]). Returns the connection and the address as the report names it.
pub async fn open_target(
    target: &TargetOptions,
    options: &StageOptions,
    stage: &Stage,
    budget: connection::Budget,
) -> Result<(Connection, String), HarnessError> {
    Ok(match target {
        TargetOptions::Stdio { command } => {
            let filled = stage.fill_placeholders(command);
            let mut environment = options.env.clone();
            environment.extend(stage.canaries.environment());
            let mut spec = connection::stdio::StdioSpec::parse(&filled, environment)?;
            spec.cwd = Some(options.cwd.clone().unwrap_or_else(|| stage.sandbox.clone()));
            let connection = connection::stdio::StdioConnection::connect(spec, budget).await?;
            (Connection::Stdio(Box::new(connection)), filled)
        }
        TargetOptions::InProcess(target) => {
            let connection = connection::stdio::StdioConnection::connect_in_process(
                target.clone(),
                stage.sandbox.clone(),
                budget,
            )
            .await?;
            (
                Connection::Stdio(Box::new(connection)),
                format!("in-process: {}", target.name),
            )
        }
        TargetOptions::Http { url, headers } => {
            url::Url::parse(url)
                .map_err(|e| HarnessError::Usage(format!("invalid --url {url}: {e}")))?;
            (
                connect_http(url, headers.clone(), budget).await?,
                url.clone(),
            )
        }
    })
}

/// Runs a certification and returns its report.
pub async fn certify(mut options: CertifyOptions) -> Result<report::Report, HarnessError> {
    validate_selectors(&options.selection)?;
    if let TargetOptions::Http { headers, .. } = &options.target {
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("authorization") {
                options.credentials.primary = Some(value.clone());
            } else if is_credential_header(name) {
                options.credentials.other_headers.push(value.clone());
            }
        }
    }
    let started = Instant::now();
    let mut stage = Stage::new(options.stage.sandbox.as_deref()).await?;
    if let Some(port) = options.stage.upstream_port {
        stage.start_upstream(port).await?;
    }
    let (mut connection, address) =
        open_target(&options.target, &options.stage, &stage, options.budget).await?;
    let discovery = discover::discover(&mut connection).await?;
    let deadline = started + options.max_duration;
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut deaths: Vec<probe::proto::Death> = Vec::new();
    let calls;
    let rate_limited_retries;
    let observations;
    let coverage;
    {
        let mut run = Run::new(
            &mut connection,
            &stage,
            &discovery.tools,
            options.selection.profile,
            &options.credentials,
            deadline,
        );
        run.expect = options.expect;
        run.listings = &discovery.listings;
        run.request_timeout = options.budget.request_timeout;
        run.events = options.events.as_deref();
        run.selected_ids = probe::registry()
            .iter()
            .filter(|info| selected(&options.selection, info))
            .map(|info| info.id)
            .collect();
        let family_selected = |family: Family| {
            probe::registry()
                .iter()
                .any(|info| info.family == family && selected(&options.selection, info))
        };
        // A family whose probes another's run produces (AUTH, with TRANS) runs under its own
        // name only when that other family is not selected.
        let families: Vec<Family> = probe::FAMILIES
            .iter()
            .filter(|spec| family_selected(spec.family))
            .filter(|spec| spec.runs_with.is_none_or(|with| !family_selected(with)))
            .map(|spec| spec.family)
            .collect();
        // Before any attack: does each tool accept a call built from its schema?
        if families
            .iter()
            .any(|f| coverage::INPUT_FAMILIES.contains(f) || *f == Family::LEAK)
        {
            run.event(Event::Started("baselines"));
            run.progress("baselines", 0, families.len(), started);
            run.check_baselines().await;
        }
        let mut remaining_weight: u32 = families.iter().map(|f| probe::budget_weight(*f)).sum();
        for (index, family) in families.iter().copied().enumerate() {
            run.event(Event::Started(family.name()));
            run.progress(family.name(), index + 1, families.len(), started);
            let weight = probe::budget_weight(family);
            run.begin_family(family, weight, remaining_weight);
            remaining_weight -= weight;
            let family_outcomes = (probe::runner_of(family))(&mut run).await;
            run.end_family();
            for outcome in &family_outcomes {
                run.event(Event::ProbeFinished(outcome));
            }
            outcomes.extend(family_outcomes);
            // Liveness after each family: a dead target is a finding, and a stdio target is
            // restarted so the run goes on.
            if let connection::Liveness::Dead(reason) = run.liveness().await {
                run.event(Event::TargetDied {
                    family: family.name(),
                    reason: &reason,
                });
                let tail = run.stderr_tail();
                deaths.push(probe::proto::Death {
                    family: family.name().to_owned(),
                    reason: if tail.trim().is_empty() {
                        reason
                    } else {
                        format!(
                            "{reason}; stderr: {}",
                            connection::excerpt(tail.trim(), 400)
                        )
                    },
                    last_answered: run.last_answered(),
                });
                if run.is_stdio() {
                    let _ = run.restart().await;
                }
            }
        }
        // Judgements over the whole run (LEAK's passive scan), once every family has run.
        for family in &families {
            if let Some(after_run) = probe::spec(*family).after_run {
                let judged = after_run(&run);
                for outcome in &judged {
                    run.event(Event::ProbeFinished(outcome));
                }
                outcomes.extend(judged);
            }
        }
        if probe::registry().iter().any(|info| {
            info.id == probe::proto::PROTO_ALIVE.id && selected(&options.selection, info)
        }) {
            outcomes.push(probe::proto::alive(&run.crashes, &deaths));
        }
        let mut ran = families.clone();
        if ran.contains(&Family::TRANS) {
            ran.push(Family::AUTH);
        }
        let mut summary = run.coverage.summarize(&discovery, &run.accepted, &ran);
        let (touches, mechanism) = stage.touch_count();
        summary.planted_path_touches = touches;
        summary.access_oracle = mechanism;
        coverage = summary;
        calls = run.calls;
        rate_limited_retries = run.rate_limited_retries;
        observations = run.observations();
    }
    outcomes.retain(|o| selected(&options.selection, o.probe));
    // Reports list probes in registry order, whenever each was judged.
    let registry = probe::registry();
    outcomes.sort_by_key(|o| {
        registry
            .iter()
            .position(|info| info.id == o.probe.id)
            .unwrap_or(usize::MAX)
    });
    let context = severity::Context::from_run(
        !connection.is_stdio(),
        user_gave_credential(&options.target),
        &outcomes,
        &discovery,
    );
    for outcome in outcomes
        .iter_mut()
        .filter(|o| o.verdict == probe::Verdict::Fail)
    {
        let (effective, reason) = severity::effective(outcome.probe, outcome.mode, &context);
        outcome.severity = effective;
        outcome.severity_reason = reason;
    }
    redact_credentials(&mut outcomes, &options.credentials);
    let target = report::TargetSummary::of(&connection, address);
    connection.shutdown().await;
    let duration = started.elapsed().as_millis() as u64;
    let facts = report::RunFacts {
        target,
        profile: options.selection.profile,
        fail_on: options.fail_on,
        duration_ms: duration,
        calls,
        rate_limited_retries,
        discovery,
        observations,
        coverage,
    };
    Ok(report::Report::new(facts, &outcomes))
}

/// Whether the user gave the HTTP target a credential (an `Authorization` header, or one
/// whose name says it carries a key or token).
fn user_gave_credential(target: &TargetOptions) -> bool {
    let TargetOptions::Http { headers, .. } = target else {
        return false;
    };
    headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization") || is_credential_header(name))
}

/// A header whose name says it carries a key, a token or a session cookie.
fn is_credential_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("key") || lower.contains("token") || lower == "cookie"
}

/// Removes every credential the run was given ([`probe::Credentials::secrets`]: header values,
/// the token inside an `Authorization` value, the second and low-scope tokens, the argument
/// key) from every piece of evidence and summary. Canary values stay: they are the proof, and
/// they are not secrets.
fn redact_credentials(outcomes: &mut [Outcome], credentials: &probe::Credentials) {
    let secrets = credentials.secrets();
    for outcome in outcomes {
        for evidence in &mut outcome.evidence {
            for field in [
                &mut evidence.request,
                &mut evidence.reply,
                &mut evidence.oracle,
            ] {
                for secret in &secrets {
                    if field.contains(secret.as_str()) {
                        *field = field.replace(secret.as_str(), "[redacted credential]");
                    }
                }
            }
        }
        for secret in &secrets {
            if outcome.summary.contains(secret.as_str()) {
                outcome.summary = outcome
                    .summary
                    .replace(secret.as_str(), "[redacted credential]");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_evidence() {
        let info = &probe::leak::LEAK_SECRET;
        let evidence = probe::Evidence {
            tool: None,
            point: None,
            request: "Bearer s3cret-token-value".into(),
            reply: "echo s3cret-token-value".into(),
            oracle: "x".into(),
        };
        let mut outcomes = vec![
            Outcome::new(info, probe::Verdict::Fail, "saw s3cret-token-value")
                .with_evidence(vec![evidence]),
        ];
        let credentials = probe::Credentials {
            primary: Some("Bearer s3cret-token-value".into()),
            second: Some("Bearer second-token-value".into()),
            argument_key: Some("argument-key-value".into()),
            ..Default::default()
        };
        outcomes[0].evidence[0].reply += " and argument-key-value and second-token-value";
        redact_credentials(&mut outcomes, &credentials);
        let text = serde_json::to_string(&outcomes).unwrap();
        for secret in [
            "s3cret-token-value",
            "argument-key-value",
            "second-token-value",
        ] {
            assert!(!text.contains(secret), "{secret}: {text}");
        }
        assert!(text.contains("[redacted credential]"));
    }
}
