//! [`Run`], the one context every family runs in, and the one path to the target: the
//! connection is private here, and every exchange a family makes (a tool call, a raw send, a
//! batch at once, an HTTP request with crafted headers, a call on a second principal's
//! connection) is a method of `Run` that counts it, records it for the passive leak scan,
//! waits out rate-limit refusals where a verdict must not rest on them, and notices a crash.
//!
//! Cost: one bounded push to the transcript per exchange. Failure: a dead stdio target is
//! restarted a bounded number of times; a dead HTTP target stops the run.

use super::*;
use crate::connection::http::HttpConnection;
use crate::connection::{Connection, Observations, RawOutcome};

const MAX_TRANSCRIPT: usize = 5000;
const TRANSCRIPT_REPLY_BYTES: usize = 16 * 1024;

/// How many times [`Run::liveness`] waits out a refused ping.
pub const MAX_LIVENESS_WAITS: usize = 4;

pub struct Run<'a> {
    /// Private: every exchange goes through a method of `Run` (see the module docs).
    connection: &'a mut Connection,
    pub stage: &'a Stage,
    pub tools: &'a [ToolInfo],
    /// The listings discovery received (META reads their texts and lists again to compare).
    pub listings: &'a crate::discover::Listings,
    pub profile: Profile,
    pub transcript: Vec<Exchange>,
    /// The credentials the user gave (read by AUTH, TIME, RATE and LEAK).
    pub credentials: &'a Credentials,
    /// What the user expects of the target's rate limit.
    pub expect: rate::Expectations,
    pub deadline: Instant,
    consecutive_timeouts: u32,
    pub calls: u64,
    /// Requests during which the target exited (each is restarted, up to a limit).
    pub crashes: Vec<Evidence>,
    /// What baseline strings point at (the sandbox and the listener, for stdio targets).
    pub baselines: Baselines,
    /// How each tool's baseline calls went (see [`Run::check_baselines`]).
    pub accepted: BTreeMap<String, BaselineCheck>,
    /// Every call at a point, for the report's coverage.
    pub coverage: CoverageLedger,
    /// How long one request may take (families with their own clients use it).
    pub request_timeout: Duration,
    /// Where a family states something the user should know before it goes on (for example
    /// how long `--profile deep` will take).
    pub events: Option<&'a (dyn Fn(crate::Event<'_>) + Send + Sync)>,
    /// The probes `--only` / `--skip` left in; families whose probes are costly skip the work of
    /// those left out (the rest run whole and their outcomes are filtered afterwards).
    pub selected_ids: Vec<&'static str>,
    /// Wait and retry when the target refuses a call for its rate limit (on by default; the
    /// RATE family turns it off to see the refusals).
    pub back_off_when_limited: bool,
    /// How many calls were retried after a rate-limit refusal.
    pub rate_limited_retries: u64,
    /// What a rate-limit refusal looks like: the explicit signals, and the shapes the RATE
    /// family learned from behaviour.
    pub refusals: RefusalClassifier,
    /// Whether exchanges go into the transcript; floods turn it off after their first calls,
    /// so that thousands of identical exchanges do not crowd out the rest of the run.
    pub recording: bool,
    /// The family running now, its share of the budget and why it stopped, if it did.
    family: Option<Family>,
    family_deadline: Option<Instant>,
    family_call_cap: Option<u64>,
    family_calls: u64,
    family_stop: Option<String>,
    recent_latencies: VecDeque<Duration>,
    /// The median latency of the accepted baseline calls.
    typical_latency: Option<Duration>,
    /// Arguments that reach each point, built once.
    arguments_cache: HashMap<(String, String), Result<Value, String>>,
}

/// The listings of a run made without discovery's (tests).
static NO_LISTINGS: crate::discover::Listings = crate::discover::Listings {
    tools: Vec::new(),
    prompts: Vec::new(),
    resources: Vec::new(),
    resource_templates: Vec::new(),
};

/// The baseline check may use one part in this many of the run's remaining time.
pub const BASELINE_SHARE: u32 = 8;

/// Most retries of one call refused by a rate limit.
pub const MAX_RATE_LIMIT_RETRIES: u32 = 20;
impl<'a> Run<'a> {
    pub fn new(
        connection: &'a mut Connection,
        stage: &'a Stage,
        tools: &'a [ToolInfo],
        profile: Profile,
        credentials: &'a Credentials,
        deadline: Instant,
    ) -> Self {
        let connection_is_stdio = connection.is_stdio();
        Self {
            connection,
            stage,
            tools,
            listings: &NO_LISTINGS,
            profile,
            transcript: Vec::new(),
            credentials,
            expect: rate::Expectations::default(),
            deadline,
            consecutive_timeouts: 0,
            calls: 0,
            crashes: Vec::new(),
            baselines: Baselines {
                sandbox: connection_is_stdio.then(|| stage.sandbox.to_string_lossy().into_owned()),
                listener: stage.listener.as_ref().map(|l| l.url()),
            },
            accepted: BTreeMap::new(),
            coverage: CoverageLedger::default(),
            request_timeout: crate::connection::Budget::default().request_timeout,
            events: None,
            selected_ids: registry().iter().map(|info| info.id).collect(),
            back_off_when_limited: true,
            rate_limited_retries: 0,
            refusals: RefusalClassifier::default(),
            recording: true,
            family: None,
            family_deadline: None,
            family_call_cap: None,
            family_calls: 0,
            family_stop: None,
            recent_latencies: VecDeque::new(),
            typical_latency: None,
            arguments_cache: HashMap::new(),
        }
    }

    /// Whether the user's selection includes `probe`.
    pub fn wants(&self, probe: &ProbeInfo) -> bool {
        self.selected_ids.contains(&probe.id)
    }

    pub fn budget_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Tells the user something now (on stderr, by the binary), not only in the report.
    pub fn notice(&self, message: &str) {
        self.event(crate::Event::Notice(message));
    }

    /// Tells the caller what happened ([`crate::Event`]).
    pub fn event(&self, event: crate::Event<'_>) {
        if let Some(events) = self.events {
            events(event);
        }
    }

    /// Starts `family` with its share of what is left: `weight` out of `remaining_weight` of
    /// the run's remaining time, and (for input families) of the input call budget.
    pub fn begin_family(&mut self, family: Family, weight: u32, remaining_weight: u32) {
        let now = Instant::now();
        let left = self.deadline.saturating_duration_since(now);
        let share = left.mul_f64(f64::from(weight) / f64::from(remaining_weight.max(weight)));
        self.family = Some(family);
        self.family_deadline = Some(now + share);
        self.family_calls = 0;
        self.family_call_cap = crate::coverage::INPUT_FAMILIES.contains(&family).then(|| {
            let total: u32 = crate::coverage::INPUT_FAMILIES
                .iter()
                .map(|f| budget_weight(*f))
                .sum();
            input_call_budget(self.profile) * u64::from(weight) / u64::from(total)
        });
        self.family_stop = None;
        self.recent_latencies.clear();
    }

    /// Ends the current family, noting in the coverage why it stopped, if it did.
    pub fn end_family(&mut self) {
        if let (Some(family), Some(reason)) = (self.family, self.family_stop.clone()) {
            self.coverage.stopped(family, &reason);
        }
        self.family = None;
        self.family_deadline = None;
        self.family_call_cap = None;
        self.family_stop = None;
    }

    /// Why no more calls should be made now, if so: the run's deadline, the family's share,
    /// a slowed-down target, or a target that stopped answering three times in a row.
    pub fn stop_reason(&self) -> Option<String> {
        let now = Instant::now();
        if let Some(reason) = &self.family_stop {
            return Some(reason.clone());
        }
        if now >= self.deadline {
            return Some("the run's --max-duration was reached".to_owned());
        }
        if self.consecutive_timeouts >= 3 {
            return Some("the target stopped answering".to_owned());
        }
        if let Some(deadline) = self.family_deadline
            && now >= deadline
        {
            return Some("the family used its share of the run's time".to_owned());
        }
        if let Some(cap) = self.family_call_cap
            && self.family_calls >= cap
        {
            return Some(format!("the family used its share of the calls ({cap})"));
        }
        None
    }

    /// False once [`Run::stop_reason`] has a reason: families then skip their remaining calls.
    pub fn can_continue(&self) -> bool {
        self.stop_reason().is_none()
    }

    /// Latches the current stop reason as the family's, when a call was not sent for it, so
    /// that the coverage reports it even if the condition passes.
    fn latch_stop(&mut self) {
        if self.family.is_some()
            && self.family_stop.is_none()
            && let Some(reason) = self.stop_reason()
        {
            self.family_stop = Some(reason);
        }
    }

    /// Sends arbitrary bytes ([`Connection::raw`]): counted, and recorded for the passive leak
    /// scan like every other exchange (at most the first 300 bytes of what was sent).
    pub async fn raw(
        &mut self,
        bytes: &[u8],
        extra_headers: &[(&str, &str)],
        drop_headers: &[&str],
    ) -> Result<crate::connection::RawOutcome, TargetError> {
        self.calls += 1;
        let outcome = self
            .connection
            .raw(bytes, extra_headers, drop_headers)
            .await;
        if let Ok(raw) = &outcome {
            let sent = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            self.record(&sent, &raw.excerpt);
        }
        outcome
    }

    /// Sends one `method` request per entry of `params` all at once
    /// ([`Connection::requests_at_once`]), counted; the replies are in order.
    pub async fn at_once(
        &mut self,
        method: &str,
        params: Vec<Value>,
    ) -> Vec<Result<Reply, TargetError>> {
        self.calls += params.len() as u64;
        self.connection.requests_at_once(method, params).await
    }

    /// Whether the target is a stdio child (else HTTP: Streamable, or legacy SSE).
    pub fn is_stdio(&self) -> bool {
        self.connection.is_stdio()
    }

    /// Whether the target speaks Streamable HTTP (the HTTP-level probes' transport).
    pub fn is_streamable_http(&self) -> bool {
        matches!(&*self.connection, Connection::Http(_))
    }

    /// The legacy HTTP+SSE connection, when the target speaks only that.
    pub fn sse(&self) -> Option<&crate::connection::sse::SseConnection> {
        match &*self.connection {
            Connection::Sse(sse) => Some(sse),
            _ => None,
        }
    }

    pub fn record(&mut self, request: &str, reply: &str) {
        if self.recording && self.transcript.len() < MAX_TRANSCRIPT {
            self.transcript.push(Exchange {
                request: request.to_owned(),
                reply: excerpt(reply, TRANSCRIPT_REPLY_BYTES),
            });
        }
    }

    /// The baseline arguments of `tool`: the variant its baseline check accepted (or the
    /// first), `{}` when its schema admits no call.
    pub fn baseline(&self, tool: &ToolInfo) -> Map<String, Value> {
        match self.arguments_at(tool, None) {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// Arguments for `tool` that contain `point` (at its baseline value), in the baseline
    /// variant the tool accepted; `{}` when its schema admits no call.
    pub fn arguments_at(&self, tool: &ToolInfo, point: Option<&crate::discover::Point>) -> Value {
        let variant = self.accepted.get(&tool.name).map_or(0, |c| c.variant);
        tool.arguments(point, &self.baselines, variant)
            .unwrap_or_else(|_| json!({}))
    }

    /// `point` of `tool` as an attack point.
    pub fn attack_point(tool: &ToolInfo, point: &crate::discover::Point) -> AttackPoint {
        AttackPoint {
            tool: tool.name.clone(),
            pointer: point.pointer.clone(),
            kind: point.kind,
            matched: true,
            directory: point.directory,
        }
    }

    /// Calls each tool with its baseline arguments before any attack, trying up to
    /// [`BASELINE_VARIANTS`] variants until one is served (a result that is not an error), so
    /// that payloads meet calls the tool accepts, and the report can list tools that refused
    /// every baseline with their refusal.
    ///
    /// Bounded: at most [`BASELINE_SHARE`] of the run's remaining time; a tool that does not
    /// answer at all is not tried with more variants. Tools left unchecked are attacked as if
    /// accepted, and the coverage counts only the checked ones.
    pub async fn check_baselines(&mut self) {
        let tools: Vec<&ToolInfo> = self.tools.iter().collect();
        let mut latencies = Vec::new();
        let until = Instant::now()
            + self.deadline.saturating_duration_since(Instant::now()) / BASELINE_SHARE;
        for tool in tools {
            if !self.can_continue() || Instant::now() >= until {
                break;
            }
            let mut check = BaselineCheck::default();
            let mut tried: Vec<Value> = Vec::new();
            let mut refusals: Vec<String> = Vec::new();
            for variant in 0..BASELINE_VARIANTS {
                let arguments = match tool.arguments(None, &self.baselines, variant) {
                    Ok(arguments) => arguments,
                    Err(error) => {
                        check.refusal = Some(format!("no valid call could be built: {error}"));
                        break;
                    }
                };
                if tried.contains(&arguments) {
                    continue;
                }
                tried.push(arguments.clone());
                check.variant = variant;
                let started = Instant::now();
                let result = self.call_tool(&tool.name, arguments).await;
                let elapsed = started.elapsed();
                let served =
                    matches!(&result.reply, Ok(reply @ Reply::Result(_)) if !reply.is_tool_error());
                if served {
                    check.accepted = true;
                    check.latency = Some(elapsed);
                    check.refusal = None;
                    latencies.push(elapsed);
                    break;
                }
                refusals.push(match &result.reply {
                    Ok(reply) => reply.summary(300),
                    Err(error) => excerpt(&error.to_string(), 300),
                });
                // The first refusal is the telling one: later variants are fallbacks.
                check.refusal = refusals.first().cloned();
                // No answer at all: another variant would fare no better.
                if result.reply.is_err() || Instant::now() >= until {
                    break;
                }
            }
            if !check.accepted {
                check.variant = 0;
                check.uniform = refusals
                    .iter()
                    .all(|r| crate::coverage::same_answer(r, &refusals[0]));
            }
            self.accepted.insert(tool.name.clone(), check);
        }
        latencies.sort();
        self.typical_latency = latencies.get(latencies.len() / 2).copied();
    }

    /// Every string point of every tool, those of `kinds` first (marked `matched`), then the
    /// rest; within each, tools whose baseline was accepted first.
    pub fn points(&self, kinds: &[PointKind]) -> Vec<AttackPoint> {
        let mut points: Vec<(bool, bool, usize, AttackPoint)> = Vec::new();
        for (index, tool) in self.tools.iter().enumerate() {
            let accepted = self.accepted.get(&tool.name).is_none_or(|c| c.accepted);
            for point in &tool.points {
                let matched = kinds.contains(&point.kind);
                points.push((
                    !matched,
                    !accepted,
                    index,
                    AttackPoint {
                        tool: tool.name.clone(),
                        pointer: point.pointer.clone(),
                        kind: point.kind,
                        matched,
                        directory: point.directory,
                    },
                ));
            }
        }
        points.sort_by_key(|(unmatched, refused, index, _)| (*unmatched, *refused, *index));
        points.into_iter().map(|(.., point)| point).collect()
    }

    /// The arguments that reach `point`, with the point's value left at its baseline.
    fn arguments_for(&mut self, point: &AttackPoint) -> Result<Value, String> {
        let key = (point.tool.clone(), point.pointer.clone());
        if let Some(cached) = self.arguments_cache.get(&key) {
            return cached.clone();
        }
        let variant = self.accepted.get(&point.tool).map_or(0, |c| c.variant);
        let built = match self.tools.iter().find(|t| t.name == point.tool) {
            Some(tool) => tool
                .arguments(tool.point(&point.pointer), &self.baselines, variant)
                .map_err(|e| e.to_string()),
            None => Err(format!("no tool is called {}", point.tool)),
        };
        self.arguments_cache.insert(key, built.clone());
        built
    }

    /// Calls `point`'s tool with `value` at the point and everything else at its baseline: one
    /// payload in an otherwise valid call. Counted in the coverage.
    pub async fn call_at(&mut self, point: &AttackPoint, value: Value) -> CallResult {
        let arguments = match self.arguments_for(point) {
            Ok(arguments) => with_value_at(arguments, &point.pointer, value),
            Err(reason) => {
                return CallResult {
                    request: format!("{} at {}", point.tool, point.pointer),
                    reply: Err(TargetError::NotSent(format!(
                        "no valid call reaches this point: {reason}"
                    ))),
                    touches: Vec::new(),
                    reached: false,
                };
            }
        };
        let schema_allows = self
            .tools
            .iter()
            .find(|t| t.name == point.tool)
            .and_then(|t| t.schema.as_ref())
            .and_then(|s| s.is_valid(&arguments));
        let started = Instant::now();
        let mut result = self.call_tool(&point.tool, arguments).await;
        self.watch_for_slowdown(started.elapsed());
        if let Some(family) = self.family {
            let refused_baseline = self
                .accepted
                .get(&point.tool)
                .filter(|check| !check.accepted && check.uniform)
                .and_then(|check| check.refusal.as_deref());
            let throttled = self.refusals.wait(&result.reply).is_some();
            result.reached = self.coverage.record(
                family,
                &point.tool,
                &point.pointer,
                schema_allows,
                Answer::compared(
                    &result.reply,
                    throttled,
                    refused_baseline,
                    crate::surface::surface_of(&point.tool),
                ),
            );
        }
        result
    }

    /// One payload at `point`, counted in `tally`; `None` (and the tally marked stopped) when
    /// the run or the family may make no more calls.
    pub async fn attack(
        &mut self,
        point: &AttackPoint,
        payload: Value,
        tally: &mut Tally,
    ) -> Option<CallResult> {
        if !self.can_continue() {
            tally.stop(self);
            return None;
        }
        let result = self.call_at(point, payload).await;
        tally.count(point, &result);
        Some(result)
    }

    /// Stops the family when its recent replies are much slower than the baselines' were.
    fn watch_for_slowdown(&mut self, latency: Duration) {
        let Some(typical) = self.typical_latency else {
            return;
        };
        self.recent_latencies.push_back(latency);
        if self.recent_latencies.len() > SLOWDOWN_WINDOW {
            self.recent_latencies.pop_front();
        }
        if self.recent_latencies.len() < SLOWDOWN_WINDOW || self.family_stop.is_some() {
            return;
        }
        let mut sorted: Vec<Duration> = self.recent_latencies.iter().copied().collect();
        sorted.sort();
        let median = sorted[SLOWDOWN_WINDOW / 2];
        if median > typical * SLOWDOWN_FACTOR && median > typical + SLOW_REPLY_FLOOR {
            self.family_stop = Some(format!(
                "the target slowed down without refusing: the last replies took {} ms (median), the baseline calls {} ms",
                median.as_millis(),
                typical.as_millis()
            ));
        }
    }

    /// Calls a tool and records the exchange.
    /// Calls `tool` with `arguments`: `tools/call`, or for a prompt's or a resource
    /// template's synthesised tool, the request that surface takes ([`crate::surface`]).
    pub async fn call_tool(&mut self, tool: &str, arguments: Value) -> CallResult {
        let (method, params) = crate::surface::request_for(tool, arguments);
        self.request(method, params).await
    }

    /// Liveness ([`Connection::liveness`]), with a limiter's refusal of the ping waited out
    /// (at most [`MAX_LIVENESS_WAITS`] times, within the deadline): a 429 is the target's own
    /// guard answering, not a sign of death, and after a flood the ping is often refused. A
    /// ping refused every time is alive too: something on the target answered it each time.
    pub async fn liveness(&mut self) -> crate::connection::Liveness {
        let mut reply = self.connection.request("ping", None).await;
        for _ in 0..MAX_LIVENESS_WAITS {
            let Some(wait) = self.refusals.wait(&reply) else {
                return self.connection.liveness_of(reply);
            };
            if Instant::now() + wait >= self.deadline {
                break;
            }
            tokio::time::sleep(wait).await;
            reply = self.connection.request("ping", None).await;
        }
        if self.refusals.wait(&reply).is_some() {
            return crate::connection::Liveness::Alive;
        }
        self.connection.liveness_of(reply)
    }

    /// [`Self::liveness`] as a yes or no.
    pub async fn alive(&mut self) -> bool {
        self.liveness().await.is_alive()
    }

    /// Sends any request and records the exchange.
    pub async fn request(&mut self, method: &str, params: Value) -> CallResult {
        let request = json!({"method": method, "params": params}).to_string();
        if let Some(reason) = self.stop_reason() {
            self.latch_stop();
            return CallResult {
                request,
                reply: Err(TargetError::NotSent(reason)),
                touches: Vec::new(),
                reached: false,
            };
        }
        // Touches before this call belong to the one before it, which has been judged.
        self.stage.drain_touches();
        self.calls += 1;
        self.family_calls += 1;
        let mut reply = self.connection.request(method, Some(params.clone())).await;
        let mut retries = 0;
        while let Some(wait) = self.refusal_wait(&reply, &mut retries) {
            tokio::time::sleep(wait).await;
            reply = self.connection.request(method, Some(params.clone())).await;
        }
        match &reply {
            Err(TargetError::Timeout(_)) => self.consecutive_timeouts += 1,
            Err(TargetError::Closed(detail)) => {
                self.crashes.push(Evidence {
                    tool: None,
                    point: None,
                    request: excerpt(&request, 600),
                    reply: excerpt(
                        &format!("{detail}; stderr: {}", self.connection.stderr_tail()),
                        600,
                    ),
                    oracle: "the target exited while handling this request".into(),
                });
                // A dead stdio target is restarted so the run goes on (a bounded number of times).
                if !self.connection.is_stdio() || self.connection.restart().await.is_err() {
                    self.consecutive_timeouts = u32::MAX;
                }
            }
            _ => self.consecutive_timeouts = 0,
        }
        let touches = self.stage.drain_touches();
        let result = CallResult {
            request,
            reply,
            touches,
            reached: false,
        };
        let text = result.text();
        self.record(&result.request, &text);
        result
    }
}

/// What a family may read of an HTTP connection (a snapshot; exchanges go through [`Run`]).
#[derive(Debug, Clone)]
pub struct HttpView {
    pub url: String,
    pub session_id: Option<String>,
    pub stateless: bool,
    /// The headers the user gave (`--header`), credentials included.
    pub user_headers: Vec<(String, String)>,
}

/// The exchanges of the families that need more than a tool call: each counted and recorded
/// here, never on the connection directly.
impl<'a> Run<'a> {
    /// How long to wait before sending `reply`'s request again, when it is a rate-limit
    /// refusal to wait out: it answers nothing the probe asked, so no verdict may rest on it.
    /// Bounded by [`MAX_RATE_LIMIT_RETRIES`] (counted in `retries`) and by the run's deadline;
    /// the retry is counted as a call.
    fn refusal_wait(
        &mut self,
        reply: &Result<Reply, TargetError>,
        retries: &mut u32,
    ) -> Option<Duration> {
        if !self.back_off_when_limited || *retries >= MAX_RATE_LIMIT_RETRIES {
            return None;
        }
        let wait = self.refusals.wait(reply)?;
        if Instant::now() + wait >= self.deadline {
            return None;
        }
        *retries += 1;
        self.rate_limited_retries += 1;
        self.calls += 1;
        Some(wait)
    }

    /// The HTTP connection's state, or `None` for a stdio target.
    pub fn http_view(&self) -> Option<HttpView> {
        match &*self.connection {
            Connection::Http(http) => Some(HttpView {
                url: http.url.clone(),
                session_id: http.session_id.clone(),
                stateless: http.stateless,
                user_headers: http.user_headers().to_vec(),
            }),
            Connection::Stdio(_) | Connection::Sse(_) => None,
        }
    }

    fn http_mut(&mut self) -> Result<&mut HttpConnection, TargetError> {
        match &mut *self.connection {
            Connection::Http(http) => Ok(http),
            Connection::Stdio(_) | Connection::Sse(_) => Err(TargetError::Transport(
                "not a Streamable HTTP target".into(),
            )),
        }
    }

    fn recorded(&mut self, sent: &str, outcome: &Result<RawOutcome, TargetError>) {
        self.calls += 1;
        if let Ok(raw) = outcome {
            self.record(sent, &raw.excerpt);
        }
    }

    /// POSTs `bytes` over HTTP with `extra` headers set and `drop` headers left out (to `url`
    /// instead of the endpoint when given).
    pub async fn http_raw(
        &mut self,
        bytes: &[u8],
        extra: &[(&str, &str)],
        drop: &[&str],
        url: Option<&str>,
    ) -> Result<RawOutcome, TargetError> {
        let outcome = self.http_mut()?.raw(bytes, extra, drop, url).await;
        let sent = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        self.recorded(&sent, &outcome);
        outcome
    }

    /// GETs `url` (a document of the target's, such as its OAuth metadata).
    pub async fn http_get(&mut self, url: &str) -> Result<RawOutcome, TargetError> {
        let outcome = self.http_mut()?.get(url).await;
        self.recorded(&format!("GET {url}"), &outcome);
        outcome
    }

    /// DELETEs `session` (ends it, as a client leaving does).
    pub async fn delete_session(&mut self, session: &str) -> Result<RawOutcome, TargetError> {
        let outcome = self.http_mut()?.delete_session(session).await;
        self.recorded(&format!("DELETE session {session}"), &outcome);
        outcome
    }

    /// A second connection of the same principal (its own session).
    pub async fn connect_again(&mut self) -> Result<HttpConnection, TargetError> {
        self.calls += 1;
        self.http_mut()?.connect_again().await
    }

    /// A connection of another principal: `authorization` in place of the user's credential.
    pub async fn connect_as(&mut self, authorization: &str) -> Result<HttpConnection, TargetError> {
        self.calls += 1;
        let timeout = self.request_timeout;
        self.http_mut()?.connect_as(authorization, timeout).await
    }

    /// A request on `other` (a connection from [`Run::connect_as`] or
    /// [`Run::connect_again`]), counted, recorded and with rate-limit refusals waited out like
    /// the run's own.
    pub async fn request_on(
        &mut self,
        other: &mut HttpConnection,
        method: &str,
        params: Value,
    ) -> Result<Reply, TargetError> {
        self.calls += 1;
        let request = json!({"method": method, "params": params}).to_string();
        let mut reply = other.request(method, Some(params.clone())).await;
        let mut retries = 0;
        while let Some(wait) = self.refusal_wait(&reply, &mut retries) {
            tokio::time::sleep(wait).await;
            reply = other.request(method, Some(params.clone())).await;
        }
        let text = match &reply {
            Ok(reply) => reply.text(),
            Err(error) => error.to_string(),
        };
        self.record(&request, &text);
        reply
    }

    /// A tool call with `overrides` replacing (or added to) the user's headers for this call
    /// only (HTTP; over stdio, a plain call).
    pub async fn call_tool_with_headers(
        &mut self,
        tool: &str,
        arguments: Value,
        overrides: Vec<(String, String)>,
    ) -> CallResult {
        if let Connection::Http(http) = &mut *self.connection {
            http.override_headers = overrides;
        }
        let result = self.call_tool(tool, arguments).await;
        if let Connection::Http(http) = &mut *self.connection {
            http.override_headers.clear();
        }
        result
    }

    /// A request with a caller-chosen id; the whole response message (PROTO's id echo check).
    pub async fn request_with_id(
        &mut self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, TargetError> {
        self.calls += 1;
        let request = json!({"id": id, "method": method, "params": params}).to_string();
        let reply = self.connection.request_with_id(id, method, params).await;
        let text = match &reply {
            Ok(message) => message.to_string(),
            Err(error) => error.to_string(),
        };
        self.record(&request, &text);
        reply
    }

    /// What the target sent besides its answers (stray responses, stdout noise).
    pub fn observations(&self) -> Observations {
        self.connection.observations()
    }

    /// The server's `serverInfo`.
    pub fn server_info(&self) -> &Value {
        self.connection.server_info()
    }

    /// The capabilities the server declared.
    pub fn capabilities(&self) -> &Value {
        self.connection.capabilities()
    }

    /// The protocol version the connection negotiated (`2025-11-25`, `2026-07-28`...).
    pub fn protocol_version(&self) -> &str {
        self.connection.protocol_version()
    }

    /// Lists `method` again (every page, at most [`crate::discover::MAX_LISTED`] items),
    /// counted as one call and waiting out nothing: a listing is not rate limited by the
    /// servers this judges, and a refusal ends the listing (an error).
    pub async fn list_again(
        &mut self,
        method: &str,
        field: &str,
    ) -> Result<Vec<Value>, TargetError> {
        self.calls += 1;
        let mut items = crate::discover::list_all(self.connection, method, field).await?;
        items.truncate(crate::discover::MAX_LISTED);
        Ok(items)
    }

    /// The end of the target's stderr (stdio), for evidence.
    pub fn stderr_tail(&self) -> String {
        self.connection.stderr_tail()
    }

    /// The last request the target answered, as an excerpt.
    pub fn last_answered(&self) -> Option<String> {
        self.connection.last_answered()
    }

    /// Starts a stdio target again (a bounded number of times); an error for HTTP.
    pub async fn restart(&mut self) -> Result<(), TargetError> {
        self.connection.restart().await
    }

    /// The stdio target's exit status, once it has exited (waiting up to a second for an exit
    /// that lags a closed pipe); `None` while it runs or for HTTP.
    pub async fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        let Connection::Stdio(stdio) = &mut *self.connection else {
            return None;
        };
        for _ in 0..20 {
            if let Some(status) = stdio.exit_status() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stdio.exit_status()
    }

    /// Why the target's memory cannot be sampled when [`Self::process_group`] is `None`.
    pub fn unsampled_memory_reason(&self) -> &'static str {
        match &*self.connection {
            Connection::Stdio(stdio) if stdio.is_in_process() => {
                "an in-process server shares the harness's memory: it cannot be sampled apart"
            }
            _ => "the target's process is not known",
        }
    }

    /// The stdio target's process group (for memory sampling); `None` for HTTP.
    pub fn process_group(&self) -> Option<u32> {
        match &*self.connection {
            Connection::Stdio(stdio) => stdio.process_group(),
            Connection::Http(_) | Connection::Sse(_) => None,
        }
    }

    /// For a timing engine only: the connection and the refusal classifier, to send thousands
    /// of requests without recording each (the engine counts them with [`Run::count_calls`]).
    pub fn timing_parts(&mut self) -> (&mut Connection, &RefusalClassifier) {
        (&mut *self.connection, &self.refusals)
    }

    /// Tells the caller where the run is ([`crate::Event::Progress`]).
    pub fn progress(&self, phase: &str, step: usize, steps: usize, started: Instant) {
        self.event(crate::Event::Progress(crate::Progress {
            phase,
            step,
            steps,
            calls: self.calls,
            refusals_waited: self.rate_limited_retries,
            elapsed: started.elapsed(),
            at_most_left: self.deadline.saturating_duration_since(Instant::now()),
        }));
    }

    /// Counts `calls` requests a timing engine sent through [`Run::timing_parts`].
    pub fn count_calls(&mut self, calls: u64) {
        self.calls += calls;
    }
}
