//! Outbound HTTP confined by policy: which URLs the server may fetch, and a client that
//! connects only to the address that was checked.
//!
//! A URL is parsed with the WHATWG parser ([`url`]), which is what browsers and most HTTP
//! clients use: `http://2130706433/`, `http://0x7f.1/` and `http://[::ffff:127.0.0.1]/` all
//! come out as the IP address they really mean. The policy then requires an allowed scheme and
//! port, refuses any userinfo (the seed's `netloc.split(':')[0]` read `http://allowed:x@127.0.0.1/`
//! as the host `allowed`), requires the host to be on the allowlist, resolves it, and refuses
//! the URL if *any* resolved address is in a blocked range ([`classify`]): loopback, private,
//! link-local (including the cloud metadata address 169.254.169.254), CGNAT, unspecified,
//! broadcast, multicast, documentation, benchmarking, reserved, IPv6 unique-local and
//! site-local, and IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4),
//! which are judged by the address they embed; Teredo is refused outright.
//!
//! The fetch then pins the connection to the checked addresses (no second DNS lookup that a
//! rebinding resolver could answer differently), ignores proxy settings from the environment,
//! follows no redirect by itself, and re-checks each `Location` as a new URL (an IP-literal
//! redirect needs no resolver, so it is classified as written). Response bodies are cut at
//! `max_response_bytes` and the whole exchange at `timeout`.
//!
//! Cost: parse + policy + classification without DNS is well under a microsecond (see
//! benches/); resolution and the fetch cost what the network costs, bounded by `timeout`.
//!
//! Failure: every refusal is an [`EgressError`] naming the rule that refused; nothing is
//! connected to before every check has passed.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use url::{Host, Url};

/// A range of addresses the server never connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum BlockedClass {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Broadcast,
    Multicast,
    Documentation,
    Benchmarking,
    Reserved,
    UniqueLocal,
    SiteLocal,
    Teredo,
    Nat64LocalUse,
    Discard,
}

/// Classifies an address: `None` if it is publicly routable, otherwise the blocked range.
/// IPv6 addresses that embed an IPv4 address are judged by the embedded address.
pub fn classify(ip: IpAddr) -> Option<BlockedClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<BlockedClass> {
    let [a, b, c, _] = ip.octets();
    use BlockedClass::*;
    match (a, b, c) {
        _ if ip == Ipv4Addr::BROADCAST => Some(Broadcast),
        (0, _, _) => Some(Unspecified),
        (10, _, _) => Some(Private),
        (100, 64..=127, _) => Some(SharedCgnat),
        (127, _, _) => Some(Loopback),
        (169, 254, _) => Some(LinkLocal),
        (172, 16..=31, _) => Some(Private),
        (192, 0, 0) => Some(Reserved),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some(Documentation),
        (192, 88, 99) => Some(Reserved),
        (192, 168, _) => Some(Private),
        (198, 18..=19, _) => Some(Benchmarking),
        (224..=239, _, _) => Some(Multicast),
        (240..=255, _, _) => Some(Reserved),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<BlockedClass> {
    use BlockedClass::*;
    let segments = ip.segments();
    let embedded_v4 =
        |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    match segments {
        // IPv4-compatible (deprecated): ::a.b.c.d
        [0, 0, 0, 0, 0, 0, high, low] => classify_v4(embedded_v4(high, low)).or(Some(Reserved)),
        // NAT64 well-known prefix 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => classify_v4(embedded_v4(high, low)),
        [0x64, 0xff9b, 1, ..] => Some(Nat64LocalUse),
        // 6to4 2002::/16 embeds the IPv4 address in bits 16..48
        [0x2002, high, low, ..] => classify_v4(embedded_v4(high, low)),
        [0x2001, 0, ..] => Some(Teredo),
        [0x2001, 0x0002, 0, ..] => Some(Benchmarking), // 2001:2::/48
        [0x2001, 0x0db8, ..] => Some(Documentation),
        [0x0100, 0, 0, 0, ..] => Some(Discard),
        // 3fff::/20 (RFC 9637). The first version tested `first & 0xfff0 == 0x3ff0`, which is
        // 3ff0::/12 and refused public space too: found by the egress fuzz target's registry.
        [0x3fff, second, ..] if second & 0xf000 == 0 => Some(Documentation),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some(UniqueLocal),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some(LinkLocal),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some(SiteLocal),
        [first, ..] if first & 0xff00 == 0xff00 => Some(Multicast),
        // Only global unicast (2000::/3) is routable on the Internet.
        [first, ..] if first & 0xe000 != 0x2000 => Some(Reserved),
        _ => None,
    }
}

/// Why a URL may not be fetched, or why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("the URL could not be parsed")]
    Unparsable,
    #[error("the URL is longer than {0} bytes")]
    TooLong(usize),
    #[error("the scheme {0:?} is not allowed")]
    SchemeNotAllowed(String),
    #[error("URLs with a user name or password are not allowed")]
    UserinfoNotAllowed,
    #[error("the URL has no host")]
    NoHost,
    #[error("the port {0} is not allowed")]
    PortNotAllowed(u16),
    #[error("the host {0:?} is not on the allowlist")]
    HostNotAllowed(String),
    #[error("the host resolves to a blocked address ({0:?})")]
    BlockedAddress(BlockedClass),
    #[error("the host could not be resolved")]
    ResolutionFailed,
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("the redirect has no valid Location")]
    BadRedirect,
    #[error("the response is larger than {0} bytes")]
    ResponseTooLarge(usize),
    #[error("the request timed out")]
    Timeout,
    #[error("the request failed")]
    RequestFailed,
}

/// Which URLs may be fetched, and how much of them.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    allowed_schemes: BTreeSet<String>,
    allowed_ports: BTreeSet<u16>,
    allowed_hosts: Vec<String>,
    pub max_redirects: u8,
    pub max_response_bytes: usize,
    pub timeout: Duration,
    permitted_class: Option<BlockedClass>,
    /// Internal services the operator names by exact address and port (`127.0.0.1:8080`): the
    /// one exception to the blocked ranges, for that socket address only.
    allowed_internal: BTreeSet<SocketAddr>,
}

/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// A URL that passed the static checks, with the host's text for pinning.
#[derive(Clone, Debug)]
pub struct CheckedUrl {
    pub url: Url,
    host: String,
    port: u16,
    literal: Option<IpAddr>,
}

/// A URL whose addresses were resolved and all found acceptable.
#[derive(Clone, Debug)]
pub struct ResolvedUrl {
    pub url: Url,
    host: String,
    pub addresses: Vec<SocketAddr>,
}

/// What a fetch returned.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FetchedPage {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
    pub final_url: String,
}

impl EgressPolicy {
    /// `hosts` are exact host names, or `*.example.com` for any subdomain (not the apex).
    pub fn new(hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            allowed_schemes: ["http", "https"].into_iter().map(String::from).collect(),
            allowed_ports: BTreeSet::new(),
            allowed_hosts: hosts
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
            max_redirects: 3,
            max_response_bytes: 256 * 1024,
            timeout: Duration::from_secs(10),
            permitted_class: None,
            allowed_internal: BTreeSet::new(),
        }
    }

    /// Allows ports besides the scheme's default.
    pub fn with_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.allowed_ports.extend(ports);
        self
    }

    /// Lets one blocked class through. Exists for tests that need a loopback peer; the
    /// configuration file cannot reach it.
    #[doc(hidden)]
    pub fn permit_class_for_tests(mut self, class: BlockedClass) -> Self {
        self.permitted_class = Some(class);
        self
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    host.len() > suffix.len() + 1
                        && host.ends_with(suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                }
                None => host == pattern,
            })
    }

    /// Lets the internal services at exactly these socket addresses through the blocked
    /// ranges (their host must still be allowed, and a non-default port too). Each is logged
    /// by the caller at start-up: an exception should be visible.
    pub fn with_internal(mut self, addresses: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.allowed_internal.extend(addresses);
        self
    }

    fn address_allowed(&self, address: SocketAddr) -> Result<(), EgressError> {
        match classify(address.ip()) {
            None => Ok(()),
            Some(class) if Some(class) == self.permitted_class => Ok(()),
            Some(_) if self.allowed_internal.contains(&address) => Ok(()),
            Some(class) => Err(EgressError::BlockedAddress(class)),
        }
    }

    /// Every check that needs no DNS: syntax, scheme, userinfo, port, host allowlist, and the
    /// classification of an IP-literal host.
    pub fn check(&self, raw: &str) -> Result<CheckedUrl, EgressError> {
        if raw.len() > MAX_URL_LEN {
            return Err(EgressError::TooLong(MAX_URL_LEN));
        }
        let url = Url::parse(raw).map_err(|_| EgressError::Unparsable)?;
        self.check_parsed(url)
    }

    fn check_parsed(&self, url: Url) -> Result<CheckedUrl, EgressError> {
        if !self.allowed_schemes.contains(url.scheme()) {
            return Err(EgressError::SchemeNotAllowed(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::UserinfoNotAllowed);
        }
        let port = url.port_or_known_default().ok_or(EgressError::NoHost)?;
        if url
            .port()
            .is_some_and(|p| Some(p) != default_port(url.scheme()))
            && !self.allowed_ports.contains(&port)
        {
            return Err(EgressError::PortNotAllowed(port));
        }
        let (host, literal) = match url.host().ok_or(EgressError::NoHost)? {
            Host::Domain(name) => (name.trim_end_matches('.').to_ascii_lowercase(), None),
            Host::Ipv4(v4) => (v4.to_string(), Some(IpAddr::V4(v4))),
            Host::Ipv6(v6) => (v6.to_string(), Some(IpAddr::V6(v6))),
        };
        if host.is_empty() {
            return Err(EgressError::NoHost);
        }
        if let Some(ip) = literal {
            self.address_allowed(SocketAddr::new(ip, port))?;
        }
        if !self.host_allowed(&host) {
            return Err(EgressError::HostNotAllowed(host));
        }
        Ok(CheckedUrl {
            url,
            host,
            port,
            literal,
        })
    }

    /// Resolves the host and refuses the URL if any address is blocked.
    pub async fn resolve(&self, checked: CheckedUrl) -> Result<ResolvedUrl, EgressError> {
        let addresses: Vec<SocketAddr> = match checked.literal {
            Some(ip) => vec![SocketAddr::new(ip, checked.port)],
            None => tokio::time::timeout(
                self.timeout,
                tokio::net::lookup_host((checked.host.as_str(), checked.port)),
            )
            .await
            .map_err(|_| EgressError::Timeout)?
            .map_err(|_| EgressError::ResolutionFailed)?
            .collect(),
        };
        if addresses.is_empty() {
            return Err(EgressError::ResolutionFailed);
        }
        self.check_addresses(&addresses)?;
        Ok(ResolvedUrl {
            url: checked.url,
            host: checked.host,
            addresses,
        })
    }

    /// Refuses the set if any address is blocked (one bad record poisons the answer).
    pub fn check_addresses(&self, addresses: &[SocketAddr]) -> Result<(), EgressError> {
        addresses.iter().try_for_each(|a| self.address_allowed(*a))
    }

    /// Fetches a URL under the policy: every hop checked, connections pinned, body capped.
    pub async fn fetch(&self, raw: &str) -> Result<FetchedPage, EgressError> {
        self.fetch_sending(raw, &reqwest::header::HeaderMap::new())
            .await
    }

    /// [`Self::fetch`], sending `headers` with every hop: for credentials the operator
    /// configured for an upstream, never a client's (that is token passthrough).
    pub async fn fetch_sending(
        &self,
        raw: &str,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<FetchedPage, EgressError> {
        tokio::time::timeout(self.timeout, self.fetch_unbounded(raw, headers))
            .await
            .map_err(|_| EgressError::Timeout)?
    }

    async fn fetch_unbounded(
        &self,
        raw: &str,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<FetchedPage, EgressError> {
        ensure_crypto_provider();
        let mut checked = self.check(raw)?;
        for _hop in 0..=self.max_redirects {
            let resolved = self.resolve(checked).await?;
            let client = pinned_client(&resolved, self.timeout)?;
            let mut response = client
                .get(resolved.url.clone())
                .headers(headers.clone())
                .send()
                .await
                .map_err(|_| EgressError::RequestFailed)?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(EgressError::BadRedirect)?;
                let next = resolved
                    .url
                    .join(location)
                    .map_err(|_| EgressError::BadRedirect)?;
                checked = self.check_parsed(next)?;
                continue;
            }
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|_| EgressError::RequestFailed)?
            {
                if body.len() + chunk.len() > self.max_response_bytes {
                    return Err(EgressError::ResponseTooLarge(self.max_response_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(FetchedPage {
                status,
                content_type,
                body: String::from_utf8_lossy(&body).into_owned(),
                final_url: resolved.url.to_string(),
            });
        }
        Err(EgressError::TooManyRedirects)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn pinned_client(
    resolved: &ResolvedUrl,
    timeout: Duration,
) -> Result<reqwest::Client, EgressError> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout);
    // An IP-literal URL needs no resolver; a name is pinned to exactly the checked addresses.
    let builder = if resolved.url.domain().is_some() {
        builder.resolve_to_addrs(&resolved.host, &resolved.addresses)
    } else {
        builder
    };
    builder.build().map_err(|_| EgressError::RequestFailed)
}

/// reqwest is built without a default TLS provider (to avoid a C toolchain dependency);
/// install ring's once per process.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> EgressPolicy {
        EgressPolicy::new(["example.com", "*.trusted.example"])
    }

    #[test]
    fn classification_covers_every_special_range() {
        use BlockedClass::*;
        let cases: &[(&str, Option<BlockedClass>)] = &[
            ("127.0.0.1", Some(Loopback)),
            ("127.8.9.10", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.128.0.1", None),
            ("0.0.0.0", Some(Unspecified)),
            ("255.255.255.255", Some(Broadcast)),
            ("224.0.0.1", Some(Multicast)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("240.0.0.1", Some(Reserved)),
            ("93.184.215.14", None),
            ("8.8.8.8", None),
            ("::1", Some(Loopback)),
            ("::", Some(Unspecified)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::8.8.8.8", Some(Reserved)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::1", Some(Nat64LocalUse)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:a9fe:a9fe::1", Some(LinkLocal)),
            ("2002:808:808::1", None),
            ("2001::1", Some(Teredo)),
            ("2001:db8::1", Some(Documentation)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12::1", Some(UniqueLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("fec0::1", Some(SiteLocal)),
            ("ff02::1", Some(Multicast)),
            ("100::1", Some(Discard)),
            ("3fff::1", Some(Documentation)),
            ("3fff:0fff::1", Some(Documentation)),
            // Found by the egress fuzz target: 3ff0::/12 outside 3fff::/20 is public space.
            ("3ffc:fc61::", None),
            ("3fff:1000::1", None),
            ("2001:2::1", Some(Benchmarking)),
            ("2606:4700::1111", None),
            ("4000::1", Some(Reserved)),
        ];
        for (text, expected) in cases {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(classify(ip), *expected, "{text}");
        }
    }

    #[test]
    fn static_checks_refuse_each_trick() {
        let p = policy();
        assert!(p.check("https://example.com/a").is_ok());
        assert!(p.check("http://api.trusted.example/").is_ok());
        assert!(p.check("HTTPS://EXAMPLE.COM./x").is_ok());
        assert_eq!(
            p.check("http://trusted.example/").unwrap_err(),
            EgressError::HostNotAllowed("trusted.example".into())
        );
        assert_eq!(
            p.check("http://eviltrusted.example/").unwrap_err(),
            EgressError::HostNotAllowed("eviltrusted.example".into())
        );
        assert_eq!(
            p.check("http://example.com:x@127.0.0.1/").unwrap_err(),
            EgressError::UserinfoNotAllowed
        );
        assert_eq!(
            p.check("http://user@example.com/").unwrap_err(),
            EgressError::UserinfoNotAllowed
        );
        assert_eq!(
            p.check("ftp://example.com/").unwrap_err(),
            EgressError::SchemeNotAllowed("ftp".into())
        );
        assert_eq!(
            p.check("file:///etc/passwd").unwrap_err(),
            EgressError::SchemeNotAllowed("file".into())
        );
        assert_eq!(
            p.check("http://example.com:8080/").unwrap_err(),
            EgressError::PortNotAllowed(8080)
        );
        assert!(
            p.clone()
                .with_ports([8080])
                .check("http://example.com:8080/")
                .is_ok()
        );
        for loopback in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://169.254.169.254/latest",
        ] {
            assert!(
                matches!(p.check(loopback), Err(EgressError::BlockedAddress(_))),
                "{loopback}"
            );
        }
        assert_eq!(
            p.check("http://localhost/").unwrap_err(),
            EgressError::HostNotAllowed("localhost".into())
        );
        assert_eq!(p.check("not a url").unwrap_err(), EgressError::Unparsable);
        assert_eq!(
            p.check(&format!("http://example.com/{}", "a".repeat(MAX_URL_LEN)))
                .unwrap_err(),
            EgressError::TooLong(MAX_URL_LEN)
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let p = EgressPolicy::new(["localhost"]);
        let checked = p.check("http://localhost/").unwrap();
        assert!(matches!(
            p.resolve(checked).await,
            Err(EgressError::BlockedAddress(BlockedClass::Loopback))
        ));
    }

    #[test]
    fn an_internal_service_is_allowed_at_its_exact_address_and_port_only() {
        let internal: SocketAddr = "127.0.0.1:8181".parse().unwrap();
        let p = EgressPolicy::new(["127.0.0.1"])
            .with_ports([8181, 8182])
            .with_internal([internal]);
        assert!(p.check("http://127.0.0.1:8181/status").is_ok());
        for other in [
            "http://127.0.0.1:8182/",
            "http://127.0.0.2:8181/",
            "http://[::1]:8181/",
            "http://localhost:8181/",
        ] {
            assert!(p.check(other).is_err(), "{other}");
        }
        assert!(
            p.check_addresses(&["127.0.0.1:8182".parse().unwrap()])
                .is_err(),
            "a name resolving to another port of the address is still refused"
        );
        assert!(p.check_addresses(&[internal]).is_ok());
    }

    /// A tiny loopback HTTP server answering each connection with `reply`.
    async fn serve_once(reply: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn fetch_pins_caps_and_rechecks_redirects() {
        let (addr, _server) = serve_once(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".into(),
        )
        .await;
        let p = EgressPolicy::new(["localhost"])
            .with_ports([addr.port()])
            .permit_class_for_tests(BlockedClass::Loopback);
        let page = p
            .fetch(&format!("http://localhost:{}/", addr.port()))
            .await
            .unwrap();
        assert_eq!((page.status, page.body.as_str()), (200, "hello"));

        let mut small = p.clone();
        small.max_response_bytes = 3;
        assert_eq!(
            small
                .fetch(&format!("http://localhost:{}/", addr.port()))
                .await
                .unwrap_err(),
            EgressError::ResponseTooLarge(3)
        );

        // A redirect to an IP literal in a blocked class is re-checked and refused.
        let (redirect, _r) = serve_once("HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()).await;
        let p = EgressPolicy::new(["localhost"])
            .with_ports([redirect.port()])
            .permit_class_for_tests(BlockedClass::Loopback);
        assert_eq!(
            p.fetch(&format!("http://localhost:{}/", redirect.port()))
                .await
                .unwrap_err(),
            EgressError::BlockedAddress(BlockedClass::LinkLocal)
        );
    }

    proptest! {
        /// The attack crate's SSRF URLs, alone and built around an allowed URL, are never
        /// accepted where its independent oracle (the IANA tables, the allowlist) says a safe
        /// fetch refuses.
        #[test]
        fn no_attack_url_is_accepted_against_the_oracle(
            raw in prop_oneof![
                mcp_attack::ssrf_urls(),
                mcp_attack::ssrf_urls_around("https://example.com/api"),
                mcp_attack::ssrf_urls_around("https://a.trusted.example/"),
            ],
        ) {
            let oracle = mcp_attack::AcceptedUrlOracle::new(["example.com", "*.trusted.example"]);
            if policy().check(&raw).is_ok() {
                prop_assert!(oracle.judge(&raw).is_ok(), "{}", oracle.judge(&raw).unwrap_err());
            }
        }
    }

    proptest! {
        /// Every URL the static check accepts has an allowlisted host, no userinfo, and an
        /// IP-literal host only if it is public (checked by the std classifier independently).
        #[test]
        fn accepted_urls_never_name_a_blocked_literal(
            scheme in prop_oneof![Just("http"), Just("https"), Just("ftp")],
            user in prop_oneof![Just(""), Just("a@"), Just("example.com:x@")],
            host in prop_oneof![
                Just("example.com".to_string()), Just("127.0.0.1".to_string()), Just("2130706433".to_string()),
                Just("[::1]".to_string()), Just("[::ffff:7f00:1]".to_string()), Just("0x7f.0.0.1".to_string()),
                Just("a.trusted.example".to_string()), "[a-z]{1,8}\\.[a-z]{2,3}",
                any::<u32>().prop_map(|n| std::net::Ipv4Addr::from(n).to_string()),
            ],
            port in prop_oneof![Just(String::new()), Just(":80".to_string()), Just(":8080".to_string())],
        ) {
            let raw = format!("{scheme}://{user}{host}{port}/x");
            if let Ok(checked) = policy().check(&raw) {
                let url = &checked.url;
                prop_assert!(url.username().is_empty() && url.password().is_none());
                let host = url.host_str().unwrap();
                prop_assert!(host == "example.com" || host.ends_with(".trusted.example"));
                if let Some(Host::Ipv4(v4)) = url.host() {
                    prop_assert!(!(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()));
                }
            }
        }
    }
}
