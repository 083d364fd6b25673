//! The registry's rules on top of its [`MemoryStore`].

use crate::change::{Change, SessionRecord};
use crate::close::{CloseOrder, CloseOutcome, CloseReason, CloseReport, CloseTracker};
use crate::cursor::Cursor;
use crate::metrics::{Metrics, MetricsRecorder};
use crate::policy::{LimitScope, Policy};
use crate::store::{RemovedSession, SessionView};
use crate::{Error, HealthReading, MemoryStore, Slot, Ticket};

/// What `getSessionInfo` reports about a session, borrowed from the registry.
#[derive(Debug, Clone, Copy)]
pub struct SessionInfo<'a> {
  pub view: SessionView<'a>,
  pub metrics: &'a [(Box<str>, f64)],
}

/// What a stale scan read of one registration, for [`Registry::close_stale`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaleReading {
  pub slot: Slot,
  pub seq: u64,
  pub health: HealthReading,
  /// Asked only of sessions past the idle timeout: whether it is running;
  /// `None` when not asked or it could not say.
  pub running: Option<bool>,
}

/// What `unregister` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Unregister {
  /// The session was registered and is now removed: close it.
  Close(CloseOrder),
  /// The session is not registered, but a close of that id is still in
  /// flight; the caller may wait for that ticket.
  AlreadyClosing(Ticket),
  /// Nothing is registered or closing under that id.
  NotRegistered,
}

/// Sessions by id and by client, plus the closes in flight.
///
/// Every operation is synchronous and either completes or fails without a
/// change. Removal happens before the caller's close code runs, so a session
/// is handed out for closing exactly once however calls race.
pub struct Registry {
  store: MemoryStore,
  closes: CloseTracker,
  policy: Policy,
  metrics: MetricsRecorder,
  disposed: bool,
  /// The change feed since the last [`Registry::take_changes`]; `None`
  /// while it is off, so that registering and removing cost one branch
  /// more, no more.
  changes: Option<Vec<Change>>,
}

impl Default for Registry {
  fn default() -> Self {
    Registry::new()
  }
}

impl Registry {
  pub fn new() -> Self {
    Registry {
      store: MemoryStore::new(),
      closes: CloseTracker::default(),
      policy: Policy::default(),
      metrics: MetricsRecorder::default(),
      disposed: false,
      changes: None,
    }
  }

  /// Read access to the bookkeeping, for lookups and statistics.
  pub fn store(&self) -> &MemoryStore {
    &self.store
  }

  /// The lifecycle policy in force.
  pub fn policy(&self) -> &Policy {
    &self.policy
  }

  /// Replaces the lifecycle policy; sessions already registered stay even
  /// if they exceed new limits.
  pub fn set_policy(&mut self, policy: Policy) {
    self.policy = policy;
  }

  /// Registers `session_id` under `client_id` and returns its slot.
  ///
  /// Fails on empty ids, on an id that is already registered (the error
  /// names the registration that stays), when a limit is reached, and after
  /// [`Registry::dispose`]. Admission is checked and granted in one step.
  pub fn register(&mut self, client_id: &str, session_id: &str, now: f64) -> Result<Slot, Error> {
    self.admit(client_id, session_id)?;
    if let Some(scope) = self.full(client_id) {
      return Err(self.limit_error(scope, client_id));
    }
    self.insert(client_id, session_id, now)
  }

  /// Registers a session in a full registry by closing `victim` (a
  /// registration seen in [`Registry::eviction_candidates`]) to make room, in
  /// one step. If the registry is no longer full the victim stays; if it is
  /// full and the victim is gone or would not make room, this fails with the
  /// limit error and changes nothing.
  pub fn register_evicting(
    &mut self,
    client_id: &str,
    session_id: &str,
    victim: (Slot, u64),
    now: f64,
  ) -> Result<(Slot, Option<CloseOrder>), Error> {
    self.admit(client_id, session_id)?;
    let Some(scope) = self.full(client_id) else {
      return self
        .insert(client_id, session_id, now)
        .map(|slot| (slot, None));
    };
    let makes_room = self.store.get(victim.0).is_some_and(|view| {
      let ours = view.client_id == client_id;
      let in_scope = scope == LimitScope::Registry || ours;
      // Room means no limit binds once the victim is gone (after a policy
      // change, one eviction may not be enough).
      let after = self.policy.full(
        self.store.session_count() - 1,
        self.store.client_len(client_id) - usize::from(ours),
      );
      view.seq == victim.1 && in_scope && after.is_none()
    });
    if !makes_room {
      return Err(self.limit_error(scope, client_id));
    }
    let order = self.close_registration(victim.0, victim.1, CloseReason::Evicted, now);
    let slot = self.insert(client_id, session_id, now)?;
    Ok((slot, order))
  }

  /// Which limit a new session of `client_id` would break now.
  pub fn full(&self, client_id: &str) -> Option<LimitScope> {
    self
      .policy
      .full(self.store.session_count(), self.store.client_len(client_id))
  }

  /// Registrations that could make room for a session of `client_id` under
  /// `scope`, least recently active first: the `take` that follow the
  /// registration `after` (a candidate an earlier call returned), or the
  /// first `take` without it or when `after` is gone.
  ///
  /// Resuming from `after` makes a search through many running sessions
  /// linear: under [`LimitScope::Registry`] each call starts where the last
  /// one stopped in the activity order, in O(1). Under
  /// [`LimitScope::Client`] the client's sessions are ordered per call,
  /// O(k log k) for a client of k sessions.
  pub fn eviction_candidates(
    &self,
    scope: LimitScope,
    client_id: &str,
    after: Option<(Slot, u64)>,
    take: usize,
  ) -> Vec<(Slot, u64)> {
    let with_seq = |slot: Slot| self.store.get(slot).map(|view| (slot, view.seq));
    match scope {
      LimitScope::Registry => {
        match after.and_then(|(slot, seq)| self.store.by_activity_after(slot, seq)) {
          Some(rest) => rest.take(take).filter_map(with_seq).collect(),
          None => self
            .store
            .by_activity()
            .take(take)
            .filter_map(with_seq)
            .collect(),
        }
      }
      LimitScope::Client => {
        let mut views: Vec<SessionView<'_>> = self
          .store
          .client_slots(client_id)
          .filter_map(|slot| self.store.get(slot))
          .collect();
        views.sort_by(|a, b| {
          a.last_activity
            .total_cmp(&b.last_activity)
            .then(a.seq.cmp(&b.seq))
        });
        let start = after
          .and_then(|(slot, seq)| {
            views
              .iter()
              .position(|view| view.slot == slot && view.seq == seq)
          })
          .map_or(0, |at| at + 1);
        views
          .into_iter()
          .skip(start)
          .take(take)
          .map(|view| (view.slot, view.seq))
          .collect()
      }
    }
  }

  /// The error for a registration refused by `scope`.
  pub fn limit_error(&self, scope: LimitScope, client_id: &str) -> Error {
    match scope {
      LimitScope::Registry => Error::SessionLimit {
        max: self.policy.max_sessions.unwrap_or(0),
      },
      LimitScope::Client => Error::ClientSessionLimit {
        client_id: client_id.to_owned(),
        max: self.policy.max_sessions_per_client.unwrap_or(0),
      },
    }
  }

  /// Everything that refuses a registration before limits are looked at:
  /// bad ids, a disposed registry, an id already taken.
  fn admit(&self, client_id: &str, session_id: &str) -> Result<(), Error> {
    if client_id.is_empty() {
      return Err(Error::EmptyClientId);
    }
    if session_id.is_empty() {
      return Err(Error::EmptySessionId);
    }
    if self.disposed {
      return Err(Error::Disposed);
    }
    if let Some(slot) = self.store.slot_of(session_id) {
      let owner = self.store.get(slot).map_or("", |view| view.client_id);
      return Err(Error::AlreadyRegistered {
        session_id: session_id.to_owned(),
        client_id: owner.to_owned(),
        slot,
      });
    }
    Ok(())
  }

  fn insert(&mut self, client_id: &str, session_id: &str, now: f64) -> Result<Slot, Error> {
    let (slot, _) = self.store.insert(client_id, session_id, now)?;
    if let Some(changes) = &mut self.changes {
      changes.push(Change::Registered(SessionRecord {
        session_id: session_id.to_owned(),
        client_id: client_id.to_owned(),
        registered_at: now,
      }));
    }
    self.metrics.registered();
    Ok(slot)
  }

  /// Records activity of a registered session: its last activity time and
  /// its place among the most recently active.
  pub fn touch(&mut self, slot: Slot, now: f64) {
    self.store.touch(slot, now);
  }

  /// Records that a lookup handed the session out. The same as
  /// [`Registry::touch`] when the policy evicts across the registry (the
  /// only use of the activity order); otherwise only the time is kept,
  /// which spares lookups the reordering.
  pub fn note_lookup(&mut self, slot: Slot, now: f64) {
    if self.policy.evict_idle && self.policy.max_sessions.is_some() {
      self.store.touch(slot, now);
    } else {
      self.store.mark_active(slot, now);
    }
  }

  /// Records activity of a session by id; `false` when it is not registered.
  pub fn touch_session(&mut self, session_id: &str, now: f64) -> bool {
    match self.store.slot_of(session_id) {
      Some(slot) => {
        self.store.touch(slot, now);
        true
      }
      None => false,
    }
  }

  /// Merges numeric metrics into a session's record (a name set again is
  /// replaced) and keeps the totals in step; `false` when the session is not
  /// registered. Non-finite values are the caller's to refuse.
  pub fn update_metrics(&mut self, session_id: &str, updates: &[(&str, f64)]) -> bool {
    let Some(slot) = self.store.slot_of(session_id) else {
      return false;
    };
    for &(name, value) in updates {
      let old = self.store.set_metric(slot, name, value);
      self.metrics.metric_changed(name, old, value);
    }
    true
  }

  /// What `getSessionInfo` reports about the session in `slot`.
  pub fn session_info(&self, slot: Slot) -> Option<SessionInfo<'_>> {
    let view = self.store.get(slot)?;
    Some(SessionInfo {
      view,
      metrics: self.store.metrics(slot),
    })
  }

  /// The aggregate metrics since the registry was created.
  pub fn metrics(&self) -> Metrics {
    self.metrics.snapshot()
  }

  /// One page of registrations in registration order, all of them or one
  /// client's, after `after`; with the cursor of the next page if there is
  /// one. A cursor whose session is gone still resumes at the right place.
  pub fn list(
    &self,
    client_id: Option<&str>,
    after: Option<Cursor>,
    limit: usize,
  ) -> (Vec<Slot>, Option<Cursor>) {
    // A page has at least one row; one more is read to know whether a next
    // page exists.
    let limit = limit.max(1);
    let probe = limit.saturating_add(1);
    let after_seq = after.map_or(0, |cursor| cursor.seq);
    let seq_of = |slot: Slot| self.store.get(slot).map_or(0, |view| view.seq);
    let mut page: Vec<Slot> = match (client_id, after) {
      (None, Some(cursor)) => match self.store.sessions_after(cursor.slot, cursor.seq) {
        Some(rest) => rest.take(probe).collect(),
        None => self
          .store
          .sessions()
          .filter(|view| view.seq > after_seq)
          .map(|view| view.slot)
          .take(probe)
          .collect(),
      },
      (None, None) => self
        .store
        .sessions()
        .map(|view| view.slot)
        .take(probe)
        .collect(),
      (Some(client), _) => self
        .store
        .client_slots(client)
        .filter(|&slot| seq_of(slot) > after_seq)
        .take(probe)
        .collect(),
    };
    let more = page.len() > limit;
    page.truncate(limit);
    let next = match (more, page.last()) {
      (true, Some(&slot)) => Some(Cursor {
        seq: seq_of(slot),
        slot,
      }),
      _ => None,
    };
    (page, next)
  }

  /// Whether the session in `slot` is past the idle timeout.
  pub fn idle_expired(&self, slot: Slot, now: f64) -> bool {
    self
      .store
      .get(slot)
      .is_some_and(|view| self.policy.idle_expired(view.last_activity, now))
  }

  /// Removes every session for closing with reason `Shutdown`.
  pub fn close_all(&mut self, now: f64) -> Vec<CloseOrder> {
    let removed = self.store.remove_all();
    let mut orders = Vec::with_capacity(removed.len());
    for session in removed {
      orders.push(self.begin(session, CloseReason::Shutdown, now));
    }
    orders
  }

  /// Refuses every later registration. Idempotent.
  pub fn dispose(&mut self) {
    self.disposed = true;
  }

  pub fn is_disposed(&self) -> bool {
    self.disposed
  }

  /// Notes that a close's `close()` has been called.
  pub fn start_close(&mut self, ticket: Ticket, now: f64) {
    self.closes.start(ticket, now);
  }

  /// How many more closes may start now under `max_concurrent_closes`.
  pub fn close_capacity(&self) -> usize {
    self
      .policy
      .max_concurrent_closes
      .saturating_sub(self.closes.running())
  }

  /// Every removal passes here, so this is where it enters the change feed.
  fn begin(&mut self, removed: RemovedSession, reason: CloseReason, now: f64) -> CloseOrder {
    self.metrics.removed(reason, now - removed.registered_at);
    if let Some(changes) = &mut self.changes {
      changes.push(Change::Removed {
        session_id: removed.session_id.clone(),
      });
    }
    self.closes.begin(removed, reason, now)
  }

  /// The slot of a registered session.
  pub fn session(&self, session_id: &str) -> Option<Slot> {
    self.store.slot_of(session_id)
  }

  /// Removes a session for closing.
  pub fn unregister(&mut self, session_id: &str, now: f64) -> Unregister {
    self.unregister_because(session_id, CloseReason::Unregister, now)
  }

  fn unregister_because(&mut self, session_id: &str, reason: CloseReason, now: f64) -> Unregister {
    match self.store.remove(session_id) {
      Some(removed) => Unregister::Close(self.begin(removed, reason, now)),
      None => match self.closes.in_flight(session_id) {
        Some(ticket) => Unregister::AlreadyClosing(ticket),
        None => Unregister::NotRegistered,
      },
    }
  }

  /// [`Registry::unregister`] for a caller that calls the session's
  /// `close()` right away: a close it orders counts as started now.
  pub fn unregister_now(&mut self, session_id: &str, now: f64) -> Unregister {
    self.unregister_now_because(session_id, CloseReason::Unregister, now)
  }

  /// [`Registry::unregister_now`] with another reason (`Remote`, when
  /// another node of the cluster asked).
  pub fn unregister_now_because(
    &mut self,
    session_id: &str,
    reason: CloseReason,
    now: f64,
  ) -> Unregister {
    let found = self.unregister_because(session_id, reason, now);
    if let Unregister::Close(order) = found {
      self.start_close(order.ticket, now);
    }
    found
  }

  /// The ticket of the close in flight for a session id, if any (the most
  /// recent one when the id was closed more than once).
  pub fn closing_ticket(&self, session_id: &str) -> Option<Ticket> {
    self.closes.in_flight(session_id)
  }

  /// Removes all of a client's sessions for closing, in registration order.
  pub fn cleanup_client(&mut self, client_id: &str, now: f64) -> Vec<CloseOrder> {
    self.cleanup_client_because(client_id, CloseReason::CleanupClient, now)
  }

  /// [`Registry::cleanup_client`] with another reason (`Remote`, when
  /// another node of the cluster asked).
  pub fn cleanup_client_because(
    &mut self,
    client_id: &str,
    reason: CloseReason,
    now: f64,
  ) -> Vec<CloseOrder> {
    let removed = self.store.remove_client(client_id);
    removed
      .into_iter()
      .map(|removed| self.begin(removed, reason, now))
      .collect()
  }

  /// Every current registration as `(slot, seq)`, for scans that call out to
  /// user code between steps and must recognise what changed meanwhile.
  pub fn registrations(&self) -> Vec<(Slot, u64)> {
    self.store.sessions().map(|s| (s.slot, s.seq)).collect()
  }

  /// Whether `(slot, seq)` is still registered.
  pub fn is_registered(&self, slot: Slot, seq: u64) -> bool {
    self.store.get(slot).is_some_and(|s| s.seq == seq)
  }

  /// Removes one registration for closing if it is still the one seen in a
  /// scan; `None` when it was removed or replaced meanwhile.
  pub fn close_registration(
    &mut self,
    slot: Slot,
    seq: u64,
    reason: CloseReason,
    now: f64,
  ) -> Option<CloseOrder> {
    let removed = self.store.remove_registration(slot, seq)?;
    Some(self.begin(removed, reason, now))
  }

  /// Removes for closing, in order, each scanned registration whose readings
  /// say so: its health is stale (reason `CleanupStale`), or it is past the
  /// idle timeout and said it is not running (reason `Idle`). A registration
  /// removed or replaced since the scan saw it is skipped.
  pub fn close_stale(
    &mut self,
    readings: impl IntoIterator<Item = StaleReading>,
    now: f64,
  ) -> Vec<CloseOrder> {
    readings
      .into_iter()
      .filter_map(|reading| {
        let reason = reading.health.close_reason(reading.running)?;
        self.close_registration(reading.slot, reading.seq, reason, now)
      })
      .collect()
  }

  /// Records how a close ended. Only the first report of a ticket counts;
  /// later ones return `None`.
  pub fn settle(&mut self, ticket: Ticket, outcome: CloseOutcome, now: f64) -> Option<CloseReport> {
    let report = self.closes.settle(ticket, outcome, now)?;
    self.metrics.close_ended(outcome, report.duration_ms);
    Some(report)
  }

  /// The session and client ids of a close in flight.
  pub fn closing_session(&self, ticket: Ticket) -> Option<(&str, &str)> {
    self.closes.session_of(ticket)
  }

  /// Whether a close is still waiting for its report.
  pub fn is_closing(&self, ticket: Ticket) -> bool {
    self.closes.is_pending(ticket)
  }

  /// How many closes are in flight.
  pub fn closes_in_flight(&self) -> usize {
    self.closes.len()
  }

  /// Turns the change feed (see [`crate::change`]) on or off.
  ///
  /// Turning it on (when off) records a [`Change::Registered`] for every
  /// session registered now, in registration order, so that a copy holding
  /// none of this registry's sessions, fed every change from here on, holds
  /// exactly this registry's sessions. Turning it off discards the changes
  /// not yet taken. While on, changes accumulate until taken.
  pub fn set_change_feed(&mut self, on: bool) {
    match (on, self.changes.is_some()) {
      (true, false) => {
        let existing = self
          .store
          .sessions()
          .map(|view| {
            Change::Registered(SessionRecord {
              session_id: view.session_id.to_owned(),
              client_id: view.client_id.to_owned(),
              registered_at: view.registered_at,
            })
          })
          .collect();
        self.changes = Some(existing);
      }
      (false, true) => self.changes = None,
      _ => {}
    }
  }

  /// The changes recorded since the last take, oldest first. Empty while
  /// the feed is off; the feed stays on.
  pub fn take_changes(&mut self) -> Vec<Change> {
    self
      .changes
      .as_mut()
      .map(std::mem::take)
      .unwrap_or_default()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn rejects_empty_ids_without_change() {
    let mut registry = Registry::new();
    assert_eq!(registry.register("", "s", 0.0), Err(Error::EmptyClientId));
    assert_eq!(registry.register("c", "", 0.0), Err(Error::EmptySessionId));
    assert_eq!(registry.store().session_count(), 0);
    assert_eq!(registry.store().client_count(), 0);
  }

  #[test]
  fn a_racing_unregister_sees_the_close_in_flight() {
    let mut registry = Registry::new();
    registry.register("c", "s", 0.0).unwrap();
    let Unregister::Close(order) = registry.unregister("s", 1.0) else {
      panic!("first unregister closes");
    };
    assert_eq!(
      registry.unregister("s", 2.0),
      Unregister::AlreadyClosing(order.ticket)
    );
    assert!(registry.cleanup_client("c", 2.0).is_empty());
    let report = registry
      .settle(order.ticket, CloseOutcome::Failed, 5.0)
      .unwrap();
    assert_eq!(report.reason, CloseReason::Unregister);
    assert_eq!(&*report.client_id, "c");
    assert_eq!(report.duration_ms, 4.0);
    assert_eq!(
      registry.settle(order.ticket, CloseOutcome::Closed, 6.0),
      None
    );
    assert_eq!(registry.unregister("s", 7.0), Unregister::NotRegistered);
  }

  #[test]
  fn a_scan_does_not_close_a_replacement() {
    let mut registry = Registry::new();
    let slot = registry.register("c", "s", 0.0).unwrap();
    let seen = registry.registrations();
    assert_eq!(seen.len(), 1);
    let Unregister::Close(_) = registry.unregister("s", 0.0) else {
      panic!()
    };
    let again = registry.register("c", "s", 0.0).unwrap();
    assert_eq!(slot, again);
    let (slot, seq) = seen[0];
    assert!(!registry.is_registered(slot, seq));
    assert!(registry
      .close_registration(slot, seq, CloseReason::CleanupStale, 0.0)
      .is_none());
    assert_eq!(registry.store().session_count(), 1);
  }

  #[test]
  fn close_stale_takes_stale_and_idle_not_running_sessions_once() {
    use crate::{HealthReading, HealthState};
    let mut registry = Registry::new();
    let ok = HealthReading::Reported {
      state: HealthState::Idle,
      timed_out: false,
    };
    let error = HealthReading::Reported {
      state: HealthState::Error,
      timed_out: false,
    };
    for id in ["healthy", "broken", "idle", "busy", "replaced"] {
      registry.register("c", id, 0.0).unwrap();
    }
    let seen = registry.registrations();
    let reading = |i: usize, health, running| StaleReading {
      slot: seen[i].0,
      seq: seen[i].1,
      health,
      running,
    };
    // "replaced" leaves and comes back before the scan's verdict.
    let Unregister::Close(_) = registry.unregister("replaced", 1.0) else {
      panic!()
    };
    registry.register("c", "replaced", 1.0).unwrap();
    let readings = [
      reading(0, ok, None),
      reading(1, error, None),
      reading(2, ok, Some(false)),
      reading(3, ok, Some(true)),
      reading(4, error, None),
    ];
    let orders = registry.close_stale(readings, 2.0);
    assert_eq!(orders.len(), 2);
    let reasons: Vec<_> = orders
      .iter()
      .map(|o| {
        registry
          .settle(o.ticket, CloseOutcome::Closed, 3.0)
          .unwrap()
      })
      .map(|r| (r.session_id, r.reason))
      .collect();
    assert_eq!(
      reasons,
      vec![
        ("broken".to_owned(), CloseReason::CleanupStale),
        ("idle".to_owned(), CloseReason::Idle)
      ]
    );
    assert!(
      registry.close_stale(readings, 4.0).is_empty(),
      "a second verdict on the same scan closes nothing"
    );
    assert!(registry.session("replaced").is_some());
  }
}
