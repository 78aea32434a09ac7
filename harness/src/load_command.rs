//! `mcp-harness load`: flags to a [`harness::load::LoadOptions`], the run, and its output
//! (human text, JSON, an HTML page with the charts).

use super::target_flags::TargetFlags;
use super::{fail, positive_rate, runtime, write_atomically};
use clap::{Args, ValueEnum};
use harness::load::summary::LimitVerdict;
use harness::load::{LoadOptions, LoadPlan};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadFormat {
    Human,
    Json,
}

#[derive(Args)]
pub struct LoadArgs {
    #[command(flatten)]
    target: TargetFlags,
    /// The tool to call [default: the cheapest tool whose name says it only reads].
    #[arg(long, value_name = "NAME")]
    tool: Option<String>,
    /// Its arguments as a JSON object [default: built from its input schema].
    #[arg(long, value_name = "JSON")]
    arguments: Option<String>,
    /// Calls offered per second (at the start, with --ramp-to).
    #[arg(long, value_name = "PER_SECOND", default_value = "100", value_parser = positive_rate)]
    rate: f64,
    /// Ramp the offered rate linearly to this by the end of the run.
    #[arg(long, value_name = "PER_SECOND", value_parser = positive_rate)]
    ramp_to: Option<f64>,
    /// Seconds to offer calls for (at most 600).
    #[arg(long, value_name = "SECONDS", default_value = "10")]
    duration: f64,
    /// HTTP sessions to spread the calls over, each carrying one call at a time [default: 32
    /// over HTTP; a stdio target is one pipe, pipelined].
    #[arg(long)]
    connections: Option<usize>,
    /// Calls in flight at most; a call due beyond it is counted as not sent.
    #[arg(long, default_value = "10000")]
    max_in_flight: usize,
    /// A second whose calls are not all answered within this many milliseconds is one the
    /// target did not keep up with.
    #[arg(long, value_name = "MS", default_value = "1000")]
    latency_budget: u64,
    /// The sustained calls per second the target's limit should allow: exit 1 when clearly
    /// more are served.
    #[arg(long, value_name = "PER_SECOND", value_parser = positive_rate)]
    expect_rate: Option<f64>,
    /// The burst the target's limit should allow: exit 1 when more are served at once.
    #[arg(long, value_name = "CALLS")]
    expect_burst: Option<u32>,
    /// Output format on stdout (or in --output).
    #[arg(long, value_enum, default_value = "human")]
    format: LoadFormat,
    /// Write the output here instead of stdout (whole or not at all).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also write the run as an HTML page with its charts.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn load(args: LoadArgs) -> ExitCode {
    let target = match args.target.target() {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    let arguments = match &args.arguments {
        None => None,
        Some(raw) => match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(value @ serde_json::Value::Object(_)) => Some(value),
            Ok(_) => return fail("--arguments must be a JSON object"),
            Err(error) => return fail(format!("--arguments is not JSON: {error}")),
        },
    };
    if !(args.duration.is_finite() && args.duration > 0.0) {
        return fail("--duration must be a positive number of seconds");
    }
    let options = LoadOptions {
        target,
        stage: args.target.stage(),
        budget: args.target.budget(),
        plan: LoadPlan {
            rate: args.rate,
            ramp_to: args.ramp_to,
            duration: Duration::from_secs_f64(args.duration.min(1e6)),
            max_in_flight: args.max_in_flight,
            latency_budget: Duration::from_millis(args.latency_budget.max(1)),
        },
        tool: args.tool.clone(),
        arguments,
        connections: args.connections.unwrap_or(if args.target.url.is_some() {
            harness::load::DEFAULT_HTTP_CONNECTIONS
        } else {
            1
        }),
        expected_per_second: args.expect_rate,
        expected_burst: args.expect_burst,
    };
    harness::load::raise_open_file_limit();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(message) => return fail(message),
    };
    let summary = match runtime.block_on(harness::load::run(options)) {
        Ok(summary) => summary,
        Err(error) => return fail(error),
    };
    let text = match args.format {
        LoadFormat::Human => summary.human(),
        LoadFormat::Json => match serde_json::to_string_pretty(&summary) {
            Ok(json) => json + "\n",
            Err(error) => return fail(format!("cannot write the JSON: {error}")),
        },
    };
    match &args.output {
        Some(path) => {
            if let Err(error) = write_atomically(path, &text) {
                return fail(format!("cannot write {}: {error}", path.display()));
            }
        }
        None => print!("{text}"),
    }
    if let Some(path) = &args.html
        && let Err(error) = write_atomically(path, &harness::load::html::render(&summary))
    {
        return fail(format!("cannot write {}: {error}", path.display()));
    }
    match summary.limit_verdict {
        LimitVerdict::AboveExpected => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}
