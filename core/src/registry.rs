//! The registry's rules on top of its [`MemoryStore`].
//!
//! Sessions are addressed by [`Slot`]. The session ids are the embedder's:
//! it keeps the one index by id (next to the handles, where lookups are
//! answered), tells [`Registry::register`] whether the id is taken, and
//! turns an id into a slot before calling. The core decides everything
//! else: admission, limits, what a cleanup or an eviction takes, the closes
//! in flight, activity, metrics and cursors. A registry made with
//! [`Registry::keeping_ids`] also keeps each session's id, which its change
//! feed needs.

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

/// What a stale scan read of the session in a slot, for
/// [`Registry::close_stale`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaleReading {
  pub slot: Slot,
  pub health: HealthReading,
  /// Asked only of sessions past the idle timeout: whether it is running;
  /// `None` when not asked or it could not say.
  pub running: Option<bool>,
}

/// The sessions of one process, their clients and the closes in flight.
///
/// Every operation is synchronous and either completes or fails without a
/// change. Removal happens before the caller's close code runs, so a session
/// is handed out for closing exactly once however calls race.
///
/// # Lookups
///
/// A lookup (the embedder handing a session out) is activity. The embedder
/// answers lookups itself and keeps when each happened in a slot-indexed
/// array of times, which it passes to the calls that read activity (`lookups`
/// below): a slot past its end, or a time not later than the recorded
/// activity (NaN and minus infinity included), is no lookup. On registering
/// into a slot it forgets the slot's earlier lookup. The reported last
/// activity is the later of the recorded one and the lookup; the eviction
/// search folds lookups into the activity order as it meets them.
pub struct Registry {
  store: MemoryStore,
  closes: CloseTracker,
  policy: Policy,
  metrics: MetricsRecorder,
  disposed: bool,
  /// Each session's id and client id by slot, kept only by a registry made
  /// with [`Registry::keeping_ids`] (the change feed names sessions by id,
  /// and a removal by its client too, whose id the store may have released).
  ids: Option<Vec<(Box<str>, Box<str>)>>,
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
  /// A registry that keeps no session ids (and so has no change feed).
  pub fn new() -> Self {
    Registry {
      store: MemoryStore::new(),
      closes: CloseTracker::default(),
      policy: Policy::default(),
      metrics: MetricsRecorder::default(),
      disposed: false,
      ids: None,
      changes: None,
    }
  }

  /// A registry that keeps each session's id, so that its change feed (see
  /// [`Registry::set_change_feed`]) can name them.
  pub fn keeping_ids() -> Self {
    Registry {
      ids: Some(Vec::new()),
      ..Registry::new()
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
  /// `held_by` is the client that holds `session_id` now, if the embedder's
  /// index has it.
  ///
  /// Fails on empty ids, on a taken id (the error names the registration
  /// that stays), when a limit is reached, and after [`Registry::dispose`],
  /// in that order. Admission is checked and granted in one step.
  pub fn register(
    &mut self,
    client_id: &str,
    session_id: &str,
    held_by: Option<&str>,
    now: f64,
  ) -> Result<Slot, Error> {
    self.admit(client_id, session_id, held_by)?;
    if let Some(scope) = self.full(client_id) {
      return Err(self.limit_error(scope, client_id));
    }
    Ok(self.insert(client_id, session_id, now))
  }

  /// [`Registry::register`] in a registry that may be full, closing
  /// `victim` (a registration from [`Registry::eviction_candidates`]) to
  /// make room, in one step. If the registry is not full the victim stays;
  /// if it is full and there is no victim, or the victim is gone or would
  /// not make room, this fails with the limit's error and changes nothing.
  pub fn register_evicting(
    &mut self,
    client_id: &str,
    session_id: &str,
    held_by: Option<&str>,
    victim: Option<(Slot, u64)>,
    now: f64,
  ) -> Result<(Slot, Option<CloseOrder>), Error> {
    self.admit(client_id, session_id, held_by)?;
    let Some(scope) = self.full(client_id) else {
      return Ok((self.insert(client_id, session_id, now), None));
    };
    let makes_room = victim.is_some_and(|(slot, seq)| {
      self.store.get(slot).is_some_and(|view| {
        let ours = view.client_id == client_id;
        let in_scope = scope == LimitScope::Registry || ours;
        // Room means no limit binds once the victim is gone (after a policy
        // change, one eviction may not be enough).
        let after = self.policy.full(
          self.store.session_count() - 1,
          self.store.client_len(client_id) - usize::from(ours),
        );
        view.seq == seq && in_scope && after.is_none()
      })
    });
    let (Some((slot, seq)), true) = (victim, makes_room) else {
      return Err(self.limit_error(scope, client_id));
    };
    let order = self.close_registration(slot, seq, CloseReason::Evicted, now);
    Ok((self.insert(client_id, session_id, now), order))
  }

  /// Which limit a new session of `client_id` would break now.
  pub fn full(&self, client_id: &str) -> Option<LimitScope> {
    self
      .policy
      .full(self.store.session_count(), self.store.client_len(client_id))
  }

  /// Registrations that count against the limit that binds a new session
  /// of `client_id` now (none when none binds), least recently active
  /// first (after a limit was lowered, removing one may not be enough:
  /// [`Registry::register_evicting`] checks): the `take` that follow the registration
  /// `after` (a candidate an earlier call returned), or the first `take`
  /// without it or when `after` is gone.
  ///
  /// Resuming from `after` makes a search through many running sessions
  /// linear. Under the registry's limit each call starts where the last one
  /// stopped in the activity order, in O(1), and folds the lookups of the
  /// sessions it passes into that order (see [`Registry`]). Under a
  /// client's limit the client's sessions are ordered per call, O(k log k)
  /// for a client of k sessions.
  pub fn eviction_candidates(
    &mut self,
    client_id: &str,
    after: Option<(Slot, u64)>,
    take: usize,
    lookups: &[f64],
  ) -> Vec<(Slot, u64)> {
    let current = |store: &MemoryStore, (slot, seq): (Slot, u64)| {
      store.get(slot).is_some_and(|view| view.seq == seq)
    };
    match self.full(client_id) {
      None => Vec::new(),
      Some(LimitScope::Registry) => {
        let store = &mut self.store;
        let mut next = match after {
          Some(cursor) if current(store, cursor) => store.next_by_activity(cursor.0),
          _ => store.least_active(),
        };
        let mut found = Vec::new();
        while let Some(slot) = next.filter(|_| found.len() < take) {
          next = store.next_by_activity(slot);
          let Some(view) = store.get(slot) else { break };
          match lookups.get(slot.0 as usize) {
            Some(&at) if at > view.last_activity => {
              // Looked up since: it moves to its place by that time, which
              // is here (the walk sees it again at once) or further on, never
              // behind the walk.
              store.fold_activity(slot, at);
              if store.next_by_activity(slot) == next {
                next = Some(slot);
              }
            }
            _ => found.push((slot, view.seq)),
          }
        }
        found
      }
      Some(LimitScope::Client) => {
        let mut views: Vec<SessionView<'_>> = self
          .store
          .client_slots(client_id)
          .filter_map(|slot| self.store.get(slot))
          .map(|view| with_lookup(view, lookups))
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
  fn limit_error(&self, scope: LimitScope, client_id: &str) -> Error {
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
  fn admit(&self, client_id: &str, session_id: &str, held_by: Option<&str>) -> Result<(), Error> {
    if client_id.is_empty() {
      return Err(Error::EmptyClientId);
    }
    if session_id.is_empty() {
      return Err(Error::EmptySessionId);
    }
    if self.disposed {
      return Err(Error::Disposed);
    }
    if let Some(owner) = held_by {
      return Err(Error::AlreadyRegistered {
        session_id: session_id.to_owned(),
        client_id: owner.to_owned(),
      });
    }
    Ok(())
  }

  fn insert(&mut self, client_id: &str, session_id: &str, now: f64) -> Slot {
    let (slot, _) = self.store.insert(client_id, now);
    if let Some(ids) = &mut self.ids {
      let at = slot.0 as usize;
      if ids.len() <= at {
        ids.resize_with(at + 1, Default::default);
      }
      ids[at] = (session_id.into(), client_id.into());
      if let Some(changes) = &mut self.changes {
        changes.push(Change::Registered(SessionRecord {
          session_id: session_id.to_owned(),
          client_id: client_id.to_owned(),
          registered_at: now,
        }));
      }
    }
    self.metrics.registered();
    slot
  }

  /// Records activity of a registered session: its last activity time and
  /// its place among the most recently active. Does nothing for a free slot.
  pub fn touch(&mut self, slot: Slot, now: f64) {
    self.store.touch(slot, now);
  }

  /// Merges numeric metrics into a session's record (a name set again is
  /// replaced) and keeps the totals in step; `false` when the slot is free.
  /// Non-finite values are the caller's to refuse.
  pub fn update_metrics(&mut self, slot: Slot, updates: &[(&str, f64)]) -> bool {
    if self.store.get(slot).is_none() {
      return false;
    }
    for &(name, value) in updates {
      let old = self.store.set_metric(slot, name, value);
      self.metrics.metric_changed(name, old, value);
    }
    true
  }

  /// What `getSessionInfo` reports about the session in `slot`, its
  /// lookups counting as activity.
  pub fn session_info(&self, slot: Slot, lookups: &[f64]) -> Option<SessionInfo<'_>> {
    let view = self.store.get(slot)?;
    Some(SessionInfo {
      view: with_lookup(view, lookups),
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

  /// Whether the session in `slot` is past the idle timeout, its lookups
  /// counting as activity.
  pub fn idle_expired(&self, slot: Slot, now: f64, lookups: &[f64]) -> bool {
    self.store.get(slot).is_some_and(|view| {
      self
        .policy
        .idle_expired(with_lookup(view, lookups).last_activity, now)
    })
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
    if let Some(ids) = &mut self.ids {
      let (session_id, client_id) = std::mem::take(&mut ids[removed.slot.0 as usize]);
      if let Some(changes) = &mut self.changes {
        changes.push(Change::Removed {
          session_id: session_id.into_string(),
          client_id: client_id.into_string(),
        });
      }
    }
    self.closes.begin(removed, reason, now)
  }

  /// Removes the session in `slot` for a caller that calls its `close()`
  /// right away: the close it orders counts as started now. `None` when the
  /// slot is free.
  pub fn unregister(&mut self, slot: Slot, reason: CloseReason, now: f64) -> Option<CloseOrder> {
    let removed = self.store.remove(slot)?;
    let order = self.begin(removed, reason, now);
    self.start_close(order.ticket, now);
    Some(order)
  }

  /// Removes all of a client's sessions for closing, in registration order.
  pub fn cleanup_client(
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

  /// Removes for closing, in order, each session whose readings say so: its
  /// health is stale (reason `CleanupStale`), or it is past the idle timeout
  /// and said it is not running (reason `Idle`). Each reading is of the
  /// session in its slot now: the embedder, which read it from the handle it
  /// keeps for that slot, leaves out a session removed since (its own index
  /// learns of every removal), so no user code runs between its check and
  /// this call. A free slot is skipped.
  pub fn close_stale(
    &mut self,
    readings: impl IntoIterator<Item = StaleReading>,
    now: f64,
  ) -> Vec<CloseOrder> {
    readings
      .into_iter()
      .filter_map(|reading| {
        let reason = reading.health.close_reason(reading.running)?;
        let removed = self.store.remove(reading.slot)?;
        Some(self.begin(removed, reason, now))
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

  /// Whether a close is still waiting for its report.
  pub fn is_closing(&self, ticket: Ticket) -> bool {
    self.closes.is_pending(ticket)
  }

  /// How many closes are in flight.
  pub fn closes_in_flight(&self) -> usize {
    self.closes.len()
  }

  /// Turns the change feed (see [`crate::change`]) on or off; `false`, and
  /// nothing recorded, on a registry that keeps no ids.
  ///
  /// Turning it on (when off) records a [`Change::Registered`] for every
  /// session registered now, in registration order, so that a copy holding
  /// none of this registry's sessions, fed every change from here on, holds
  /// exactly this registry's sessions. Turning it off discards the changes
  /// not yet taken. While on, changes accumulate until taken.
  pub fn set_change_feed(&mut self, on: bool) -> bool {
    let Some(ids) = &self.ids else {
      return false;
    };
    match (on, self.changes.is_some()) {
      (true, false) => {
        let existing = self
          .store
          .sessions()
          .map(|view| {
            Change::Registered(SessionRecord {
              session_id: ids[view.slot.0 as usize].0.to_string(),
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
    true
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

/// `view` with its last activity moved to its lookup, when that is later.
fn with_lookup<'a>(view: SessionView<'a>, lookups: &[f64]) -> SessionView<'a> {
  match lookups.get(view.slot.0 as usize) {
    Some(&at) if at > view.last_activity => SessionView {
      last_activity: at,
      ..view
    },
    _ => view,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn rejects_empty_and_taken_ids_without_change() {
    let mut registry = Registry::new();
    assert_eq!(
      registry.register("", "s", None, 0.0),
      Err(Error::EmptyClientId)
    );
    assert_eq!(
      registry.register("c", "", None, 0.0),
      Err(Error::EmptySessionId)
    );
    assert_eq!(
      registry.register("c", "s", Some("owner"), 0.0),
      Err(Error::AlreadyRegistered {
        session_id: "s".into(),
        client_id: "owner".into()
      })
    );
    assert_eq!(registry.store().session_count(), 0);
    assert_eq!(registry.store().client_count(), 0);
    assert_eq!(registry.metrics().sessions_registered, 0);
  }

  #[test]
  fn an_unregister_closes_once_and_reports_once() {
    let mut registry = Registry::new();
    let slot = registry.register("c", "s", None, 0.0).unwrap();
    let order = registry
      .unregister(slot, CloseReason::Unregister, 1.0)
      .expect("registered");
    assert_eq!(order.slot, slot);
    assert_eq!(
      registry.unregister(slot, CloseReason::Unregister, 2.0),
      None
    );
    assert!(registry
      .cleanup_client("c", CloseReason::CleanupClient, 2.0)
      .is_empty());
    assert_eq!(
      registry.close_capacity(),
      registry.policy().max_concurrent_closes - 1
    );
    let report = registry
      .settle(order.ticket, CloseOutcome::Failed, 5.0)
      .unwrap();
    assert_eq!(report.reason, CloseReason::Unregister);
    assert_eq!(
      report.duration_ms, 4.0,
      "counted from the unregister, which started it"
    );
    assert_eq!(
      registry.settle(order.ticket, CloseOutcome::Closed, 6.0),
      None
    );
    assert!(!registry.is_closing(order.ticket));
  }

  #[test]
  fn a_scan_does_not_close_a_replacement() {
    let mut registry = Registry::new();
    let slot = registry.register("c", "s", None, 0.0).unwrap();
    let seen = registry.registrations();
    assert_eq!(seen.len(), 1);
    registry
      .unregister(slot, CloseReason::Unregister, 0.0)
      .unwrap();
    let again = registry.register("c", "s", None, 0.0).unwrap();
    assert_eq!(slot, again);
    let (slot, seq) = seen[0];
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
    let slots: Vec<Slot> = ["healthy", "broken", "idle", "busy", "gone"]
      .iter()
      .map(|id| registry.register("c", id, None, 0.0).unwrap())
      .collect();
    let reading = |i: usize, health, running| StaleReading {
      slot: slots[i],
      health,
      running,
    };
    // "gone" leaves before the scan's verdict; the embedder leaves its
    // reading out, and a reading of a free slot closes nothing.
    registry
      .unregister(slots[4], CloseReason::Unregister, 1.0)
      .unwrap();
    let readings = [
      reading(0, ok, None),
      reading(1, error, None),
      reading(2, ok, Some(false)),
      reading(3, ok, Some(true)),
      reading(4, error, None),
    ];
    let orders = registry.close_stale(readings, 2.0);
    let closed: Vec<(Slot, CloseReason)> = orders
      .iter()
      .map(|o| {
        let report = registry
          .settle(o.ticket, CloseOutcome::Closed, 3.0)
          .unwrap();
        (o.slot, report.reason)
      })
      .collect();
    assert_eq!(
      closed,
      vec![
        (slots[1], CloseReason::CleanupStale),
        (slots[2], CloseReason::Idle)
      ]
    );
    assert!(
      registry.close_stale(readings, 4.0).is_empty(),
      "a second verdict on the same scan closes nothing"
    );
    assert_eq!(registry.store().session_count(), 2);
  }

  #[test]
  fn the_change_feed_names_sessions_only_when_ids_are_kept() {
    let mut plain = Registry::new();
    assert!(!plain.set_change_feed(true));
    plain.register("c", "s", None, 0.0).unwrap();
    assert!(plain.take_changes().is_empty());

    let mut registry = Registry::keeping_ids();
    let first = registry.register("c", "a", None, 1.0).unwrap();
    assert!(registry.set_change_feed(true));
    registry.register("c", "b", None, 2.0).unwrap();
    registry
      .unregister(first, CloseReason::Unregister, 3.0)
      .unwrap();
    let record = |id: &str, at| {
      Change::Registered(SessionRecord {
        session_id: id.into(),
        client_id: "c".into(),
        registered_at: at,
      })
    };
    assert_eq!(
      registry.take_changes(),
      vec![
        record("a", 1.0),
        record("b", 2.0),
        Change::Removed {
          session_id: "a".into(),
          client_id: "c".into()
        }
      ]
    );
    // The freed slot's next session is named by its own id.
    let reused = registry.register("c", "d", None, 4.0).unwrap();
    assert_eq!(reused, first);
    registry
      .unregister(reused, CloseReason::Unregister, 5.0)
      .unwrap();
    assert_eq!(
      registry.take_changes(),
      vec![
        record("d", 4.0),
        Change::Removed {
          session_id: "d".into(),
          client_id: "c".into()
        }
      ]
    );
  }

  #[test]
  fn lookups_count_as_activity_and_order_the_eviction_search() {
    let mut registry = Registry::new();
    registry.set_policy(Policy {
      max_sessions: Some(3),
      evict_idle: true,
      idle_timeout_ms: Some(10.0),
      ..Policy::default()
    });
    let [a, b, c] = [1.0, 2.0, 3.0].map(|t| registry.register("c", "x", None, t).unwrap());
    let mut lookups = vec![f64::NEG_INFINITY; 3];
    lookups[a.0 as usize] = 20.0;
    let info = registry.session_info(a, &lookups).unwrap();
    assert_eq!(info.view.last_activity, 20.0);
    assert!(registry.idle_expired(b, 15.0, &lookups));
    assert!(!registry.idle_expired(a, 15.0, &lookups));
    let order = registry.eviction_candidates("c", None, 10, &lookups);
    assert_eq!(
      order.iter().map(|&(slot, _)| slot).collect::<Vec<_>>(),
      [b, c, a]
    );
    // Resuming after a candidate goes on in the same order.
    let rest = registry.eviction_candidates("c", Some(order[0]), 10, &lookups);
    assert_eq!(rest, order[1..]);
  }
}
