//! TRAV: path traversal. Every path-like parameter gets payloads that lead outside the sandbox;
//! a probe fails only when the reply contains the content of a canary file planted outside (or
//! the canary commit message of an outside repository, or `/etc/passwd`'s first line), or when
//! a write lands outside.

use super::{
    Evidence, Family, Outcome, ProbeInfo, Profile, Run, Severity, Verdict, oracle_outcome,
};
use crate::discover::{ParamKind, arguments_with};
use serde_json::json;

const PRACTICE: &str = "Secure file operations: access must stay inside the allowed directory (MCP security best practices; CWE-22)";
const FIX: &str = "Resolve paths against an open directory handle (openat2 RESOLVE_BENEATH, cap-std) instead of checking strings; refuse '..', absolute paths and symlinks that lead out.";

pub static PROBES: &[ProbeInfo] = &[
    ProbeInfo {
        id: "TRAV-DOTDOT",
        family: Family::Trav,
        title: "'..' segments read a file outside the sandbox",
        severity: Severity::High,
        cwe: Some(22),
        enforces: PRACTICE,
        remediation: FIX,
    },
    ProbeInfo {
        id: "TRAV-ABSOLUTE",
        family: Family::Trav,
        title: "an absolute path reads a file outside the sandbox",
        severity: Severity::High,
        cwe: Some(22),
        enforces: PRACTICE,
        remediation: FIX,
    },
    ProbeInfo {
        id: "TRAV-PREFIX",
        family: Family::Trav,
        title: "a sibling directory sharing the sandbox's name prefix is readable",
        severity: Severity::High,
        cwe: Some(22),
        enforces: PRACTICE,
        remediation: "Compare path components, not string prefixes: '/data' must not admit '/data_evil'.",
    },
    ProbeInfo {
        id: "TRAV-SYMLINK",
        family: Family::Trav,
        title: "a symlink inside the sandbox leads outside",
        severity: Severity::High,
        cwe: Some(59),
        enforces: PRACTICE,
        remediation: "Open files relative to a directory handle that refuses symlinks leading out (RESOLVE_BENEATH), not by checking the path lexically.",
    },
    ProbeInfo {
        id: "TRAV-ENCODED",
        family: Family::Trav,
        title: "encoded traversal (percent, double percent, backslash, fullwidth, NUL) escapes",
        severity: Severity::High,
        cwe: Some(22),
        enforces: PRACTICE,
        remediation: FIX,
    },
    ProbeInfo {
        id: "TRAV-STRIP",
        family: Family::Trav,
        title: "'....//' survives a single-pass '../' strip",
        severity: Severity::High,
        cwe: Some(22),
        enforces: PRACTICE,
        remediation: "Reject traversal, never rewrite it: removing '../' once turns '....//' into '../'.",
    },
    ProbeInfo {
        id: "TRAV-WRITE",
        family: Family::Trav,
        title: "a write tool creates a file outside the sandbox",
        severity: Severity::Critical,
        cwe: Some(22),
        enforces: PRACTICE,
        remediation: FIX,
    },
];

fn probe(id: &str) -> &'static ProbeInfo {
    PROBES
        .iter()
        .find(|p| p.id == id)
        .expect("known TRAV probe")
}

/// The read payloads of each probe, for this stage.
fn read_payloads(run: &Run) -> Vec<(&'static str, Vec<String>)> {
    let stage = run.stage;
    let outside_rel = stage.relative_outside_canary();
    let outside_abs = stage
        .outside
        .join("canary.txt")
        .to_string_lossy()
        .into_owned();
    let evil_rel = stage.relative_evil_secret();
    let evil_abs = stage.evil.join("secret.txt").to_string_lossy().into_owned();
    let deep = format!("../../../../../../../../..{outside_abs}");
    // For servers that resolve relative paths against their working directory: the same climb,
    // anchored at the sandbox's absolute path.
    let anchored = format!("{}/{outside_rel}", stage.sandbox.display());
    let mut symlinks = vec![stage.link_out.clone()];
    if let Some(dir) = &stage.link_dir {
        symlinks.push(format!("{dir}/canary.txt"));
    }
    let encoded_rel = outside_rel.replace('/', "%2f");
    // Directories too: a server that works on repositories takes a directory, and the outside
    // directories are repositories whose commit message is a canary.
    let outside_dir_rel = outside_rel.trim_end_matches("/canary.txt").to_owned();
    let outside_dir_abs = stage.outside.to_string_lossy().into_owned();
    let evil_dir_abs = stage.evil.to_string_lossy().into_owned();
    let evil_dir_rel = evil_rel.trim_end_matches("/secret.txt").to_owned();
    vec![
        (
            "TRAV-DOTDOT",
            vec![
                outside_rel.clone(),
                deep,
                anchored,
                "../../../../../../../../../etc/passwd".into(),
                format!("./{outside_rel}"),
                outside_dir_rel,
            ],
        ),
        (
            "TRAV-ABSOLUTE",
            vec![
                outside_abs.clone(),
                "/etc/passwd".into(),
                format!("file://{outside_abs}"),
                outside_dir_abs,
            ],
        ),
        (
            "TRAV-PREFIX",
            vec![evil_abs, evil_rel, evil_dir_abs, evil_dir_rel],
        ),
        ("TRAV-SYMLINK", symlinks),
        (
            "TRAV-ENCODED",
            vec![
                encoded_rel.clone(),
                outside_rel.replace("..", "%2e%2e"),
                outside_rel
                    .replace('/', "%252f")
                    .replace("..", "%252e%252e"),
                outside_rel.replace('/', "\\"),
                outside_rel.replace('/', "%5c"),
                outside_rel.replace("../", "\u{ff0e}\u{ff0e}\u{ff0f}"),
                format!("readme.txt\u{0}/{outside_rel}"),
            ],
        ),
        (
            "TRAV-STRIP",
            vec![
                outside_rel.replace("../", "....//"),
                outside_rel.replace("../", "..././"),
                outside_rel.replace("../", "....\\/"),
            ],
        ),
    ]
}

/// Which canary, if any, a reply reveals.
fn revealed(run: &Run, text: &str) -> Option<String> {
    let canaries = &run.stage.canaries;
    if text.contains(&canaries.file_text) {
        Some(format!(
            "the canary file's content {} is in the reply",
            canaries.file_text
        ))
    } else if text.contains(&canaries.commit_message) {
        Some(format!(
            "the outside repository's commit message {} is in the reply",
            canaries.commit_message
        ))
    } else if text.contains("root:x:0:0:") {
        Some("the first line of /etc/passwd (root:x:0:0:) is in the reply".into())
    } else {
        None
    }
}

pub async fn run(run: &mut Run<'_>) -> Vec<Outcome> {
    let kinds: &[ParamKind] = if run.profile == Profile::Deep {
        &[ParamKind::Path, ParamKind::Identifier, ParamKind::FreeText]
    } else {
        &[ParamKind::Path]
    };
    let targets = run.targets(kinds);
    let mut outcomes = Vec::new();
    if targets.is_empty() {
        for info in PROBES {
            outcomes.push(Outcome::new(
                info,
                Verdict::NotApplicable,
                "no tool has a path-like parameter",
            ));
        }
        return outcomes;
    }
    for (id, mut payloads) in read_payloads(run) {
        if run.profile == Profile::Quick {
            payloads.truncate(1);
        }
        let mut evidence: Vec<Evidence> = Vec::new();
        let mut answered = 0;
        'targets: for (tool_name, param) in &targets {
            for payload in &payloads {
                let result = run.call_with(tool_name, param, json!(payload)).await;
                if result.reply.is_ok() {
                    answered += 1;
                }
                if let Some(oracle) = revealed(run, &result.text()) {
                    evidence.push(result.evidence(tool_name, oracle));
                    break 'targets;
                }
            }
        }
        outcomes.push(verdict_for(probe(id), evidence, answered, targets.len()));
    }
    outcomes.push(write_probe(run).await);
    outcomes
}

fn verdict_for(
    info: &'static ProbeInfo,
    evidence: Vec<Evidence>,
    answered: usize,
    targets: usize,
) -> Outcome {
    let tried = format!("no canary in {answered} replies across {targets} path parameters");
    oracle_outcome(info, evidence, answered, "confirmed by a canary", tried)
}

async fn write_probe(run: &mut Run<'_>) -> Outcome {
    let info = probe("TRAV-WRITE");
    // A write tool: a path parameter and a free-text parameter (the content).
    let writers: Vec<(String, String, String)> = run
        .tools
        .iter()
        .filter_map(|tool| {
            let path = tool.params_of(&[ParamKind::Path]).next()?;
            let content = tool.params_of(&[ParamKind::FreeText]).next()?;
            Some((tool.name.clone(), path.name.clone(), content.name.clone()))
        })
        .collect();
    if writers.is_empty() {
        return Outcome::new(
            info,
            Verdict::NotApplicable,
            "no tool takes both a path and a content parameter",
        );
    }
    let stage = run.stage;
    let mut evidence = Vec::new();
    let mut answered = 0;
    for (tool_name, path_param, content_param) in &writers {
        let Some(tool) = run.tools.iter().find(|t| &t.name == tool_name) else {
            continue;
        };
        let name = format!("written-{:08x}.txt", rand::random::<u32>());
        let outside_rel = stage.relative_outside_canary().replace("canary.txt", &name);
        let candidates = [
            (outside_rel.clone(), stage.outside.join(&name)),
            (
                stage.outside.join(&name).to_string_lossy().into_owned(),
                stage.outside.join(&name),
            ),
            (
                stage.relative_evil_secret().replace("secret.txt", &name),
                stage.evil.join(&name),
            ),
            (
                outside_rel.replace("../", "....//"),
                stage.outside.join(&name),
            ),
        ];
        for (payload, landed) in candidates {
            let mut arguments = arguments_with(tool, path_param, json!(payload), &run.baselines);
            arguments[content_param.as_str()] = json!("mcp-harness write probe");
            let result = run.call_tool(tool_name, arguments).await;
            if result.reply.is_ok() {
                answered += 1;
            }
            if landed.exists() {
                let _ = std::fs::remove_file(&landed);
                evidence.push(result.evidence(
                    tool_name,
                    format!(
                        "the file {} was created outside the sandbox",
                        landed.display()
                    ),
                ));
                break;
            }
        }
    }
    verdict_for(info, evidence, answered, writers.len())
}
