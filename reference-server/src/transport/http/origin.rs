//! `Host` and `Origin` validation (DNS rebinding defence): the first guard every request
//! meets, on every route.
//!
//! A `Host` must be one of the allowed names (with or without a port; IPv6 in brackets); an
//! `Origin`, when sent, must match an allowed origin exactly, or by scheme and host for an entry
//! ending in `:*`. rmcp checks the same lists again inside its service (defence in depth); the
//! policy says what it should be given ([`OriginPolicy::rmcp_allowlists`]).
//!
//! Cost: a header parse and a scan of short lists. Failure: a refusal is 403 with a short JSON
//! body.

/// The lists rmcp's own check is given.
pub struct RmcpAllowlists {
    /// Allowed `Host` values; empty lets rmcp accept any.
    pub hosts: Vec<String>,
    /// Allowed origins, enforced; `None` leaves rmcp's origin check off.
    pub origins: Option<Vec<String>>,
}

/// Which `Host` and `Origin` values may reach the server (a test seam: see [`crate::guards`]).
pub trait OriginPolicy: Send + Sync {
    fn name(&self) -> &'static str;
    fn host_allowed(&self, host: &str) -> bool;
    fn origin_allowed(&self, origin: &str) -> bool;
    fn rmcp_allowlists(&self) -> RmcpAllowlists;
}

/// The reference policy: the configured allowlists.
pub struct Allowlists {
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
}

impl OriginPolicy for Allowlists {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }
    fn host_allowed(&self, host: &str) -> bool {
        host_allowed(&self.hosts, host)
    }
    fn origin_allowed(&self, origin: &str) -> bool {
        origin_allowed(&self.origins, origin)
    }
    fn rmcp_allowlists(&self) -> RmcpAllowlists {
        RmcpAllowlists {
            hosts: self.hosts.clone(),
            origins: Some(self.origins.clone()),
        }
    }
}

/// Whether `host` (a `Host` header value) names one of `allowed`.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let bare = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        }
        _ => host,
    };
    let bare_unbracketed = bare.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().any(|a| {
        let a = a.as_str();
        a.eq_ignore_ascii_case(host)
            || a.eq_ignore_ascii_case(bare)
            || a.eq_ignore_ascii_case(bare_unbracketed)
    })
}

/// Whether `origin` (an `Origin` header value) matches one of `allowed`.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let Ok(parsed) = url::Url::parse(origin) else {
        return false;
    };
    allowed.iter().any(|entry| {
        if let Some(prefix) = entry.strip_suffix(":*") {
            url::Url::parse(prefix)
                .is_ok_and(|p| p.scheme() == parsed.scheme() && p.host_str() == parsed.host_str())
        } else {
            url::Url::parse(entry).is_ok_and(|e| e.origin() == parsed.origin())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_matching_handles_ports_and_brackets() {
        let allowed: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for ok in [
            "localhost",
            "localhost:8765",
            "127.0.0.1:1",
            "[::1]:8765",
            "[::1]",
        ] {
            assert!(host_allowed(&allowed, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8765",
            "localhost.evil.example",
            "127.0.0.1.nip.io:80",
            "",
        ] {
            assert!(!host_allowed(&allowed, bad), "{bad}");
        }
    }

    #[test]
    fn origin_matching_is_exact_or_any_port() {
        let allowed = vec![
            "http://localhost:*".to_owned(),
            "https://app.example:443".to_owned(),
        ];
        assert!(origin_allowed(&allowed, "http://localhost:3000"));
        assert!(origin_allowed(&allowed, "https://app.example"));
        assert!(!origin_allowed(&allowed, "http://evil.example"));
        assert!(!origin_allowed(&allowed, "https://localhost:3000"));
        assert!(!origin_allowed(&allowed, "null"));
        assert!(!origin_allowed(&[], "http://localhost:3000"));
    }
}
