//! INJ-CMD, INJ-ARG, INJ-SQL: injection confirmed by execution, never by reflection.
//!
//! Command injection payloads (`$(touch P)`, backticks, `;`, `|`, `&&`, newlines, quote breaks)
//! and argument injection payloads (`--output=P`, `-oP`) name a fresh proof file P in the
//! stage's outside directory: the probe fails only if P exists afterwards, which no echo of the
//! payload can cause. SQL injection payloads UNION-select `'MCPSQ'||'LI<nonce>'`: only an
//! executed query turns that into `MCPSQLI<nonce>`, which never appears in the payload itself.
//!
//! Every string point is attacked, since a value reaches a program or a query through any
//! field (a `title` or `category` pasted into a query is as common as a `query`): the full
//! set at points of the kinds a family is about (commands, paths and identifiers for
//! INJ-CMD/INJ-ARG; SQL, filters and identifiers for INJ-SQL), a short set elsewhere (the
//! first four command payloads, the first two option payloads, a quote-breaking UNION of one
//! to three columns).

use super::{
    Evidence, Family, Outcome, ProbeInfo, Profile, Run, Severity, Tally, Verdict, oracle_outcome,
    payloads_for,
};
use crate::discover::PointKind;
use serde_json::json;

pub static INJ_CMD: ProbeInfo = ProbeInfo {
    id: "INJ-CMD",
    family: Family::INJ_CMD,
    title: "a string argument is executed by a shell",
    severity: Severity::Critical,
    cwe: Some(78),
    enforces: "Content filtering: never pass user input to a shell (MCP security best practices; CWE-78)",
    remediation: "Run programs without a shell (an argv array), with user values as separate arguments.",
};

pub static INJ_ARG: ProbeInfo = ProbeInfo {
    id: "INJ-ARG",
    family: Family::INJ_ARG,
    title: "a string argument is obeyed as a program option",
    severity: Severity::High,
    cwe: Some(88),
    enforces: "Input validation: user values passed to a program must be operands, not options (CWE-88)",
    remediation: "Put user values after '--' (or refuse a leading '-') so a program never reads them as options such as --output=FILE.",
};

pub static INJ_SQL: ProbeInfo = ProbeInfo {
    id: "INJ-SQL",
    family: Family::INJ_SQL,
    title: "a string argument is executed as SQL",
    severity: Severity::Critical,
    cwe: Some(89),
    enforces: "Content filtering: use parameterized queries, not keyword blocklists (MCP security best practices; CWE-89)",
    remediation: "Bind every user value as a query parameter; a blocklist of keywords does not stop UNION or boolean injection.",
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[&INJ_CMD, &INJ_ARG, &INJ_SQL];

/// The kinds INJ-CMD and INJ-ARG send their full sets to.
const PROGRAM_KINDS: &[PointKind] = &[PointKind::Command, PointKind::Path, PointKind::Identifier];

/// Command payloads; the first four are the short set (substitution, backticks, a separator,
/// a single-quote break).
fn command_payloads(proof: &str) -> Vec<String> {
    vec![
        format!("$(touch {proof})"),
        format!("`touch {proof}`"),
        format!("x; touch {proof}"),
        format!("x'; touch {proof}; echo '"),
        format!("x | touch {proof}"),
        format!("x && touch {proof} #"),
        format!("x\ntouch {proof}\n"),
        format!("x\"; touch {proof}; echo \""),
    ]
}

fn argument_payloads(proof: &str) -> Vec<String> {
    vec![
        format!("--output={proof}"),
        format!("-o{proof}"),
        format!("--output-file={proof}"),
        format!("--log-file={proof}"),
    ]
}

/// Runs file-creating payloads through every string point; fails on any proof file.
async fn file_oracle_probe(
    run: &mut Run<'_>,
    info: &'static ProbeInfo,
    payloads: fn(&str) -> Vec<String>,
    short: usize,
) -> Outcome {
    let points = run.points(PROGRAM_KINDS);
    if points.is_empty() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no tool takes a string argument",
        );
    }
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut tally = Tally::default();
    'points: for point in &points {
        let list = payloads("PROOF");
        let count = payloads_for(run.profile, point, list.len(), short, 2);
        for template in list.into_iter().take(count) {
            let proof = run.stage.proof_path(info.id);
            let payload = template.replace("PROOF", &proof.to_string_lossy());
            let Some(result) = run.attack(point, json!(payload), &mut tally).await else {
                break 'points;
            };
            // Give a detached child a moment to act before judging.
            if !proof.exists() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            if proof.exists() {
                evidence.push(result.evidence_at(
                    point,
                    format!("the proof file {} was created", proof.display()),
                ));
                break 'points;
            }
        }
    }
    oracle_outcome(
        info,
        evidence,
        &tally,
        "a proof file was created",
        "proof file",
        "",
    )
}

/// The SQL templates: a closing quote (or none) and a UNION SELECT of `{S}`.
const SQL_TEMPLATES: [&str; 4] = [
    "zq' UNION SELECT {S}--",
    "zq\" UNION SELECT {S}--",
    "0 UNION SELECT {S}--",
    "zq') UNION SELECT {S}--",
];

async fn sql_probe(run: &mut Run<'_>) -> Outcome {
    let info = &INJ_SQL;
    let points = run.points(&[PointKind::Sql, PointKind::Identifier]);
    if points.is_empty() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no tool takes a string argument",
        );
    }
    let nonce = format!("{:08x}", rand::random::<u32>());
    let marker = format!("MCPSQLI{nonce}");
    let expression = format!("'MCPSQ'||'LI{nonce}'");
    let max_columns = if run.profile == Profile::Quick { 3 } else { 6 };
    let short_columns = 3;
    // Columns first, then the quoting: the short set (the first `short_columns`) is the
    // single quote with one to three columns.
    let payloads: Vec<String> = SQL_TEMPLATES
        .iter()
        .flat_map(|template| {
            (1..=max_columns).map(|columns| {
                template.replace("{S}", &vec![expression.as_str(); columns].join(", "))
            })
        })
        .collect();
    let mut evidence = Vec::new();
    let mut tally = Tally::default();
    'points: for point in &points {
        let count = payloads_for(
            run.profile,
            point,
            payloads.len(),
            short_columns,
            payloads.len(),
        );
        for payload in payloads.iter().take(count) {
            let Some(result) = run.attack(point, json!(payload), &mut tally).await else {
                break 'points;
            };
            if result.text().contains(&marker) {
                evidence.push(result.evidence_at(
                    point,
                    format!("the query computed {marker} from {expression}"),
                ));
                break 'points;
            }
        }
    }
    oracle_outcome(
        info,
        evidence,
        &tally,
        "a UNION SELECT ran and its computed value came back",
        "computed canary",
        "",
    )
}

pub async fn run_cmd(run: &mut Run<'_>) -> Vec<Outcome> {
    vec![file_oracle_probe(run, &INJ_CMD, command_payloads, 4).await]
}

pub async fn run_arg(run: &mut Run<'_>) -> Vec<Outcome> {
    vec![file_oracle_probe(run, &INJ_ARG, argument_payloads, 2).await]
}

pub async fn run_sql(run: &mut Run<'_>) -> Vec<Outcome> {
    vec![sql_probe(run).await]
}
