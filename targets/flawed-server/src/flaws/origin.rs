//! Twins of the `Host`/`Origin` check (`HttpGuards::origin`, the reference `Allowlists`).

use super::{Flaw, Transport::Http};
use reference_server::transport::http::OriginPolicy;
use reference_server::transport::http::origin::RmcpAllowlists;
use std::sync::Arc;

/// The reference policy with one of its two checks gone (from ours and from rmcp's).
struct OneCheckGone {
    name: &'static str,
    reference: Arc<dyn OriginPolicy>,
    /// The `Host` check is gone; otherwise the `Origin` check is.
    host: bool,
}

impl OriginPolicy for OneCheckGone {
    fn name(&self) -> &'static str {
        self.name
    }
    fn host_allowed(&self, host: &str) -> bool {
        self.host || self.reference.host_allowed(host)
    }
    fn origin_allowed(&self, origin: &str) -> bool {
        !self.host || self.reference.origin_allowed(origin)
    }
    fn rmcp_allowlists(&self) -> RmcpAllowlists {
        let mut lists = self.reference.rmcp_allowlists();
        if self.host {
            lists.hosts.clear();
        } else {
            lists.origins = None;
        }
        lists
    }
}

pub const ORIGIN_UNCHECKED: Flaw = Flaw {
    name: "origin-unchecked",
    summary: "HTTP: the Origin header is never checked.",
    caught: &[(Http, "TRANS-ORIGIN")],
    swaps: &["origin"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, _| {
        guards.origin = Arc::new(OneCheckGone {
            name: "origin-unchecked",
            reference: guards.origin.clone(),
            host: false,
        })
    }),
};

pub const HOST_UNCHECKED: Flaw = Flaw {
    name: "host-unchecked",
    summary: "HTTP: the Host header is never checked.",
    caught: &[(Http, "TRANS-HOST")],
    swaps: &["origin"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, _| {
        guards.origin = Arc::new(OneCheckGone {
            name: "host-unchecked",
            reference: guards.origin.clone(),
            host: true,
        })
    }),
};
