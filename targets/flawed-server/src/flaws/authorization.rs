//! Twins of the development authorization server's rules (`HttpGuards::authorization`, the
//! reference `ReferenceAuthorizationRules`). Each breaks one rule and asks the reference rules
//! in every other case; the kill matrix serves them with `--dev-authorization-server`.

use super::{Flaw, Transport::HttpDevAuthorization};
use reference_server::transport::http::{AuthorizationRules, ReferenceAuthorizationRules};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mistake {
    /// The metadata's `issuer` names the host as `localhost` where the PRM says `127.0.0.1`.
    IssuerMismatch,
    /// Every registration is admitted: no rate, no count.
    RegistrationUnbounded,
    /// Any redirect URI may be registered, `javascript:` included.
    RedirectSchemeOpen,
    /// A redirect URI matches when it starts with a registered one.
    RedirectPrefix,
    /// The token endpoint does not check `code_verifier`.
    PkceUnchecked,
    /// Every token is for this server, whatever `resource` was asked for.
    ResourceUnbound,
}

struct FlawedRules {
    name: &'static str,
    mistake: Mistake,
    reference: ReferenceAuthorizationRules,
}

impl AuthorizationRules for FlawedRules {
    fn name(&self) -> &'static str {
        self.name
    }
    fn metadata(&self, issuer: &str) -> serde_json::Value {
        let mut document = self.reference.metadata(issuer);
        if self.mistake == Mistake::IssuerMismatch {
            document["issuer"] = issuer.replace("127.0.0.1", "localhost").into();
        }
        document
    }
    fn registration_admitted(&self) -> bool {
        self.mistake == Mistake::RegistrationUnbounded || self.reference.registration_admitted()
    }
    fn redirect_uri_allowed(&self, uri: &str) -> bool {
        self.mistake == Mistake::RedirectSchemeOpen || self.reference.redirect_uri_allowed(uri)
    }
    fn redirect_uri_matches(&self, registered: &[String], given: &str) -> bool {
        if self.mistake == Mistake::RedirectPrefix {
            return registered.iter().any(|r| given.starts_with(r.as_str()));
        }
        self.reference.redirect_uri_matches(registered, given)
    }
    fn challenge_accepted(&self, challenge: Option<&str>, method: Option<&str>) -> bool {
        self.reference.challenge_accepted(challenge, method)
    }
    fn verifier_proves(&self, challenge: &str, verifier: Option<&str>) -> bool {
        self.mistake == Mistake::PkceUnchecked
            || self.reference.verifier_proves(challenge, verifier)
    }
    fn audience(&self, requested: Option<&str>, own_resource: &str) -> Option<String> {
        if self.mistake == Mistake::ResourceUnbound {
            return Some(own_resource.to_owned());
        }
        self.reference.audience(requested, own_resource)
    }
}

fn swap(
    guards: &mut reference_server::transport::http::HttpGuards,
    name: &'static str,
    mistake: Mistake,
) {
    guards.authorization = Arc::new(FlawedRules {
        name,
        mistake,
        reference: ReferenceAuthorizationRules::default(),
    });
}

pub const AS_ISSUER_MISMATCH: Flaw = Flaw {
    name: "as-issuer-mismatch",
    summary: "The authorization server's metadata names its issuer http://localhost:PORT where the protected resource metadata says http://127.0.0.1:PORT.",
    caught: &[(HttpDevAuthorization, "AUTH-AS-METADATA")],
    swaps: &["authorization"],
    harness_args: &["--only", "AUTH"],
    tools: None,
    http: Some(|guards, _| swap(guards, "as-issuer-mismatch", Mistake::IssuerMismatch)),
};

pub const AS_REGISTRATION_UNBOUNDED: Flaw = Flaw {
    name: "as-registration-unbounded",
    summary: "Dynamic client registration admits every request: no rate and no count, so one caller fills the client table.",
    caught: &[(HttpDevAuthorization, "AUTH-AS-REGISTRATION")],
    swaps: &["authorization"],
    harness_args: &["--only", "AUTH"],
    tools: None,
    http: Some(|guards, _| {
        swap(
            guards,
            "as-registration-unbounded",
            Mistake::RegistrationUnbounded,
        )
    }),
};

pub const AS_REDIRECT_SCHEME_OPEN: Flaw = Flaw {
    name: "as-redirect-scheme-open",
    summary: "Dynamic client registration accepts any redirect URI, javascript: and data: included.",
    caught: &[(HttpDevAuthorization, "AUTH-AS-REGISTRATION")],
    swaps: &["authorization"],
    harness_args: &["--only", "AUTH"],
    tools: None,
    http: Some(|guards, _| {
        swap(
            guards,
            "as-redirect-scheme-open",
            Mistake::RedirectSchemeOpen,
        )
    }),
};

pub const AS_REDIRECT_PREFIX: Flaw = Flaw {
    name: "as-redirect-prefix",
    summary: "The authorization endpoint accepts a redirect_uri that starts with a registered one, so a path or query added redirects the code there.",
    caught: &[(HttpDevAuthorization, "AUTH-AS-REDIRECT")],
    swaps: &["authorization"],
    harness_args: &["--only", "AUTH"],
    tools: None,
    http: Some(|guards, _| swap(guards, "as-redirect-prefix", Mistake::RedirectPrefix)),
};

pub const AS_PKCE_UNCHECKED: Flaw = Flaw {
    name: "as-pkce-unchecked",
    summary: "The token endpoint issues a token for a code without checking code_verifier against the code's challenge.",
    caught: &[(HttpDevAuthorization, "AUTH-AS-PKCE")],
    swaps: &["authorization"],
    harness_args: &["--only", "AUTH"],
    tools: None,
    http: Some(|guards, _| swap(guards, "as-pkce-unchecked", Mistake::PkceUnchecked)),
};

pub const AS_RESOURCE_UNBOUND: Flaw = Flaw {
    name: "as-resource-unbound",
    summary: "Tokens are minted for this server whatever resource was asked for (RFC 8707 ignored), so a token requested for another service works here.",
    caught: &[(HttpDevAuthorization, "AUTH-AS-RESOURCE")],
    swaps: &["authorization"],
    harness_args: &["--only", "AUTH"],
    tools: None,
    http: Some(|guards, _| swap(guards, "as-resource-unbound", Mistake::ResourceUnbound)),
};
