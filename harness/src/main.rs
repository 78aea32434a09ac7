//! `mcp-harness`: certify an MCP server in CI. A thin layer over the `harness` library: flags
//! are parsed here, the report is rendered here, nothing else.
//!
//! Exit status: 0 no failing probe at or above `--fail-on`; 1 findings; 2 the harness could not
//! do its job (bad arguments, the target would not start, or the run reached nothing to
//! attack: the report is then written and says so).

use clap::{Args, Parser, Subcommand, ValueEnum};
use harness::connection::Budget;
use harness::probe::{Profile, Severity};
use harness::{CertifyOptions, Event, TargetOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "mcp-harness",
    version,
    about = "Attacks an MCP server (stdio or Streamable HTTP) and reports what it proved."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certify a server: run the probes, render the report, exit 0 (certified), 1 (findings) or 2 (error).
    Certify(Box<CertifyArgs>),
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
}

#[derive(Args)]
struct CertifyArgs {
    /// The target as a command line run over stdio; {sandbox} and {canary_url} are filled in.
    /// Default: the bundled reference server.
    #[arg(long, value_name = "COMMAND", conflicts_with = "url")]
    stdio: Option<String>,
    /// The target's Streamable HTTP endpoint.
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
    #[arg(long, value_enum, default_value = "standard")]
    profile: Profile,
    /// Report format (repeatable); pairs with --output by position, the rest go to stdout.
    #[arg(long, value_enum)]
    format: Vec<Format>,
    /// Write the report to this file (repeatable, one per --format).
    #[arg(long, value_name = "FILE")]
    output: Vec<PathBuf>,
    /// Exit 1 when a probe at or above this severity fails.
    #[arg(long, value_enum, default_value = "high")]
    fail_on: Severity,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Protocol era: `negotiate` (initialize, falling back to stateless 2026-07-28 when the
    /// server refuses it) or `2026-07-28` (stateless from the start).
    #[arg(long, value_enum, default_value = "negotiate")]
    protocol: ProtocolArg,
    /// Seconds to wait for a stdio target to start and answer initialize.
    #[arg(long, default_value_t = 30)]
    startup_timeout: u64,
    /// Seconds after which no new call is started.
    #[arg(long, default_value_t = 600)]
    max_duration: u64,
}

/// Said when a build without the `bundled-reference` feature is asked for its default target.
const NO_BUNDLED_SERVER: &str = "this build has no bundled reference server (built without the `bundled-reference` feature): give a target with --stdio or --url";

fn main() -> ExitCode {
    let cli = Cli::parse();
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

fn certify(args: CertifyArgs) -> ExitCode {
    let fail = |message: String| {
        eprintln!("mcp-harness: {message}");
        ExitCode::from(2)
    };
    let mut formats = args.format.clone();
    if formats.is_empty() {
        formats.push(Format::Human);
    }
    if args.output.len() > formats.len() {
        return fail("more --output files than --format values".into());
    }
    let jwt_signing_key = match args
        .jwt_signing_key
        .as_deref()
        .map(harness::probe::auth::SigningKey::load)
        .transpose()
    {
        Ok(key) => key,
        Err(message) => return fail(message),
    };
    let target = match (&args.stdio, &args.url) {
        (Some(command), None) => TargetOptions::Stdio {
            command: command.clone(),
        },
        (None, Some(url)) => {
            let headers = match args
                .headers
                .iter()
                .map(|h| parse_header(h))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(headers) => headers,
                Err(message) => return fail(message),
            };
            TargetOptions::Http {
                url: url.clone(),
                headers,
            }
        }
        _ if cfg!(not(feature = "bundled-reference")) => return fail(NO_BUNDLED_SERVER.into()),
        _ => {
            let Ok(exe) = std::env::current_exe() else {
                return fail(
                    "cannot find the harness binary to run the bundled reference server".into(),
                );
            };
            let exe = shell_words::quote(&exe.to_string_lossy()).into_owned();
            TargetOptions::Stdio {
                command: format!("{exe} __reference-server --stdio --root {{sandbox}}"),
            }
        }
    };
    let interactive = std::io::stderr().is_terminal();
    let options = CertifyOptions {
        target,
        stage: harness::StageOptions {
            sandbox: args.sandbox.clone(),
            cwd: args.cwd.clone(),
        },
        selection: harness::Selection {
            only: args.only.clone(),
            skip: args.skip.clone(),
            profile: args.profile,
        },
        fail_on: args.fail_on,
        budget: Budget {
            request_timeout: Duration::from_secs(args.timeout.max(1)),
            startup_timeout: Duration::from_secs(args.startup_timeout.max(1)),
            protocol: match args.protocol {
                ProtocolArg::Negotiate => harness::connection::ProtocolChoice::Negotiate,
                ProtocolArg::Stateless => harness::connection::ProtocolChoice::Stateless,
            },
            ..Budget::default()
        },
        max_duration: Duration::from_secs(args.max_duration.max(1)),
        credentials: harness::probe::Credentials {
            jwt_signing_key,
            argument_key: args.argument_key.clone(),
            low_scope: args
                .token_low
                .as_ref()
                .map(|t| format!("Bearer {}", t.trim())),
            second: args.token2.as_ref().map(|t| format!("Bearer {}", t.trim())),
            ..Default::default()
        },
        expect: harness::probe::rate::Expectations {
            burst: args.expect_burst,
            per_second: args.expect_rate,
        },
        events: Some(Box::new(move |event: Event<'_>| match event {
            // A progress line on a terminal only; notices always, on their own line.
            Event::Started(phase) if interactive => eprint!("\r\x1b[2Kprobing {phase}..."),
            Event::Notice(message) => {
                if interactive {
                    eprint!("\r\x1b[2K");
                }
                eprintln!("{message}");
            }
            _ => {}
        })),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the async runtime: {error}")),
    };
    let result = runtime.block_on(harness::certify(options));
    if interactive {
        eprint!("\r\x1b[2K");
    }
    let report = match result {
        Ok(report) => report,
        Err(error) => return fail(error.to_string()),
    };
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for (index, format) in formats.iter().enumerate() {
        let text = match format {
            Format::Human => {
                harness::report::human::render(&report, colour && args.output.get(index).is_none())
            }
            Format::Json => harness::report::json(&report),
            Format::Sarif => harness::report::sarif::render(&report),
            Format::Junit => harness::report::junit::render(&report),
        };
        match args.output.get(index) {
            Some(path) => {
                if let Err(error) = write_atomically(path, &text) {
                    return fail(format!("cannot write {}: {error}", path.display()));
                }
            }
            None => print!("{text}"),
        }
    }
    ExitCode::from(report.summary.verdict.exit_status())
}
