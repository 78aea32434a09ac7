//! `mcp-harness fuzz`: flags to a [`harness::fuzz::FuzzOptions`], the run, and its reports
//! (every format of `certify`, the same exit statuses).

use super::target_flags::TargetFlags;
use super::{Format, fail, render, runtime, write_atomically};
use clap::Args;
use harness::fuzz::FuzzOptions;
use harness::probe::Severity;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct FuzzArgs {
    /// The target; a reply slower than --timeout fails FUZZ-TIMEOUT.
    #[command(flatten)]
    target: TargetFlags,
    /// The seed every case is derived from: the same seed, the same cases.
    #[arg(long, default_value = "1")]
    seed: u64,
    /// Cases per tool, prompt and resource template.
    #[arg(long, default_value = "200")]
    cases: u64,
    /// Calls in all, cases, shrinking and pings together.
    #[arg(long, default_value = "20000")]
    max_calls: u64,
    /// Seconds the whole run may take.
    #[arg(long, value_name = "SECONDS", default_value = "600")]
    max_duration: u64,
    /// Run one case again, as a report's replay line names it: TOOL#N (with the same --seed).
    #[arg(long, value_name = "TOOL#N", value_parser = parse_replay)]
    replay: Option<(String, u64)>,
    /// Exit 1 when a check at or above this severity fails.
    #[arg(long, value_enum, default_value = "low")]
    fail_on: Severity,
    /// Report format (repeatable); pairs with --output by position, the rest go to stdout.
    #[arg(long, value_enum)]
    format: Vec<Format>,
    /// Write the report to this file (repeatable, one per --format).
    #[arg(long, value_name = "FILE")]
    output: Vec<PathBuf>,
}

fn parse_replay(raw: &str) -> Result<(String, u64), String> {
    let (tool, index) = raw
        .rsplit_once('#')
        .ok_or_else(|| format!("{raw:?} is not TOOL#N"))?;
    let index = index
        .parse()
        .map_err(|_| format!("{index:?} is not a case number"))?;
    Ok((tool.to_owned(), index))
}

/// The flags that select the target, quoted for a shell: the start of the replay line.
fn command_line(args: &FuzzArgs) -> String {
    let mut words = vec!["mcp-harness".to_owned(), "fuzz".to_owned()];
    if let Some(stdio) = &args.target.stdio {
        words.extend(["--stdio".to_owned(), shell_words::quote(stdio).into_owned()]);
    }
    if let Some(url) = &args.target.url {
        words.extend(["--url".to_owned(), shell_words::quote(url).into_owned()]);
    }
    words.join(" ")
}

pub fn fuzz(args: FuzzArgs) -> ExitCode {
    if args.output.len() > args.format.len() {
        return fail("more --output files than --format values");
    }
    let target = match args.target.target() {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    let options = FuzzOptions {
        target,
        stage: args.target.stage(),
        budget: args.target.budget(),
        seed: args.seed,
        cases: args.cases,
        max_calls: args.max_calls,
        max_duration: Duration::from_secs(args.max_duration.clamp(1, 24 * 3600)),
        replay: args.replay.clone(),
        fail_on: args.fail_on,
        command_line: command_line(&args),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(message) => return fail(message),
    };
    let report = match runtime.block_on(harness::fuzz::fuzz(options)) {
        Ok(report) => report,
        Err(error) => return fail(error),
    };
    let mut outputs: Vec<(Format, Option<&PathBuf>)> = args
        .format
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, args.output.get(i)))
        .collect();
    if outputs.is_empty() {
        outputs.push((Format::Human, None));
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for (format, path) in outputs {
        let text = render(format, &report, colour && path.is_none());
        match path {
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
