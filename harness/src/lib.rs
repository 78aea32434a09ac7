//! mcp-harness: connects to any MCP server (a stdio command or a Streamable HTTP URL), attacks
//! it with probes whose findings are confirmed by oracles, and reports what it proved.
//!
//! The library never prints: [`certify`] returns a [`report::Report`], and the binary renders it.
//! Layers: [`target`] reaches the server, [`stage`] plants canaries around it, [`discover`]
//! classifies its tools' parameters, [`probe`] attacks, [`oracle`] decides, [`report`] tells.

pub mod connection;
pub mod coverage;
pub mod discover;
pub mod oracle;
pub mod probe;
pub mod report;
pub mod schema;
pub mod severity;
pub mod stage;
pub mod stats;
pub mod timing;

use connection::{Budget, Connection, TargetError};
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
}

/// A progress callback: called with each family's name as it starts.
pub type ProgressFn = Box<dyn Fn(&str) + Send + Sync>;

/// Everything a certification needs.
pub struct CertifyOptions {
    pub target: TargetOptions,
    /// Adopt this directory as the sandbox instead of a fresh one.
    pub sandbox: Option<PathBuf>,
    /// The stdio target's working directory; default the sandbox, so that whatever a server
    /// creates relative to its working directory lands inside the stage.
    pub cwd: Option<PathBuf>,
    /// Probe ids or family names to run (empty: all).
    pub only: Vec<String>,
    /// Probe ids or family names to skip.
    pub skip: Vec<String>,
    pub profile: Profile,
    pub fail_on: Severity,
    pub budget: Budget,
    /// The whole run stops starting new calls after this long.
    pub max_duration: Duration,
    /// Called with each family's name as it starts (the binary draws progress with it).
    pub progress: Option<ProgressFn>,
    /// Called with what a family must tell the user before it goes on (the binary prints it
    /// on stderr), such as the expected duration of a deep timing run.
    pub notices: Option<ProgressFn>,
    /// A second principal's `Authorization` value (`--token2`), for RATE-SECOND-PRINCIPAL.
    pub second_authorization: Option<String>,
    /// What the user expects of the target's rate limit.
    pub expect: probe::rate::Expectations,
    /// A valid credential lacking scopes some tools need (`--token-low`), for AUTH-SCOPE.
    pub low_authorization: Option<String>,
    /// A key the target trusts for JWTs (`--jwt-signing-key`), for AUTH-JWT-CLAIMS.
    pub jwt_signing_key: Option<probe::jwt::SigningKey>,
    /// A valid key for a stdio target's credential argument (`--argument-key`), for TIME.
    pub argument_key: Option<String>,
}

impl Default for CertifyOptions {
    fn default() -> Self {
        Self {
            target: TargetOptions::Stdio {
                command: String::new(),
            },
            sandbox: None,
            cwd: None,
            only: Vec::new(),
            skip: Vec::new(),
            profile: Profile::Standard,
            fail_on: Severity::High,
            budget: Budget::default(),
            max_duration: Duration::from_secs(600),
            progress: None,
            notices: None,
            second_authorization: None,
            expect: probe::rate::Expectations::default(),
            jwt_signing_key: None,
            low_authorization: None,
            argument_key: None,
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
pub fn selected(options: &CertifyOptions, info: &probe::ProbeInfo) -> bool {
    (options.only.is_empty() || options.only.iter().any(|s| matches_selector(s, info)))
        && !options.skip.iter().any(|s| matches_selector(s, info))
}

/// Checks `--only` / `--skip` name real probes or families.
pub fn validate_selectors(options: &CertifyOptions) -> Result<(), HarnessError> {
    let registry = probe::registry();
    for selector in options.only.iter().chain(&options.skip) {
        if !registry.iter().any(|info| matches_selector(selector, info)) {
            return Err(HarnessError::Usage(format!(
                "no probe or family is called {selector:?} (mcp-harness list-probes shows them)"
            )));
        }
    }
    Ok(())
}

/// Runs a certification and returns its report.
pub async fn certify(options: CertifyOptions) -> Result<report::Report, HarnessError> {
    validate_selectors(&options)?;
    let started = Instant::now();
    let stage = Stage::new(options.sandbox.as_deref()).await?;
    let (mut connection, address, authorization) = match &options.target {
        TargetOptions::Stdio { command } => {
            let filled = stage.fill_placeholders(command);
            let mut spec =
                connection::stdio::StdioSpec::parse(&filled, stage.canaries.environment())?;
            spec.cwd = Some(options.cwd.clone().unwrap_or_else(|| stage.sandbox.clone()));
            let connection =
                connection::stdio::StdioConnection::connect(spec, options.budget).await?;
            (Connection::Stdio(Box::new(connection)), filled, None)
        }
        TargetOptions::Http { url, headers } => {
            url::Url::parse(url)
                .map_err(|e| HarnessError::Usage(format!("invalid --url {url}: {e}")))?;
            let authorization = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone());
            let connection =
                connection::http::HttpConnection::connect(url, headers.clone(), options.budget)
                    .await?;
            (
                Connection::Http(Box::new(connection)),
                url.clone(),
                authorization,
            )
        }
    };
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
            options.profile,
            authorization,
            deadline,
        );
        run.request_timeout = options.budget.request_timeout;
        run.notices = options.notices.as_deref();
        run.selected_ids = probe::registry()
            .iter()
            .filter(|info| selected(&options, info))
            .map(|info| info.id)
            .collect();
        let family_selected = |family: Family| {
            probe::registry()
                .iter()
                .any(|info| info.family == family && selected(&options, info))
        };
        // TRANS and AUTH are one module: run once, under TRANS when it is selected.
        let families: Vec<Family> = Family::ALL
            .into_iter()
            .filter(|family| family_selected(*family))
            .filter(|family| *family != Family::Auth || !family_selected(Family::Trans))
            .collect();
        // Before any attack: does each tool accept a call built from its schema?
        if families
            .iter()
            .any(|f| coverage::INPUT_FAMILIES.contains(f) || *f == Family::Leak)
        {
            if let Some(progress) = &options.progress {
                progress("baselines");
            }
            run.check_baselines().await;
        }
        let mut remaining_weight: u32 = families.iter().map(|f| probe::budget_weight(*f)).sum();
        for family in families.iter().copied() {
            if let Some(progress) = &options.progress {
                progress(family.name());
            }
            let weight = probe::budget_weight(family);
            run.begin_family(family, weight, remaining_weight);
            remaining_weight -= weight;
            let family_outcomes = match family {
                Family::Trav => probe::trav::run(&mut run).await,
                Family::InjCmd => probe::inject::run_cmd(&mut run).await,
                Family::InjArg => probe::inject::run_arg(&mut run).await,
                Family::InjSql => probe::inject::run_sql(&mut run).await,
                Family::Ssrf => probe::ssrf::run(&mut run).await,
                Family::Trans | Family::Auth => {
                    let mut outcomes = probe::http::run(&mut run).await;
                    outcomes.extend(
                        probe::jwt::run(
                            &mut run,
                            options.jwt_signing_key.as_ref(),
                            options.second_authorization.as_deref(),
                            options.low_authorization.as_deref(),
                        )
                        .await,
                    );
                    outcomes
                }
                Family::Time => probe::timing::run(&mut run, options.argument_key.as_deref()).await,
                Family::Rate => {
                    probe::rate::run(
                        &mut run,
                        options.second_authorization.as_deref(),
                        options.expect,
                    )
                    .await
                }
                Family::Res => probe::resource::run(&mut run).await,
                Family::Leak => probe::leak::run(&mut run).await,
                Family::Proto => {
                    let mut proto = probe::proto::run(&mut run).await;
                    proto.push(probe::proto::stdout_hygiene(&run));
                    proto
                }
            };
            run.end_family();
            outcomes.extend(family_outcomes);
            // Liveness after each family: a dead target is a finding, and a stdio target is
            // restarted so the run goes on.
            if let connection::Liveness::Dead(reason) = run.liveness().await {
                let tail = run.connection.stderr_tail();
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
                    last_answered: run.connection.last_answered(),
                });
                if run.connection.is_stdio() {
                    let _ = run.connection.restart().await;
                }
            }
        }
        if probe::registry()
            .iter()
            .any(|info| info.id == "PROTO-ALIVE" && selected(&options, info))
        {
            outcomes.push(probe::proto::alive(&run.crashes, &deaths));
        }
        let mut ran = families.clone();
        if ran.contains(&Family::Trans) {
            ran.push(Family::Auth);
        }
        let mut summary = run.coverage.summarize(&discovery, &run.accepted, &ran);
        let (touches, mechanism) = stage.touch_count();
        summary.planted_path_touches = touches;
        summary.access_oracle = mechanism;
        coverage = summary;
        calls = run.calls;
        rate_limited_retries = run.rate_limited_retries;
        observations = run.connection.observations();
    }
    outcomes.retain(|o| selected(&options, o.probe));
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
    redact_credentials(
        &mut outcomes,
        &options.target,
        options.second_authorization.as_deref(),
    );
    redact_credentials(
        &mut outcomes,
        &options.target,
        options.low_authorization.as_deref(),
    );
    let target = report::TargetSummary {
        transport: if connection.is_stdio() {
            "stdio"
        } else {
            "http"
        },
        address,
        protocol_version: connection.protocol_version().to_owned(),
        server_name: connection
            .server_info()
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_owned(),
        server_version: connection
            .server_info()
            .get("version")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned(),
    };
    connection.shutdown().await;
    let duration = started.elapsed().as_millis() as u64;
    let facts = report::RunFacts {
        target,
        profile: options.profile,
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
    headers.iter().any(|(name, _)| {
        let lower = name.to_ascii_lowercase();
        lower == "authorization"
            || lower.contains("key")
            || lower.contains("token")
            || lower == "cookie"
    })
}

/// Removes the user's credentials (the values of credential headers, and the token inside an
/// `Authorization` value) from every piece of evidence. Canary values stay: they are the proof,
/// and they are not secrets.
fn redact_credentials(outcomes: &mut [Outcome], target: &TargetOptions, second: Option<&str>) {
    let TargetOptions::Http { headers, .. } = target else {
        return;
    };
    let mut secrets: Vec<String> = Vec::new();
    let extra: Vec<(String, String)> = second
        .into_iter()
        .map(|value| ("authorization".to_owned(), value.to_owned()))
        .collect();
    for (name, value) in headers.iter().chain(extra.iter()) {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization"
            || lower.contains("key")
            || lower.contains("token")
            || lower == "cookie"
        {
            secrets.push(value.clone());
            if let Some(token) = value.split_whitespace().nth(1) {
                secrets.push(token.to_owned());
            }
        }
    }
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for outcome in outcomes {
        for evidence in &mut outcome.evidence {
            for secret in &secrets {
                for field in [
                    &mut evidence.request,
                    &mut evidence.reply,
                    &mut evidence.oracle,
                ] {
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
        let info = probe::probe("LEAK-SECRET");
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
        let target = TargetOptions::Http {
            url: "http://127.0.0.1:1/mcp".into(),
            headers: vec![("Authorization".into(), "Bearer s3cret-token-value".into())],
        };
        redact_credentials(&mut outcomes, &target, Some("Bearer second-token-value"));
        let text = serde_json::to_string(&outcomes).unwrap();
        assert!(!text.contains("s3cret-token-value"), "{text}");
        assert!(text.contains("[redacted credential]"));
    }
}
