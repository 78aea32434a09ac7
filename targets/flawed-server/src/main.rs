//! `flawed-server --flaw NAME [reference server flags]`: the reference server with one guard
//! swapped for a flawed twin (`flawed-server --list` prints them all). It exists only so that
//! the harness's kill matrix can prove each probe catches the mistake it is meant to catch.
//! NEVER deploy it.
//!
//! Each flaw reproduces a real mistake faithfully, most of them from the seed document's
//! snippets. The twin is built by the reference start-up (`reference_server::cli::run_twin`):
//! the reference guards are built from the configuration, the flaw replaces the guard fields
//! it names, and everything else is the reference server unchanged.

mod flaws;

use flaws::{FLAWS, Flaw};
use reference_server::cli::{HttpGuardsChange, ToolGuardsChange, Twin};
use std::process::ExitCode;

/// One line per flaw and transport: name, transport, the probe meant to catch it, the
/// harness's extra arguments (space separated), the guards swapped (comma separated) and the
/// mistake, tab-separated; the kill matrix reads it.
fn list() -> String {
    FLAWS
        .iter()
        .flat_map(|flaw| {
            flaw.caught.iter().map(move |(transport, probe)| {
                format!(
                    "{}\t{}\t{probe}\t{}\t{}\t{}\n",
                    flaw.name,
                    transport.name(),
                    flaw.harness_args.join(" "),
                    flaw.swaps.join(","),
                    flaw.summary
                )
            })
        })
        .collect()
}

fn twin(flaw: &'static Flaw) -> Twin {
    Twin {
        tools: flaw.tools.map(|swap| Box::new(swap) as ToolGuardsChange),
        http: flaw.http.map(|swap| Box::new(swap) as HttpGuardsChange),
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        print!("{}", list());
        return ExitCode::SUCCESS;
    }
    let names = || FLAWS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
    let Some(position) = args.iter().position(|a| a == "--flaw") else {
        eprintln!(
            "flawed-server: --flaw NAME is required (or --list); names: {}",
            names()
        );
        return ExitCode::from(2);
    };
    let Some(name) = args.get(position + 1).cloned() else {
        eprintln!("flawed-server: --flaw needs a name");
        return ExitCode::from(2);
    };
    let Some(flaw) = Flaw::named(&name) else {
        eprintln!("flawed-server: unknown flaw {name:?}; names: {}", names());
        return ExitCode::from(2);
    };
    args.drain(position..=position + 1);
    eprintln!(
        "flawed-server: running with the {name} flaw (swapped: {}); this server is deliberately insecure",
        flaw.swaps.join(", ")
    );
    reference_server::cli::run_twin(args, twin(flaw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reference_server::cli::BuildContext;
    use reference_server::guard::api_keys::{ApiKeys, Principal};
    use reference_server::guard::db::ReadOnlyDb;
    use reference_server::guard::egress::EgressPolicy;
    use reference_server::guard::limits::Limits;
    use reference_server::guard::rate_limit::{RateLimitConfig, RateLimiter};
    use reference_server::guard::sandbox::{Sandbox, SandboxLimits};
    use reference_server::guards::Guards;
    use reference_server::tools::history_program;
    use reference_server::transport::http::{Authenticator, HttpGuards, HttpSettings};

    struct Built {
        tools: Guards,
        http: HttpGuards,
    }

    /// The reference guards over a fresh sandbox, with `flaw` applied as the binary applies it.
    fn build(flaw: &Flaw, dir: &std::path::Path) -> Built {
        let root = dir.join("sandbox");
        std::fs::create_dir_all(&root).unwrap();
        let database = dir.join("demo.sqlite");
        if !database.exists() {
            ReadOnlyDb::create_demo(&database).unwrap();
        }
        let rate_limit = RateLimitConfig {
            burst: 10,
            per_second: 10.0,
            max_tracked_keys: 1000,
        };
        let jwks = reference_server::guard::oauth::DevSigner::generate().jwks();
        let context = BuildContext {
            root: root.clone(),
            database: database.clone(),
            rate_limit,
            oauth: Some((
                serde_json::from_value(jwks).unwrap(),
                "http://127.0.0.1/issuer".into(),
            )),
            egress: EgressPolicy::new(Vec::<String>::new()),
        };
        let mut tools = Guards::reference(
            Sandbox::open(&root, SandboxLimits::default()).unwrap(),
            reference_server::guard::resource_uri::ResourceUris::new(
                &std::fs::canonicalize(&root).unwrap(),
            )
            .unwrap(),
            ReadOnlyDb::open(&database, 100, std::time::Duration::from_secs(1)).unwrap(),
            EgressPolicy::new(Vec::<String>::new()),
            history_program(root.clone()),
            Limits::default(),
            Some(RateLimiter::new(rate_limit).unwrap()),
        );
        if let Some(swap) = flaw.tools {
            swap(&mut tools, &context);
        }
        let settings = HttpSettings {
            allowed_hosts: vec!["localhost".into()],
            allowed_origins: vec![],
            public_url: "http://127.0.0.1:1/mcp".into(),
            authorization_servers: vec![],
            max_body_bytes: 1 << 20,
            response_timeout: std::time::Duration::from_secs(5),
            dev_authorization: None,
        };
        let auth = Authenticator {
            api_keys: Some(
                ApiKeys::from_plain_keys(
                    [(
                        Principal::new("operator", Vec::<String>::new()),
                        b"0123456789abcdef-operator".as_slice(),
                    )],
                    "test",
                )
                .unwrap(),
            ),
            jwt: None,
            insecure_dev_principal: None,
        };
        let mut http = HttpGuards::reference(
            auth,
            RateLimiter::new(rate_limit).unwrap(),
            &settings,
            tools.scopes.clone(),
        );
        if let Some(swap) = flaw.http {
            swap(&mut http, &context);
        }
        Built { tools, http }
    }

    /// The twin contract: each flaw replaces exactly the guard fields it names, and every
    /// other guard (the rate limit, the scopes, the file guard of an HTTP twin...) is the
    /// reference's.
    #[test]
    fn every_twin_swaps_exactly_the_guards_it_names() {
        let dir = tempfile::tempdir().unwrap();
        for flaw in FLAWS {
            let built = build(flaw, dir.path());
            let mut swapped = built.tools.swapped();
            swapped.extend(built.http.swapped());
            swapped.sort();
            swapped.dedup();
            let mut named = flaw.swaps.to_vec();
            named.sort();
            assert_eq!(swapped, named, "{}", flaw.name);
            for (field, implementation) in built
                .tools
                .implementations()
                .into_iter()
                .chain(built.http.implementations())
            {
                if implementation != "reference" && !["limits", "extra_tools"].contains(&field) {
                    assert_eq!(implementation, flaw.name, "{} swaps {field}", flaw.name);
                }
            }
        }
    }

    #[test]
    fn the_reference_swaps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let none = Flaw {
            name: "none",
            summary: "",
            caught: &[],
            swaps: &[],
            harness_args: &[],
            tools: None,
            http: None,
        };
        let built = build(&none, dir.path());
        assert!(built.tools.swapped().is_empty());
        assert!(built.http.swapped().is_empty());
    }

    #[test]
    fn the_list_has_one_line_per_flaw_and_transport_and_unique_names() {
        let listed = list();
        let rows: usize = FLAWS.iter().map(|f| f.caught.len()).sum();
        assert_eq!(listed.lines().count(), rows);
        let mut names: Vec<&str> = FLAWS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FLAWS.len(), "flaw names are unique");
        for line in listed.lines() {
            assert_eq!(line.split('\t').count(), 6, "{line}");
        }
    }
}
