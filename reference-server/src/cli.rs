//! The command line of `mcp-reference-server`, as a library so that other binaries can start
//! the same server: `mcp-harness` embeds it as its default target, and the flawed twins
//! (targets/flawed-server) start it with one guard swapped ([`run_twin`]).
//!
//! Start-up validates everything before serving: a missing or invalid setting is reported by
//! name (never by value) and the process exits with status 2. Logs go to stderr only, so stdout
//! carries nothing but MCP messages in stdio mode.

use crate::config::{self, ConfigError, FileConfig, TOKEN_SCOPES_VAR, TOKEN_VAR};
use crate::guard::api_keys::Principal;
use crate::guard::db::ReadOnlyDb;
use crate::guard::egress::EgressPolicy;
use crate::guard::oauth::{DevSigner, JwtValidator, load_jwks};
use crate::guard::rate_limit::{RateLimitConfig, RateLimiter};
use crate::guard::resource_uri::ResourceUris;
use crate::guard::sandbox::{Sandbox, SandboxLimits};
use crate::guard::shared_rate_limit::RedisRateLimiter;
use crate::guards::Guards;
use crate::guards::SharedPerPrincipal;
use crate::tools::{ReferenceServer, ServerState, history_program};
use crate::transport::{
    self,
    http::{Authenticator, HttpGuards},
};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mcp-reference-server",
    version,
    about = "A reference secure MCP server: sandboxed files, an allowlisted fetcher, a read-only database; stdio or Streamable HTTP."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mint a development OAuth access token from a local key, and write the matching JWKS.
    DevToken(DevTokenArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Serve MCP on stdin/stdout (the launcher is the principal).
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Serve MCP over Streamable HTTP on this address (endpoint /mcp), e.g. 127.0.0.1:8765.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// The sandbox directory: every file tool works inside it and nowhere else.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// A TOML configuration file (see the README's configuration reference).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides `[rate_limit] burst`: calls a principal may make at once.
    #[arg(long, value_name = "CALLS", value_parser = clap::value_parser!(u32).range(1..))]
    rate_burst: Option<u32>,
    /// Overrides `[rate_limit] per_second`: the sustained calls a second per principal.
    #[arg(long, value_name = "PER_SECOND")]
    rate_per_second: Option<f64>,
    /// SQLite database for query_records (opened read-only). Default: a demo database in a
    /// temporary directory, created at start and removed at exit.
    #[arg(long, value_name = "FILE")]
    database: Option<PathBuf>,
    /// A keys file: [[principal]] entries with name, key_sha256 and scopes.
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// The public URL of the MCP endpoint (the OAuth resource identifier).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// DEVELOPMENT ONLY: accept unauthenticated HTTP requests as a principal with every scope.
    /// Refused unless the bind address is loopback; warns at every start.
    #[arg(long)]
    insecure_dev_no_auth: bool,
    /// DEVELOPMENT ONLY: serve an OAuth authorization server on this server's own origin
    /// (metadata, client registration, PKCE authorization, tokens) that approves every
    /// request without asking anyone, and accept the tokens it mints. Refused unless the bind
    /// address is loopback with a fixed port, or with an [oauth] section; warns at every start.
    #[arg(long)]
    dev_authorization_server: bool,
    /// The development authorization server's signing key: a `dev-signing-key` file written
    /// by `dev-token` (whose tokens, minted with this server's origin as issuer, it then
    /// accepts too). Default: a fresh key for each start.
    #[arg(long, value_name = "FILE", requires = "dev_authorization_server")]
    dev_authorization_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DevTokenArgs {
    /// A scope to grant (repeat for several): files:write, admin.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Where the signing key and jwks.json are kept (created if missing).
    #[arg(long, default_value = ".mcp-dev-oauth", value_name = "DIR")]
    out: PathBuf,
    /// The token's issuer (`iss`); configure the same value in [oauth].issuer.
    #[arg(long, default_value = "http://127.0.0.1/dev-issuer")]
    issuer: String,
    /// The resource the token is for (`aud`): the server's public MCP URL.
    #[arg(long, default_value = "http://127.0.0.1:8765/mcp")]
    resource: String,
    /// The token's subject (`sub`).
    #[arg(long, default_value = "developer")]
    subject: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    lifetime: u64,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Runtime(String),
}

/// Parses `args` (the first is the program name) and runs the reference server or a
/// subcommand.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    run_twin(args, Twin::default())
}

/// What a test twin knows of the configuration when it swaps a guard.
pub struct BuildContext {
    /// The sandbox directory, resolved.
    pub root: PathBuf,
    /// The records database file.
    pub database: PathBuf,
    /// The configured rate limit.
    pub rate_limit: RateLimitConfig,
    /// The OAuth key set and issuer, when OAuth is configured (HTTP only).
    pub oauth: Option<(jsonwebtoken::jwk::JwkSet, String)>,
    /// The configured egress policy (what `fetch_url` may reach).
    pub egress: EgressPolicy,
}

/// A change to the tools' guards (see [`Twin`]).
pub type ToolGuardsChange = Box<dyn FnOnce(&mut Guards, &BuildContext) + Send>;
/// A change to the HTTP layer's guards (see [`Twin`]).
pub type HttpGuardsChange = Box<dyn FnOnce(&mut HttpGuards, &BuildContext) + Send>;

/// A change to the reference guards, applied once they are built from the configuration and
/// before anything is served. TEST SEAM: only targets/flawed-server uses anything but the
/// default, which changes nothing.
#[derive(Default)]
pub struct Twin {
    /// Changes the tools' guards.
    pub tools: Option<ToolGuardsChange>,
    /// Changes the HTTP layer's guards (HTTP only).
    pub http: Option<HttpGuardsChange>,
}

/// [`run`], with the guards changed by `twin` (targets/flawed-server; [`run`] passes the
/// default, which changes nothing).
pub fn run_twin(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    twin: Twin,
) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Some(Command::DevToken(args)) => dev_token(args),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| StartError::Runtime(e.to_string()))
            .and_then(|runtime| runtime.block_on(serve(cli.serve, twin, None))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-reference-server: {error}");
            ExitCode::from(2)
        }
    }
}

fn env_secret(name: &str) -> Option<SecretString> {
    std::env::var(name).ok().map(SecretString::from)
}

/// A byte stream pair to serve the stdio transport on instead of this process's stdin and
/// stdout.
type StdioPipes = (
    Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
);

/// Serves exactly what `mcp-reference-server ARGS --stdio` serves (the same configuration,
/// guards, limits and line transport), on `input` and `output` instead of stdin and stdout,
/// inside the caller's runtime: for certifying the server in process (`harness::certify` with
/// an in-process target). `args` starts with the program name, as `std::env::args` does.
pub async fn serve_stdio_on<R, W>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    input: R,
    output: W,
) -> Result<(), String>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    if !cli.serve.stdio || cli.command.is_some() {
        return Err("serve_stdio_on serves --stdio only".into());
    }
    serve(
        cli.serve,
        Twin::default(),
        Some((Box::new(input), Box::new(output))),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn serve(args: ServeArgs, twin: Twin, pipes: Option<StdioPipes>) -> Result<(), StartError> {
    if !args.stdio && args.http.is_none() {
        return Err(StartError::Usage(
            "choose a transport: --stdio or --http ADDR (try --help)".into(),
        ));
    }
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let root = args
        .root
        .clone()
        .or(file.root.clone())
        .ok_or_else(|| ConfigError::BadSetting {
            setting: "root",
            reason:
                "no sandbox directory given: pass --root DIR or set root in the configuration file"
                    .into(),
        })?;
    let limits = file.limits;
    let sandbox_limits = SandboxLimits {
        max_write_bytes: limits.max_string_bytes as u64,
        ..SandboxLimits::default()
    };
    let sandbox = Sandbox::open(&root, sandbox_limits).map_err(|e| ConfigError::BadSetting {
        setting: "root",
        reason: format!("the sandbox directory cannot be opened ({})", e.kind()),
    })?;
    let root_path = std::fs::canonicalize(&root).map_err(|e| ConfigError::BadSetting {
        setting: "root",
        reason: format!("cannot resolve it ({})", e.kind()),
    })?;
    // The demo database lives in a temporary directory that is removed when the server exits.
    let demo_dir;
    let database = match args.database.clone().or(file.database.clone()) {
        Some(path) => path,
        None => {
            demo_dir = tempfile::tempdir().map_err(|e| {
                StartError::Runtime(format!("cannot create the demo database: {e}"))
            })?;
            let path = demo_dir.path().join("demo.sqlite");
            ReadOnlyDb::create_demo(&path).map_err(|e| {
                StartError::Runtime(format!("cannot create the demo database: {e}"))
            })?;
            path
        }
    };
    let db = ReadOnlyDb::open(
        &database,
        100,
        limits.call_timeout.min(std::time::Duration::from_secs(5)),
    )
    .map_err(|e| ConfigError::BadSetting {
        setting: "database",
        reason: format!("cannot open it read-only ({e})"),
    })?;
    for internal in &file.egress.allowed_internal {
        tracing::warn!(%internal, "fetches may reach this internal address ([egress] allowed_internal)");
    }
    let mut egress = EgressPolicy::new(file.egress.allowed_hosts.clone())
        .with_ports(file.egress.allowed_ports.iter().copied())
        .with_internal(file.egress.allowed_internal.iter().copied());
    egress.max_response_bytes = file.egress.max_response_bytes;
    let scopes = config::scopes_from_env(std::env::var(TOKEN_SCOPES_VAR).ok())?;
    let mut rate_settings = file.rate_limit.clone();
    if let Some(burst) = args.rate_burst {
        rate_settings.burst = burst;
    }
    if let Some(per_second) = args.rate_per_second {
        rate_settings.per_second = per_second;
    }
    let rate_config: RateLimitConfig = (&rate_settings).into();
    let limiter = || {
        RateLimiter::new(rate_config).map_err(|e| ConfigError::BadSetting {
            setting: "rate_limit",
            reason: e.to_string(),
        })
    };
    // Shared by replicas: connected (or the start refused) before anything is served.
    let shared_limiter = match rate_settings.redis()? {
        Some(redis) => {
            let connected = RedisRateLimiter::connect(rate_config, &redis)
                .await
                .map_err(|e| ConfigError::BadSetting {
                    setting: "rate_limit.url",
                    reason: e.to_string(),
                })?;
            tracing::info!(prefix = %redis.prefix, "the rate limit is shared in Redis");
            Some(std::sync::Arc::new(connected))
        }
        None => None,
    };

    let resource_uris = ResourceUris::new(&root_path).ok_or_else(|| ConfigError::BadSetting {
        setting: "sandbox",
        reason: "it has no absolute path to name its files by".into(),
    })?;
    let mut context = BuildContext {
        root: root_path.clone(),
        database: database.clone(),
        rate_limit: rate_config,
        oauth: None,
        egress: egress.clone(),
    };

    if args.stdio {
        let mut guards = Guards::reference(
            sandbox,
            resource_uris,
            db,
            egress,
            history_program(root_path),
            limits,
            Some(limiter()?),
        );
        if let Some(shared) = &shared_limiter {
            guards.call_limit = Some(std::sync::Arc::new(SharedPerPrincipal(shared.clone())));
        }
        if let Some(swap) = twin.tools {
            swap(&mut guards, &context);
        }
        let max_line_bytes = guards.limits.max_body_bytes;
        let state = ServerState::new(guards, Some(Principal::new("stdio", scopes)));
        let server = ReferenceServer::new(state);
        let served = match pipes {
            Some((input, output)) => {
                transport::stdio::serve_on(server, input, output, max_line_bytes).await
            }
            None => {
                tracing::info!("serving MCP on stdio");
                transport::stdio::serve(server, max_line_bytes).await
            }
        };
        return served.map_err(|e| StartError::Runtime(e.to_string()));
    }

    let bind = args.http.expect("checked above");
    let public_url = args
        .public_url
        .clone()
        .or(file.http.public_url.clone())
        .unwrap_or_else(|| format!("http://{bind}/mcp"));
    let api_keys = config::load_api_keys(
        args.keys_file.as_deref().or(file.keys_file.as_deref()),
        env_secret(TOKEN_VAR),
        scopes,
    )?;
    let dev_authorization = if args.dev_authorization_server {
        Some(dev_authorization(
            bind,
            &public_url,
            file.oauth.is_some(),
            args.dev_authorization_key.as_deref(),
        )?)
    } else {
        None
    };
    let jwt = match (&file.oauth, &dev_authorization) {
        (_, Some(dev)) => {
            let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(dev.signer.jwks())
                .map_err(|e| StartError::Runtime(e.to_string()))?;
            context.oauth = Some((jwks.clone(), dev.issuer.clone()));
            Some(
                JwtValidator::new(&jwks, &dev.issuer, &public_url)
                    .map_err(|e| StartError::Runtime(e.to_string()))?,
            )
        }
        (Some(oauth), None) => {
            let jwks = load_jwks(&oauth.jwks)
                .await
                .map_err(|e| ConfigError::BadSetting {
                    setting: "oauth.jwks",
                    reason: e.to_string(),
                })?;
            context.oauth = Some((jwks.clone(), oauth.issuer.clone()));
            Some(
                JwtValidator::new(&jwks, &oauth.issuer, &public_url).map_err(|e| {
                    ConfigError::BadSetting {
                        setting: "oauth.jwks",
                        reason: e.to_string(),
                    }
                })?,
            )
        }
        (None, None) => None,
    };
    let insecure_dev_principal = if args.insecure_dev_no_auth {
        if !bind.ip().is_loopback() {
            return Err(StartError::Usage(
                "--insecure-dev-no-auth is refused on a non-loopback address".into(),
            ));
        }
        tracing::warn!(
            "INSECURE DEVELOPMENT MODE: every HTTP request is accepted without credentials; never use this outside a test"
        );
        Some(Principal::new(
            "insecure-dev",
            config::ALL_SCOPES.iter().copied(),
        ))
    } else {
        None
    };
    if api_keys.is_none() && jwt.is_none() && insecure_dev_principal.is_none() {
        return Err(
            ConfigError::Keys(crate::guard::api_keys::ApiKeyError::NoKeyConfigured(
                "MCP_SERVER_TOKEN (or keys_file, or an [oauth] section)",
            ))
            .into(),
        );
    }
    if !bind.ip().is_loopback() {
        tracing::warn!(%bind, "listening on a non-loopback address: put TLS in front of this server");
    }
    let mut guards = Guards::reference(
        sandbox,
        resource_uris,
        db,
        egress,
        history_program(root_path),
        limits,
        None,
    );
    if let Some(swap) = twin.tools {
        swap(&mut guards, &context);
    }
    let limits = guards.limits;
    let scopes_table = guards.scopes.clone();
    let state = ServerState::new(guards, None);
    let settings = transport::http::HttpSettings {
        allowed_hosts: file.http.allowed_hosts.clone(),
        allowed_origins: file.http.allowed_origins.clone(),
        public_url,
        authorization_servers: match &dev_authorization {
            Some(dev) => vec![dev.issuer.clone()],
            None => file
                .oauth
                .as_ref()
                .map(|o| o.authorization_servers.clone())
                .unwrap_or_default(),
        },
        max_body_bytes: limits.max_body_bytes,
        response_timeout: limits.call_timeout + std::time::Duration::from_secs(5),
        dev_authorization,
    };
    let auth = Authenticator {
        api_keys,
        jwt,
        insecure_dev_principal,
    };
    let mut http_guards = HttpGuards::reference(auth, limiter()?, &settings, scopes_table);
    if let Some(shared) = &shared_limiter {
        http_guards.limit =
            std::sync::Arc::new(transport::http::SharedPerPrincipalLimit(shared.clone()));
    }
    if let Some(swap) = twin.http {
        swap(&mut http_guards, &context);
    }
    let app = transport::http::router(ReferenceServer::new(state), http_guards, settings);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| StartError::Runtime(format!("cannot listen on {bind}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    tracing::info!(%local, "serving MCP over Streamable HTTP at /mcp");
    // A line on stderr that scripts can wait for, with the real port when 0 was asked for.
    eprintln!("listening on http://{local}/mcp");
    // Small SSE writes must not wait for delayed ACKs (Nagle): about 40 ms per call otherwise.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))
}

/// The development authorization server's configuration: its issuer is the origin of
/// `public_url`, which must be a loopback address with a fixed port.
fn dev_authorization(
    bind: SocketAddr,
    public_url: &str,
    oauth_configured: bool,
    key_file: Option<&Path>,
) -> Result<transport::http::DevAuthorization, StartError> {
    if oauth_configured {
        return Err(StartError::Usage(
            "--dev-authorization-server replaces the [oauth] section: use one or the other".into(),
        ));
    }
    if !bind.ip().is_loopback() || bind.port() == 0 {
        return Err(StartError::Usage(
            "--dev-authorization-server is refused unless the bind address is loopback with a fixed port".into(),
        ));
    }
    let issuer = url::Url::parse(public_url)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|_| ConfigError::BadSetting {
            setting: "http.public_url",
            reason: "not a URL".into(),
        })?;
    tracing::warn!(
        %issuer,
        "INSECURE DEVELOPMENT MODE: serving an authorization server that approves every request without asking anyone; never use this outside a test"
    );
    Ok(transport::http::DevAuthorization {
        issuer,
        resource: public_url.to_owned(),
        signer: std::sync::Arc::new(match key_file {
            Some(path) => read_signer(path)?,
            None => DevSigner::generate(),
        }),
    })
}

fn dev_token(args: DevTokenArgs) -> Result<(), StartError> {
    for scope in &args.scopes {
        if !config::ALL_SCOPES.contains(&scope.as_str()) {
            return Err(StartError::Usage(format!(
                "unknown scope {scope:?}; known scopes: {}",
                config::ALL_SCOPES.join(", ")
            )));
        }
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| StartError::Runtime(format!("cannot create {}: {e}", args.out.display())))?;
    let key_path = args.out.join("dev-signing-key");
    let signer = load_or_create_signer(&key_path)?;
    let jwks_path = args.out.join("jwks.json");
    std::fs::write(
        &jwks_path,
        serde_json::to_vec_pretty(&signer.jwks()).unwrap_or_default(),
    )
    .map_err(|e| StartError::Runtime(format!("cannot write {}: {e}", jwks_path.display())))?;
    let token = signer.mint(
        &args.issuer,
        &args.resource,
        &args.subject,
        &args.scopes,
        args.lifetime,
    );
    println!("{token}");
    eprintln!(
        "wrote {jwks}; configure the server with:\n[oauth]\nissuer = \"{issuer}\"\njwks = \"{jwks}\"\n(the token's audience is {resource}: start the server with that public URL)",
        jwks = jwks_path.display(),
        issuer = args.issuer,
        resource = args.resource
    );
    Ok(())
}

/// The signer a `dev-signing-key` file holds (64 hex digits).
fn signer_from_text(path: &Path, text: &str) -> Result<DevSigner, StartError> {
    let text = text.trim();
    let bytes: Vec<u8> = (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StartError::Runtime(format!("{} is not a dev signing key", path.display())))?;
    Ok(DevSigner::from_seed(seed))
}

fn read_signer(path: &Path) -> Result<DevSigner, StartError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StartError::Runtime(format!("cannot read {}: {}", path.display(), e.kind()))
    })?;
    signer_from_text(path, &text)
}

fn load_or_create_signer(path: &Path) -> Result<DevSigner, StartError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return signer_from_text(path, &text);
    }
    let signer = DevSigner::generate();
    let hex: String = signer.seed().iter().map(|b| format!("{b:02x}")).collect();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StartError::Runtime(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(hex.as_bytes())
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    Ok(signer)
}
