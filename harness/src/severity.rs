//! Severity in context: a probe's impact depends on facts the run establishes, so a failing
//! probe's severity is raised or lowered by one documented rule ([`effective`]) and the report
//! shows both the probe's base severity and the effective one, with the reason.
//!
//! The rules:
//! - **TRANS-ORIGIN and TRANS-HOST on a server that answered without credentials are high.**
//!   With no credential in the way, a page the user opens can reach the server by DNS
//!   rebinding (a foreign Origin or Host is all it takes), and the severity of the probe
//!   becomes that of the server's tools; advisories rate exactly this high.
//! - **A message that wedges the target is medium at least.** RES-ARGUMENT-SIZE is low when
//!   a large line is merely held in memory; when one line stops the target answering while its
//!   process runs on, every later call of its client hangs.
//! - **RATE-FLOOD, RATE-CONCURRENT-BURST and RES-KEY-GROWTH over stdio are low.** A stdio
//!   server has one client, the process that launched it: a flood exhausts only that client's
//!   own session. The same finding over HTTP, where many callers share the server, keeps its
//!   base severity.
//!
//! Cost: nothing measurable. The facts come from the run ([`Context::from_run`]).

use crate::discover::{Discovery, PointKind};
use crate::probe::{FailureMode, Outcome, ProbeInfo, Severity, Verdict, rate, res, trans};

/// What the run established about the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// Reached over Streamable HTTP (else stdio).
    pub http: bool,
    /// The target served a request that carried no credential: AUTH-NO-CREDENTIALS failed, or
    /// the user gave no credential and the target was served anyway.
    pub unauthenticated: bool,
    /// The target has tools that touch files or the network (a path or URL point).
    pub touches_files_or_network: bool,
}

impl Context {
    /// The facts of a finished run.
    pub fn from_run(
        http: bool,
        user_gave_credential: bool,
        outcomes: &[Outcome],
        discovery: &Discovery,
    ) -> Context {
        let no_credentials_served = outcomes
            .iter()
            .any(|o| o.probe.id == trans::AUTH_NO_CREDENTIALS.id && o.verdict == Verdict::Fail);
        Context {
            http,
            unauthenticated: http && (no_credentials_served || !user_gave_credential),
            touches_files_or_network: discovery.tools.iter().any(|t| {
                t.points
                    .iter()
                    .any(|p| matches!(p.kind, PointKind::Path | PointKind::Url))
            }),
        }
    }
}

/// A failing probe's severity in `context` (and its failure `mode`), and why it differs from
/// the base, when it does.
pub fn effective(
    info: &ProbeInfo,
    mode: Option<FailureMode>,
    context: &Context,
) -> (Severity, Option<String>) {
    let base = info.severity;
    if mode == Some(FailureMode::Wedged) && base < Severity::Medium {
        return (
            Severity::Medium,
            Some(format!(
                "raised from {}: one message stopped the target answering while its process ran on",
                base.name()
            )),
        );
    }
    let is = |probes: &[&ProbeInfo]| probes.iter().any(|p| p.id == info.id);
    let rebinding = [&trans::TRANS_ORIGIN, &trans::TRANS_HOST];
    let floods = [
        &rate::RATE_FLOOD,
        &rate::RATE_CONCURRENT_BURST,
        &res::RES_KEY_GROWTH,
    ];
    match () {
        _ if is(&rebinding) && context.unauthenticated && base < Severity::High => {
            let tools = if context.touches_files_or_network {
                " and its tools touch files or the network"
            } else {
                ""
            };
            (
                Severity::High,
                Some(format!(
                    "raised from {}: the server answered without credentials{tools}, so any web page can reach it by DNS rebinding",
                    base.name()
                )),
            )
        }
        _ if is(&floods) && !context.http && base > Severity::Low => (
            Severity::Low,
            Some(format!(
                "lowered from {}: a stdio server serves only the process that launched it, so a flood exhausts only that client",
                base.name()
            )),
        ),
        _ => (base, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::trav;

    #[test]
    fn host_and_origin_are_high_on_a_server_without_credentials() {
        let open = Context {
            http: true,
            unauthenticated: true,
            touches_files_or_network: true,
        };
        let (severity, reason) = effective(&trans::TRANS_HOST, None, &open);
        assert_eq!(severity, Severity::High);
        assert!(reason.unwrap().contains("DNS rebinding"));
        let guarded = Context {
            unauthenticated: false,
            ..open
        };
        assert_eq!(
            effective(&trans::TRANS_HOST, None, &guarded),
            (Severity::Medium, None)
        );
        // Already high: unchanged, no reason.
        assert_eq!(
            effective(&trans::TRANS_ORIGIN, None, &open),
            (Severity::High, None)
        );
    }

    #[test]
    fn floods_are_low_over_stdio_and_keep_their_severity_over_http() {
        let stdio = Context::default();
        let (severity, reason) = effective(&rate::RATE_FLOOD, None, &stdio);
        assert_eq!(severity, Severity::Low);
        assert!(reason.unwrap().contains("stdio"));
        let http = Context {
            http: true,
            ..stdio
        };
        assert_eq!(
            effective(&rate::RATE_FLOOD, None, &http),
            (rate::RATE_FLOOD.severity, None)
        );
        assert_eq!(
            effective(&trav::TRAV_DOTDOT, None, &stdio),
            (Severity::High, None),
            "other probes keep theirs"
        );
    }

    #[test]
    fn a_wedging_message_is_medium() {
        let (severity, reason) = effective(
            &res::RES_ARGUMENT_SIZE,
            Some(FailureMode::Wedged),
            &Context::default(),
        );
        assert_eq!(severity, Severity::Medium);
        assert!(reason.unwrap().contains("stopped the target answering"));
        assert_eq!(
            effective(&res::RES_ARGUMENT_SIZE, None, &Context::default()),
            (Severity::Low, None)
        );
    }

    #[test]
    fn the_context_says_unauthenticated_when_no_credential_was_needed() {
        let discovery = Discovery::default();
        assert!(Context::from_run(true, false, &[], &discovery).unauthenticated);
        assert!(!Context::from_run(true, true, &[], &discovery).unauthenticated);
        let failed = Outcome::new(&trans::AUTH_NO_CREDENTIALS, Verdict::Fail, "served");
        assert!(Context::from_run(true, true, &[failed], &discovery).unauthenticated);
        assert!(!Context::from_run(false, false, &[], &discovery).unauthenticated);
    }
}
