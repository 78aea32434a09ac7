//! `mcp-harness`: certify an MCP server in CI. A thin layer over the `harness` library: flags
//! are parsed here, the report is rendered here, nothing else.
//!
//! Exit status: 0 no failing probe at or above `--fail-on`; 1 findings; 2 the harness could not
//! do its job (bad arguments, the target would not start, or the run reached nothing to
//! attack: the report is then written and says so).

use clap::{Args, Parser, Subcommand, ValueEnum};
use harness::baseline::Baseline;
use harness::connection::Budget;
use harness::probe::{Profile, Severity};
use harness::project::{Project, TargetKind};
use harness::report::Report;
use harness::{CertifyOptions, Event, TargetOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[cfg(feature = "bundled-reference")]
mod first_run;
mod fuzz_command;
mod load_command;
mod target_flags;

#[derive(Parser)]
#[command(
    name = "mcp-harness",
    version,
    about = "Attacks an MCP server (stdio, Streamable HTTP or legacy HTTP+SSE) and reports what it proved."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certify a server: run the probes, render the report, exit 0 (certified), 1 (findings) or 2 (error).
    Certify(Box<CertifyArgs>),
    /// Certify, then write the findings as a baseline file: `certify --baseline FILE` then
    /// fails only on findings not in it.
    Baseline(Box<BaselineArgs>),
    /// Offer a tool call at a fixed rate (or a ramp) open-loop, and report the limit the target
    /// enforced and where it stopped keeping up: exit 0, 1 (more served than --expect-rate /
    /// --expect-burst allow) or 2 (error).
    Load(Box<load_command::LoadArgs>),
    /// Fuzz every tool, prompt and resource template with inputs built from its schema (valid,
    /// one constraint broken, attack payloads), judged by named checks; each failure shrunk to
    /// a small input with its replay: exit 0, 1 (a check failed) or 2 (error).
    Fuzz(Box<fuzz_command::FuzzArgs>),
    /// List every probe with its id, family, severity and CWE.
    ListProbes,
    /// Runs the bundled reference server (the default target of `certify`).
    #[command(name = "__reference-server", hide = true, disable_help_flag = true)]
    ReferenceServer {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    Negotiate,
    #[value(name = "2026-07-28")]
    Stateless,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
    Junit,
    /// A summary for a pull-request comment or $GITHUB_STEP_SUMMARY.
    Markdown,
    /// One self-contained HTML page (no script, nothing from the network).
    Html,
}

impl From<harness::project::OutputFormat> for Format {
    fn from(format: harness::project::OutputFormat) -> Self {
        use harness::project::OutputFormat as F;
        match format {
            F::Human => Format::Human,
            F::Json => Format::Json,
            F::Sarif => Format::Sarif,
            F::Junit => Format::Junit,
            F::Markdown => Format::Markdown,
            F::Html => Format::Html,
        }
    }
}

#[derive(Args)]
struct CertifyArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Report format (repeatable); pairs with --output by position, the rest go to stdout.
    #[arg(long, value_enum)]
    format: Vec<Format>,
    /// Write the report to this file (repeatable, one per --format; `{target}` is the
    /// project file's target name).
    #[arg(long, value_name = "FILE")]
    output: Vec<PathBuf>,
    /// A baseline file (`mcp-harness baseline` writes one): only findings not in it fail the
    /// run; the report lists those fixed since.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
}

#[derive(Args)]
struct BaselineArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Where to write the baseline (JSON; replaced whole or not at all).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// A project file (default: mcp-harness.toml in the working directory, when no --stdio or
    /// --url is given). Flags given here override it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stdio", "url"])]
    config: Option<PathBuf>,
    /// Certify every server of an MCP client's configuration (Claude Desktop's
    /// claude_desktop_config.json, VS Code's .vscode/mcp.json, Cursor's mcp.json), run as
    /// configured. Only the families that read (PROTO, TRANS, AUTH) run, unless
    /// --all-families says otherwise.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stdio", "url", "config"])]
    client_config: Option<PathBuf>,
    /// With --client-config: run every family, the ones that write, flood and inject too,
    /// against servers that reach your real files and accounts.
    #[arg(long, requires = "client_config")]
    all_families: bool,
    /// No progress line and no notices on stderr (errors and warnings still go there).
    #[arg(long, short)]
    quiet: bool,
    /// The target as a command line run over stdio; {sandbox} and {canary_url} are filled in.
    /// Default: the bundled reference server.
    #[arg(long, value_name = "COMMAND", conflicts_with = "url")]
    stdio: Option<String>,
    /// The target's Streamable HTTP endpoint, or a legacy HTTP+SSE event stream (a path ending
    /// in /sse, or any URL whose Streamable HTTP POST is refused with 400, 404 or 405).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A header sent with every HTTP request, e.g. 'Authorization: Bearer ...' (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "url")]
    headers: Vec<String>,
    /// A second principal's bearer token (HTTP): RATE checks that one principal's flood does
    /// not lock this one out.
    #[arg(long, value_name = "TOKEN", requires = "url")]
    token2: Option<String>,
    /// A valid bearer token that lacks a scope some tools need (HTTP): AUTH-SCOPE checks that
    /// those tools refuse it with 403 insufficient_scope.
    #[arg(long, value_name = "TOKEN", requires = "url")]
    token_low: Option<String>,
    /// A valid key for a stdio target that takes its credential as a tool argument (a parameter
    /// named api_key, token, password...): TIME-CREDENTIAL-COMPARE times near misses of it
    /// through that argument, over the pipe.
    #[arg(long, value_name = "KEY", conflicts_with = "url")]
    argument_key: Option<String>,
    /// A JWT signing key the target trusts (the seed file `mcp-reference-server dev-token`
    /// writes): AUTH-JWT-CLAIMS signs expired, wrong-audience... copies of the --header token.
    #[arg(long, value_name = "FILE", requires = "url")]
    jwt_signing_key: Option<PathBuf>,
    /// The burst the target's rate limit should allow; RATE-FLOOD fails when more calls get
    /// through before the first refusal.
    #[arg(long, value_name = "CALLS")]
    expect_burst: Option<u32>,
    /// The sustained calls per second the target's rate limit should allow; RATE-FLOOD fails
    /// when clearly more are served under flood.
    #[arg(long, value_name = "PER_SECOND", value_parser = positive_rate)]
    expect_rate: Option<f64>,
    /// Adopt this directory as {sandbox} instead of a fresh temporary one.
    #[arg(long, value_name = "DIR")]
    sandbox: Option<PathBuf>,
    /// Serve an upstream on this port of 127.0.0.1 ({upstream_url} in a stdio command): point
    /// the target's upstream API at it, and AUTH-TOKEN-PASSTHROUGH checks that the requests it
    /// makes there carry none of the credentials the harness sent it.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    upstream_port: Option<u16>,
    /// The stdio target's working directory (default: the sandbox, so that anything the server
    /// creates relative to it stays on the stage).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Run only these probes or families (repeatable).
    #[arg(long, value_name = "ID|FAMILY")]
    only: Vec<String>,
    /// Skip these probes or families (repeatable).
    #[arg(long, value_name = "ID|FAMILY")]
    skip: Vec<String>,
    /// How hard to try [default: standard].
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// Exit 1 when a probe at or above this severity fails [default: high].
    #[arg(long, value_enum)]
    fail_on: Option<Severity>,
    /// Seconds to wait for each reply [default: 10].
    #[arg(long)]
    timeout: Option<u64>,
    /// Protocol era: `negotiate` (initialize, falling back to stateless 2026-07-28 when the
    /// server refuses it) or `2026-07-28` (stateless from the start) [default: negotiate].
    #[arg(long, value_enum)]
    protocol: Option<ProtocolArg>,
    /// Seconds to wait for a stdio target to start and answer initialize [default: 30].
    #[arg(long)]
    startup_timeout: Option<u64>,
    /// Seconds after which no new call is started [default: 600].
    #[arg(long)]
    max_duration: Option<u64>,
}

/// The bundled reference server's rate limit when it is the default target.
const BUNDLED_BURST: u32 = 100;
const BUNDLED_PER_SECOND: u32 = 100;

/// Said when a build without the `bundled-reference` feature is asked for its default target.
const NO_BUNDLED_SERVER: &str = "this build has no bundled reference server (built without the `bundled-reference` feature): give a target with --stdio or --url";

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let version: &'static str = Box::leak(harness::probe::version_line().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.command {
        #[cfg(feature = "bundled-reference")]
        Command::ReferenceServer { args } => {
            let argv = std::iter::once("mcp-reference-server".to_owned()).chain(args);
            reference_server::cli::run(argv)
        }
        #[cfg(not(feature = "bundled-reference"))]
        Command::ReferenceServer { .. } => {
            eprintln!("mcp-harness: {NO_BUNDLED_SERVER}");
            ExitCode::from(2)
        }
        Command::ListProbes => {
            for info in harness::probe::registry() {
                let cwe = info.cwe.map(|c| format!("CWE-{c}")).unwrap_or_default();
                println!(
                    "{:<22} {:<8} {:<9} {:<8} {}",
                    info.id,
                    info.family.name(),
                    info.severity.name(),
                    cwe,
                    info.title
                );
            }
            ExitCode::SUCCESS
        }
        Command::Certify(args) => certify(*args),
        Command::Baseline(args) => write_baseline(*args),
        Command::Load(args) => load_command::load(*args),
        Command::Fuzz(args) => fuzz_command::fuzz(*args),
    }
}

fn positive_rate(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{raw:?} is not a positive number of calls per second"
        )),
    }
}

fn parse_header(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("--header {raw:?} is not 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("--header {raw:?} has an invalid name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Writes a file whole or not at all: a temporary sibling, then a rename.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = tempfile::NamedTempFile::new_in(directory)?;
    std::fs::write(temporary.path(), contents)?;
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mcp-harness: {message}");
    ExitCode::from(2)
}

/// The project file to read: `--config`, or `mcp-harness.toml` in the working directory when
/// no target is given on the command line; `None` without one.
fn load_project(run: &RunArgs) -> Result<Option<Project>, String> {
    if let Some(path) = &run.client_config {
        return client_project(path, run.all_families).map(Some);
    }
    if run.stdio.is_some() || run.url.is_some() {
        return Ok(None);
    }
    let path = match &run.config {
        Some(path) => path.clone(),
        None => {
            let default = PathBuf::from(harness::project::DEFAULT_FILE);
            if !default.is_file() {
                return Ok(None);
            }
            default
        }
    };
    Project::load(&path, &|name| std::env::var(name).ok())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The servers of a client's configuration as a project: one target each, run as configured
/// from the working directory, with only the families that read unless `all_families`.
fn client_project(path: &Path, all_families: bool) -> Result<Project, String> {
    use harness::client_config::{ClientServerKind, SAFE_FAMILIES};
    let servers = harness::client_config::load(path, &|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    if servers.is_empty() {
        return Err(format!("{} lists no server", path.display()));
    }
    if all_families {
        eprintln!(
            "mcp-harness: WARNING: every family runs against the configured servers (--all-families): they may write, flood and reach your real files and accounts"
        );
    }
    let cwd = std::env::current_dir().ok();
    let targets = servers
        .into_iter()
        .map(|server| {
            let name: String = server
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let (kind, env) = match server.kind {
                ClientServerKind::Stdio { command, env } => (TargetKind::Stdio(command), env),
                ClientServerKind::Http { url, headers } => {
                    (TargetKind::Http { url, headers }, Vec::new())
                }
            };
            harness::project::Target {
                name,
                kind,
                cwd: cwd.clone(),
                sandbox: None,
                env,
                bearer: None,
                second_bearer: None,
                low_scope_bearer: None,
                argument_key: None,
                jwt_signing_key: None,
                expect: Default::default(),
            }
        })
        .collect();
    Ok(Project {
        path: path.to_owned(),
        file: harness::project::ProjectFile {
            only: if all_families {
                Vec::new()
            } else {
                SAFE_FAMILIES.iter().map(|f| f.to_string()).collect()
            },
            ..Default::default()
        },
        targets,
    })
}

/// One certification of a run: a target's label (`None` from the command line alone) and its
/// options.
struct Job {
    name: Option<String>,
    options: CertifyOptions,
    /// Added to the job's report.
    warnings: Vec<String>,
    /// The first run (no target, no project file): after the bundled reference server over
    /// stdio, the probes stdio could not apply run against it over HTTP, in the same report.
    first_run: bool,
    quiet: bool,
}

/// The certifications `run` asks for: one per target of the project file, or the one the
/// command line names (the bundled reference server by default). Flags override the file.
fn jobs(run: &RunArgs, project: Option<&Project>) -> Result<Vec<Job>, String> {
    let file = project.map(|p| &p.file);
    let targets: Vec<Option<&harness::project::Target>> = match project {
        Some(project) => project.targets.iter().map(Some).collect(),
        None => vec![None],
    };
    let mut jobs = Vec::new();
    for target in targets {
        let (target_options, env) = match target {
            Some(target) => (
                match &target.kind {
                    TargetKind::Stdio(command) => TargetOptions::Stdio {
                        command: command.clone(),
                    },
                    TargetKind::Http { url, headers } => TargetOptions::Http {
                        url: url.clone(),
                        headers: headers.clone(),
                    },
                },
                target.env.clone(),
            ),
            None => (command_line_target(run)?, Vec::new()),
        };
        let jwt_path = run
            .jwt_signing_key
            .clone()
            .or_else(|| target.and_then(|t| t.jwt_signing_key.clone()));
        let jwt_signing_key = jwt_path
            .as_deref()
            .map(harness::probe::auth::SigningKey::load)
            .transpose()?;
        let bearer =
            |token: &Option<String>| token.as_ref().map(|t| format!("Bearer {}", t.trim()));
        let protocol = run
            .protocol
            .or_else(|| match file.and_then(|f| f.protocol.as_deref()) {
                Some("2026-07-28") => Some(ProtocolArg::Stateless),
                Some(_) => Some(ProtocolArg::Negotiate),
                None => None,
            })
            .unwrap_or(ProtocolArg::Negotiate);
        let seconds = |flag: Option<u64>, in_file: Option<u64>, default: u64| {
            Duration::from_secs(flag.or(in_file).unwrap_or(default).max(1))
        };
        let pick = |flag: &Vec<String>, in_file: Option<&Vec<String>>| {
            if flag.is_empty() {
                in_file.cloned().unwrap_or_default()
            } else {
                flag.clone()
            }
        };
        let options = CertifyOptions {
            target: target_options,
            stage: harness::StageOptions {
                sandbox: run
                    .sandbox
                    .clone()
                    .or_else(|| target.and_then(|t| t.sandbox.clone())),
                cwd: run
                    .cwd
                    .clone()
                    .or_else(|| target.and_then(|t| t.cwd.clone())),
                env,
                upstream_port: run.upstream_port,
            },
            selection: harness::Selection {
                only: pick(&run.only, file.map(|f| &f.only)),
                skip: pick(&run.skip, file.map(|f| &f.skip)),
                profile: run
                    .profile
                    .or_else(|| file.and_then(|f| f.profile).map(Profile::from))
                    .unwrap_or_default(),
            },
            fail_on: run
                .fail_on
                .or_else(|| file.and_then(|f| f.fail_on))
                .unwrap_or(Severity::High),
            budget: Budget {
                request_timeout: seconds(run.timeout, file.and_then(|f| f.timeout), 10),
                startup_timeout: seconds(
                    run.startup_timeout,
                    file.and_then(|f| f.startup_timeout),
                    30,
                ),
                protocol: match protocol {
                    ProtocolArg::Negotiate => harness::connection::ProtocolChoice::Negotiate,
                    ProtocolArg::Stateless => harness::connection::ProtocolChoice::Stateless,
                },
                ..Budget::default()
            },
            max_duration: seconds(run.max_duration, file.and_then(|f| f.max_duration), 600),
            credentials: harness::probe::Credentials {
                jwt_signing_key,
                argument_key: run
                    .argument_key
                    .clone()
                    .or_else(|| target.and_then(|t| t.argument_key.clone())),
                low_scope: bearer(
                    &run.token_low
                        .clone()
                        .or_else(|| target.and_then(|t| t.low_scope_bearer.clone())),
                ),
                second: bearer(
                    &run.token2
                        .clone()
                        .or_else(|| target.and_then(|t| t.second_bearer.clone())),
                ),
                ..Default::default()
            },
            expect: harness::probe::rate::Expectations {
                burst: run
                    .expect_burst
                    .or_else(|| target.and_then(|t| t.expect.burst)),
                per_second: run
                    .expect_rate
                    .or_else(|| target.and_then(|t| t.expect.rate)),
            },
            events: Some(progress_events(run.quiet)),
        };
        let mut warnings = Vec::new();
        if run.all_families {
            warnings.push(
                "every family ran against a server from a client's configuration (--all-families): it may have written, flooded or injected where that server reaches".to_owned(),
            );
        }
        jobs.push(Job {
            name: target.map(|t| t.name.clone()),
            options,
            warnings,
            first_run: cfg!(feature = "bundled-reference")
                && target.is_none()
                && run.stdio.is_none()
                && run.url.is_none(),
            quiet: run.quiet,
        });
    }
    Ok(jobs)
}

/// The target the command line names: `--stdio`, `--url`, or the bundled reference server.
fn command_line_target(run: &RunArgs) -> Result<TargetOptions, String> {
    target_of(&run.stdio, &run.url, &run.headers)
}

/// The target of `--stdio`, `--url` with its `--header`s, or the bundled reference server.
fn target_of(
    stdio: &Option<String>,
    url: &Option<String>,
    headers: &[String],
) -> Result<TargetOptions, String> {
    match (stdio, url) {
        (Some(command), None) => Ok(TargetOptions::Stdio {
            command: command.clone(),
        }),
        (None, Some(url)) => Ok(TargetOptions::Http {
            url: url.clone(),
            headers: headers
                .iter()
                .map(|h| parse_header(h))
                .collect::<Result<Vec<_>, _>>()?,
        }),
        _ if cfg!(not(feature = "bundled-reference")) => Err(NO_BUNDLED_SERVER.into()),
        _ => {
            let exe = std::env::current_exe().map_err(|_| {
                "cannot find the harness binary to run the bundled reference server".to_owned()
            })?;
            let exe = shell_words::quote(&exe.to_string_lossy()).into_owned();
            // At 100 calls a second (its default is 20): the input families' calls are waited
            // out at the limit, and the first run should take under a minute. RATE-FLOOD still
            // floods far faster than that.
            Ok(TargetOptions::Stdio {
                command: format!(
                    "{exe} __reference-server --stdio --root {{sandbox}} --rate-burst {BUNDLED_BURST} --rate-per-second {BUNDLED_PER_SECOND}"
                ),
            })
        }
    }
}

/// Whether a live progress line is drawn: on a terminal only, and not when `--quiet`,
/// `NO_COLOR` or `CI` says otherwise.
fn progress_wanted(quiet: bool) -> bool {
    !quiet
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var_os("CI").is_none()
}

/// The live progress line (indicatif: phase k of n, calls, refusals waited out, elapsed, the
/// most left) when [`progress_wanted`]; notices always, unless `quiet`.
fn progress_events(quiet: bool) -> harness::EventFn {
    let bar = progress_wanted(quiet).then(|| {
        let bar = indicatif::ProgressBar::new(0).with_finish(indicatif::ProgressFinish::AndClear);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    Box::new(move |event: Event<'_>| match event {
        Event::Progress(progress) => {
            if let Some(bar) = &bar {
                bar.set_length(progress.steps as u64);
                bar.set_position(progress.step as u64);
                bar.set_message(format!(
                    "{}: {} calls, {} refusals waited out, at most {} s left",
                    progress.phase,
                    progress.calls,
                    progress.refusals_waited,
                    progress.at_most_left.as_secs()
                ));
                if progress.step == progress.steps && progress.phase != "baselines" {
                    bar.set_message(format!("{} (last)", progress.phase));
                }
            }
        }
        Event::Notice(message) if !quiet => match &bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        },
        _ => {}
    })
}

/// The reports to write: `--format`/`--output` when given, else the project file's
/// `[[output]]`s, else the human report on stdout. A path's `{target}` is the target's name;
/// with several targets every path must have it.
fn outputs(
    args: &CertifyArgs,
    project: Option<&Project>,
    several: bool,
) -> Result<Vec<(Format, Option<String>)>, String> {
    let mut outputs: Vec<(Format, Option<String>)> = if !args.format.is_empty() {
        if args.output.len() > args.format.len() {
            return Err("more --output files than --format values".into());
        }
        args.format
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    *f,
                    args.output.get(i).map(|p| p.to_string_lossy().into_owned()),
                )
            })
            .collect()
    } else if !args.output.is_empty() {
        return Err("--output needs a --format for each file".into());
    } else {
        project
            .map(|p| {
                p.file
                    .outputs
                    .iter()
                    .map(|o| (Format::from(o.format), o.path.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    if outputs.is_empty() {
        outputs.push((Format::Human, None));
    }
    if several
        && let Some(path) = outputs
            .iter()
            .filter_map(|(_, p)| p.as_ref())
            .find(|p| !p.contains("{target}"))
    {
        return Err(format!(
            "the output {path} has no {{target}} in its name, but there are several targets"
        ));
    }
    Ok(outputs)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Certifies one job, with the progress line cleared after.
fn run_job(runtime: &tokio::runtime::Runtime, job: Job) -> Result<Report, String> {
    if let Some(name) = &job.name {
        eprintln!("mcp-harness: certifying target {name}");
    }
    #[cfg(feature = "bundled-reference")]
    let over_http = job
        .first_run
        .then(|| first_run::OverHttp::after(&job.options, job.quiet, progress_events));
    // The progress line lives in the job's event closure: dropped (and cleared) with it.
    let mut report = runtime
        .block_on(harness::certify(job.options))
        .map_err(|e| e.to_string())?;
    report.warnings.extend(job.warnings);
    #[cfg(feature = "bundled-reference")]
    if let Some(over_http) = over_http {
        report = over_http.join(runtime, report);
    }
    Ok(report)
}

/// The exit status of several runs: 2 if any could not be done, else 1 if any failed.
fn worst(statuses: &[u8]) -> u8 {
    statuses.iter().copied().max().unwrap_or(0)
}

/// `report` in `format` (colour only for the human report on a terminal).
fn render(format: Format, report: &Report, colour: bool) -> String {
    match format {
        Format::Human => harness::report::human::render(report, colour),
        Format::Json => harness::report::json(report),
        Format::Sarif => harness::report::sarif::render(report),
        Format::Junit => harness::report::junit::render(report),
        Format::Markdown => harness::report::markdown::render(report),
        Format::Html => harness::report::html::render(report),
    }
}

fn certify(args: CertifyArgs) -> ExitCode {
    let project = match load_project(&args.run) {
        Ok(project) => project,
        Err(message) => return fail(message),
    };
    let jobs = match jobs(&args.run, project.as_ref()) {
        Ok(jobs) => jobs,
        Err(message) => return fail(message),
    };
    let outputs = match outputs(&args, project.as_ref(), jobs.len() > 1) {
        Ok(outputs) => outputs,
        Err(message) => return fail(message),
    };
    let baseline_path = args
        .baseline
        .clone()
        .or_else(|| project.as_ref().and_then(|p| p.baseline()));
    let baseline = match baseline_path.as_deref().map(Baseline::load).transpose() {
        Ok(baseline) => baseline,
        Err(message) => return fail(message),
    };
    let suppressions = project
        .as_ref()
        .map(|p| p.file.suppressions.clone())
        .unwrap_or_default();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(message) => return fail(message),
    };
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut statuses = Vec::new();
    for job in jobs {
        let name = job.name.clone();
        let mut report = match run_job(&runtime, job) {
            Ok(report) => report,
            Err(message) => {
                eprintln!("mcp-harness: {message}");
                statuses.push(2);
                continue;
            }
        };
        if baseline.is_some() || !suppressions.is_empty() {
            let for_target = |t: &Option<String>| t.is_none() || *t == name;
            let baseline = baseline.as_ref().map(|b| Baseline {
                version: b.version,
                findings: b
                    .findings
                    .iter()
                    .filter(|f| for_target(&f.target))
                    .cloned()
                    .collect(),
            });
            let suppressions: Vec<_> = suppressions
                .iter()
                .filter(|s| for_target(&s.target))
                .cloned()
                .collect();
            let label = baseline_path
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            harness::baseline::accept(
                &mut report,
                baseline.as_ref().map(|b| (label.as_str(), b)),
                &suppressions,
                harness::baseline::today(),
            );
            if let Some(accepted) = &report.acceptance {
                for unused in &accepted.unused {
                    eprintln!("mcp-harness: warning: unused suppression: {unused}");
                }
            }
        }
        for (format, path) in &outputs {
            let text = render(*format, &report, colour && path.is_none());
            match path {
                Some(path) => {
                    let path = PathBuf::from(
                        path.replace("{target}", name.as_deref().unwrap_or("target")),
                    );
                    if let Err(error) = write_atomically(&path, &text) {
                        return fail(format!("cannot write {}: {error}", path.display()));
                    }
                }
                None => print!("{text}"),
            }
        }
        statuses.push(report.summary.verdict.exit_status());
    }
    ExitCode::from(worst(&statuses))
}

fn write_baseline(args: BaselineArgs) -> ExitCode {
    let project = match load_project(&args.run) {
        Ok(project) => project,
        Err(message) => return fail(message),
    };
    let jobs = match jobs(&args.run, project.as_ref()) {
        Ok(jobs) => jobs,
        Err(message) => return fail(message),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(message) => return fail(message),
    };
    let mut baseline = Baseline {
        version: harness::baseline::BASELINE_VERSION,
        findings: Vec::new(),
    };
    for job in jobs {
        let name = job.name.clone();
        let report = match run_job(&runtime, job) {
            Ok(report) => report,
            Err(message) => return fail(message),
        };
        if report.summary.verdict == harness::report::RunVerdict::NothingReached {
            return fail(format!(
                "the run{} reached nothing it could attack: no baseline is written from it",
                name.as_deref()
                    .map(|n| format!(" of target {n}"))
                    .unwrap_or_default()
            ));
        }
        let mut findings = Baseline::of(&report).findings;
        for finding in &mut findings {
            finding.target = name.clone();
        }
        baseline.findings.extend(findings);
    }
    if let Err(error) = write_atomically(&args.output, &baseline.to_json()) {
        return fail(format!("cannot write {}: {error}", args.output.display()));
    }
    eprintln!(
        "mcp-harness: wrote {} finding(s) to {}",
        baseline.findings.len(),
        args.output.display()
    );
    ExitCode::SUCCESS
}
