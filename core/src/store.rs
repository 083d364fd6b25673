//! The seam between the registry's rules and where its bookkeeping lives.
//!
//! [`Registry`](crate::Registry) decides *what* happens (validation, which
//! sessions a cleanup takes, closing each one exactly once); a
//! [`SessionStore`] only remembers *who owns what*. The in-process
//! [`MemoryStore`](crate::MemoryStore) is the default; a store shared between
//! server processes implements the same trait and keeps the registry as it is.

use crate::{Error, Slot};

/// A registered session as the store sees it, borrowed from the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionView<'a> {
  pub session_id: &'a str,
  pub client_id: &'a str,
  /// Where the caller keeps this session's handle; reused after removal.
  pub slot: Slot,
  /// Registration number, unique for the lifetime of the store. Together with
  /// `slot` it tells a registration apart from a later one in the same slot.
  pub seq: u64,
  /// The `now` passed to [`SessionStore::insert`].
  pub registered_at: f64,
  /// The latest `now` passed to [`SessionStore::touch`], or `registered_at`.
  pub last_activity: f64,
}

/// A session taken out of the store, owned by the caller from now on (and
/// `Send`, so it may be handed to another thread, e.g. a directory publisher).
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedSession {
  pub session_id: String,
  pub client_id: String,
  pub slot: Slot,
  pub seq: u64,
  pub registered_at: f64,
}

/// Where sessions, and the clients that own them, are recorded.
///
/// Guarantees every implementation gives:
/// - a session id is recorded at most once; a client exists exactly while it
///   owns at least one session;
/// - a client's sessions come back in registration order;
/// - a failed call changes nothing.
pub trait SessionStore {
  /// Records `session_id` as owned by `client_id` and returns its slot and
  /// registration number. Ids are taken as given (the registry validates
  /// them). Fails with [`Error::AlreadyRegistered`] when the id is taken.
  fn insert(&mut self, client_id: &str, session_id: &str, now: f64) -> Result<(Slot, u64), Error>;

  /// The slot of a registered session.
  fn slot_of(&self, session_id: &str) -> Option<Slot>;

  /// The session in `slot`, if the slot is occupied.
  fn get(&self, slot: Slot) -> Option<SessionView<'_>>;

  /// Records activity: sets the session's last activity (never backwards)
  /// and makes it the most recently active. Does nothing for a free slot.
  fn touch(&mut self, slot: Slot, now: f64);

  /// Sets the session's last activity (never backwards) without changing
  /// its place in the activity order.
  fn mark_active(&mut self, slot: Slot, now: f64);

  /// The session's numeric metrics, in the order they were first set.
  fn metrics(&self, slot: Slot) -> &[(Box<str>, f64)];

  /// Sets one metric and returns its previous value. Does nothing for a
  /// free slot.
  fn set_metric(&mut self, slot: Slot, name: &str, value: f64) -> Option<f64>;

  /// Removes one session; `None` when it is not registered.
  fn remove(&mut self, session_id: &str) -> Option<RemovedSession>;

  /// Removes the session in `slot` only if it is still registration `seq`.
  fn remove_registration(&mut self, slot: Slot, seq: u64) -> Option<RemovedSession>;

  /// Removes every session of a client, in registration order.
  fn remove_client(&mut self, client_id: &str) -> Vec<RemovedSession>;

  /// Removes every session, in registration order.
  fn remove_all(&mut self) -> Vec<RemovedSession>;

  /// The slots of a client's sessions, in registration order.
  fn client_slots(&self, client_id: &str) -> impl Iterator<Item = Slot> + '_;

  /// How many sessions a client owns (0 for an unknown client).
  fn client_len(&self, client_id: &str) -> usize;

  /// Every registered session, in registration order.
  fn sessions(&self) -> impl Iterator<Item = SessionView<'_>> + '_;

  /// The slots registered after registration `(slot, seq)`, in registration
  /// order; `None` when that registration is gone.
  fn sessions_after(&self, slot: Slot, seq: u64) -> Option<impl Iterator<Item = Slot> + '_>;

  /// Every session's slot, least recently active first.
  fn by_activity(&self) -> impl Iterator<Item = Slot> + '_;

  /// Every client with its session count, in no particular order.
  fn clients(&self) -> impl Iterator<Item = (&str, usize)> + '_;

  fn session_count(&self) -> usize;

  fn client_count(&self) -> usize;
}
