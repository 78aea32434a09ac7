//! Whether a URL a validator accepted may be fetched: an address classifier written from the
//! IANA special-purpose registries, and a host matcher for an allowlist.
//!
//! The classifier is a table of CIDR blocks (IPv4 and IPv6 special-purpose address registries),
//! not a `match` on octets: it is meant to disagree with a validator's own code when that code
//! is wrong. IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, the deprecated
//! compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) are judged by the
//! address they carry; only global unicast (2000::/3) outside the special blocks is public.
//!
//! [`AcceptedUrlOracle::judge`] reads the URL with the `url` crate (the WHATWG parser, which is
//! what browsers and most HTTP clients agree with) and reports the first rule it breaks.
//!
//! Cost: a parse and a scan of about thirty blocks. Fails: never panics; a URL the parser
//! cannot read is itself a violation (the validator accepted something no client can fetch).

use std::net::{IpAddr, Ipv4Addr};

/// IPv4 blocks that are never fetched, with their registry names.
pub const V4_BLOCKS: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "this network"),
    (0x0a00_0000, 8, "private"),
    (0x6440_0000, 10, "shared address space (CGNAT)"),
    (0x7f00_0000, 8, "loopback"),
    (0xa9fe_0000, 16, "link-local (cloud metadata)"),
    (0xac10_0000, 12, "private"),
    (0xc000_0000, 24, "IETF protocol assignments"),
    (0xc000_0200, 24, "documentation (TEST-NET-1)"),
    (0xc058_6300, 24, "6to4 relay anycast"),
    (0xc0a8_0000, 16, "private"),
    (0xc612_0000, 15, "benchmarking"),
    (0xc633_6400, 24, "documentation (TEST-NET-2)"),
    (0xcb00_7100, 24, "documentation (TEST-NET-3)"),
    (0xe000_0000, 4, "multicast"),
    (0xf000_0000, 4, "reserved, broadcast"),
];

/// IPv6 blocks that are never fetched (the forms embedding IPv4 are handled before this).
pub const V6_BLOCKS: &[(u128, u8, &str)] = &[
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "discard-only",
    ),
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "NAT64 local use",
    ),
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 32, "Teredo"),
    (
        0x2001_0002_0000_0000_0000_0000_0000_0000,
        48,
        "benchmarking",
    ),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "documentation",
    ),
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "documentation",
    ),
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "unique local"),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link-local"),
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10, "site-local"),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast"),
];

fn in_block_v4(ip: u32, base: u32, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    ip & mask == base
}

fn in_block_v6(ip: u128, base: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    ip & mask == base
}

/// The special block `ip` is in, by its registry name; `None` when it is public.
pub fn special_block(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            V4_BLOCKS
                .iter()
                .find(|(base, len, _)| in_block_v4(bits, *base, *len))
                .map(|(_, _, name)| *name)
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let low32 = IpAddr::V4(Ipv4Addr::from(bits as u32));
            if bits >> 32 == 0xffff {
                return special_block(low32); // ::ffff:a.b.c.d
            }
            if bits == 1 {
                return Some("loopback");
            }
            if bits >> 32 == 0 {
                return Some("unspecified or IPv4-compatible (deprecated)");
            }
            if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
                return special_block(low32); // NAT64
            }
            if bits >> 112 == 0x2002 {
                return special_block(IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32))); // 6to4
            }
            if let Some((_, _, name)) = V6_BLOCKS
                .iter()
                .find(|(base, len, _)| in_block_v6(bits, *base, *len))
            {
                return Some(name);
            }
            (bits >> 125 != 0b001).then_some("not global unicast")
        }
    }
}

/// Whether `ip` is an address a server may connect to.
pub fn is_public(ip: IpAddr) -> bool {
    special_block(ip).is_none()
}

/// Judges URLs a validator accepted against the rules a safe fetch keeps: http or https, no
/// userinfo, a default or listed port, a host on the allowlist, and an IP-literal host only if
/// public.
#[derive(Clone, Debug)]
pub struct AcceptedUrlOracle {
    allowlist: Vec<String>,
    extra_ports: Vec<u16>,
}

impl AcceptedUrlOracle {
    /// Hosts as the validator's configuration names them: exact names or IP literals, or
    /// `*.suffix` for any subdomain of `suffix` (not `suffix` itself).
    pub fn new<I, S>(allowlist: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            allowlist: allowlist
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
            extra_ports: Vec::new(),
        }
    }

    /// Ports allowed beside 80 for http and 443 for https.
    pub fn with_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.extra_ports.extend(ports);
        self
    }

    fn on_allowlist(&self, host: &str) -> bool {
        let as_ip = host.parse::<IpAddr>().ok();
        self.allowlist
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
                None => {
                    host == pattern
                        || as_ip.is_some_and(|ip| pattern.parse::<IpAddr>().ok() == Some(ip))
                }
            })
    }

    /// The rule `raw` breaks, in words; `Ok` when a safe fetch may follow it.
    pub fn judge(&self, raw: &str) -> Result<(), String> {
        let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} does not parse ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{raw:?}: the scheme {} is not http(s)",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{raw:?}: has userinfo"));
        }
        let default = if url.scheme() == "http" { 80 } else { 443 };
        let port = url.port().unwrap_or(default);
        if port != default && !self.extra_ports.contains(&port) {
            return Err(format!("{raw:?}: the port {port} is not allowed"));
        }
        let host = url.host_str().ok_or_else(|| format!("{raw:?}: no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>()
            && let Some(block) = special_block(ip)
        {
            return Err(format!("{raw:?}: reaches {ip}, {block}"));
        }
        if !self.on_allowlist(&host) {
            return Err(format!(
                "{raw:?}: the host {host:?} is not on the allowlist"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classifier_knows_the_embedding_forms() {
        for special in [
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "fe80::1",
            "fd00::1",
            "100.64.0.1",
        ] {
            assert!(!is_public(special.parse().unwrap()), "{special}");
        }
        for public in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "64:ff9b::5db8:d822",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_url_oracle_reads_what_the_parser_reads() {
        let oracle =
            AcceptedUrlOracle::new(["example.com", "*.api.example.org"]).with_ports([8443]);
        assert_eq!(oracle.judge("https://example.com/x"), Ok(()));
        assert_eq!(oracle.judge("https://EXAMPLE.com.:8443/x"), Ok(()));
        assert_eq!(oracle.judge("https://a.api.example.org/"), Ok(()));
        for bad in [
            "https://api.example.org/",
            "https://example.com:x@127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "ftp://example.com/",
            "https://example.com:8080/",
            "https://example.com.evil.net/",
            "not a url",
        ] {
            assert!(oracle.judge(bad).is_err(), "{bad}");
        }
        let listed_loopback = AcceptedUrlOracle::new(["127.0.0.1"]);
        assert!(listed_loopback.judge("http://127.0.0.1/").is_err());
    }
}
