//! The SSRF guard for agencies' callback URLs: an agency names the URL, bookhub's servers call
//! it, so without a guard an agency could make bookhub POST to its own database, the cloud
//! metadata service (169.254.169.254) or anything else on the internal network.
//!
//! A URL is checked twice. When it is set, [`check_callback_url`] parses it and resolves its
//! host, so the agency hears at once what is wrong. When it is called, [`GuardedResolver`]
//! (reqwest's DNS resolver for the webhook client) hands the connector only public addresses,
//! so a name that later resolves elsewhere (DNS rebinding) is refused on the connection that
//! matters; IP-literal URLs never reach a resolver and are checked by [`check_literal`].
//! Redirects are not followed at all, so there is no third address to check.

use std::error::Error;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What kind of address a non-public address is, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Loopback,
    /// RFC 1918 private networks.
    Private,
    /// IPv6 unique-local addresses (fc00::/7), the IPv6 private networks.
    UniqueLocal,
    /// Link-local, which includes the cloud metadata service at 169.254.169.254.
    LinkLocal,
    /// Carrier-grade NAT space, 100.64.0.0/10.
    SharedAddressSpace,
    Unspecified,
    Broadcast,
    Documentation,
    Multicast,
    Benchmarking,
    /// Everything else that is not globally routable: 0/8, 192.0.0/24, 240/4, IPv6 outside
    /// 2000::/3, the discard prefix, local-use NAT64.
    Reserved,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressKind::Loopback => "loopback",
            AddressKind::Private => "private",
            AddressKind::UniqueLocal => "unique-local (private)",
            AddressKind::LinkLocal => "link-local",
            AddressKind::SharedAddressSpace => "carrier-grade NAT",
            AddressKind::Unspecified => "unspecified",
            AddressKind::Broadcast => "broadcast",
            AddressKind::Documentation => "documentation",
            AddressKind::Multicast => "multicast",
            AddressKind::Benchmarking => "benchmarking",
            AddressKind::Reserved => "reserved",
        })
    }
}

/// `None` for a public address, else what kind of non-public address `ip` is. IPv4 addresses
/// carried in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged as the IPv4 address they reach.
pub fn classify(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether bookhub may call `ip` when private networks are not allowed.
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip).is_none()
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, c, _] = ip.octets();
    let kind = if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if ip.is_private() {
        AddressKind::Private
    } else if ip.is_link_local() {
        AddressKind::LinkLocal
    } else if a == 100 && (b & 0xc0) == 64 {
        AddressKind::SharedAddressSpace
    } else if ip.is_broadcast() {
        AddressKind::Broadcast
    } else if ip.is_documentation() {
        AddressKind::Documentation
    } else if ip.is_multicast() {
        AddressKind::Multicast
    } else if a == 198 && (b & 0xfe) == 18 {
        AddressKind::Benchmarking
    } else if a == 0 || a >= 240 || (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 88, 99) {
        // "this network", the reserved class E, IETF protocol assignments, the 6to4 relay.
        AddressKind::Reserved
    } else {
        return None;
    };
    Some(kind)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    let segments = ip.segments();
    let kind = if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    } else if ip.is_multicast() {
        AddressKind::Multicast
    } else if ip.is_unique_local() {
        AddressKind::UniqueLocal
    } else if ip.is_unicast_link_local() {
        AddressKind::LinkLocal
    } else if (segments[0], segments[1]) == (0x2001, 0x0db8) || (segments[0] & 0xfff0) == 0x3ff0 {
        // 2001:db8::/32 and 3fff::/20 (RFC 9637).
        AddressKind::Documentation
    } else if (segments[0], segments[1], segments[2]) == (0x2001, 0x0002, 0) {
        AddressKind::Benchmarking
    } else if (segments[0] & 0xe000) != 0x2000 || (segments[0], segments[1]) == (0x0064, 0xff9b) {
        // Outside global unicast 2000::/3 (the discard prefix 100::/64 and local-use NAT64
        // 64:ff9b:1::/48 among them: the well-known NAT64 prefix was taken apart above).
        AddressKind::Reserved
    } else {
        return None;
    };
    Some(kind)
}

/// The IPv4 address an IPv6 address stands for, if it embeds one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; :: and ::1 were judged before).
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] => Some(low()),
        // 64:ff9b::a.b.c.d, the well-known NAT64 prefix (RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low()),
        // 2002:aabb:ccdd::/48, 6to4 (RFC 3056).
        [0x2002, high, low16, ..] => {
            Some(Ipv4Addr::new((high >> 8) as u8, high as u8, (low16 >> 8) as u8, low16 as u8))
        }
        _ => None,
    }
}

/// Which destinations the webhook client may reach beyond public https.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetworkPolicy {
    /// Loopback and private networks too, for tests and the demo.
    pub allow_private_networks: bool,
    /// Plain http too, for tests and the demo.
    pub allow_http: bool,
}

/// The longest callback URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// How long [`check_callback_url`] waits for DNS.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a callback URL is refused; the message completes a field error ("callback_url …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    #[error("must be at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("is not a valid URL")]
    Invalid,
    #[error("must use https")]
    NotHttps,
    #[error("must not contain a user name or password")]
    Userinfo,
    #[error("must name a host")]
    NoHost,
    /// An IP-literal URL names a non-public address; the agency wrote it, so it is repeated.
    #[error("is a {kind} address ({address})")]
    NonPublicAddress { address: IpAddr, kind: AddressKind },
    /// A host name resolves to a non-public address. The address is not quoted: what
    /// bookhub's resolver sees of an internal name is not the agency's to learn.
    #[error("resolves to a {kind} address")]
    ResolvesToNonPublic { kind: AddressKind },
    #[error("does not resolve")]
    DoesNotResolve,
}

/// Parses and checks an agency's callback URL: at most [`MAX_URL_LEN`] characters, https
/// (or http with `allow_http`), no userinfo, a host, and — unless `allow_private_networks` —
/// only public addresses. The host is resolved either way, so a typo is caught now; with
/// private networks refused, a name with any non-public answer is refused (at call time
/// [`GuardedResolver`] drops such answers instead, in case a name changes after it was set).
pub async fn check_callback_url(url: &str, policy: &NetworkPolicy) -> Result<url::Url, CallbackUrlError> {
    if url.len() > MAX_URL_LEN {
        return Err(CallbackUrlError::TooLong);
    }
    let url = url::Url::parse(url.trim()).map_err(|_| CallbackUrlError::Invalid)?;
    check_shape(&url, policy)?;
    check_literal(&url, policy)?;
    if let Some(url::Host::Domain(name)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let answers = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)))
            .await
            .map_err(|_| CallbackUrlError::DoesNotResolve)?
            .map_err(|_| CallbackUrlError::DoesNotResolve)?;
        let mut any = false;
        for answer in answers {
            any = true;
            if let Some(kind) = classify(answer.ip()).filter(|_| !policy.allow_private_networks) {
                return Err(CallbackUrlError::ResolvesToNonPublic { kind });
            }
        }
        if !any {
            return Err(CallbackUrlError::DoesNotResolve);
        }
    }
    Ok(url)
}

/// The checks that need no network: scheme, userinfo, host.
pub fn check_shape(url: &url::Url, policy: &NetworkPolicy) -> Result<(), CallbackUrlError> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        _ => return Err(CallbackUrlError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CallbackUrlError::Userinfo);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CallbackUrlError::NoHost);
    }
    Ok(())
}

/// An IP-literal URL's address against the policy; names pass (the resolver judges them).
/// reqwest connects to a literal without asking any resolver, so the sender calls this before
/// every request.
pub fn check_literal(url: &url::Url, policy: &NetworkPolicy) -> Result<(), CallbackUrlError> {
    let address = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match classify(address).filter(|_| !policy.allow_private_networks) {
        Some(kind) => Err(CallbackUrlError::NonPublicAddress { address, kind }),
        None => Ok(()),
    }
}

/// The webhook client's DNS resolver: tokio's (the system's) lookup, with every non-public
/// answer dropped unless private networks are allowed; no answer left is a [`Refused`] error.
/// The connector connects only to the addresses returned here, so what was checked is what
/// is reached.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private_networks: bool,
}

/// The resolver's answer when a name has only non-public addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused: resolves to a non-public address")]
pub struct Refused;

/// The resolver's answer when a name has no address at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("does not resolve")]
pub struct Unresolved;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(resolve_guarded(name.as_str().to_owned(), self.allow_private_networks))
    }
}

async fn resolve_guarded(name: String, allow_private: bool) -> Result<Addrs, Box<dyn Error + Send + Sync>> {
    let answers: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await.map_err(|_| Unresolved)?.collect();
    if answers.is_empty() {
        return Err(Unresolved.into());
    }
    let allowed: Vec<SocketAddr> =
        answers.into_iter().filter(|answer| allow_private || is_public(answer.ip())).collect();
    if allowed.is_empty() {
        return Err(Refused.into());
    }
    Ok(Box::new(allowed.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified_by_their_ranges() {
        use AddressKind::*;
        let table: &[(&str, Option<AddressKind>)] = &[
            // IPv4
            ("93.184.215.14", None),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.254.0.1", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("100.128.0.1", None),
            ("100.63.255.255", None),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.1.1", None),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.20.0.1", None),
            ("240.0.0.1", Some(Reserved)),
            ("254.1.1.1", Some(Reserved)),
            // IPv6
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
            ("::1", Some(Loopback)),
            ("::", Some(Unspecified)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456:789a::1", Some(UniqueLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001:2::1", Some(Benchmarking)),
            ("100::1", Some(Reserved)),
            ("64:ff9b:1::1", Some(Reserved)),
            ("4000::1", Some(Reserved)),
            // IPv4 inside IPv6 is judged as IPv4
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::8.8.8.8", None),
            ("64:ff9b::10.0.0.1", Some(Private)),
            ("64:ff9b::169.254.169.254", Some(LinkLocal)),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:808:808::1", None),
        ];
        for (address, expected) in table {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(classify(ip), *expected, "{address}");
            assert_eq!(is_public(ip), expected.is_none(), "{address}");
        }
    }

    async fn refused(url: &str) -> CallbackUrlError {
        check_callback_url(url, &NetworkPolicy::default()).await.expect_err(url)
    }

    #[tokio::test]
    async fn the_default_policy_refuses_internal_and_plain_http_urls() {
        use AddressKind::*;
        let address = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            refused("https://127.0.0.1/").await,
            CallbackUrlError::NonPublicAddress { address: address("127.0.0.1"), kind: Loopback }
        );
        assert_eq!(refused("https://10.0.0.1/hook").await.to_string(), "is a private address (10.0.0.1)");
        assert_eq!(
            refused("https://[::1]/").await,
            CallbackUrlError::NonPublicAddress { address: address("::1"), kind: Loopback }
        );
        assert_eq!(
            refused("https://169.254.169.254/latest/meta-data/").await,
            CallbackUrlError::NonPublicAddress { address: address("169.254.169.254"), kind: LinkLocal }
        );
        // Other spellings of loopback are normalised by the URL parser and still caught.
        assert!(matches!(refused("https://2130706433/").await, CallbackUrlError::NonPublicAddress { .. }));
        assert!(matches!(refused("https://0x7f.1/").await, CallbackUrlError::NonPublicAddress { .. }));
        assert!(matches!(refused("https://[::ffff:7f00:1]/").await, CallbackUrlError::NonPublicAddress { .. }));
        assert_eq!(refused("http://example.com/").await, CallbackUrlError::NotHttps);
        assert_eq!(refused("ftp://example.com/").await, CallbackUrlError::NotHttps);
        assert_eq!(refused("https://localhost/").await, CallbackUrlError::ResolvesToNonPublic { kind: Loopback });
        assert_eq!(refused("https://localhost/").await.to_string(), "resolves to a loopback address");
    }

    #[tokio::test]
    async fn urls_must_be_well_formed() {
        assert_eq!(refused("not a url").await, CallbackUrlError::Invalid);
        assert_eq!(refused("https://user:pw@93.184.215.14/").await, CallbackUrlError::Userinfo);
        assert_eq!(refused("https://user@93.184.215.14/").await, CallbackUrlError::Userinfo);
        let long = format!("https://93.184.215.14/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(refused(&long).await, CallbackUrlError::TooLong);
        assert_eq!(refused("https://does-not-exist.invalid/").await, CallbackUrlError::DoesNotResolve);
        let ok = check_callback_url("https://93.184.215.14:8443/hooks?x=1", &NetworkPolicy::default()).await;
        assert_eq!(ok.unwrap().as_str(), "https://93.184.215.14:8443/hooks?x=1");
    }

    #[tokio::test]
    async fn the_demo_policy_allows_loopback_and_http() {
        let demo = NetworkPolicy { allow_private_networks: true, allow_http: true };
        assert!(check_callback_url("http://127.0.0.1:8080/hook", &demo).await.is_ok());
        assert!(check_callback_url("http://localhost:8080/hook", &demo).await.is_ok());
        let private_only = NetworkPolicy { allow_private_networks: true, allow_http: false };
        assert_eq!(check_callback_url("http://127.0.0.1/", &private_only).await, Err(CallbackUrlError::NotHttps));
        let http_only = NetworkPolicy { allow_private_networks: false, allow_http: true };
        assert!(matches!(
            check_callback_url("http://127.0.0.1/", &http_only).await,
            Err(CallbackUrlError::NonPublicAddress { .. })
        ));
    }

    #[tokio::test]
    async fn the_resolver_drops_non_public_answers() {
        let guarded = GuardedResolver { allow_private_networks: false };
        let error = guarded.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(error.downcast_ref::<Refused>().is_some(), "{error}");
        let error = guarded.resolve("does-not-exist.invalid".parse().unwrap()).await.err().unwrap();
        assert!(error.downcast_ref::<Unresolved>().is_some(), "{error}");
        let open = GuardedResolver { allow_private_networks: true };
        let answers: Vec<_> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(answers.iter().all(|a| a.ip().is_loopback()) && !answers.is_empty(), "{answers:?}");
    }
}
