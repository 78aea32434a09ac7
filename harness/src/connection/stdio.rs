//! A stdio target: the harness spawns the command, owns its process group and kills it at the
//! end. Or, for a server in this process ([`InProcessTarget`]), the same line protocol over an
//! in-memory pipe: the server runs as a task the harness aborts at the end, and a restart
//! serves a new instance on a new pipe.
//!
//! stdout is read one line at a time with a cap (a longer line is dropped as it streams, so a
//! 100 MB line costs at most the cap), each line is matched to a pending request by id, server
//! requests are declined with -32601, notifications are dropped, and anything that is not a
//! JSON-RPC message is counted as stdout noise with a few samples kept. stderr is kept as a
//! 64 KiB tail for the report; it is never read as a reply.
//!
//! Failure: a request that gets no answer within the budget is [`TargetError::Timeout`]; a
//! target that exits is [`TargetError::Closed`] for every pending and later request, until
//! [`StdioConnection::restart`].

use super::{
    Budget, NOISE_SAMPLES, Observations, ProtocolChoice, RawOutcome, Reply,
    STATELESS_PROTOCOL_VERSION, TargetError, accept_discover, accept_initialize, excerpt,
    initialize_params, request_message,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::process::Child;
use tokio::sync::oneshot;

/// Where the harness writes the target's input: a child's stdin, or the harness's end of an
/// in-process pipe.
type Input = Box<dyn AsyncWrite + Send + Unpin>;

/// How an in-process server is served on a pipe: called with the stage's sandbox and the
/// server's end of the pipe, it returns the future that serves until the pipe closes.
pub type ServeFn = Arc<
    dyn Fn(
            std::path::PathBuf,
            tokio::io::DuplexStream,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// A server in the harness's own process, spoken to over an in-memory pipe with the stdio
/// transport's line protocol (newline-delimited JSON-RPC).
#[derive(Clone)]
pub struct InProcessTarget {
    /// How reports name it.
    pub name: String,
    serve: ServeFn,
}

impl std::fmt::Debug for InProcessTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InProcessTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl InProcessTarget {
    /// `serve(sandbox, pipe)` serves one server instance on `pipe` (a `tokio::io::DuplexStream`
    /// carrying newline-delimited JSON-RPC) until it closes; it is called again on a restart.
    pub fn new<F, Fut>(name: impl Into<String>, serve: F) -> Self
    where
        F: Fn(std::path::PathBuf, tokio::io::DuplexStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Self {
            name: name.into(),
            serve: Arc::new(move |sandbox, pipe| Box::pin(serve(sandbox, pipe))),
        }
    }
}

/// The size of each direction's buffer of an in-process pipe: a writer past it waits, as a
/// process writing to a full pipe does.
const IN_PROCESS_PIPE_BYTES: usize = 1024 * 1024;

/// What the connection starts.
#[derive(Clone, Debug)]
enum Launch {
    Process(StdioSpec),
    InProcess {
        target: InProcessTarget,
        sandbox: std::path::PathBuf,
    },
}

const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// A target that keeps dying is restarted at most this many times in one run.
pub const MAX_RESTARTS: u64 = 5;

/// What to run: program, arguments and extra environment.
#[derive(Clone, Debug)]
pub struct StdioSpec {
    pub program: String,
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    /// The child's working directory (default: the harness's).
    pub cwd: Option<std::path::PathBuf>,
}

impl StdioSpec {
    /// Splits a command line as a POSIX shell would (quotes, escapes), without running a shell.
    pub fn parse(command: &str, envs: Vec<(String, String)>) -> Result<Self, TargetError> {
        let mut words = shell_words::split(command)
            .map_err(|e| TargetError::Spawn(format!("cannot parse the command: {e}")))?;
        if words.is_empty() {
            return Err(TargetError::Spawn("the command is empty".into()));
        }
        let mut program = words.remove(0);
        // A relative program path must survive a change of working directory.
        if program.contains('/')
            && !program.starts_with('/')
            && let Ok(absolute) = std::path::absolute(&program)
        {
            program = absolute.to_string_lossy().into_owned();
        }
        Ok(Self {
            program,
            args: words,
            envs,
            cwd: None,
        })
    }
}

#[derive(Default)]
struct Shared {
    observations: Observations,
    stderr_tail: Vec<u8>,
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// Why a request failed when the target's stdout closed and its exit status is not known.
const STDOUT_CLOSED: &str = "stdout closed";

pub struct StdioConnection {
    launch: Launch,
    budget: Budget,
    child: Option<Child>,
    /// The in-process server's task, while it serves.
    task: Option<tokio::task::JoinHandle<()>>,
    stdin: Arc<tokio::sync::Mutex<Option<Input>>>,
    pending: Pending,
    shared: Arc<Mutex<Shared>>,
    closed: Arc<AtomicBool>,
    next_id: u64,
    pub protocol_version: String,
    pub server_info: Value,
    /// The capabilities the server declared.
    pub capabilities: Value,
    /// Speaking 2026-07-28: every request carries its own protocol metadata.
    stateless: bool,
}

enum LineRead {
    Line,
    Oversized,
    Eof,
}

/// How much of each end of an oversized line is kept, to find the id it answers.
const END_BYTES: usize = 512;

/// The first and last [`END_BYTES`] bytes of a line: where a response's id is (serializers
/// put it first or last).
#[derive(Default)]
struct LineEnds {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl LineEnds {
    fn clear(&mut self) {
        self.prefix.clear();
        self.suffix.clear();
    }

    fn extend(&mut self, chunk: &[u8]) {
        if self.prefix.len() < END_BYTES {
            let room = END_BYTES - self.prefix.len();
            self.prefix
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        if chunk.len() >= END_BYTES {
            self.suffix.clear();
            self.suffix
                .extend_from_slice(&chunk[chunk.len() - END_BYTES..]);
        } else {
            self.suffix.extend_from_slice(chunk);
            let excess = self.suffix.len().saturating_sub(END_BYTES);
            self.suffix.drain(..excess);
        }
    }
}

/// Reads one `\n`-terminated line into `buf`, never holding more than `cap` bytes; `ends`
/// gets the line's first and last [`END_BYTES`] bytes, even when it is too long to keep.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    cap: usize,
    buf: &mut Vec<u8>,
    ends: &mut LineEnds,
) -> std::io::Result<LineRead> {
    buf.clear();
    ends.clear();
    let mut oversized = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if oversized {
                LineRead::Oversized
            } else if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        ends.extend(chunk);
        if !oversized {
            if buf.len() + chunk.len() > cap {
                oversized = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(consumed);
        if done {
            return Ok(if oversized {
                LineRead::Oversized
            } else {
                LineRead::Line
            });
        }
    }
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

/// The key a reply the harness could not read is handed to its waiter under: the waiter
/// turns it into [`TargetError::ReplyTooLarge`] or [`TargetError::ReplyTooDeep`].
const UNREADABLE: &str = "mcp-harness-unreadable";
/// serde_json's nesting limit: deeper replies do not parse.
const REPLY_DEPTH_LIMIT: usize = 128;

/// The id of a response too large or too deep to parse, read from its ends: a serializer puts
/// `"id"` near the start (`{"jsonrpc":"2.0","id":7,...`) or as the last member
/// (`...,"jsonrpc":"2.0","id":7}`). Only a line that starts as a JSON object counts.
fn sniff_id(ends: &LineEnds) -> Option<Value> {
    static FIRST: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    static LAST: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    const ID: &str = r#""id"\s*:\s*(-?[0-9]+|"(?:[^"\\]|\\.)*")"#;
    if !ends.prefix.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    let first = FIRST.get_or_init(|| {
        regex::bytes::Regex::new(&format!(
            r#"^\s*\{{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?{ID}"#
        ))
        .expect("a valid pattern")
    });
    let last = LAST.get_or_init(|| {
        regex::bytes::Regex::new(&format!(
            r#"{ID}\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}}\s*$"#
        ))
        .expect("a valid pattern")
    });
    let found = first
        .captures(&ends.prefix)
        .or_else(|| last.captures(&ends.suffix))?
        .get(1)?;
    serde_json::from_slice(found.as_bytes()).ok()
}

/// The error a waiter gets for a reply the reader could not read, if `message` is one.
fn unreadable(message: &Value, cap: usize) -> Option<TargetError> {
    match message.get(UNREADABLE)?.as_str()? {
        "too-deep" => Some(TargetError::ReplyTooDeep(REPLY_DEPTH_LIMIT)),
        _ => Some(TargetError::ReplyTooLarge(cap)),
    }
}

/// Hands an unreadable reply to the request its id names. One whose id is at neither end is
/// only counted: giving it to whichever request waits would blame the wrong one (a ping sent
/// while a 10 MB reply streams would be told it got 10 MB), so that request times out instead.
fn hand_over_unreadable(pending: &Pending, ends: &LineEnds, what: &str) {
    let Some(id) = sniff_id(ends) else { return };
    let sender = pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id_key(&id));
    if let Some(sender) = sender {
        let _ = sender.send(json!({ UNREADABLE: what }));
    }
}

impl StdioConnection {
    /// Spawns the target and performs the `initialize` handshake.
    pub async fn connect(spec: StdioSpec, budget: Budget) -> Result<Self, TargetError> {
        Self::launch(Launch::Process(spec), budget).await
    }

    /// Serves `target` in this process on a new pipe, with `sandbox` as its stage, and
    /// performs the `initialize` handshake.
    pub async fn connect_in_process(
        target: InProcessTarget,
        sandbox: std::path::PathBuf,
        budget: Budget,
    ) -> Result<Self, TargetError> {
        Self::launch(Launch::InProcess { target, sandbox }, budget).await
    }

    /// Whether the target is a server in this process.
    pub fn is_in_process(&self) -> bool {
        matches!(self.launch, Launch::InProcess { .. })
    }

    async fn launch(launch: Launch, budget: Budget) -> Result<Self, TargetError> {
        let mut connection = Self {
            launch,
            budget,
            child: None,
            task: None,
            stdin: Arc::new(tokio::sync::Mutex::new(None)),
            pending: Arc::default(),
            shared: Arc::default(),
            closed: Arc::new(AtomicBool::new(false)),
            next_id: 0,
            protocol_version: String::new(),
            server_info: Value::Null,
            capabilities: Value::Null,
            stateless: false,
        };
        if let Err(error) = connection.start().await {
            // Give the stderr reader a moment to collect the target's last words.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let tail = connection.stderr_tail();
            let tail = tail.trim();
            connection.shutdown().await;
            if tail.is_empty() {
                return Err(error);
            }
            let last: Vec<&str> = tail
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(TargetError::Spawn(format!(
                "{error}; the target's stderr ends with:\n  {}",
                last.join("\n  ")
            )));
        }
        Ok(connection)
    }

    async fn start(&mut self) -> Result<(), TargetError> {
        let output: Box<dyn AsyncRead + Send + Unpin> = match &self.launch {
            Launch::Process(spec) => {
                let mut command = tokio::process::Command::new(&spec.program);
                if let Some(cwd) = &spec.cwd {
                    command.current_dir(cwd);
                }
                command
                    .args(&spec.args)
                    .envs(spec.envs.iter().map(|(k, v)| (k, v)))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0)
                    .kill_on_drop(true);
                let mut child = command
                    .spawn()
                    .map_err(|e| TargetError::Spawn(format!("{}: {e}", spec.program)))?;
                let stdout = child.stdout.take().expect("piped");
                let stderr = child.stderr.take().expect("piped");
                *self.stdin.lock().await = child.stdin.take().map(|stdin| Box::new(stdin) as Input);
                self.child = Some(child);
                tokio::spawn(read_stderr(stderr, self.shared.clone()));
                Box::new(stdout)
            }
            Launch::InProcess { target, sandbox } => {
                let (harness_end, server_end) = tokio::io::duplex(IN_PROCESS_PIPE_BYTES);
                let (from_server, to_server) = tokio::io::split(harness_end);
                *self.stdin.lock().await = Some(Box::new(to_server));
                self.task = Some(tokio::spawn((target.serve)(sandbox.clone(), server_end)));
                Box::new(from_server)
            }
        };
        self.closed = Arc::new(AtomicBool::new(false));
        self.pending = Arc::default();
        tokio::spawn(read_stdout(
            output,
            self.budget.max_reply_bytes,
            self.pending.clone(),
            self.shared.clone(),
            self.stdin.clone(),
            self.closed.clone(),
        ));
        let startup = self.budget.startup_timeout;
        let no_answer = |what: &str| {
            TargetError::Handshake(format!(
                "no answer to {what} within {} s",
                startup.as_secs()
            ))
        };
        let refused = if self.budget.protocol == ProtocolChoice::Negotiate {
            self.stateless = false;
            let reply = tokio::time::timeout(
                startup,
                self.request_unbounded("initialize", Some(initialize_params())),
            )
            .await
            .map_err(|_| no_answer("initialize"))??;
            match accept_initialize(reply) {
                Ok((version, info, capabilities)) => {
                    self.protocol_version = version;
                    self.server_info = info;
                    self.capabilities = capabilities;
                    return self.notify("notifications/initialized", None).await;
                }
                Err(refused) => Some(refused),
            }
        } else {
            None
        };
        // No initialize (or a refusal): a 2026-07-28 server is stateless.
        self.stateless = true;
        self.protocol_version = STATELESS_PROTOCOL_VERSION.to_owned();
        let discovered =
            tokio::time::timeout(startup, self.request_unbounded("server/discover", None))
                .await
                .map_err(|_| no_answer("server/discover"))?
                .and_then(accept_discover);
        match (discovered, refused) {
            (Ok((info, capabilities)), _) => {
                self.server_info = info;
                self.capabilities = capabilities;
                Ok(())
            }
            (Err(_), Some(refused)) => Err(refused),
            (Err(error), None) => Err(error),
        }
    }

    /// Registers the request id `key`: the reader task sends its answer to the receiver.
    fn expect_answer(&self, key: &str) -> oneshot::Receiver<Value> {
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), sender);
        receiver
    }

    async fn write_line(&self, message: &[u8]) -> Result<(), TargetError> {
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(TargetError::Closed("stdin is closed".into()));
        };
        let write = async {
            pipe.write_all(message).await?;
            pipe.flush().await
        };
        tokio::time::timeout(self.budget.request_timeout, write)
            .await
            .map_err(|_| TargetError::Timeout(self.budget.request_timeout))?
            .map_err(|e| TargetError::Closed(format!("writing to stdin: {e}")))
    }

    async fn exchange(
        &mut self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, TargetError> {
        match self.exchange_shared(id, method, params).await {
            Err(TargetError::Closed(why)) if why == STDOUT_CLOSED => {
                Err(TargetError::Closed(self.exit_description()))
            }
            other => other,
        }
    }

    /// [`Self::exchange`] without the exit status in a closed connection's error: several may
    /// run at once.
    async fn exchange_shared(
        &self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, TargetError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TargetError::Closed(STDOUT_CLOSED.into()));
        }
        let message = request_message(&id, method, params, self.stateless);
        let key = id_key(&id);
        let receiver = self.expect_answer(&key);
        let mut line = serde_json::to_vec(&message).unwrap_or_default();
        line.push(b'\n');
        if let Err(error) = self.write_line(&line).await {
            self.forget(&key);
            return Err(error);
        }
        let message = receiver
            .await
            .map_err(|_| TargetError::Closed(STDOUT_CLOSED.into()))?;
        match unreadable(&message, self.budget.max_reply_bytes) {
            Some(error) => Err(error),
            None => Ok(message),
        }
    }

    fn forget(&self, key: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// One request that may run at once with others on the same pipe (answers are matched by
    /// id), with a caller-chosen id and the request timeout: the load generator's call.
    pub async fn call_shared(
        &self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        let timeout = self.budget.request_timeout;
        let key = id_key(&id);
        match tokio::time::timeout(timeout, self.exchange_shared(id, method, params)).await {
            Ok(message) => Reply::of_response(&message?),
            Err(_) => {
                self.forget(&key);
                Err(TargetError::Timeout(timeout))
            }
        }
    }

    async fn request_unbounded(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        self.next_id += 1;
        let message = self.exchange(json!(self.next_id), method, params).await?;
        Reply::of_response(&message)
    }

    pub async fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Reply, TargetError> {
        self.next_id += 1;
        let message = self
            .request_with_id(json!(self.next_id), method, params)
            .await?;
        Reply::of_response(&message)
    }

    pub async fn request_with_id(
        &mut self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, TargetError> {
        let timeout = self.budget.request_timeout;
        let key = id_key(&id);
        match tokio::time::timeout(timeout, self.exchange(id, method, params)).await {
            Ok(message) => message,
            Err(_) => {
                self.forget(&key);
                Err(TargetError::Timeout(timeout))
            }
        }
    }

    /// Writes one request per entry of `params` in a single write, before reading any answer,
    /// and returns the replies in order; all share one request timeout.
    pub async fn requests_at_once(
        &mut self,
        method: &str,
        params: Vec<Value>,
    ) -> Vec<Result<Reply, TargetError>> {
        if self.closed.load(Ordering::Acquire) {
            let why = self.exit_description();
            return params
                .iter()
                .map(|_| Err(TargetError::Closed(why.clone())))
                .collect();
        }
        let mut keys = Vec::new();
        let mut receivers = Vec::new();
        let mut lines = Vec::new();
        for params in params {
            self.next_id += 1;
            let id = json!(self.next_id);
            let message = request_message(&id, method, Some(params), self.stateless);
            let key = id_key(&id);
            let receiver = self.expect_answer(&key);
            keys.push(key);
            receivers.push(receiver);
            lines.extend(serde_json::to_vec(&message).unwrap_or_default());
            lines.push(b'\n');
        }
        let pending = self.pending.clone();
        let forget = |keys: &[String]| {
            let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
            for key in keys {
                pending.remove(key);
            }
        };
        if let Err(error) = self.write_line(&lines).await {
            forget(&keys);
            return keys.iter().map(|_| Err(error.clone())).collect();
        }
        let deadline = tokio::time::Instant::now() + self.budget.request_timeout;
        let mut replies = Vec::new();
        for (key, receiver) in keys.iter().zip(receivers) {
            replies.push(match tokio::time::timeout_at(deadline, receiver).await {
                Ok(Ok(message)) => match unreadable(&message, self.budget.max_reply_bytes) {
                    Some(error) => Err(error),
                    None => Reply::of_response(&message),
                },
                Ok(Err(_)) => Err(TargetError::Closed(self.exit_description())),
                Err(_) => {
                    forget(std::slice::from_ref(key));
                    Err(TargetError::Timeout(self.budget.request_timeout))
                }
            });
        }
        replies
    }

    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> Result<(), TargetError> {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        let mut line = serde_json::to_vec(&message).unwrap_or_default();
        line.push(b'\n');
        self.write_line(&line).await
    }

    pub async fn raw(&mut self, bytes: &[u8]) -> Result<RawOutcome, TargetError> {
        self.write_line(bytes).await?;
        Ok(RawOutcome::default())
    }

    pub fn observations(&self) -> Observations {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observations
            .clone()
    }

    /// The child's process group (the child leads its own group, so that the whole tree can be
    /// signalled and measured), while it runs.
    pub fn process_group(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub fn stderr_tail(&self) -> String {
        String::from_utf8_lossy(
            &self
                .shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .stderr_tail,
        )
        .into_owned()
    }

    /// Whether the child has exited with status 0 (it closed the session on purpose).
    pub fn exited_cleanly(&mut self) -> bool {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
            .is_some_and(|status| status.success())
    }

    /// The child's exit status, when it has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn exit_description(&mut self) -> String {
        if self.task.as_ref().is_some_and(|task| task.is_finished()) {
            return "the in-process server's task ended".to_owned();
        }
        match self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            Some(status) => format!("the process exited: {status}"),
            None => STDOUT_CLOSED.to_owned(),
        }
    }

    /// Kills and starts the target again; refuses after [`MAX_RESTARTS`] restarts.
    pub async fn restart(&mut self) -> Result<(), TargetError> {
        self.kill().await;
        {
            let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            if shared.observations.restarts >= MAX_RESTARTS {
                return Err(TargetError::Closed(format!(
                    "the target died again after {MAX_RESTARTS} restarts"
                )));
            }
            shared.observations.restarts += 1;
        }
        self.start().await
    }

    async fn kill(&mut self) {
        *self.stdin.lock().await = None;
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // The child leads its own process group: take down anything it started too.
                // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            let _ = child.kill().await;
        }
    }

    /// Closes stdin, gives the target a moment to exit, then kills its process group (or
    /// aborts the in-process server's task).
    pub async fn shutdown(&mut self) {
        if let Some(pipe) = self.stdin.lock().await.as_mut() {
            // An in-process pipe closes only when told (the harness's read half keeps it open).
            let _ = pipe.shutdown().await;
        }
        *self.stdin.lock().await = None;
        if let Some(child) = self.child.as_mut() {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), child.wait()).await;
        }
        if let Some(mut task) = self.task.take() {
            let wait = std::time::Duration::from_millis(500);
            if tokio::time::timeout(wait, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        self.kill().await;
    }
}

async fn read_stdout(
    stdout: Box<dyn AsyncRead + Send + Unpin>,
    cap: usize,
    pending: Pending,
    shared: Arc<Mutex<Shared>>,
    stdin: Arc<tokio::sync::Mutex<Option<Input>>>,
    closed: Arc<AtomicBool>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut buf = Vec::new();
    let mut ends = LineEnds::default();
    loop {
        match read_line_capped(&mut reader, cap, &mut buf, &mut ends).await {
            Ok(LineRead::Line) => {}
            Ok(LineRead::Oversized) => {
                shared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .observations
                    .oversized_lines += 1;
                hand_over_unreadable(&pending, &ends, "too-large");
                continue;
            }
            Ok(LineRead::Eof) | Err(_) => break,
        }
        let line = buf.strip_suffix(b"\r").unwrap_or(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let messages = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Array(items)) => items,
            Ok(value @ Value::Object(_)) => vec![value],
            // Valid JSON nested past the parser's limit: a reply, not noise.
            Err(error) if error.to_string().contains("recursion limit exceeded") => {
                shared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .observations
                    .too_deep_lines += 1;
                hand_over_unreadable(&pending, &ends, "too-deep");
                continue;
            }
            _ => {
                note_noise(&shared, line);
                continue;
            }
        };
        for message in messages {
            if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
                note_noise(&shared, line);
                continue;
            }
            let id = message.get("id").cloned();
            let is_response = message.get("result").is_some() || message.get("error").is_some();
            match (id, message.get("method")) {
                (Some(id), None) if is_response => {
                    let sender = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id_key(&id));
                    match sender {
                        Some(sender) => {
                            let _ = sender.send(message);
                        }
                        None => shared
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .observations
                            .note_stray_response(id),
                    }
                }
                (Some(id), Some(_)) => {
                    // A request from the server (sampling, roots...): the harness offers none.
                    shared
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .observations
                        .server_requests += 1;
                    let reply = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "mcp-harness offers no client features"}});
                    let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
                    bytes.push(b'\n');
                    if let Some(pipe) = stdin.lock().await.as_mut() {
                        let _ = pipe.write_all(&bytes).await;
                        let _ = pipe.flush().await;
                    }
                }
                (None, Some(_)) => {
                    // A notification: only the list changes matter (META-RUG-PULL).
                    if super::is_list_changed(&message) {
                        shared
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .observations
                            .list_changed_notifications += 1;
                    }
                }
                // A response to nothing the harness can match (e.g. an error for an invalid
                // request, sent without the `"id": null` JSON-RPC asks for): a message, not noise.
                (None, None) if is_response => {}
                _ => note_noise(&shared, line),
            }
        }
    }
    closed.store(true, Ordering::Release);
    // Dropping the senders wakes every waiter with "closed".
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn note_noise(shared: &Arc<Mutex<Shared>>, line: &[u8]) {
    let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
    let observations = &mut shared.observations;
    observations.stdout_noise_lines += 1;
    if observations.stdout_noise_samples.len() < NOISE_SAMPLES {
        observations
            .stdout_noise_samples
            .push(excerpt(&String::from_utf8_lossy(line), 200));
    }
}

async fn read_stderr(mut stderr: tokio::process::ChildStderr, shared: Arc<Mutex<Shared>>) {
    let mut chunk = vec![0u8; 8192];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
        let tail = &mut shared.stderr_tail;
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > STDERR_TAIL_BYTES {
            let cut = tail.len() - STDERR_TAIL_BYTES;
            tail.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_lines_drop_what_is_too_long_and_keep_the_rest() {
        let input = format!("short\n{}\nafter\nno-newline", "x".repeat(1000));
        let mut reader = BufReader::with_capacity(16, input.as_bytes());
        let mut buf = Vec::new();
        let mut ends = LineEnds::default();
        let mut seen = Vec::new();
        loop {
            match read_line_capped(&mut reader, 100, &mut buf, &mut ends)
                .await
                .unwrap()
            {
                LineRead::Line => seen.push(String::from_utf8(buf.clone()).unwrap()),
                LineRead::Oversized => seen.push("<oversized>".into()),
                LineRead::Eof => break,
            }
            assert!(buf.capacity() <= 64 * 1024);
        }
        assert_eq!(seen, ["short", "<oversized>", "after", "no-newline"]);
    }

    #[test]
    fn the_id_of_an_unreadable_reply_is_read_from_either_end() {
        let ends = |line: &[u8]| {
            let mut ends = LineEnds::default();
            // Streamed in small chunks, as a pipe delivers a long line.
            for chunk in line.chunks(7) {
                ends.extend(chunk);
            }
            ends
        };
        let huge = |start: &str, end: &str| {
            let mut line = start.as_bytes().to_vec();
            line.resize(line.len() + 10_000, b'A');
            line.extend_from_slice(end.as_bytes());
            line
        };
        let first = huge(r#"{"jsonrpc":"2.0","id":17,"result":{"x":""#, r#""}}"#);
        assert_eq!(sniff_id(&ends(&first)), Some(json!(17)));
        assert_eq!(
            sniff_id(&ends(br#"{"id": "a\"b", "result""#)),
            Some(json!("a\"b"))
        );
        // The TypeScript SDK's order: result first, the id last.
        let last = huge(
            r#"{"result":{"content":[{"type":"text","text":""#,
            r#""}]},"jsonrpc":"2.0","id":15}"#,
        );
        assert_eq!(sniff_id(&ends(&last)), Some(json!(15)));
        // An id nested inside the result is not the response's.
        let nested = huge(
            r#"{"jsonrpc":"2.0","result":{"items":[{"id":4,"x":""#,
            r#""}],"more":1}}"#,
        );
        assert_eq!(sniff_id(&ends(&nested)), None);
        assert_eq!(sniff_id(&ends(b"xxxxxxxx")), None);

        let pending: Pending = Arc::default();
        let (sender, mut receiver) = oneshot::channel();
        pending.lock().unwrap().insert(id_key(&json!(3)), sender);
        // Junk, or a reply with no id at its ends, is nobody's: the waiter is not blamed.
        hand_over_unreadable(&pending, &ends(b"xxxxxxxx"), "too-large");
        hand_over_unreadable(&pending, &ends(&nested), "too-large");
        assert!(receiver.try_recv().is_err());
        hand_over_unreadable(
            &pending,
            &ends(br#"{"jsonrpc":"2.0","result":[[[[1]]]],"id":3}"#),
            "too-deep",
        );
        let message = receiver
            .try_recv()
            .expect("the waiter its id names gets it");
        assert_eq!(
            unreadable(&message, 10),
            Some(TargetError::ReplyTooDeep(REPLY_DEPTH_LIMIT))
        );
    }

    #[test]
    fn commands_are_split_like_a_shell_without_running_one() {
        let spec =
            StdioSpec::parse(r#"python3 -m "my server" --root '/a b' $(x)"#, vec![]).unwrap();
        assert_eq!(spec.program, "python3");
        assert_eq!(spec.args, ["-m", "my server", "--root", "/a b", "$(x)"]);
        assert!(StdioSpec::parse("", vec![]).is_err());
        assert!(StdioSpec::parse("unterminated 'quote", vec![]).is_err());
    }
}
