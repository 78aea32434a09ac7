//! INJ-CMD, INJ-ARG, INJ-SQL: injection confirmed by execution, never by reflection.
//!
//! Command injection payloads (`$(touch P)`, backticks, `;`, `|`, `&&`, newlines, quote breaks)
//! and argument injection payloads (`--output=P`, `-oP`) name a fresh proof file P in the
//! stage's outside directory: the probe fails only if P exists afterwards, which no echo of the
//! payload can cause. SQL injection payloads UNION-select `'MCPSQ'||'LI<nonce>'`: only an
//! executed query turns that into `MCPSQLI<nonce>`, which never appears in the payload itself.

use super::{
    Evidence, Family, Outcome, ProbeInfo, Profile, Run, Severity, Verdict, oracle_outcome,
};
use crate::discover::ParamKind;
use serde_json::json;

pub static PROBES: &[ProbeInfo] = &[
    ProbeInfo {
        id: "INJ-CMD",
        family: Family::InjCmd,
        title: "a string argument is executed by a shell",
        severity: Severity::Critical,
        cwe: Some(78),
        enforces: "Content filtering: never pass user input to a shell (MCP security best practices; CWE-78)",
        remediation: "Run programs without a shell (an argv array), with user values as separate arguments.",
    },
    ProbeInfo {
        id: "INJ-ARG",
        family: Family::InjArg,
        title: "a string argument is obeyed as a program option",
        severity: Severity::High,
        cwe: Some(88),
        enforces: "Input validation: user values passed to a program must be operands, not options (CWE-88)",
        remediation: "Put user values after '--' (or refuse a leading '-') so a program never reads them as options such as --output=FILE.",
    },
    ProbeInfo {
        id: "INJ-SQL",
        family: Family::InjSql,
        title: "a string argument is executed as SQL",
        severity: Severity::Critical,
        cwe: Some(89),
        enforces: "Content filtering: use parameterized queries, not keyword blocklists (MCP security best practices; CWE-89)",
        remediation: "Bind every user value as a query parameter; a blocklist of keywords does not stop UNION or boolean injection.",
    },
];

fn probe(id: &str) -> &'static ProbeInfo {
    PROBES.iter().find(|p| p.id == id).expect("known INJ probe")
}

const STRING_KINDS: &[ParamKind] = &[
    ParamKind::Path,
    ParamKind::Url,
    ParamKind::Sql,
    ParamKind::Command,
    ParamKind::Identifier,
    ParamKind::FreeText,
];

fn command_payloads(proof: &str) -> Vec<String> {
    vec![
        format!("$(touch {proof})"),
        format!("`touch {proof}`"),
        format!("x; touch {proof}"),
        format!("x | touch {proof}"),
        format!("x && touch {proof} #"),
        format!("x\ntouch {proof}\n"),
        format!("x'; touch {proof}; echo '"),
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

/// Runs file-creating payloads through every matching parameter; fails on any proof file.
async fn file_oracle_probe(
    run: &mut Run<'_>,
    id: &str,
    kinds: &[ParamKind],
    payloads: fn(&str) -> Vec<String>,
) -> Outcome {
    let info = probe(id);
    let targets = run.targets(kinds);
    if targets.is_empty() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no tool has a string parameter",
        );
    }
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut answered = 0;
    'targets: for (tool_name, param) in &targets {
        let mut list = payloads("PROOF");
        if run.profile == Profile::Quick {
            list.truncate(2);
        }
        for template in list {
            let proof = run.stage.proof_path(info.id);
            let payload = template.replace("PROOF", &proof.to_string_lossy());
            let result = run.call_with(tool_name, param, json!(payload)).await;
            if result.reply.is_ok() {
                answered += 1;
            }
            // Give a detached child a moment to act before judging.
            if !proof.exists() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            if proof.exists() {
                evidence.push(result.evidence(
                    tool_name,
                    format!("the proof file {} was created", proof.display()),
                ));
                break 'targets;
            }
        }
    }
    let tried = format!(
        "no proof file after {answered} payloads across {} parameters",
        targets.len()
    );
    oracle_outcome(info, evidence, answered, "a proof file was created", tried)
}

async fn sql_probe(run: &mut Run<'_>) -> Outcome {
    let info = probe("INJ-SQL");
    let kinds: &[ParamKind] = if run.profile == Profile::Deep {
        &[ParamKind::Sql, ParamKind::Identifier, ParamKind::FreeText]
    } else {
        &[ParamKind::Sql, ParamKind::Identifier]
    };
    let targets = run.targets(kinds);
    if targets.is_empty() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no tool has an SQL-like or filter parameter",
        );
    }
    let nonce = format!("{:08x}", rand::random::<u32>());
    let marker = format!("MCPSQLI{nonce}");
    let expression = format!("'MCPSQ'||'LI{nonce}'");
    let max_columns = if run.profile == Profile::Quick { 3 } else { 6 };
    let mut evidence = Vec::new();
    let mut answered = 0;
    'targets: for (tool_name, param) in &targets {
        for columns in 1..=max_columns {
            let select = vec![expression.as_str(); columns].join(", ");
            for template in [
                "zq' UNION SELECT {S}--",
                "zq\" UNION SELECT {S}--",
                "0 UNION SELECT {S}--",
                "zq') UNION SELECT {S}--",
            ] {
                let payload = template.replace("{S}", &select);
                let result = run.call_with(tool_name, param, json!(payload)).await;
                if result.reply.is_ok() {
                    answered += 1;
                }
                if result.text().contains(&marker) {
                    evidence.push(result.evidence(
                        tool_name,
                        format!("the query computed {marker} from {expression}"),
                    ));
                    break 'targets;
                }
            }
        }
    }
    let tried = format!(
        "no computed canary in {answered} replies across {} parameters",
        targets.len()
    );
    oracle_outcome(
        info,
        evidence,
        answered,
        "a UNION SELECT ran and its computed value came back",
        tried,
    )
}

pub async fn run_cmd(run: &mut Run<'_>) -> Vec<Outcome> {
    vec![file_oracle_probe(run, "INJ-CMD", STRING_KINDS, command_payloads).await]
}

pub async fn run_arg(run: &mut Run<'_>) -> Vec<Outcome> {
    vec![file_oracle_probe(run, "INJ-ARG", STRING_KINDS, argument_payloads).await]
}

pub async fn run_sql(run: &mut Run<'_>) -> Vec<Outcome> {
    vec![sql_probe(run).await]
}
