//! Per-client limits of the HTTP edge: per-IP request rates on webhooks and
//! on search ([`RateLimits`], with `governor`'s GCRA), and the number of
//! search uploads in flight ([`UploadPermits`]).

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Which limit a route falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Webhook,
    Search,
}

/// By matched route, so providers' webhooks (mounted by their own routers)
/// are covered without knowing their handlers.
fn bucket(route: &str) -> Option<Bucket> {
    if route.starts_with("/api/v1/webhooks/") && route != "/api/v1/webhooks/health" {
        Some(Bucket::Webhook)
    } else if route.starts_with("/api/v1/search/") || route.ends_with("/similar") {
        Some(Bucket::Search)
    } else {
        None
    }
}

/// One per-IP limiter: `per_second` requests per second sustained, with
/// bursts of `burst`.
struct Limiter {
    inner: DefaultKeyedRateLimiter<IpAddr>,
    calls: AtomicU64,
}

/// Forget idle clients every this many checks, so the table of addresses
/// does not grow with every address ever seen.
const RETAIN_EVERY: u64 = 4096;

impl Limiter {
    fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Some(Self {
            inner: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            calls: AtomicU64::new(0),
        })
    }

    /// `Err(wait)` when `ip` is over its rate.
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.calls.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.inner.retain_recent();
            self.inner.shrink_to_fit();
        }
        self.inner
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.inner.clock().now()))
    }
}

/// The per-IP rate limits of webhooks and searches; a rate of 0 turns one
/// off. Keyed by the peer address of the connection: behind a reverse
/// proxy, that is the proxy (see the README's security notes).
#[derive(Clone, Default)]
pub struct RateLimits {
    webhook: Option<Arc<Limiter>>,
    search: Option<Arc<Limiter>>,
}

impl RateLimits {
    pub fn new(webhook: (u32, u32), search: (u32, u32)) -> Self {
        Self {
            webhook: Limiter::new(webhook.0, webhook.1).map(Arc::new),
            search: Limiter::new(search.0, search.1).map(Arc::new),
        }
    }

    fn for_route(&self, route: &str) -> Option<&Limiter> {
        match bucket(route)? {
            Bucket::Webhook => self.webhook.as_deref(),
            Bucket::Search => self.search.as_deref(),
        }
    }
}

/// Middleware: 429 with `Retry-After` when the client is over the rate of
/// its route's bucket.
pub async fn rate_limit(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let (Some(limiter), Some(ip)) = (route.and_then(|r| limits.for_route(r)), peer)
        && let Err(wait) = limiter.check(ip)
    {
        return ApiError::TooManyRequests {
            message: "too many requests from this address; slow down".into(),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        }
        .into_response();
    }
    next.run(req).await
}

/// Bounds the search uploads (search by image) in flight: each holds up to
/// `fetch.max_bytes` of body plus its decoded image, so twenty at once
/// reached half a gigabyte. Past the bound a request is answered 429 at
/// once rather than queued: a queue would hold the bodies it bounds.
#[derive(Clone)]
pub struct UploadPermits(Option<Arc<Semaphore>>);

impl UploadPermits {
    /// At most `n` at once; 0 means no bound.
    pub fn new(n: usize) -> Self {
        Self((n > 0).then(|| Arc::new(Semaphore::new(n))))
    }

    /// A permit, held while the upload is read and searched; 429 when none
    /// is free.
    pub fn try_acquire(&self) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        match &self.0 {
            None => Ok(None),
            Some(s) => {
                s.clone()
                    .try_acquire_owned()
                    .map(Some)
                    .map_err(|_| ApiError::TooManyRequests {
                        message: "too many image searches in progress; try again shortly".into(),
                        retry_after_secs: 1,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_in_their_buckets() {
        assert_eq!(bucket("/api/v1/webhooks/bakai"), Some(Bucket::Webhook));
        assert_eq!(bucket("/api/v1/webhooks/health"), None);
        assert_eq!(bucket("/api/v1/search/image"), Some(Bucket::Search));
        assert_eq!(
            bucket("/api/v1/products/{id}/similar"),
            Some(Bucket::Search)
        );
        assert_eq!(bucket("/api/v1/products/{id}"), None);
        assert_eq!(bucket("/api/v1/health"), None);
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_address() {
        let l = Limiter::new(1, 3).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(l.check(b).is_ok(), "another address has its own budget");
        assert!(Limiter::new(0, 10).is_none(), "0 = off");
    }

    #[test]
    fn uploads_past_the_bound_are_refused() {
        let p = UploadPermits::new(1);
        let held = p.try_acquire().unwrap();
        assert!(held.is_some());
        let e = p.try_acquire().unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        drop(held);
        assert!(p.try_acquire().is_ok());
        assert!(UploadPermits::new(0).try_acquire().unwrap().is_none());
    }
}
