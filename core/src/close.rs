//! Closes in flight: what was removed, why, and since when.
//!
//! A session leaves the store the moment a close is decided, before any of
//! the caller's close code runs, so racing calls can never close it twice.
//! The tracker remembers the close until the caller reports how it ended.

use hashbrown::HashMap;

use crate::store::RemovedSession;
use crate::{Slot, Ticket};

/// Which call closed a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
  /// `unregister(sessionId)`.
  Unregister,
  /// `cleanupClient(clientId)`.
  CleanupClient,
  /// `cleanupStale()` (or the automatic stale cleanup) found it timed out or
  /// in the error state.
  CleanupStale,
  /// Stale cleanup found it idle past the idle timeout and not running.
  Idle,
  /// Closed to make room for a new session in a full registry.
  Evicted,
  /// `closeAll()` or `dispose()`.
  Shutdown,
  /// Another node of the cluster asked (`cluster.unregister`,
  /// `cluster.cleanupClient`).
  Remote,
  /// Another live node of the cluster holds the same session id in the
  /// shared directory (it claimed the id while this node was cut off); the
  /// directory's record wins.
  Conflict,
}

impl CloseReason {
  /// The name JavaScript sees in close events.
  pub fn as_str(self) -> &'static str {
    match self {
      CloseReason::Unregister => "unregister",
      CloseReason::CleanupClient => "cleanupClient",
      CloseReason::CleanupStale => "cleanupStale",
      CloseReason::Idle => "idle",
      CloseReason::Evicted => "evicted",
      CloseReason::Shutdown => "shutdown",
      CloseReason::Remote => "remote",
      CloseReason::Conflict => "conflict",
    }
  }

  /// Every reason, in the order metrics list them.
  pub const ALL: [CloseReason; 8] = [
    CloseReason::Unregister,
    CloseReason::CleanupClient,
    CloseReason::CleanupStale,
    CloseReason::Idle,
    CloseReason::Evicted,
    CloseReason::Shutdown,
    CloseReason::Remote,
    CloseReason::Conflict,
  ];
}

/// How a handle's close ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
  /// `close()` returned, or its promise fulfilled.
  Closed,
  /// `close()` threw, or its promise rejected.
  Failed,
  /// `close()` did not settle before the close deadline and was given up on.
  TimedOut,
}

/// A close the caller must now carry out: take the handle kept in `slot`
/// (the slot is already free for reuse) and close it, then report the
/// outcome with the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseOrder {
  pub ticket: Ticket,
  pub slot: Slot,
}

/// What a finished close looked like, for close hooks and metrics (the
/// embedder knows which session it was: it holds the ticket's handle).
#[derive(Debug, Clone, PartialEq)]
pub struct CloseReport {
  pub reason: CloseReason,
  pub outcome: CloseOutcome,
  /// From the call of `close()` (or, for a close that never started, from
  /// its removal) to its end, in the caller's clock.
  pub duration_ms: f64,
  pub registered_at: f64,
}

struct Pending {
  reason: CloseReason,
  /// When the close was ordered; `started` once `close()` has been called.
  ordered_at: f64,
  started: bool,
  registered_at: f64,
}

/// The closes in flight, by ticket.
#[derive(Default)]
pub(crate) struct CloseTracker {
  pending: HashMap<Ticket, Pending>,
  /// The last ticket handed out (tickets start at 1).
  next_ticket: u64,
  started: usize,
}

impl CloseTracker {
  pub(crate) fn begin(
    &mut self,
    removed: RemovedSession,
    reason: CloseReason,
    now: f64,
  ) -> CloseOrder {
    self.next_ticket += 1;
    let ticket = Ticket(self.next_ticket);
    self.pending.insert(
      ticket,
      Pending {
        reason,
        ordered_at: now,
        started: false,
        registered_at: removed.registered_at,
      },
    );
    CloseOrder {
      ticket,
      slot: removed.slot,
    }
  }

  /// Ends a close. Only the first report of a ticket counts.
  pub(crate) fn settle(
    &mut self,
    ticket: Ticket,
    outcome: CloseOutcome,
    now: f64,
  ) -> Option<CloseReport> {
    let pending = self.pending.remove(&ticket)?;
    if pending.started {
      self.started -= 1;
    }
    Some(CloseReport {
      reason: pending.reason,
      outcome,
      duration_ms: (now - pending.ordered_at).max(0.0),
      registered_at: pending.registered_at,
    })
  }

  /// Notes that `close()` has been called for a close; its duration counts
  /// from now.
  pub(crate) fn start(&mut self, ticket: Ticket, now: f64) {
    if let Some(pending) = self.pending.get_mut(&ticket) {
      if !pending.started {
        pending.started = true;
        pending.ordered_at = now;
        self.started += 1;
      }
    }
  }

  /// Closes whose `close()` has been called and has not ended.
  pub(crate) fn running(&self) -> usize {
    self.started
  }

  pub(crate) fn is_pending(&self, ticket: Ticket) -> bool {
    self.pending.contains_key(&ticket)
  }

  pub(crate) fn len(&self) -> usize {
    self.pending.len()
  }
}
