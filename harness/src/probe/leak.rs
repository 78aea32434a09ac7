//! LEAK: what replies disclose. An active pass provokes errors (wrong types, missing
//! arguments, quotes, missing files, over-long strings); then every reply of every probe in the
//! run is scanned ([`crate::oracle::leak`]) for canary secrets, stack traces, database errors,
//! URLs with passwords and internal paths.

use super::{Evidence, Family, Outcome, ProbeInfo, Run, Severity, Verdict};
use crate::connection::excerpt;
use crate::discover::PointKind;
use crate::oracle::leak::{LeakKind, LeakScanner};
use serde_json::{Value, json};

const PRACTICE: &str = "Secure error messages: return a generic message to the client and log the detail (MCP security best practices; CWE-209)";

pub static LEAK_SECRET: ProbeInfo = ProbeInfo {
    id: "LEAK-SECRET",
    family: Family::LEAK,
    title: "a secret from the server's environment appears in a reply",
    severity: Severity::Critical,
    cwe: Some(200),
    enforces: "Configuration security: secrets must never reach a client (MCP security best practices; CWE-200)",
    remediation: "Keep secrets in types that cannot be printed; never include configuration values in errors or results.",
};

pub static LEAK_CREDENTIAL_URL: ProbeInfo = ProbeInfo {
    id: "LEAK-CREDENTIAL-URL",
    family: Family::LEAK,
    title: "a URL with an embedded password appears in a reply",
    severity: Severity::High,
    cwe: Some(532),
    enforces: "Configuration security: mask passwords in connection strings (MCP security best practices; CWE-532)",
    remediation: "Never return connection strings; if one must be shown, remove the password with a URL parser, not a regex.",
};

pub static LEAK_STACK_TRACE: ProbeInfo = ProbeInfo {
    id: "LEAK-STACK-TRACE",
    family: Family::LEAK,
    title: "a stack trace appears in a reply",
    severity: Severity::Medium,
    cwe: Some(209),
    enforces: PRACTICE,
    remediation: "Catch errors at the tool boundary; return a generic message with a correlation id and log the trace.",
};

pub static LEAK_DB_ERROR: ProbeInfo = ProbeInfo {
    id: "LEAK-DB-ERROR",
    family: Family::LEAK,
    title: "database error text appears in a reply",
    severity: Severity::Medium,
    cwe: Some(209),
    enforces: PRACTICE,
    remediation: "Map database errors to a generic message; SQL error text helps an attacker shape injection.",
};

pub static LEAK_PATH: ProbeInfo = ProbeInfo {
    id: "LEAK-PATH",
    family: Family::LEAK,
    title: "an internal file path outside the configured directories appears in a reply",
    severity: Severity::Low,
    cwe: Some(209),
    enforces: PRACTICE,
    remediation: "Report paths relative to the sandbox, and never the server's own files.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &LEAK_SECRET,
    &LEAK_CREDENTIAL_URL,
    &LEAK_STACK_TRACE,
    &LEAK_DB_ERROR,
    &LEAK_PATH,
];

fn probe_for(kind: LeakKind) -> &'static ProbeInfo {
    match kind {
        LeakKind::CanarySecret => &LEAK_SECRET,
        LeakKind::CredentialInUrl => &LEAK_CREDENTIAL_URL,
        LeakKind::StackTrace => &LEAK_STACK_TRACE,
        LeakKind::DatabaseError => &LEAK_DB_ERROR,
        LeakKind::InternalPath => &LEAK_PATH,
    }
}

/// Calls each tool with arguments meant to make it fail, so its error path is seen: no
/// arguments, every top-level argument of the wrong type, an unknown argument, and at every
/// string point no input family attacked (their replies are scanned already) values its
/// kind's parsers choke on.
async fn provoke(run: &mut Run<'_>) {
    let tools: Vec<_> = run.tools.to_vec();
    for tool in &tools {
        if !run.can_continue() {
            return;
        }
        run.call_tool(&tool.name, json!({})).await;
        let baseline = run.baseline(tool);
        let wrong: serde_json::Map<String, Value> = baseline
            .keys()
            .map(|name| (name.clone(), json!({"unexpected": [1, 2]})))
            .collect();
        if !wrong.is_empty() {
            run.call_tool(&tool.name, Value::Object(wrong)).await;
        }
        let mut unknown = baseline;
        unknown.insert("mcp_harness_unknown".into(), json!(1));
        run.call_tool(&tool.name, Value::Object(unknown)).await;
        for point in run.points(&[]) {
            if point.tool != tool.name || run.coverage.attacked(&point.tool, &point.pointer) {
                continue;
            }
            let provocations: &[&str] = match point.kind {
                PointKind::Path => &["mcp-harness-missing/none.txt", "notes", "readme.txt/child"],
                PointKind::Sql => &["'", "\"", "1'; SELECT", "%' AND x=("],
                PointKind::Url => &["http://", "http://[::1", "notaurl"],
                _ => &["'\"`$\\", ""],
            };
            for value in provocations {
                run.call_at(&point, json!(value)).await;
            }
        }
    }
}

/// LEAK's turn in the run: the error provocation. Its verdicts come from [`after_run`], once
/// every family's replies are in the transcript.
pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    provoke(run).await;
    Vec::new()
}

/// The passive scan of every reply the run recorded.
pub fn after_run(run: &Run<'_>) -> Vec<Outcome> {
    let stage = run.stage;
    let mut secrets: Vec<String> = stage
        .canaries
        .secrets()
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(authorization) = &run.credentials.primary {
        // The user's own token must never come back either.
        if let Some(token) = authorization.split_whitespace().last() {
            secrets.push(token.to_owned());
        }
    }
    let allowed = [
        stage.sandbox.to_string_lossy().into_owned(),
        stage.base().to_string_lossy().into_owned(),
        stage.evil.to_string_lossy().into_owned(),
    ];
    let scanner = LeakScanner::new(secrets, allowed);
    let mut found: std::collections::BTreeMap<LeakKind, Evidence> = Default::default();
    for exchange in &run.transcript {
        for leak in scanner.scan(&exchange.reply, &exchange.request) {
            found.entry(leak.kind).or_insert_with(|| Evidence {
                tool: None,
                point: None,
                request: excerpt(&exchange.request, 600),
                reply: excerpt(&exchange.reply, 600),
                oracle: format!("{:?}: {}", leak.kind, leak.matched),
            });
        }
    }
    let scanned = run.transcript.len();
    [
        LeakKind::CanarySecret,
        LeakKind::CredentialInUrl,
        LeakKind::StackTrace,
        LeakKind::DatabaseError,
        LeakKind::InternalPath,
    ]
    .into_iter()
    .map(|kind| {
        let info = probe_for(kind);
        match found.remove(&kind) {
            Some(evidence) => Outcome::new(
                info,
                Verdict::Fail,
                format!("{} ({})", info.title, evidence.oracle),
            )
            .with_evidence(vec![evidence]),
            None => Outcome::new(
                info,
                Verdict::Pass,
                format!("nothing of this kind in {scanned} replies"),
            ),
        }
    })
    .collect()
}
