//! Twins of the session policy (`HttpGuards::sessions`, the reference `BoundSessions`).

use super::{Flaw, Transport::Http};
use reference_server::guard::api_keys::Principal;
use reference_server::transport::http::{SessionAdmission, SessionPolicy};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sessions bound as the reference binds them, but shown to clients as a counter
/// (`session-1`, `session-2`, ...) instead of rmcp's random ids.
struct CountedIds {
    reference: Arc<dyn SessionPolicy>,
    table: Mutex<CountedTable>,
}

#[derive(Default)]
struct CountedTable {
    counter: u64,
    /// Shown id to rmcp's id.
    real: HashMap<String, String>,
}

impl SessionPolicy for CountedIds {
    fn name(&self) -> &'static str {
        "session-predictable"
    }
    fn admit(&self, presented: Option<&str>, principal: &Principal) -> SessionAdmission {
        let Some(shown) = presented else {
            return self.reference.admit(None, principal);
        };
        let real = self
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .real
            .get(shown)
            .cloned();
        let Some(real) = real else {
            return SessionAdmission::Refused;
        };
        match self.reference.admit(Some(&real), principal) {
            SessionAdmission::Serve { act_as, .. } => SessionAdmission::Serve {
                rewrite: Some(real),
                act_as,
            },
            refused => refused,
        }
    }
    fn opened(&self, created: &str, principal: &Principal) -> String {
        let real = self.reference.opened(created, principal);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.counter += 1;
        let shown = format!("session-{}", table.counter);
        table.real.insert(shown.clone(), real);
        shown
    }
    fn closed(&self, presented: &str) {
        let real = self
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .real
            .remove(presented);
        if let Some(real) = real {
            self.reference.closed(&real);
        }
    }
}

pub const SESSION_PREDICTABLE: Flaw = Flaw {
    name: "session-predictable",
    summary: "HTTP: session ids are a counter (`session-1`, `session-2`, ...).",
    caught: &[(Http, "TRANS-SESSION-ID")],
    swaps: &["sessions"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, _| {
        guards.sessions = Arc::new(CountedIds {
            reference: guards.sessions.clone(),
            table: Mutex::default(),
        })
    }),
};

/// A session id taken as proof of identity: whoever presents it acts as the principal that
/// opened the session.
#[derive(Default)]
struct SessionIsIdentity(Mutex<HashMap<String, Principal>>);

impl SessionPolicy for SessionIsIdentity {
    fn name(&self) -> &'static str {
        "session-unbound"
    }
    fn admit(&self, presented: Option<&str>, _principal: &Principal) -> SessionAdmission {
        let Some(session) = presented else {
            return SessionAdmission::AS_IS;
        };
        match self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
        {
            Some(owner) => SessionAdmission::Serve {
                rewrite: None,
                act_as: Some(owner.clone()),
            },
            None => SessionAdmission::Refused,
        }
    }
    fn opened(&self, created: &str, principal: &Principal) -> String {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(created.to_owned(), principal.clone());
        created.to_owned()
    }
    fn closed(&self, presented: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(presented);
    }
}

pub const SESSION_UNBOUND: Flaw = Flaw {
    name: "session-unbound",
    summary: "HTTP: a session id is taken as proof of identity: whoever presents it acts as the principal that opened the session.",
    caught: &[(Http, "AUTH-SESSION-BINDING")],
    swaps: &["sessions"],
    harness_args: &[],
    tools: None,
    http: Some(|guards, _| guards.sessions = Arc::new(SessionIsIdentity::default())),
};
