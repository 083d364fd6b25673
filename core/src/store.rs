//! What the store hands out: a registered session, borrowed, and a removed
//! one, owned.
//!
//! [`Registry`](crate::Registry) decides *what* happens (validation, which
//! sessions a cleanup takes, closing each one exactly once); the
//! [`MemoryStore`](crate::MemoryStore) only remembers *who owns what*.

use crate::Slot;

/// A registered session as the store sees it, borrowed from the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionView<'a> {
  pub client_id: &'a str,
  /// Where the caller keeps this session's handle; reused after removal.
  pub slot: Slot,
  /// Registration number, unique for the lifetime of the store. Together with
  /// `slot` it tells a registration apart from a later one in the same slot.
  pub seq: u64,
  /// The `now` passed to [`MemoryStore::insert`](crate::MemoryStore::insert).
  pub registered_at: f64,
  /// The latest `now` passed to [`MemoryStore::touch`](crate::MemoryStore::touch), or `registered_at`.
  pub last_activity: f64,
}

/// A session taken out of the store: where it was, and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedSession {
  pub slot: Slot,
  pub seq: u64,
  pub registered_at: f64,
}
