//! Reach: what a run attacked, what answered, and what it never got to.
//!
//! Every call an input family (TRAV, INJ-CMD, INJ-ARG, INJ-SQL, SSRF) makes at an attack point
//! is counted here with how it was answered. A point is *reached* when at least one payload
//! the tool's schema allows got an answer from the tool itself: a result (an error result
//! included: the guard under test answered), or a JSON-RPC error that is not a refusal of the
//! request's shape (-32600/-32601/-32602/-32700, or -32020: 2026-07-28's routing headers
//! missing or not matching the body), a rate-limit refusal or a transport failure.
//! For a tool that refused every baseline variant with one and the same answer, a payload
//! answered the same way (ids and numbers aside) does not count either: a tool that refuses
//! everything cannot be told from a guard. A tool that told its baselines apart (a loopback URL
//! "not permitted", `https://example.com/` "could not resolve") answered as a guard does.
//! A refusal by schema validation, the rate limiter or a dead session proves nothing either
//! way, so a probe whose payloads reached nothing is inconclusive, never a pass, and a run
//! that reached nothing is never certified ([`ReachVerdict::Nothing`]).
//!
//! Cost: one map entry per (family, tool, point); the report keeps at most
//! [`MAX_UNREACHED_LISTED`] unreached points by name.

use crate::connection::{Reply, TargetError};
use crate::discover::Discovery;
use crate::probe::Family;
use std::collections::{BTreeMap, BTreeSet};

/// The families whose payloads go into tool inputs, and whose reach is measured.
pub const INPUT_FAMILIES: [Family; 5] = [
    Family::TRAV,
    Family::INJ_CMD,
    Family::INJ_ARG,
    Family::INJ_SQL,
    Family::SSRF,
];

/// MCP 2026-07-28's code for routing headers (`Mcp-Method`, `Mcp-Name`) that are missing or
/// do not match the body: the transport refused the request, no guard saw it.
pub const HEADER_MISMATCH: i64 = -32020;

/// Unreached points named in the report, at most.
pub const MAX_UNREACHED_LISTED: usize = 50;

/// How a tool's baseline calls went, before any attack.
#[derive(Debug, Clone, Default)]
pub struct BaselineCheck {
    /// The variant of [`crate::discover::Baselines`] that was accepted (or the last tried).
    pub variant: usize,
    pub accepted: bool,
    /// The target's answer to the first refused variant.
    pub refusal: Option<String>,
    /// True when every variant tried got that same answer (ids and numbers aside): the tool
    /// did not tell its baselines apart.
    pub uniform: bool,
    /// The accepted call's latency.
    pub latency: Option<std::time::Duration>,
}

/// How one call at a point was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The tool answered (a result, an error result, or a JSON-RPC error of its own).
    Tool,
    /// The request's shape was refused: -32600, -32601, -32602, -32700, or -32020 (the
    /// routing headers of 2026-07-28 over HTTP).
    InvalidParams,
    /// The rate limiter refused it.
    Throttled,
    /// No answer: a timeout, a closed connection, an HTTP error status.
    None,
    /// The same answer as the tool's refused baseline (ids and numbers aside).
    LikeRefusedBaseline,
}

impl Answer {
    /// How `reply` answered, `throttled` when the refusal classifier says it is a limiter's.
    ///
    /// For a prompt's or a resource template's synthesised tool (`surface` not `"tool"`),
    /// -32602 is the surface's own answer: the harness builds the request's shape (a prompt
    /// name and strings, a URI), so what the server refuses as invalid is the value itself,
    /// and -32602 is what the specification tells it to answer (an invalid prompt argument;
    /// a resource not found from 2026-07-28, SEP-2164).
    pub fn of(reply: &Result<Reply, TargetError>, throttled: bool, surface: &str) -> Answer {
        if throttled {
            return Answer::Throttled;
        }
        match reply {
            Ok(Reply::Result(_)) => Answer::Tool,
            Ok(Reply::Error { code: -32602, .. }) if surface != "tool" => Answer::Tool,
            Ok(Reply::Error {
                code: -32600 | -32601 | -32602 | -32700 | HEADER_MISMATCH,
                ..
            }) => Answer::InvalidParams,
            Ok(Reply::Error { .. }) => Answer::Tool,
            Err(_) => Answer::None,
        }
    }

    /// As [`Answer::of`], and [`Answer::LikeRefusedBaseline`] for a tool answer that repeats
    /// `refusal`, the tool's answer to its refused baseline.
    pub fn compared(
        reply: &Result<Reply, TargetError>,
        throttled: bool,
        refusal: Option<&str>,
        surface: &str,
    ) -> Answer {
        let answer = Answer::of(reply, throttled, surface);
        match (answer, reply, refusal) {
            (Answer::Tool, Ok(reply), Some(refusal))
                if same_answer(&reply.summary(300), refusal) =>
            {
                Answer::LikeRefusedBaseline
            }
            _ => answer,
        }
    }
}

/// Two answers are the same when they are equal once runs of digits and hex (correlation
/// ids, timestamps, counts) and case are set aside.
pub fn same_answer(a: &str, b: &str) -> bool {
    fn shape(text: &str) -> String {
        let mut out = String::new();
        let mut run = String::new();
        let flush = |run: &mut String, out: &mut String| {
            if run.chars().any(|c| c.is_ascii_digit()) || run.len() >= 8 {
                out.push('#');
            } else {
                out.push_str(run);
            }
            run.clear();
        };
        for c in text.chars() {
            if c.is_ascii_hexdigit() {
                run.push(c.to_ascii_lowercase());
            } else {
                flush(&mut run, &mut out);
                out.extend(c.to_lowercase());
            }
        }
        flush(&mut run, &mut out);
        out
    }
    shape(a) == shape(b)
}

#[derive(Debug, Clone, Copy, Default)]
struct PointTally {
    sent: u32,
    /// Payloads the tool's schema allows (or that could not be checked).
    allowed: u32,
    reached: u32,
    throttled: u32,
    invalid_params: u32,
    unanswered: u32,
    like_refused_baseline: u32,
}

/// The running count of a run's calls at points.
#[derive(Debug, Default)]
pub struct CoverageLedger {
    points: BTreeMap<(Family, String, String), PointTally>,
    calls: BTreeMap<Family, u64>,
    stopped: BTreeMap<Family, String>,
}

impl CoverageLedger {
    /// Counts one call at a point; returns whether it reached the tool.
    pub fn record(
        &mut self,
        family: Family,
        tool: &str,
        pointer: &str,
        schema_allows: Option<bool>,
        answer: Answer,
    ) -> bool {
        let tally = self
            .points
            .entry((family, tool.to_owned(), pointer.to_owned()))
            .or_default();
        tally.sent += 1;
        let allowed = schema_allows != Some(false);
        if allowed {
            tally.allowed += 1;
        }
        let reached = allowed && answer == Answer::Tool;
        match answer {
            Answer::Tool if reached => tally.reached += 1,
            Answer::Tool => {}
            Answer::InvalidParams => tally.invalid_params += 1,
            Answer::Throttled => tally.throttled += 1,
            Answer::None => tally.unanswered += 1,
            Answer::LikeRefusedBaseline => tally.like_refused_baseline += 1,
        }
        *self.calls.entry(family).or_default() += 1;
        reached
    }

    /// Notes that `family` stopped before attacking everything, and why (the first reason).
    pub fn stopped(&mut self, family: Family, reason: &str) {
        self.stopped
            .entry(family)
            .or_insert_with(|| reason.to_owned());
    }

    /// Whether an input family has sent a payload to this point.
    pub fn attacked(&self, tool: &str, pointer: &str) -> bool {
        self.tallies_of(tool, pointer).sent > 0
    }

    fn tallies_of(&self, tool: &str, pointer: &str) -> PointTally {
        let mut total = PointTally::default();
        for ((family, t, p), tally) in &self.points {
            if t == tool && p == pointer && INPUT_FAMILIES.contains(family) {
                total.sent += tally.sent;
                total.allowed += tally.allowed;
                total.reached += tally.reached;
                total.throttled += tally.throttled;
                total.invalid_params += tally.invalid_params;
                total.unanswered += tally.unanswered;
                total.like_refused_baseline += tally.like_refused_baseline;
            }
        }
        total
    }

    /// The report's view of reach, for the families that ran (`ran`).
    pub fn summarize(
        &self,
        discovery: &Discovery,
        baselines: &BTreeMap<String, BaselineCheck>,
        ran: &[Family],
    ) -> Coverage {
        let input_ran: Vec<Family> = INPUT_FAMILIES
            .iter()
            .copied()
            .filter(|f| ran.contains(f))
            .collect();
        let families = input_ran
            .iter()
            .map(|family| {
                let attacked: BTreeSet<(&str, &str)> = self
                    .points
                    .iter()
                    .filter(|((f, _, _), _)| f == family)
                    .map(|((_, t, p), _)| (t.as_str(), p.as_str()))
                    .collect();
                let reached = self
                    .points
                    .iter()
                    .filter(|((f, _, _), tally)| f == family && tally.reached > 0)
                    .count();
                FamilyReach {
                    family: *family,
                    points_attacked: attacked.len(),
                    points_reached: reached,
                    calls: self.calls.get(family).copied().unwrap_or(0),
                    stopped: self.stopped.get(family).cloned(),
                }
            })
            .collect();
        let mut unreached = Vec::new();
        let mut unreached_count = 0;
        let mut points_reached = 0;
        let mut surfaces: Vec<SurfaceReach> = crate::surface::SURFACES
            .iter()
            .map(|surface| SurfaceReach {
                surface,
                targets: 0,
                points: 0,
                points_reached: 0,
            })
            .collect();
        for tool in &discovery.tools {
            let surface = crate::surface::surface_of(&tool.name);
            let tally_of_surface = surfaces
                .iter_mut()
                .find(|s| s.surface == surface)
                .expect("every surface is listed");
            tally_of_surface.targets += 1;
            tally_of_surface.points += tool.points.len();
            for point in &tool.points {
                let tally = self.tallies_of(&tool.name, &point.pointer);
                if tally.reached > 0 {
                    points_reached += 1;
                    if let Some(s) = surfaces.iter_mut().find(|s| s.surface == surface) {
                        s.points_reached += 1;
                    }
                    continue;
                }
                if input_ran.is_empty() {
                    continue;
                }
                unreached_count += 1;
                if unreached.len() >= MAX_UNREACHED_LISTED {
                    continue;
                }
                let reason = if tally.sent == 0 {
                    let stops: Vec<String> = self
                        .stopped
                        .iter()
                        .map(|(family, why)| format!("{}: {why}", family.name()))
                        .collect();
                    if let Some(problem) = &tool.schema_problem {
                        format!("no valid call could be built: {problem}")
                    } else if stops.is_empty() {
                        "never attacked".to_owned()
                    } else {
                        format!("never attacked ({})", stops.join("; "))
                    }
                } else if tally.throttled > 0 && tally.throttled + tally.unanswered >= tally.sent {
                    "the target throttled every payload".to_owned()
                } else if tally.allowed == 0 {
                    "the tool's schema forbids every payload sent (pattern, format, length or enum)"
                        .to_owned()
                } else if tally.like_refused_baseline > 0 {
                    "the tool answered every payload as it answered its refused baseline: a guard cannot be told from a tool that refuses everything".to_owned()
                } else if tally.invalid_params > 0 {
                    format!(
                        "the target refused all {} payloads as invalid (-32602 or similar)",
                        tally.sent
                    )
                } else {
                    "no answer to any payload".to_owned()
                };
                unreached.push(UnreachedPoint {
                    tool: tool.name.clone(),
                    pointer: point.pointer.clone(),
                    reason,
                });
            }
        }
        let refused_baselines: Vec<RefusedBaseline> = discovery
            .tools
            .iter()
            .filter_map(|tool| {
                let check = baselines.get(&tool.name)?;
                (!check.accepted).then(|| RefusedBaseline {
                    tool: tool.name.clone(),
                    refusal: check.refusal.clone().unwrap_or_default(),
                })
            })
            .collect();
        let accepted = discovery
            .tools
            .iter()
            .filter(|t| baselines.get(&t.name).is_some_and(|b| b.accepted))
            .count();
        let schema_problems = discovery
            .tools
            .iter()
            .filter_map(|tool| {
                tool.schema_problem.as_ref().map(|problem| SchemaProblem {
                    tool: tool.name.clone(),
                    problem: problem.clone(),
                })
            })
            .collect();
        let points = discovery.point_count();
        let checked_baselines = discovery
            .tools
            .iter()
            .filter(|t| baselines.contains_key(&t.name))
            .count();
        let verdict = if input_ran.is_empty() {
            ReachVerdict::NotMeasured
        } else if discovery.tools.is_empty()
            || (checked_baselines > 0 && accepted == 0)
            || (points > 0 && points_reached == 0)
        {
            ReachVerdict::Nothing
        } else if unreached_count > 0 || !self.stopped.is_empty() || accepted < checked_baselines {
            ReachVerdict::Partial
        } else {
            ReachVerdict::Complete
        };
        let mut coverage = Coverage {
            verdict,
            tools: discovery.tools.len(),
            tools_with_accepted_baseline: accepted,
            refused_baselines,
            schema_problems,
            points,
            points_reached,
            points_unreached: unreached_count,
            surfaces,
            families,
            unreached,
            advice: Vec::new(),
            access_oracle: "inotify",
            planted_path_touches: 0,
        };
        coverage.advice = advice(&coverage);
        coverage
    }
}

/// Whether the run reached what it needed to, for a verdict to mean something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReachVerdict {
    /// Every point was reached by some input family, every baseline accepted.
    Complete,
    /// Some points or tools were not reached (listed), or a family ran out of budget.
    Partial,
    /// Nothing was reached: no tools, every tool refused its baseline, or no point got an
    /// answer from its tool. Such a run is never certified.
    Nothing,
    /// No input family was selected (`--only`/`--skip`): reach was not measured.
    NotMeasured,
}

impl ReachVerdict {
    pub fn name(self) -> &'static str {
        match self {
            ReachVerdict::Complete => "complete",
            ReachVerdict::Partial => "partial",
            ReachVerdict::Nothing => "nothing",
            ReachVerdict::NotMeasured => "not measured",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FamilyReach {
    pub family: Family,
    pub points_attacked: usize,
    pub points_reached: usize,
    pub calls: u64,
    /// Why the family stopped before attacking everything, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UnreachedPoint {
    pub tool: String,
    pub pointer: String,
    pub reason: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RefusedBaseline {
    pub tool: String,
    pub refusal: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaProblem {
    pub tool: String,
    pub problem: String,
}

/// Reach, for the report.
/// Reach on one surface.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SurfaceReach {
    /// `tool`, `prompt`, `resource_template` or `completion`.
    pub surface: &'static str,
    /// Tools, prompts with arguments, templates with variables, or completable arguments.
    pub targets: usize,
    pub points: usize,
    pub points_reached: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Coverage {
    pub verdict: ReachVerdict,
    pub tools: usize,
    pub tools_with_accepted_baseline: usize,
    /// Tools that refused every baseline call, with the target's answer.
    pub refused_baselines: Vec<RefusedBaseline>,
    /// Tools whose input schema the engine could not read or satisfy.
    pub schema_problems: Vec<SchemaProblem>,
    /// String points found, at any depth.
    pub points: usize,
    /// Points at least one input family reached.
    pub points_reached: usize,
    pub points_unreached: usize,
    /// Targets and points by surface: tools, prompts, resource templates, completions
    /// ([`crate::surface`]).
    pub surfaces: Vec<SurfaceReach>,
    pub families: Vec<FamilyReach>,
    /// Points no input family reached, and why (at most [`MAX_UNREACHED_LISTED`]).
    pub unreached: Vec<UnreachedPoint>,
    /// What the user can pass to reach more.
    pub advice: Vec<String>,
    /// How the access oracle saw the planted paths: `inotify` (every open, read and write) or
    /// `snapshot` (writes only).
    pub access_oracle: &'static str,
    /// Touches of the planted paths outside the sandbox seen during the whole run, by any
    /// call (0 for a server that stays in its sandbox: the harness itself touches none).
    pub planted_path_touches: u64,
}

impl Coverage {
    /// The reach by surface in words (`prompts 1/1, resource templates 1/1 points`), when
    /// there is more than tools; `None` for tools alone.
    pub fn surfaces_line(&self) -> Option<String> {
        let others: Vec<String> = self
            .surfaces
            .iter()
            .filter(|s| s.surface != "tool" && s.targets > 0)
            .map(|s| {
                format!(
                    "{} {}/{} points",
                    match s.surface {
                        "prompt" => "prompts",
                        "completion" => "completions",
                        _ => "resource templates",
                    },
                    s.points_reached,
                    s.points
                )
            })
            .collect();
        if others.is_empty() {
            return None;
        }
        let tools = self.surfaces.iter().find(|s| s.surface == "tool");
        Some(format!(
            "tools {}/{} points, {}",
            tools.map_or(0, |t| t.points_reached),
            tools.map_or(0, |t| t.points),
            others.join(", ")
        ))
    }

    /// A run that measured nothing (no input family ran, or the run ended before discovery).
    pub fn not_measured() -> Coverage {
        Coverage {
            verdict: ReachVerdict::NotMeasured,
            tools: 0,
            tools_with_accepted_baseline: 0,
            refused_baselines: Vec::new(),
            schema_problems: Vec::new(),
            points: 0,
            points_reached: 0,
            points_unreached: 0,
            surfaces: Vec::new(),
            families: Vec::new(),
            unreached: Vec::new(),
            advice: Vec::new(),
            access_oracle: "inotify",
            planted_path_touches: 0,
        }
    }
}

fn advice(coverage: &Coverage) -> Vec<String> {
    let mut out = Vec::new();
    if coverage.tools == 0 {
        out.push(
            "the target lists no tools: there is no input to attack (resources and prompts are not attacked yet)"
                .to_owned(),
        );
    }
    if !coverage.refused_baselines.is_empty() {
        out.push(format!(
            "{} tool(s) refused every baseline call: give the server a directory it accepts with --sandbox DIR (stdio) or start it with the data its tools expect",
            coverage.refused_baselines.len()
        ));
    }
    if coverage.refused_baselines.iter().any(|r| {
        let lower = r.refusal.to_ascii_lowercase();
        lower.contains("401") || lower.contains("unauthorized") || lower.contains("403")
    }) {
        out.push("the target refused the harness's credentials: pass --header 'Authorization: Bearer ...'".to_owned());
    }
    if !coverage.schema_problems.is_empty() {
        out.push(format!(
            "{} tool schema(s) could not be satisfied (listed): a call the schema allows could not be built",
            coverage.schema_problems.len()
        ));
    }
    if coverage.families.iter().any(|f| f.stopped.is_some()) {
        out.push(
            "a family ran out of its share of the budget: raise --max-duration, or select fewer families with --only"
                .to_owned(),
        );
    }
    if coverage
        .unreached
        .iter()
        .any(|u| u.reason.contains("throttled"))
    {
        out.push("the target's rate limit refused payloads: raise it for the run, or raise --max-duration".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::parse_tool;
    use serde_json::json;

    fn discovery() -> Discovery {
        Discovery {
            tools: vec![
                parse_tool(&json!({"name": "read", "inputSchema": {"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}}})).unwrap(),
                parse_tool(&json!({"name": "code", "inputSchema": {"type": "object", "required": ["c"], "properties": {"c": {"type": "string", "pattern": "^[a-z]+$"}}}})).unwrap(),
            ],
            resources: 0,
            prompts: 0,
            listings: Default::default(),
        }
    }

    fn accepted(names: &[&str]) -> BTreeMap<String, BaselineCheck> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    BaselineCheck {
                        accepted: true,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_point_reached_once_counts_and_schema_refusals_do_not() {
        let mut ledger = CoverageLedger::default();
        assert!(ledger.record(Family::TRAV, "read", "/path", Some(true), Answer::Tool));
        assert!(!ledger.record(Family::TRAV, "code", "/c", Some(false), Answer::Tool));
        assert!(!ledger.record(
            Family::INJ_SQL,
            "code",
            "/c",
            Some(true),
            Answer::InvalidParams
        ));
        let coverage =
            ledger.summarize(&discovery(), &accepted(&["read", "code"]), &INPUT_FAMILIES);
        assert_eq!(coverage.verdict, ReachVerdict::Partial);
        assert_eq!((coverage.points, coverage.points_reached), (2, 1));
        assert_eq!(coverage.unreached.len(), 1);
        assert!(
            coverage.unreached[0].reason.contains("invalid"),
            "{:?}",
            coverage.unreached
        );
        let trav = &coverage.families[0];
        assert_eq!(
            (trav.points_attacked, trav.points_reached, trav.calls),
            (2, 1, 2)
        );
    }

    #[test]
    fn nothing_reached_no_tools_and_refused_baselines_are_nothing() {
        let mut ledger = CoverageLedger::default();
        ledger.record(Family::TRAV, "read", "/path", Some(true), Answer::Throttled);
        let coverage = ledger.summarize(&discovery(), &accepted(&["read"]), &INPUT_FAMILIES);
        assert_eq!(coverage.verdict, ReachVerdict::Nothing);
        assert!(
            coverage
                .unreached
                .iter()
                .any(|u| u.reason.contains("throttled"))
        );
        let none = CoverageLedger::default().summarize(
            &Discovery::default(),
            &BTreeMap::new(),
            &INPUT_FAMILIES,
        );
        assert_eq!(none.verdict, ReachVerdict::Nothing);
        assert!(none.advice[0].contains("no tools"));
        let mut refused = BTreeMap::new();
        refused.insert(
            "read".to_owned(),
            BaselineCheck {
                refusal: Some("denied".into()),
                ..Default::default()
            },
        );
        let mut ledger = CoverageLedger::default();
        ledger.record(Family::TRAV, "read", "/path", Some(true), Answer::Tool);
        let coverage = ledger.summarize(&discovery(), &refused, &INPUT_FAMILIES);
        assert_eq!(coverage.verdict, ReachVerdict::Nothing);
        assert_eq!(coverage.refused_baselines[0].refusal, "denied");
        // No input family selected: not measured, whatever happened.
        assert_eq!(
            CoverageLedger::default()
                .summarize(&discovery(), &BTreeMap::new(), &[Family::PROTO])
                .verdict,
            ReachVerdict::NotMeasured
        );
    }

    #[test]
    fn an_answer_like_the_refused_baseline_is_not_reached() {
        let refused = Ok(Reply::Result(
            json!({"isError": true, "content": [{"type": "text", "text": "Denied (correlation id 4ec3b593d212a0ab)"}]}),
        ));
        assert_eq!(
            Answer::compared(
                &refused,
                false,
                Some("denied (correlation id 50c293dd01b9e1bf)"),
                "tool"
            ),
            Answer::LikeRefusedBaseline
        );
        assert_eq!(
            Answer::compared(&refused, false, Some("invalid path: readme.txt"), "tool"),
            Answer::Tool
        );
        assert_eq!(
            Answer::compared(&refused, false, None, "tool"),
            Answer::Tool
        );
        assert_eq!(
            Answer::compared(&refused, true, None, "tool"),
            Answer::Throttled
        );
    }

    #[test]
    fn invalid_params_is_a_prompts_or_a_resources_own_answer_but_not_a_tools() {
        let invalid = Ok(Reply::Error {
            code: -32602,
            message: "Resource not found".into(),
            data: None,
        });
        assert_eq!(Answer::of(&invalid, false, "tool"), Answer::InvalidParams);
        assert_eq!(Answer::of(&invalid, false, "prompt"), Answer::Tool);
        assert_eq!(
            Answer::of(&invalid, false, "resource_template"),
            Answer::Tool
        );
        let unknown_method = Ok(Reply::Error {
            code: -32601,
            message: "Method not found".into(),
            data: None,
        });
        assert_eq!(
            Answer::of(&unknown_method, false, "resource_template"),
            Answer::InvalidParams
        );
        let header_mismatch = Ok(Reply::Error {
            code: HEADER_MISMATCH,
            message: "missing required Mcp-Name header".into(),
            data: None,
        });
        assert_eq!(
            Answer::of(&header_mismatch, false, "prompt"),
            Answer::InvalidParams
        );
        // A surface that refuses every value alike is still not reached.
        assert_eq!(
            Answer::compared(
                &invalid,
                false,
                Some("error -32602: Resource not found"),
                "resource_template"
            ),
            Answer::LikeRefusedBaseline
        );
    }

    #[test]
    fn every_point_reached_is_complete() {
        let mut ledger = CoverageLedger::default();
        ledger.record(Family::TRAV, "read", "/path", None, Answer::Tool);
        ledger.record(Family::INJ_SQL, "code", "/c", Some(true), Answer::Tool);
        let coverage =
            ledger.summarize(&discovery(), &accepted(&["read", "code"]), &INPUT_FAMILIES);
        assert_eq!(coverage.verdict, ReachVerdict::Complete, "{coverage:?}");
        assert!(coverage.advice.is_empty());
    }
}
