//! The SSRF guard: which destinations an outside event may make us reach.
//!
//! Two checks, because neither alone sees everything:
//! - [`Guard::check_target`] runs before every request and every redirect
//!   hop. It knows the URL's port (so port-limited allow entries work), and
//!   when a proxy is configured it resolves the target itself, because the
//!   proxy, not we, will connect to it.
//! - [`GuardedResolver`] sits in reqwest's DNS resolution for direct
//!   connections. The address we connect to is then the address we checked,
//!   so a name that resolves differently the second time (DNS rebinding)
//!   gains nothing. It does not know the port, so there only entries
//!   without a port count.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, LazyLock},
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// IANA IPv4 Special-Purpose Address Registry (as of 2025), plus multicast
/// (its own registry). All of it is refused: even the ranges IANA marks
/// "globally reachable" (AS112, AMT, PCP/TURN anycast) host no product
/// images, so the shorter rule "nothing special-purpose" costs nothing.
const V4_SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\""),
    ("10.0.0.0/8", "private use"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link local (cloud metadata)"),
    ("172.16.0.0/12", "private use"),
    (
        "192.0.0.0/24",
        "IETF protocol assignments (DS-Lite, NAT64 discovery, …)",
    ),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.31.196.0/24", "AS112-v4"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private use"),
    ("192.175.48.0/24", "direct delegation AS112"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    (
        "240.0.0.0/4",
        "reserved (includes 255.255.255.255 broadcast)",
    ),
];

/// IANA IPv6 Special-Purpose Address Registry (as of 2025), plus multicast
/// and the deprecated site-local block. Anything outside 2000::/3 (global
/// unicast) is refused as well, which also covers unallocated space; the
/// entries below 2000::/3 are listed anyway so the table reads as the
/// registry does.
///
/// Forms that embed an IPv4 address:
/// - `::ffff:0:0/96` (IPv4-mapped) and `64:ff9b::/96` (NAT64 well-known
///   prefix) are *checked by their embedded IPv4 address* (see
///   [`is_internal`]): the mapped form is how a dual-stack socket spells a
///   plain IPv4 peer, and on an IPv6-only network with DNS64 every IPv4
///   image host resolves into `64:ff9b::/96`; refusing them would refuse
///   the whole IPv4 internet there, while the embedded address is exactly
///   where the packet ends up.
/// - `::/96` (IPv4-compatible, deprecated by RFC 4291), `2002::/16` (6to4)
///   and `2001::/32` (Teredo) are *refused outright*: all are deprecated
///   transition mechanisms no image host needs, 6to4 and Teredo reach their
///   embedded IPv4 through relays we do not control, and Teredo stores its
///   client address obfuscated, so a check of "the" embedded IPv4 would be
///   a guess.
/// - `64:ff9b:1::/48` (local-use NAT64, RFC 8215) is refused outright: its
///   mapping is site-specific, so the embedded address says nothing.
const V6_SPECIAL: &[(&str, &str)] = &[
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy IPv6 prefix"),
    (
        "2001::/23",
        "IETF protocol assignments (Teredo, benchmarking, ORCHID, …)",
    ),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("2620:4f:8000::/48", "direct delegation AS112"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local unicast"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

static V4_NETS: LazyLock<Vec<Ipv4Net>> = LazyLock::new(|| {
    V4_SPECIAL
        .iter()
        .map(|(n, _)| n.parse().expect("the IPv4 table holds CIDRs"))
        .collect()
});

static V6_NETS: LazyLock<Vec<Ipv6Net>> = LazyLock::new(|| {
    V6_SPECIAL
        .iter()
        .map(|(n, _)| n.parse().expect("the IPv6 table holds CIDRs"))
        .collect()
});

const NAT64_WELL_KNOWN: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
const GLOBAL_UNICAST: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// True for addresses an outside event must never make us reach: every
/// special-purpose range of IANA's registries (see the tables above).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            if NAT64_WELL_KNOWN.contains(&v6) {
                let [.., a, b, c, d] = v6.octets();
                return is_internal_v4(Ipv4Addr::new(a, b, c, d));
            }
            !GLOBAL_UNICAST.contains(&v6) || V6_NETS.iter().any(|n| n.contains(&v6))
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    V4_NETS.iter().any(|n| n.contains(&v4))
}

/// Which internal destinations may be fetched anyway.
///
/// Entries: `host`, `host:port`, an IP (`10.0.0.5`, `::1`, `[::1]`),
/// `ip:port`, `[v6]:port`, or a CIDR block (`10.0.0.0/8`). An entry with a
/// port allows that port only. A host entry trusts whatever the name
/// resolves to; an IP or CIDR entry with a port matches URLs that name the
/// address itself (the resolver does not see ports, so a name resolving to
/// it needs a host entry of its own).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    hosts: Vec<(String, Option<u16>)>,
    nets: Vec<(IpNet, Option<u16>)>,
}

impl AllowList {
    /// Parses the entries; an entry that is none of the forms above is an
    /// error naming it.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut list = Self::default();
        for e in entries {
            let e = e.trim();
            if e.is_empty() {
                continue;
            }
            if let Ok(net) = e.parse::<IpNet>() {
                list.nets.push((net, None));
            } else if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                list.nets.push((IpNet::from(ip), None));
            } else if let Ok(sa) = e.parse::<SocketAddr>() {
                list.nets
                    .push((IpNet::from(sa.ip()), Some(nonzero(sa.port(), e)?)));
            } else {
                let (host, port) = match e.rsplit_once(':') {
                    Some((h, p)) => {
                        let port = p
                            .parse::<u16>()
                            .map_err(|_| format!("allow-list entry `{e}`: bad port `{p}`"))?;
                        (h, Some(nonzero(port, e)?))
                    }
                    None => (e, None),
                };
                match Host::parse(host) {
                    Ok(Host::Domain(d)) => list.add_host(&d, port),
                    _ => return Err(format!("allow-list entry `{e}` is not a host, IP or CIDR")),
                }
            }
        }
        Ok(list)
    }

    /// Allows `host` (a name or a literal IP, brackets optional) on `port`.
    pub fn add_host(&mut self, host: &str, port: Option<u16>) {
        let bare = host.trim_matches(['[', ']']);
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.nets.push((IpNet::from(ip), port)),
            Err(_) => self.hosts.push((normal_host(bare), port)),
        }
    }

    /// Whether `host` is allow-listed on `port`.
    pub(super) fn allows_host(&self, host: &str, port: u16) -> bool {
        let host = normal_host(host);
        self.hosts
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| p == port))
    }

    /// Whether `host` is allow-listed on any port.
    pub(super) fn lists_host(&self, host: &str) -> bool {
        let host = normal_host(host);
        self.hosts.iter().any(|(h, _)| *h == host)
    }

    /// Whether the internal address `ip` may be reached on `port`; `None`
    /// (the resolver, which does not know the port) matches only entries
    /// without a port.
    pub(super) fn allows_ip(&self, ip: IpAddr, port: Option<u16>) -> bool {
        let canonical = ip.to_canonical();
        self.nets.iter().any(|(n, p)| {
            (n.contains(&ip) || n.contains(&canonical))
                && match (p, port) {
                    (None, _) => true,
                    (Some(p), Some(port)) => *p == port,
                    (Some(_), None) => false,
                }
        })
    }
}

fn nonzero(port: u16, entry: &str) -> Result<u16, String> {
    if port == 0 {
        Err(format!("allow-list entry `{entry}`: port 0"))
    } else {
        Ok(port)
    }
}

fn normal_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// The destination rules, shared by the pre-flight check and the resolver.
#[derive(Debug)]
pub(super) struct Guard {
    pub allow: AllowList,
    /// Names the resolver lets through although nobody may fetch from them:
    /// the configured proxy.
    pub infrastructure: Vec<String>,
    /// Whether requests go through a proxy: then the target is resolved and
    /// checked here, since our resolver never sees it.
    pub proxied: bool,
}

/// Why a destination is refused; becomes [`super::FetchError::Refused`].
#[derive(Debug)]
pub(super) struct Refusal(pub String);

impl Guard {
    /// Checks one request's destination (the first URL and each redirect).
    pub async fn check_target(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal(format!("scheme `{}` is not http(s)", url.scheme())));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refusal("no port".into()))?;
        let name = match url.host() {
            None => return Err(Refusal("no host".into())),
            Some(Host::Ipv4(ip)) => return self.check_ip(IpAddr::V4(ip), port),
            Some(Host::Ipv6(ip)) => return self.check_ip(IpAddr::V6(ip), port),
            Some(Host::Domain(d)) => d,
        };
        if self.allow.allows_host(name, port) {
            return Ok(());
        }
        // Direct connections are checked by the resolver, at connect time,
        // except for names allow-listed on another port: the resolver lets
        // those through, so this port must be checked here.
        if !self.proxied && !self.allow.lists_host(name) {
            return Ok(());
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| Refusal(format!("{name} does not resolve: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(Refusal(format!("{name} does not resolve")));
        }
        for a in addrs {
            self.check_ip(a.ip(), port)
                .map_err(|_| Refusal(format!("{name} resolves to an internal address")))?;
        }
        Ok(())
    }

    fn check_ip(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        if is_internal(ip) && !self.allow.allows_ip(ip, Some(port)) {
            Err(Refusal(format!("{ip} is an internal address")))
        } else {
            Ok(())
        }
    }
}

/// The text the resolver's refusal carries, so that `classify` can tell it
/// from other connect errors.
pub(super) const RESOLVER_REFUSAL: &str = "resolves only to internal addresses";

/// DNS resolution that drops internal addresses unless allowed.
pub(super) struct GuardedResolver(pub Arc<Guard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let trusted = guard.allow.lists_host(&host)
                || guard
                    .infrastructure
                    .iter()
                    .any(|h| *h == normal_host(&host));
            if trusted {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let permitted: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| !is_internal(a.ip()) || guard.allow.allows_ip(a.ip(), None))
                .collect();
            if permitted.is_empty() {
                return Err(format!("{host} {RESOLVER_REFUSAL}").into());
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_special_purpose_range_is_internal() {
        for (net, what) in V4_SPECIAL.iter().chain(V6_SPECIAL) {
            let net: IpNet = net.parse().unwrap();
            for probe in [net.network(), net.broadcast()] {
                assert!(is_internal(probe), "{probe} ({what})");
            }
        }
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "198.51.100.7",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            // The gaps the audit found.
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "2002:7f00:1::1",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "100::1",
            "2001:2::1",
            "3fff::1",
            "4000::1",
        ] {
            assert!(is_internal(ip(s)), "{s}");
        }
        for s in [
            "8.8.8.8",
            "151.101.1.1",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_internal(ip(s)), "{s}");
        }
    }

    #[test]
    fn allow_list_entries_and_ports() {
        let a = AllowList::parse([
            "img.internal",
            "cache.internal:8080",
            "10.0.0.5",
            "10.0.0.6:9000",
            "[fd00::1]:443",
            "[fd00::2]",
            "fd00::3",
            "192.168.0.0/16",
            "IMG2.Internal.",
        ])
        .unwrap();
        assert!(a.allows_host("img.internal", 22));
        assert!(a.allows_host("img2.internal", 80));
        assert!(a.allows_host("cache.internal", 8080));
        assert!(!a.allows_host("cache.internal", 22));
        assert!(a.lists_host("cache.internal"));
        assert!(a.allows_ip(ip("10.0.0.5"), Some(22)));
        assert!(a.allows_ip(ip("10.0.0.6"), Some(9000)));
        assert!(!a.allows_ip(ip("10.0.0.6"), Some(9001)));
        assert!(
            !a.allows_ip(ip("10.0.0.6"), None),
            "the resolver needs a port-less entry"
        );
        assert!(a.allows_ip(ip("fd00::1"), Some(443)));
        assert!(!a.allows_ip(ip("fd00::1"), Some(80)));
        assert!(a.allows_ip(ip("fd00::2"), None));
        assert!(a.allows_ip(ip("fd00::3"), None));
        assert!(a.allows_ip(ip("192.168.4.4"), Some(1)));
        assert!(a.allows_ip(ip("::ffff:192.168.4.4"), Some(1)));
        assert!(!a.allows_ip(ip("10.0.0.7"), Some(80)));
        for bad in ["host:port", "a b", "10.0.0.1:0", "host:99999"] {
            assert!(AllowList::parse([bad]).is_err(), "{bad}");
        }
    }

    fn guard(allow: &[&str], proxied: bool) -> Guard {
        Guard {
            allow: AllowList::parse(allow.iter().copied()).unwrap(),
            infrastructure: vec![],
            proxied,
        }
    }

    #[tokio::test]
    async fn targets_are_checked_with_their_port() {
        let url = |s: &str| Url::parse(s).unwrap();
        let g = guard(&["127.0.0.1:8080", "localhost:81"], false);
        assert!(
            g.check_target(&url("http://127.0.0.1:8080/x"))
                .await
                .is_ok()
        );
        assert!(
            g.check_target(&url("http://127.0.0.1:8081/x"))
                .await
                .is_err()
        );
        assert!(
            g.check_target(&url("http://[::ffff:127.0.0.1]:8080/"))
                .await
                .is_ok()
        );
        assert!(g.check_target(&url("http://[::1]/")).await.is_err());
        assert!(g.check_target(&url("http://localhost:81/")).await.is_ok());
        // Listed on another port: resolved and refused here.
        assert!(g.check_target(&url("http://localhost:82/")).await.is_err());
        assert!(g.check_target(&url("ftp://8.8.8.8/")).await.is_err());
        // Through a proxy the target is resolved here.
        let g = guard(&[], true);
        assert!(g.check_target(&url("http://localhost:9/")).await.is_err());
        assert!(
            g.check_target(&url("http://[64:ff9b::7f00:1]/"))
                .await
                .is_err()
        );
    }
}
