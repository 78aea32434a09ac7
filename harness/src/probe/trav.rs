//! TRAV: path traversal. Every string point gets payloads that lead outside the sandbox: the
//! full set at points classified as paths (less the directory payloads at points that name
//! files), a short set everywhere else (a relative climb, the prefix sibling's absolute path,
//! one relative write); `deep`: everything everywhere; `quick`: one payload per probe at path
//! points only.
//!
//! A probe fails when an oracle confirms the escape: the reply contains the content of a
//! canary file planted outside (or the canary commit message of an outside repository, or
//! `/etc/passwd`'s first line), or the access oracle saw the target open, read, create,
//! change or delete a planted path outside while answering ([`crate::oracle::access`]): a
//! parser that opens `../outside/canary.txt` and answers only "not a workbook" has escaped,
//! and so has a tool that only creates a directory. A write probe also fails when its fresh
//! file name appears outside.

use super::{
    AttackPoint, Evidence, Family, Outcome, ProbeInfo, Profile, Run, Severity, Tally, Verdict,
    oracle_outcome, payloads_for,
};
use crate::discover::PointKind;
use serde_json::json;

const PRACTICE: &str = "Secure file operations: access must stay inside the allowed directory (MCP security best practices; CWE-22)";
const FIX: &str = "Resolve paths against an open directory handle (openat2 RESOLVE_BENEATH, cap-std) instead of checking strings; refuse '..', absolute paths and symlinks that lead out.";

pub static TRAV_DOTDOT: ProbeInfo = ProbeInfo {
    id: "TRAV-DOTDOT",
    family: Family::TRAV,
    title: "'..' segments read a file outside the sandbox",
    severity: Severity::High,
    cwe: Some(22),
    enforces: PRACTICE,
    remediation: FIX,
};

pub static TRAV_ABSOLUTE: ProbeInfo = ProbeInfo {
    id: "TRAV-ABSOLUTE",
    family: Family::TRAV,
    title: "an absolute path reads a file outside the sandbox",
    severity: Severity::High,
    cwe: Some(22),
    enforces: PRACTICE,
    remediation: FIX,
};

pub static TRAV_PREFIX: ProbeInfo = ProbeInfo {
    id: "TRAV-PREFIX",
    family: Family::TRAV,
    title: "a sibling directory sharing the sandbox's name prefix is readable",
    severity: Severity::High,
    cwe: Some(22),
    enforces: PRACTICE,
    remediation: "Compare path components, not string prefixes: '/data' must not admit '/data_evil'.",
};

pub static TRAV_SYMLINK: ProbeInfo = ProbeInfo {
    id: "TRAV-SYMLINK",
    family: Family::TRAV,
    title: "a symlink inside the sandbox leads outside",
    severity: Severity::High,
    cwe: Some(59),
    enforces: PRACTICE,
    remediation: "Open files relative to a directory handle that refuses symlinks leading out (RESOLVE_BENEATH), not by checking the path lexically.",
};

pub static TRAV_ENCODED: ProbeInfo = ProbeInfo {
    id: "TRAV-ENCODED",
    family: Family::TRAV,
    title: "encoded traversal (percent, double percent, backslash, fullwidth, NUL) escapes",
    severity: Severity::High,
    cwe: Some(22),
    enforces: PRACTICE,
    remediation: FIX,
};

pub static TRAV_STRIP: ProbeInfo = ProbeInfo {
    id: "TRAV-STRIP",
    family: Family::TRAV,
    title: "'....//' survives a single-pass '../' strip",
    severity: Severity::High,
    cwe: Some(22),
    enforces: PRACTICE,
    remediation: "Reject traversal, never rewrite it: removing '../' once turns '....//' into '../'.",
};

pub static TRAV_WRITE: ProbeInfo = ProbeInfo {
    id: "TRAV-WRITE",
    family: Family::TRAV,
    title: "a tool creates or changes something outside the sandbox",
    severity: Severity::Critical,
    cwe: Some(22),
    enforces: PRACTICE,
    remediation: FIX,
};

/// This family's probes, in report order.
pub static PROBES: &[&ProbeInfo] = &[
    &TRAV_DOTDOT,
    &TRAV_ABSOLUTE,
    &TRAV_PREFIX,
    &TRAV_SYMLINK,
    &TRAV_ENCODED,
    &TRAV_STRIP,
    &TRAV_WRITE,
];

/// The read payloads of each probe, for this stage, with how many of them (the first ones) a
/// point that is not a path gets, and how many at the end name directories (which only
/// points naming directories get).
fn read_payloads(run: &Run) -> Vec<(&'static ProbeInfo, Vec<String>, usize, usize)> {
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
            &TRAV_DOTDOT,
            vec![
                outside_rel.clone(),
                deep,
                anchored,
                "../../../../../../../../../etc/passwd".into(),
                format!("./{outside_rel}"),
                outside_dir_rel,
            ],
            1,
            1,
        ),
        (
            &TRAV_ABSOLUTE,
            vec![
                outside_abs.clone(),
                "/etc/passwd".into(),
                format!("file://{outside_abs}"),
                outside_dir_abs,
            ],
            0,
            1,
        ),
        (
            &TRAV_PREFIX,
            vec![evil_abs, evil_rel, evil_dir_abs, evil_dir_rel],
            1,
            2,
        ),
        (&TRAV_SYMLINK, symlinks, 0, 0),
        (
            &TRAV_ENCODED,
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
            0,
            0,
        ),
        (
            &TRAV_STRIP,
            vec![
                outside_rel.replace("../", "....//"),
                outside_rel.replace("../", "..././"),
                outside_rel.replace("../", "....\\/"),
            ],
            0,
            0,
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
    let points = run.points(&[PointKind::Path]);
    if points.is_empty() {
        return super::every(
            PROBES,
            Verdict::NotApplicable,
            "no tool takes a string argument",
        );
    }
    // Touches before the first payload are not this family's.
    run.stage.drain_touches();
    let mut outcomes = Vec::new();
    for (info, payloads, short, directories) in read_payloads(run) {
        let mut evidence: Vec<Evidence> = Vec::new();
        let mut tally = Tally::default();
        'points: for point in &points {
            let useful = if point.directory || run.profile == Profile::Deep {
                payloads.len()
            } else {
                payloads.len() - directories
            };
            let count = payloads_for(run.profile, point, useful, short, 1);
            for payload in payloads.iter().take(count) {
                let Some(result) = run.attack(point, json!(payload), &mut tally).await else {
                    break 'points;
                };
                let oracle = revealed(run, &result.text()).or_else(|| result.touched(false));
                if let Some(oracle) = oracle {
                    evidence.push(result.evidence_at(point, oracle));
                    break 'points;
                }
            }
        }
        outcomes.push(oracle_outcome(
            info,
            evidence,
            &tally,
            "confirmed by a canary or a touch of a planted path",
            "canary in a reply and no touch of a planted path",
            "path-like",
        ));
    }
    outcomes.push(write_probe(run, &points).await);
    outcomes
}

/// TRAV-WRITE: fresh names outside the sandbox, relative, absolute, in the `_evil` sibling
/// and behind `....//`, into every path point (one, relative, into the others): a file or
/// directory that appears there, or any creation or change the access oracle sees, is an
/// escape.
async fn write_probe(run: &mut Run<'_>, points: &[AttackPoint]) -> Outcome {
    let info = &TRAV_WRITE;
    let stage = run.stage;
    let mut evidence = Vec::new();
    let mut tally = Tally::default();
    'points: for point in points {
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
        // Relative, absolute and prefix sibling at path points (the strip is TRAV-STRIP's);
        // the relative one elsewhere.
        let count = payloads_for(run.profile, point, 3, 1, 2);
        for (payload, landed) in candidates.into_iter().take(count) {
            let Some(result) = run.attack(point, json!(payload), &mut tally).await else {
                break 'points;
            };
            // A stat, which the access oracle does not count: the harness touches nothing.
            let oracle = if landed.symlink_metadata().is_ok() {
                Some(format!(
                    "{} was created outside the sandbox",
                    landed.display()
                ))
            } else {
                result.touched(true)
            };
            if let Some(oracle) = oracle {
                evidence.push(result.evidence_at(point, oracle));
                break 'points;
            }
        }
    }
    oracle_outcome(
        info,
        evidence,
        &tally,
        "something was created or changed outside the sandbox",
        "file created or changed outside the sandbox",
        "path-like",
    )
}
