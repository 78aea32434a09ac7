//! Twins of the rate limits: the per-call limit of a stdio session (`Guards::call_limit`), the
//! per-request limit of the HTTP layer (`HttpGuards::limit`), and the size limits
//! (`Guards::limits`).

use super::{
    Flaw,
    Transport::{Http, Stdio},
};
use axum::http::HeaderMap;
use futures::future::BoxFuture;
use reference_server::cli::BuildContext;
use reference_server::guard::api_keys::Principal;
use reference_server::guard::rate_limit::RateLimiter;
use reference_server::guards::{CallLimit, CallRefusal, ExtraTool};
use reference_server::transport::http::{LimitCheck, RequestLimit};
use rmcp::model::JsonObject;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A limiter with the configured rate (already validated by the reference start-up).
fn configured_limiter(context: &BuildContext) -> RateLimiter<String> {
    RateLimiter::new(context.rate_limit).expect("the reference start-up validated the rate limit")
}

use reference_server::guards::call_refusal as refusal;

/// No limit at all.
struct NoLimit;

impl CallLimit for NoLimit {
    fn name(&self) -> &'static str {
        "rate-none"
    }
    fn check<'a>(
        &'a self,
        _principal: &'a str,
        _tool: &'a str,
        _arguments: Option<&'a JsonObject>,
    ) -> BoxFuture<'a, Result<(), CallRefusal>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn tracked_keys(&self) -> usize {
        0
    }
}

pub const RATE_NONE: Flaw = Flaw {
    name: "rate-none",
    summary: "No rate limit on tool calls.",
    caught: &[(Stdio, "RATE-FLOOD")],
    swaps: &["call_limit"],
    harness_args: &[],
    tools: Some(|guards, _| guards.call_limit = Some(Arc::new(NoLimit))),
    http: None,
};

pub const NO_SIZE_LIMIT: Flaw = Flaw {
    name: "no-size-limit",
    summary: "No request size limit: bodies and stdio lines of any size are read whole.",
    caught: &[(Stdio, "RES-ARGUMENT-SIZE"), (Http, "RES-BODY-SIZE")],
    swaps: &["limits"],
    harness_args: &[],
    tools: Some(|guards, _| {
        guards.limits.max_body_bytes = 1 << 30;
        guards.limits.max_string_bytes = 1 << 30;
    }),
    http: None,
};

/// Calls counted per distinct arguments (caller-chosen data) in a table without a cap.
#[derive(Default)]
struct PerArguments(Mutex<HashMap<String, u32>>);

impl CallLimit for PerArguments {
    fn name(&self) -> &'static str {
        "rate-unbounded-keys"
    }
    fn check<'a>(
        &'a self,
        _principal: &'a str,
        _tool: &'a str,
        arguments: Option<&'a JsonObject>,
    ) -> BoxFuture<'a, Result<(), CallRefusal>> {
        let key = serde_json::to_string(&arguments).unwrap_or_default();
        let mut table = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = table.entry(key).or_insert(0);
        *count += 1;
        let verdict = if *count > 20 {
            Err(CallRefusal::Refused)
        } else {
            Ok(())
        };
        Box::pin(std::future::ready(verdict))
    }
    fn tracked_keys(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

pub const RATE_UNBOUNDED_KEYS: Flaw = Flaw {
    name: "rate-unbounded-keys",
    summary: "Tool calls are limited per distinct arguments (caller-chosen data) in a table without a cap: every new value adds an entry that is never removed.",
    caught: &[(Stdio, "RES-KEY-GROWTH")],
    swaps: &["call_limit"],
    harness_args: &[],
    tools: Some(|guards, _| guards.call_limit = Some(Arc::new(PerArguments::default()))),
    http: None,
};

/// The seed's limiter: keyed on a `client_id` argument when the call has one (the caller's own
/// word for who it is), on the principal otherwise.
struct PerClientIdArgument(RateLimiter<String>);

impl CallLimit for PerClientIdArgument {
    fn name(&self) -> &'static str {
        "rate-client-arg"
    }
    fn check<'a>(
        &'a self,
        principal: &'a str,
        _tool: &'a str,
        arguments: Option<&'a JsonObject>,
    ) -> BoxFuture<'a, Result<(), CallRefusal>> {
        let key = arguments
            .and_then(|a| a.get("client_id")?.as_str())
            .map(|id| format!("client:{id}"))
            .unwrap_or_else(|| principal.to_owned());
        Box::pin(std::future::ready(refusal(self.0.check(&key))))
    }
    fn tracked_keys(&self) -> usize {
        self.0.tracked_keys()
    }
}

/// The seed's `service_status(client_id)` tool.
fn service_status() -> ExtraTool {
    ExtraTool {
        tool: super::keys::one_argument_tool(
            "service_status",
            "Reports whether the service is up. Rate limited per client_id.",
            "client_id",
            "Who is asking",
        ),
        call: Arc::new(|_| Box::pin(async { super::keys::text("status: up") })),
    }
}

pub const RATE_CLIENT_ARG: Flaw = Flaw {
    name: "rate-client-arg",
    summary: "The seed's limiter: an extra tool, `service_status`, takes a `client_id` argument, and calls are limited per `client_id` when one is given: a caller resets its limit by naming itself anew.",
    caught: &[(Stdio, "RATE-ROTATING-ID")],
    swaps: &["call_limit", "extra_tools"],
    harness_args: &[],
    tools: Some(|guards, context| {
        guards.call_limit = Some(Arc::new(PerClientIdArgument(configured_limiter(context))));
        guards.extra_tools.push(service_status());
    }),
    http: None,
};

/// What the racy limiter spends between reading its bucket and writing it back, as a round
/// trip to a shared store (Redis, a database) would.
const RACY_STORE_DELAY: Duration = Duration::from_millis(2);

/// A token bucket (burst 20, 20 per second) kept as a read-modify-write with an await in the
/// middle: the lost update of a limiter whose check and count are separate store calls. One by
/// one the limit holds; calls that arrive together all read the same bucket and all pass.
struct RacyLimiter {
    /// Tokens left and when they were counted.
    bucket: Mutex<(f64, Instant)>,
}

impl RacyLimiter {
    const BURST: f64 = 20.0;
    const PER_SECOND: f64 = 20.0;
}

impl CallLimit for RacyLimiter {
    fn name(&self) -> &'static str {
        "rate-race"
    }
    fn check<'a>(
        &'a self,
        _principal: &'a str,
        _tool: &'a str,
        _arguments: Option<&'a JsonObject>,
    ) -> BoxFuture<'a, Result<(), CallRefusal>> {
        Box::pin(async move {
            let now = Instant::now();
            let read = {
                let bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
                let elapsed = now.duration_since(bucket.1).as_secs_f64();
                (bucket.0 + elapsed * Self::PER_SECOND).min(Self::BURST)
            };
            if read < 1.0 {
                return Err(CallRefusal::Refused);
            }
            tokio::time::sleep(RACY_STORE_DELAY).await;
            *self.bucket.lock().unwrap_or_else(|p| p.into_inner()) = (read - 1.0, now);
            Ok(())
        })
    }
    fn tracked_keys(&self) -> usize {
        1
    }
}

pub const RATE_RACE: Flaw = Flaw {
    name: "rate-race",
    summary: "Tool calls are limited (20 at once, 20 per second) by a limiter that reads the bucket, awaits its store, then writes back what it read minus one: calls that arrive together all pass.",
    caught: &[(Stdio, "RATE-CONCURRENT-BURST")],
    swaps: &["call_limit"],
    harness_args: &[],
    tools: Some(|guards, _| {
        guards.call_limit = Some(Arc::new(RacyLimiter {
            bucket: Mutex::new((RacyLimiter::BURST, Instant::now())),
        }))
    }),
    http: None,
};

/// An HTTP limit keyed wrongly: on `X-Forwarded-For` when present, or one bucket for all.
struct WronglyKeyed {
    name: &'static str,
    limiter: RateLimiter<String>,
    global: bool,
}

impl RequestLimit for WronglyKeyed {
    fn name(&self) -> &'static str {
        self.name
    }
    fn check<'a>(&'a self, principal: &'a Principal, headers: &'a HeaderMap) -> LimitCheck<'a> {
        let key = if self.global {
            "everyone".to_owned()
        } else {
            headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| principal.name.clone())
        };
        self.limiter.check(&key).into()
    }
}

pub const RATE_CLIENT_ID: Flaw = Flaw {
    name: "rate-client-id",
    summary: "HTTP: the rate limit is keyed on X-Forwarded-For when present (a caller resets it by sending a new address), instead of on the principal.",
    caught: &[(Http, "RATE-ROTATING-ID")],
    swaps: &["limit"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, context| {
        guards.limit = Arc::new(WronglyKeyed {
            name: "rate-client-id",
            limiter: configured_limiter(context),
            global: false,
        })
    }),
};

pub const RATE_GLOBAL: Flaw = Flaw {
    name: "rate-global",
    summary: "HTTP: one bucket for the whole server: one principal's flood locks out every other.",
    caught: &[(Http, "RATE-SECOND-PRINCIPAL")],
    swaps: &["limit"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, context| {
        guards.limit = Arc::new(WronglyKeyed {
            name: "rate-global",
            limiter: configured_limiter(context),
            global: true,
        })
    }),
};
