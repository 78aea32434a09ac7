//! The per-principal request limit of the HTTP layer: every authenticated request takes one
//! token from its principal's bucket ([`crate::guard::rate_limit`], GCRA with a hard key cap).
//!
//! Cost: one limiter check (a shared lock and a compare-and-swap for a known principal).
//! Failure: [`RateLimitError`]; the layer answers `Limited` with 429 and `Retry-After`, a full
//! key table with 503.

use crate::guard::api_keys::Principal;
use crate::guard::rate_limit::{RateLimitError, RateLimiter};
use axum::http::HeaderMap;

/// Which bucket a request takes its token from (a test seam: see [`crate::guards`]).
pub trait RequestLimit: Send + Sync {
    fn name(&self) -> &'static str;
    /// Admits or refuses one request by `principal` with `headers`.
    fn check(&self, principal: &Principal, headers: &HeaderMap) -> Result<(), RateLimitError>;
}

/// The reference limit: one bucket per principal, never per anything the caller sends.
pub struct PerPrincipalLimit(pub RateLimiter<String>);

impl RequestLimit for PerPrincipalLimit {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }
    fn check(&self, principal: &Principal, _headers: &HeaderMap) -> Result<(), RateLimitError> {
        self.0.check(&principal.name)
    }
}
