//! The change feed: how what is registered leaves the core.
//!
//! While the feed is on ([`Registry::set_change_feed`](crate::Registry::set_change_feed)),
//! every registration records a [`Change::Registered`] and every removal,
//! whatever its reason, a [`Change::Removed`], in the order they happen; a
//! call that fails records nothing. An embedder takes them with
//! [`Registry::take_changes`](crate::Registry::take_changes) and applies
//! them elsewhere in that order: the cluster publishes them to Redis. Records
//! are owned and `Send`, so they may cross to another thread.

/// A registration as it leaves the core: the session, its client, and when
/// it was registered (the registering caller's clock).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
  pub session_id: String,
  pub client_id: String,
  pub registered_at: f64,
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
  /// A session was registered.
  Registered(SessionRecord),
  /// A registered session was removed (unregister, client cleanup, stale or
  /// idle cleanup, eviction, shutdown, a remote close); `client_id` is the
  /// client it was registered under.
  Removed {
    session_id: String,
    client_id: String,
  },
}
