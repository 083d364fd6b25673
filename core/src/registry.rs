//! The registry's rules on top of a [`SessionStore`].

use std::collections::HashMap;

use crate::close::{CloseOrder, CloseOutcome, CloseReason, CloseReport, CloseTracker, Ticket};
use crate::store::SessionStore;
use crate::{Error, MemoryStore, Slot};

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
pub struct Registry<S: SessionStore = MemoryStore> {
  store: S,
  closes: CloseTracker,
  /// Clients whose session count changed since the last
  /// [`Registry::take_client_changes`], so that a mirror of the counts can
  /// be brought up to date without a full scan.
  changed_clients: HashMap<String, Change>,
  change_order: u64,
}

/// What happened to a client's count since the last take.
struct Change {
  /// When the client last came into existence, or first changed if it
  /// already existed: the order in which a mirror should see it.
  order: u64,
  /// Whether its count dropped to zero at some point.
  emptied: bool,
}

/// One client's count to bring a mirror up to date with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientChange {
  pub client_id: String,
  /// Sessions the client owns now; 0 when it is gone.
  pub count: usize,
  /// The client disappeared and came back since the last take: a mirror that
  /// keeps clients in arrival order must move it to the end.
  pub recreated: bool,
}

impl Default for Registry<MemoryStore> {
  fn default() -> Self {
    Registry::with_store(MemoryStore::new())
  }
}

impl Registry<MemoryStore> {
  pub fn new() -> Self {
    Self::default()
  }
}

impl<S: SessionStore> Registry<S> {
  pub fn with_store(store: S) -> Self {
    Registry {
      store,
      closes: CloseTracker::default(),
      changed_clients: HashMap::new(),
      change_order: 0,
    }
  }

  /// Read access to the bookkeeping, for lookups and statistics.
  pub fn store(&self) -> &S {
    &self.store
  }

  /// Registers `session_id` under `client_id` and returns its slot.
  ///
  /// Fails on empty ids and on an id that is already registered; the error
  /// names the registration that stays.
  pub fn register(&mut self, client_id: &str, session_id: &str, now: f64) -> Result<Slot, Error> {
    if client_id.is_empty() {
      return Err(Error::EmptyClientId);
    }
    if session_id.is_empty() {
      return Err(Error::EmptySessionId);
    }
    let (slot, _) = self.store.insert(client_id, session_id, now)?;
    self.client_changed(client_id, true);
    Ok(slot)
  }

  /// The slot of a registered session.
  pub fn session(&self, session_id: &str) -> Option<Slot> {
    self.store.slot_of(session_id)
  }

  /// Removes a session for closing.
  pub fn unregister(&mut self, session_id: &str, now: f64) -> Unregister {
    match self.store.remove(session_id) {
      Some(removed) => {
        self.client_changed(&removed.client_id, false);
        Unregister::Close(self.closes.begin(removed, CloseReason::Unregister, now))
      }
      None => match self.closes.in_flight(session_id) {
        Some(ticket) => Unregister::AlreadyClosing(ticket),
        None => Unregister::NotRegistered,
      },
    }
  }

  /// Removes all of a client's sessions for closing, in registration order.
  pub fn cleanup_client(&mut self, client_id: &str, now: f64) -> Vec<CloseOrder> {
    let removed = self.store.remove_client(client_id);
    if !removed.is_empty() {
      self.client_changed(client_id, false);
    }
    removed
      .into_iter()
      .map(|removed| self.closes.begin(removed, CloseReason::CleanupClient, now))
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
    self.client_changed(&removed.client_id, false);
    Some(self.closes.begin(removed, reason, now))
  }

  /// Records how a close ended. Only the first report of a ticket counts;
  /// later ones return `None`.
  pub fn settle(&mut self, ticket: Ticket, outcome: CloseOutcome, now: f64) -> Option<CloseReport> {
    self.closes.settle(ticket, outcome, now)
  }

  /// The session and client ids of a close in flight.
  pub fn closing_session(&self, ticket: Ticket) -> Option<(&str, &str)> {
    self.closes.session_of(ticket)
  }

  /// Whether a close is still waiting for its report.
  pub fn is_closing(&self, ticket: Ticket) -> bool {
    self.closes.is_pending(ticket)
  }

  /// Every client whose session count changed since the last call, in the
  /// order a mirror that lists clients by arrival needs to apply them.
  pub fn take_client_changes(&mut self) -> Vec<ClientChange> {
    let mut changed: Vec<(u64, ClientChange)> = self
      .changed_clients
      .drain()
      .map(|(client_id, change)| {
        let count = self.store.client_len(&client_id);
        let recreated = change.emptied && count > 0;
        (
          change.order,
          ClientChange {
            client_id,
            count,
            recreated,
          },
        )
      })
      .collect();
    changed.sort_unstable_by_key(|(order, _)| *order);
    changed.into_iter().map(|(_, change)| change).collect()
  }

  /// Notes a change of `client_id`'s count, already applied to the store;
  /// `added` when a session was added rather than removed.
  fn client_changed(&mut self, client_id: &str, added: bool) {
    let count = self.store.client_len(client_id);
    let created = added && count == 1;
    self.change_order += 1;
    let order = self.change_order;
    match self.changed_clients.get_mut(client_id) {
      Some(change) => {
        if count == 0 {
          change.emptied = true;
        } else if created {
          change.order = order;
        }
      }
      None => {
        self.changed_clients.insert(
          client_id.to_owned(),
          Change {
            order,
            emptied: count == 0,
          },
        );
      }
    }
  }

  /// How many closes are in flight.
  pub fn closes_in_flight(&self) -> usize {
    self.closes.len()
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
}
