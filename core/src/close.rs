//! Closes in flight: what was removed, why, and since when.
//!
//! A session leaves the store the moment a close is decided, before any of
//! the caller's close code runs, so racing calls can never close it twice.
//! The tracker remembers the close until the caller reports how it ended.

use std::collections::HashMap;

use crate::store::RemovedSession;
use crate::Slot;

/// Which call closed a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
  /// `unregister(sessionId)`.
  Unregister,
  /// `cleanupClient(clientId)`.
  CleanupClient,
  /// `cleanupStale()`.
  CleanupStale,
}

impl CloseReason {
  /// The name JavaScript sees in close events.
  pub fn as_str(self) -> &'static str {
    match self {
      CloseReason::Unregister => "unregister",
      CloseReason::CleanupClient => "cleanupClient",
      CloseReason::CleanupStale => "cleanupStale",
    }
  }
}

/// How a handle's close ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
  /// `close()` returned, or its promise fulfilled.
  Closed,
  /// `close()` threw, or its promise rejected.
  Failed,
}

/// Identifies one close in flight. Never reused by a registry, so a late
/// report about a close that already ended is recognised and ignored.
pub type Ticket = u64;

/// A close the caller must now carry out: take the handle kept in `slot`
/// (the slot is already free for reuse) and close it, then report the
/// outcome with the ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseOrder {
  pub ticket: Ticket,
  pub slot: Slot,
  pub session_id: String,
  pub client_id: String,
}

/// What a finished close looked like, for close hooks and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseReport {
  pub session_id: String,
  pub client_id: String,
  pub reason: CloseReason,
  pub outcome: CloseOutcome,
  /// From the start of the close to its end, in the caller's clock.
  pub duration_ms: f64,
  pub registered_at: f64,
}

struct Pending {
  session_id: String,
  client_id: String,
  reason: CloseReason,
  started_at: f64,
  registered_at: f64,
}

#[derive(Default)]
pub(crate) struct CloseTracker {
  pending: HashMap<Ticket, Pending>,
  by_session: HashMap<String, Vec<Ticket>>,
  next_ticket: Ticket,
}

impl CloseTracker {
  pub(crate) fn begin(
    &mut self,
    removed: RemovedSession,
    reason: CloseReason,
    now: f64,
  ) -> CloseOrder {
    self.next_ticket += 1;
    let ticket = self.next_ticket;
    self
      .by_session
      .entry(removed.session_id.clone())
      .or_default()
      .push(ticket);
    let order = CloseOrder {
      ticket,
      slot: removed.slot,
      session_id: removed.session_id.clone(),
      client_id: removed.client_id.clone(),
    };
    self.pending.insert(
      ticket,
      Pending {
        session_id: removed.session_id,
        client_id: removed.client_id,
        reason,
        started_at: now,
        registered_at: removed.registered_at,
      },
    );
    order
  }

  /// Ends a close. Only the first report of a ticket counts.
  pub(crate) fn settle(
    &mut self,
    ticket: Ticket,
    outcome: CloseOutcome,
    now: f64,
  ) -> Option<CloseReport> {
    let pending = self.pending.remove(&ticket)?;
    if let Some(tickets) = self.by_session.get_mut(&pending.session_id) {
      tickets.retain(|&t| t != ticket);
      if tickets.is_empty() {
        self.by_session.remove(&pending.session_id);
      }
    }
    Some(CloseReport {
      session_id: pending.session_id,
      client_id: pending.client_id,
      reason: pending.reason,
      outcome,
      duration_ms: (now - pending.started_at).max(0.0),
      registered_at: pending.registered_at,
    })
  }

  /// The most recent close in flight for a session id.
  pub(crate) fn in_flight(&self, session_id: &str) -> Option<Ticket> {
    self.by_session.get(session_id)?.last().copied()
  }

  pub(crate) fn is_pending(&self, ticket: Ticket) -> bool {
    self.pending.contains_key(&ticket)
  }

  pub(crate) fn len(&self) -> usize {
    self.pending.len()
  }
}
