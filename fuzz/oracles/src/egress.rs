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
//! all public; a list that is all public is accepted. The classifier and the matcher are
//! `mcp_attack`'s (`AcceptedUrlOracle`, `is_public`): a table of CIDR blocks from the IANA
//! special-purpose registries, written apart from the guard's `match` on octets and segments;
//! IPv6 forms that embed IPv4 (mapped, compatible, NAT64, 6to4) are judged by the address
//! they carry. Differential: the accepted URL, written out and
//! parsed again, names the same host as the raw text did.

use arbitrary::{Arbitrary, Unstructured};
use mcp_attack::AcceptedUrlOracle;
use mcp_attack::oracle::is_public;
use mcp_attack::urls::ipv4_forms;
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

/// The independent judge: the IANA tables and host matcher of `mcp-attack`, with this
/// target's allowlist and port.
fn oracle() -> &'static AcceptedUrlOracle {
    static ORACLE: OnceLock<AcceptedUrlOracle> = OnceLock::new();
    ORACLE.get_or_init(|| {
        AcceptedUrlOracle::new(ALLOWED_HOSTS.iter().copied()).with_ports([EXTRA_PORT])
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
    if let Err(violation) = oracle().judge(raw) {
        panic!("the guard accepted what a safe fetch refuses: {violation}");
    }
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
    let forms = ipv4_forms(Ipv4Addr::from(octets));
    forms[form as usize % forms.len()].clone()
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
