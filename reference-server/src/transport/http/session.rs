//! Session binding: a session id is honoured only for the principal that opened it. Another
//! principal presenting it, or an id the server does not know, gets 404 as if the session did
//! not exist; the id is never taken as proof of identity.
//!
//! rmcp creates the sessions (random ids); this module remembers who opened each one, at most
//! [`MAX_BOUND_SESSIONS`] (the oldest binding is dropped beyond that, which ends that session).
//!
//! Cost: one mutex-guarded map lookup per request that presents a session, one insert per new
//! session. Failure: a refusal is [`SessionAdmission::Refused`], answered with 404.

use crate::guard::api_keys::Principal;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Most sessions whose owner is remembered; the oldest binding is dropped beyond this, which
/// ends that session (an unknown session id is refused, never let through).
pub const MAX_BOUND_SESSIONS: usize = 10_000;

/// What to do with a request that presents (or does not present) a session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAdmission {
    /// Answer 404: no such session for this caller.
    Refused,
    /// Serve it.
    Serve {
        /// The session id to hand to rmcp instead of the one presented, if they differ.
        rewrite: Option<String>,
        /// The principal to serve it as instead of the authenticated one, if they differ.
        act_as: Option<Principal>,
    },
}

impl SessionAdmission {
    /// Serve, as presented and as the authenticated principal.
    pub const AS_IS: SessionAdmission = SessionAdmission::Serve {
        rewrite: None,
        act_as: None,
    };
}

/// Which sessions a principal may use (a test seam: see [`crate::guards`]).
pub trait SessionPolicy: Send + Sync {
    fn name(&self) -> &'static str;
    /// A request by `principal` presenting `presented` (`None`: no session header).
    fn admit(&self, presented: Option<&str>, principal: &Principal) -> SessionAdmission;
    /// rmcp opened session `created` for `principal`; returns the id the client is told.
    fn opened(&self, created: &str, principal: &Principal) -> String;
    /// The session the client calls `presented` was deleted.
    fn closed(&self, presented: &str);
}

/// The reference policy: sessions bound to the principal that opened them.
#[derive(Default)]
pub struct BoundSessions(Mutex<SessionOwners>);

#[derive(Default)]
struct SessionOwners {
    owner: HashMap<String, String>,
    order: VecDeque<String>,
}

impl BoundSessions {
    fn owners(&self) -> std::sync::MutexGuard<'_, SessionOwners> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SessionPolicy for BoundSessions {
    fn name(&self) -> &'static str {
        crate::guards::REFERENCE
    }

    fn admit(&self, presented: Option<&str>, principal: &Principal) -> SessionAdmission {
        match presented {
            None => SessionAdmission::AS_IS,
            Some(session) if self.owners().owner.get(session) == Some(&principal.name) => {
                SessionAdmission::AS_IS
            }
            Some(_) => {
                tracing::info!(
                    principal = principal.name,
                    "session id not bound to this principal"
                );
                SessionAdmission::Refused
            }
        }
    }

    fn opened(&self, created: &str, principal: &Principal) -> String {
        let mut owners = self.owners();
        if owners
            .owner
            .insert(created.to_owned(), principal.name.clone())
            .is_none()
        {
            owners.order.push_back(created.to_owned());
        }
        while owners.order.len() > MAX_BOUND_SESSIONS {
            if let Some(oldest) = owners.order.pop_front() {
                owners.owner.remove(&oldest);
            }
        }
        created.to_owned()
    }

    fn closed(&self, presented: &str) {
        let mut owners = self.owners();
        if owners.owner.remove(presented).is_some() {
            owners.order.retain(|s| s != presented);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_serves_only_its_owner() {
        let sessions = BoundSessions::default();
        let (alice, bob) = (
            Principal::new("alice", Vec::<String>::new()),
            Principal::new("bob", Vec::<String>::new()),
        );
        assert_eq!(sessions.opened("s1", &alice), "s1");
        assert_eq!(sessions.admit(Some("s1"), &alice), SessionAdmission::AS_IS);
        assert_eq!(sessions.admit(Some("s1"), &bob), SessionAdmission::Refused);
        assert_eq!(
            sessions.admit(Some("s2"), &alice),
            SessionAdmission::Refused
        );
        assert_eq!(sessions.admit(None, &bob), SessionAdmission::AS_IS);
        sessions.closed("s1");
        assert_eq!(
            sessions.admit(Some("s1"), &alice),
            SessionAdmission::Refused
        );
    }

    #[test]
    fn the_oldest_binding_goes_beyond_the_cap() {
        let sessions = BoundSessions::default();
        let alice = Principal::new("alice", Vec::<String>::new());
        for n in 0..=MAX_BOUND_SESSIONS {
            sessions.opened(&format!("s{n}"), &alice);
        }
        assert_eq!(
            sessions.admit(Some("s0"), &alice),
            SessionAdmission::Refused
        );
        let last = format!("s{MAX_BOUND_SESSIONS}");
        assert_eq!(sessions.admit(Some(&last), &alice), SessionAdmission::AS_IS);
    }
}
