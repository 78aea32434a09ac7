//! The per-principal request limit of the HTTP layer: every authenticated request takes one
//! token from its principal's bucket: in process ([`crate::guard::rate_limit`], GCRA with a
//! hard key cap), or shared by replicas in Redis ([`crate::guard::shared_rate_limit`]).
//!
//! Cost: one limiter check (a shared lock and a compare-and-swap for a known principal), or one
//! Redis round trip. Failure: [`RateLimitError`]; the layer answers `Limited` with 429 and
//! `Retry-After`, a full key table or an unavailable store with 503.

use crate::guard::api_keys::Principal;
use crate::guard::rate_limit::{RateLimitError, RateLimiter};
use crate::guard::shared_rate_limit::RedisRateLimiter;
use axum::http::HeaderMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A limit's answer: decided at once (in process), or after I/O (a shared store).
pub enum LimitCheck<'a> {
    Decided(Result<(), RateLimitError>),
    Pending(Pin<Box<dyn Future<Output = Result<(), RateLimitError>> + Send + 'a>>),
}

impl LimitCheck<'_> {
    /// The answer, waiting for it if it needs I/O.
    pub async fn verdict(self) -> Result<(), RateLimitError> {
        match self {
            LimitCheck::Decided(verdict) => verdict,
            LimitCheck::Pending(future) => future.await,
        }
    }
}

impl From<Result<(), RateLimitError>> for LimitCheck<'_> {
    fn from(verdict: Result<(), RateLimitError>) -> Self {
        LimitCheck::Decided(verdict)
    }
}

/// Which bucket a request takes its token from (a test seam: see [`crate::guards`]).
pub trait RequestLimit: Send + Sync {
    fn name(&self) -> &'static str;
    /// Admits or refuses one request by `principal` with `headers`.
    fn check<'a>(&'a self, principal: &'a Principal, headers: &'a HeaderMap) -> LimitCheck<'a>;
}

/// The reference limit: one bucket per principal, never per anything the caller sends.
pub struct PerPrincipalLimit(pub RateLimiter<String>);

impl RequestLimit for PerPrincipalLimit {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }
    fn check<'a>(&'a self, principal: &'a Principal, _headers: &'a HeaderMap) -> LimitCheck<'a> {
        self.0.check(&principal.name).into()
    }
}

/// The reference limit with its buckets in Redis, shared by every replica.
pub struct SharedPerPrincipalLimit(pub Arc<RedisRateLimiter>);

impl RequestLimit for SharedPerPrincipalLimit {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }
    fn check<'a>(&'a self, principal: &'a Principal, _headers: &'a HeaderMap) -> LimitCheck<'a> {
        LimitCheck::Pending(Box::pin(self.0.check(&principal.name)))
    }
}
