//! The egress URL policy, judged by an independent address classifier and host matcher.
//!
//! Input: the first byte picks the mode. Raw mode hands the rest (as UTF-8, lossily) to
//! `EgressPolicy::check`. Composed mode builds a URL from a scheme, optional userinfo, a host
//! written in one of the forms parsers disagree on (decimal, hex, octal, short IPv4, IPv6 with
//! an embedded IPv4, percent-encoded, trailing dot, mixed case, allowlisted names with
//! look-alike suffixes), a port and a path. Address mode hands a list of arbitrary addresses to
//! `check_addresses`, as a resolver's answer would be.
//!
//! Oracle: an accepted URL has an allowed scheme, no userinfo, a default or allowed port, a
//! host that the independent matcher finds on the allowlist, and, when the host is an IP
//! literal, an address the independent classifier calls public. An accepted address list is
//! all public; a list that is all public is accepted. The classifier here is a table of
//! CIDR blocks from the IANA special-purpose registries, written apart from the guard's
//! `match` on octets and segments; IPv6 forms that embed IPv4 (mapped, compatible, NAT64,
//! 6to4) are judged by the address they carry. Differential: the accepted URL, written out and
//! parsed again, names the same host as the raw text did.

use arbitrary::{Arbitrary, Unstructured};
use reference_server::guard::egress::EgressPolicy;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

/// Allowlisted hosts: names, a wildcard, and IP literals of blocked ranges (the address rule
/// must win over the allowlist) beside public ones.
pub const ALLOWED_HOSTS: &[&str] = &[
    "example.com",
    "*.api.example.org",
    "127.0.0.1",
    "10.0.0.1",
    "169.254.169.254",
    "::1",
    "::ffff:7f00:1",
    "93.184.216.34",
    "2606:2800:220:1:248:1893:25c8:1946",
    "64:ff9b::5db8:d822",
];
pub const EXTRA_PORT: u16 = 8443;

fn policy() -> &'static EgressPolicy {
    static POLICY: OnceLock<EgressPolicy> = OnceLock::new();
    POLICY.get_or_init(|| EgressPolicy::new(ALLOWED_HOSTS.iter().copied()).with_ports([EXTRA_PORT]))
}

const V4_BLOCKS: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // "this network"
    (0x0a00_0000, 8),  // private
    (0x6440_0000, 10), // shared address space (CGNAT)
    (0x7f00_0000, 8),  // loopback
    (0xa9fe_0000, 16), // link-local, cloud metadata
    (0xac10_0000, 12), // private
    (0xc000_0000, 24), // IETF protocol assignments
    (0xc000_0200, 24), // TEST-NET-1
    (0xc058_6300, 24), // 6to4 relay anycast
    (0xc0a8_0000, 16), // private
    (0xc612_0000, 15), // benchmarking
    (0xc633_6400, 24), // TEST-NET-2
    (0xcb00_7100, 24), // TEST-NET-3
    (0xe000_0000, 4),  // multicast
    (0xf000_0000, 4),  // reserved, broadcast
];

/// IPv6 blocks that are never fetched (embedding forms are handled before this table).
const V6_BLOCKS: &[(u128, u8)] = &[
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // discard-only
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // NAT64 local use
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 32), // Teredo
    (0x2001_0002_0000_0000_0000_0000_0000_0000, 48), // benchmarking
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // unique local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // link-local
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // site-local
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // multicast
];

fn in_block_v4(ip: u32, (base, len): (u32, u8)) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    ip & mask == base
}

fn in_block_v6(ip: u128, (base, len): (u128, u8)) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    ip & mask == base
}

/// The independent classifier: is `ip` an address the server may connect to?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            !V4_BLOCKS.iter().any(|&block| in_block_v4(bits, block))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let low32 = Ipv4Addr::from(bits as u32);
            if bits >> 32 == 0xffff {
                return is_public(IpAddr::V4(low32)); // ::ffff:a.b.c.d
            }
            if bits >> 32 == 0 {
                return false; // ::, ::1 and the deprecated ::a.b.c.d
            }
            if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
                return is_public(IpAddr::V4(low32)); // NAT64 64:ff9b::a.b.c.d
            }
            if bits >> 112 == 0x2002 {
                return is_public(IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32))); // 6to4
            }
            // Only global unicast 2000::/3 is routed on the Internet.
            bits >> 125 == 0b001 && !V6_BLOCKS.iter().any(|&block| in_block_v6(bits, block))
        }
    }
}

/// The independent host matcher: exact names, or any subdomain of a `*.` pattern.
fn on_allowlist(host: &str) -> bool {
    ALLOWED_HOSTS
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            None => host == *pattern,
        })
}

fn judge_accepted(raw: &str, checked: &url::Url) {
    let url = url::Url::parse(raw).expect("the guard accepted a URL the url crate cannot parse");
    // Differential: the URL the guard passes on (to the pinned client, to logs, to a redirect
    // check) must name the same host when written out and read again.
    let reread = url::Url::parse(checked.as_str()).expect("an accepted URL re-parses");
    assert_eq!(
        reread.host_str(),
        url.host_str(),
        "{raw:?}: the accepted URL names another host once written out ({checked})"
    );
    assert!(
        matches!(url.scheme(), "http" | "https"),
        "{raw:?}: accepted the scheme {}",
        url.scheme()
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?}: accepted userinfo"
    );
    let default = if url.scheme() == "http" { 80 } else { 443 };
    let port = url.port().unwrap_or(default);
    assert!(
        port == default || port == EXTRA_PORT,
        "{raw:?}: accepted the port {port}"
    );
    let host = url.host_str().expect("an accepted URL has a host");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = host.parse::<IpAddr>() {
        assert!(is_public(ip), "{raw:?}: accepted the blocked address {ip}");
    }
    assert!(
        on_allowlist(&host)
            || host
                .parse::<IpAddr>()
                .is_ok_and(|ip| { ALLOWED_HOSTS.iter().any(|h| h.parse::<IpAddr>() == Ok(ip)) }),
        "{raw:?}: accepted the host {host:?}, which is not on the allowlist"
    );
}

#[derive(Arbitrary, Debug)]
enum HostForm {
    Named(u8),
    V4 { octets: [u8; 4], form: u8 },
    V6 { segments: [u16; 8], form: u8 },
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Composed {
    scheme: u8,
    userinfo: Option<String>,
    host: HostForm,
    port: Option<u16>,
    path: String,
}

const NAMES: &[&str] = &[
    "example.com",
    "EXAMPLE.COM.",
    "example.com.evil.net",
    "evilexample.com",
    "a.api.example.org",
    "api.example.org",
    "x.api.example.org.",
    "xapi.example.org",
    "localhost",
    "exa%6dple.com",
    "xn--exmple-cua.com",
    "ex\u{0430}mple.com",
    "example\u{3002}com",
];

fn write_v4(octets: [u8; 4], form: u8) -> String {
    let [a, b, c, d] = octets;
    let value = u32::from_be_bytes(octets);
    match form % 6 {
        0 => format!("{a}.{b}.{c}.{d}"),
        1 => value.to_string(),
        2 => format!("0x{value:x}"),
        3 => format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        4 => format!("{a}.{}", u32::from_be_bytes([0, b, c, d])),
        _ => format!("0x{a:02x}.{b}.{}", u16::from_be_bytes([c, d])),
    }
}

fn write_v6(segments: [u16; 8], form: u8) -> String {
    let ip = Ipv6Addr::from(segments);
    let [.., g, h] = segments;
    let embedded = Ipv4Addr::from((u32::from(g) << 16) | u32::from(h));
    match form % 4 {
        0 => format!("[{ip}]"),
        1 => format!("[::ffff:{embedded}]"),
        2 => format!("[64:ff9b::{embedded}]"),
        _ => format!("[2002:{:x}:{:x}::1]", g, h),
    }
}

fn compose(input: Composed) -> String {
    const SCHEMES: &[&str] = &["http", "https", "HTTP", "ftp", "file", "gopher", "ws"];
    let mut url = String::new();
    url.push_str(SCHEMES[input.scheme as usize % SCHEMES.len()]);
    url.push_str("://");
    if let Some(userinfo) = input.userinfo {
        url.push_str(&userinfo);
        url.push('@');
    }
    url.push_str(&match input.host {
        HostForm::Named(i) => NAMES[i as usize % NAMES.len()].to_owned(),
        HostForm::V4 { octets, form } => write_v4(octets, form),
        HostForm::V6 { segments, form } => write_v6(segments, form),
        HostForm::Text(text) => text,
    });
    if let Some(port) = input.port {
        url.push_str(&format!(":{port}"));
    }
    url.push('/');
    url.push_str(&input.path);
    url
}

#[derive(Arbitrary, Debug)]
enum Address {
    V4([u8; 4]),
    V6([u16; 8]),
    Mapped([u8; 4]),
    Nat64([u8; 4]),
    SixToFour([u8; 4]),
}

impl Address {
    fn ip(&self) -> IpAddr {
        match *self {
            Address::V4(octets) => IpAddr::V4(octets.into()),
            Address::V6(segments) => IpAddr::V6(segments.into()),
            Address::Mapped(octets) => IpAddr::V6(Ipv4Addr::from(octets).to_ipv6_mapped()),
            Address::Nat64(octets) => IpAddr::V6(Ipv6Addr::from(
                0x0064_ff9b_u128 << 96 | u128::from(u32::from_be_bytes(octets)),
            )),
            Address::SixToFour(octets) => IpAddr::V6(Ipv6Addr::from(
                0x2002_u128 << 112 | u128::from(u32::from_be_bytes(octets)) << 80 | 1,
            )),
        }
    }
}

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let raw = String::from_utf8_lossy(rest);
            if let Ok(checked) = policy().check(&raw) {
                judge_accepted(&raw, &checked.url);
            }
        }
        1 => {
            let Ok(composed) = Composed::arbitrary_take_rest(Unstructured::new(rest)) else {
                return;
            };
            let raw = compose(composed);
            if let Ok(checked) = policy().check(&raw) {
                judge_accepted(&raw, &checked.url);
            }
        }
        _ => {
            let Ok(addresses) = Vec::<Address>::arbitrary_take_rest(Unstructured::new(rest)) else {
                return;
            };
            let addresses: Vec<SocketAddr> = addresses
                .iter()
                .map(|a| SocketAddr::new(a.ip(), 443))
                .collect();
            let accepted = policy().check_addresses(&addresses).is_ok();
            let all_public = addresses.iter().all(|a| is_public(a.ip()));
            assert_eq!(
                accepted, all_public,
                "addresses {addresses:?}: the guard says accepted = {accepted}, the registry says all public = {all_public}"
            );
        }
    }
}
