//! The session directory: which session belongs to which client, in a form
//! that several processes can share.
//!
//! A [`Registry`](crate::Registry) and its [`SessionStore`](crate::SessionStore)
//! are per process: they hold the slots of the handles this process owns and
//! answer synchronously. A [`Directory`] holds only what every process may
//! need to know about every session — its id, its client, when it was
//! registered — as owned values, behind methods that return futures, so that
//! an implementation can sit on a network store. [`MemoryDirectory`] is the
//! in-process implementation, for tests and single-process embedders.
//!
//! There are two ways to keep a directory in step with a registry:
//!
//! - **Claim first.** Before registering locally, await
//!   [`Directory::claim`]; it checks that the id is free and that the client
//!   is under its limit, across all processes, and records the session in one
//!   atomic step. Strict, but every registration waits for the directory.
//! - **Publish after.** Register locally, synchronously, as today; the
//!   registry records the directory changes each call implies
//!   ([`Registry::set_directory_changes`](crate::Registry::set_directory_changes)),
//!   and a background task drains them
//!   ([`Registry::take_directory_changes`](crate::Registry::take_directory_changes))
//!   and applies them in batches with [`Directory::apply`]. Documented calls
//!   keep their latency; the directory trails the registry by one batch, and
//!   an id claimed by two processes at once is detected when the second batch
//!   lands ([`ClaimConflict`]) instead of being refused up front.
//!
//! # A Redis-backed directory
//!
//! A later directory keeps its data in Redis, all of it under one namespace
//! whose name is a hash tag (such as `{nity:prod}`) at the start of every key,
//! so that in Redis Cluster every key lives in the same slot and one script
//! may touch all of them. Redis hashes only the first `{…}` of a key name, so
//! the tag, coming first, fixes the slot whatever the rest of the name holds.
//! The price is that one directory lives on one shard, which is ample for
//! hundreds of thousands of sessions.
//!
//! The layout is one hash from session id to its encoded record (client,
//! registration time, and later the owning node and its epoch), one sorted
//! set per client whose members are that client's session ids scored by a
//! registration number taken from a counter in the namespace (not by
//! timestamps, which tie and step back across machines), and a hash of
//! per-client counts so that statistics do not scan every client. Raw ids only
//! ever appear as hash fields, hash values and set members, which Redis treats
//! as opaque bytes. Keys are always named exactly and passed to scripts as
//! declared keys, never found with `KEYS` or `SCAN MATCH`, where `*`, `?`,
//! `[` and `]` in an id would be glob syntax; the one key derived from an id,
//! a client's sorted set, is the namespace tag followed by an unambiguous
//! encoding of the client id.
//!
//! A claim is one Lua script (or Redis Function) and so atomic on the shard:
//! it fails if the id is already a field of the session hash, fails if the
//! client's sorted set already holds the maximum, and otherwise writes the
//! record, adds the member and bumps the count. Checking and writing in one
//! script is what keeps two racing processes from both taking an id or both
//! taking a client's last place. Releases are scripts too, and idempotent:
//! releasing an id that is gone, or that now belongs to a different
//! registration, changes nothing. Because Redis Cluster wants every key a
//! script touches declared up front, a release by session id alone first reads
//! the record to learn the client's key, then runs a script that removes the
//! session only if the record is still the one it read.
//!
//! Changes published from a registry are applied in order, pipelined, a
//! bounded batch per round trip (a script blocks the shard while it runs, so
//! batches stay small enough to keep latency of other clients low). When a
//! batch fails, the outcome of each change in it is unknown; the publisher
//! sends the same batch again, which [`Directory::apply`]'s rules make safe.
//!
//! Sessions do not expire one by one: a per-session time-to-live would cost a
//! renewal write per session per interval and would drop the sessions of a
//! node that is merely slow. Instead each node holds one lease, renewed by a
//! heartbeat and judged by the Redis server's clock; records name their node,
//! a per-node set lists each node's sessions, and when a lease lapses any
//! other node sweeps that node's records in one script. Each lease
//! acquisition hands out a fencing epoch, a number that only grows, and every
//! write carries its writer's epoch. A node that comes back after its lease
//! lapsed (a long pause, a partition) has a stale epoch, so its queued writes
//! are refused instead of resurrecting or deleting records; it acquires a new
//! lease and epoch and republishes what it still holds (turning the change
//! feed on again does exactly that), learning from conflicts which ids others
//! took meanwhile.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::{ready, Future};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{Error, NO_SLOT};

/// Defines an owned id type: a `String` that says what it identifies, so that
/// a client id cannot be passed where a session id belongs.
macro_rules! id_type {
  ($(#[$doc:meta])* $name:ident) => {
    $(#[$doc])*
    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct $name(pub String);

    impl $name {
      pub fn new(id: impl Into<String>) -> Self {
        $name(id.into())
      }

      pub fn as_str(&self) -> &str {
        &self.0
      }

      pub fn into_string(self) -> String {
        self.0
      }
    }

    impl From<String> for $name {
      fn from(id: String) -> Self {
        $name(id)
      }
    }

    impl From<&str> for $name {
      fn from(id: &str) -> Self {
        $name(id.to_owned())
      }
    }

    impl From<$name> for String {
      fn from(id: $name) -> String {
        id.0
      }
    }

    impl AsRef<str> for $name {
      fn as_ref(&self) -> &str {
        &self.0
      }
    }

    // Hashes and compares exactly as the inner `String`, so maps keyed by
    // the id can be searched with a `&str`.
    impl Borrow<str> for $name {
      fn borrow(&self) -> &str {
        &self.0
      }
    }

    impl PartialEq<str> for $name {
      fn eq(&self, other: &str) -> bool {
        self.0 == other
      }
    }

    impl PartialEq<&str> for $name {
      fn eq(&self, other: &&str) -> bool {
        self.0 == *other
      }
    }

    impl fmt::Display for $name {
      fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
      }
    }
  };
}

id_type!(
  /// A session's id, byte for byte as the caller gave it.
  SessionId
);

id_type!(
  /// A client's id, byte for byte as the caller gave it.
  ClientId
);

/// What a directory knows about one session.
///
/// Fields will be added (the owning node and its epoch, for a directory
/// shared between processes); build one with [`SessionRecord::new`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionRecord {
  pub session_id: SessionId,
  pub client_id: ClientId,
  /// The registering caller's clock, as passed to
  /// [`Registry::register`](crate::Registry::register).
  pub registered_at: f64,
}

impl SessionRecord {
  pub fn new(
    session_id: impl Into<SessionId>,
    client_id: impl Into<ClientId>,
    registered_at: f64,
  ) -> Self {
    SessionRecord {
      session_id: session_id.into(),
      client_id: client_id.into(),
      registered_at,
    }
  }

  /// Whether both describe the same registration. Times compare bit for bit,
  /// so a record always matches a copy of itself, even with a NaN time.
  fn same_registration(&self, other: &SessionRecord) -> bool {
    self.session_id == other.session_id
      && self.client_id == other.client_id
      && self.registered_at.to_bits() == other.registered_at.to_bits()
  }
}

/// A change to the directory implied by a registry operation, in the order
/// the registry made it. See [`Directory::apply`] for how each is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryChange {
  /// A session was registered.
  Claimed(SessionRecord),
  /// A registered session was removed, for whatever reason (unregister,
  /// client cleanup, stale or idle cleanup, eviction, shutdown).
  Released(SessionRecord),
}

/// A published claim the directory did not record because the id was held
/// by another registration, typically one from another process. The
/// publisher decides what to do with its local session (for instance, close
/// it); the directory keeps `holder`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimConflict {
  /// The claim that was not recorded.
  pub published: SessionRecord,
  /// The registration that holds the id.
  pub holder: SessionRecord,
}

/// Counts over the whole directory, taken at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectoryStats {
  /// Sessions recorded.
  pub sessions: usize,
  /// Every client that holds at least one session, with how many, ordered by
  /// client id (byte order).
  pub clients: Vec<(ClientId, usize)>,
}

/// Where the directory of sessions lives: in this process
/// ([`MemoryDirectory`]) or in a store shared between processes.
///
/// Guarantees every implementation gives:
/// - a session id is recorded at most once; a client exists exactly while it
///   holds at least one session;
/// - a client's sessions come back in the order they were recorded;
/// - each call takes effect atomically: other calls see all of it or none;
/// - calls whose futures are awaited one after another take effect in that
///   order (calls in flight at the same time take effect in some order);
/// - a call that fails with anything but [`Error::DirectoryUnavailable`]
///   changed nothing. After `DirectoryUnavailable` (or after dropping a
///   future before it completed) a write may or may not have taken effect.
///
/// Methods take and return owned values, and their futures are `Send`, so a
/// directory can be driven from any thread or task. Ids are taken as given:
/// the registry validates them, and the directory treats them as opaque.
pub trait Directory: Send + Sync {
  /// Records `record` if its session id is free and, when `max_per_client`
  /// is given, its client holds fewer sessions than that; check and write
  /// are one atomic step, so racing claims never record an id twice or put
  /// a client over the maximum. The session goes last in its client's order.
  ///
  /// Fails with [`Error::AlreadyRegistered`] (its `client_id` is the
  /// holder's, its `slot` is [`NO_SLOT`]) when the id is
  /// taken, checked first; then with [`Error::ClientSessionLimit`]. A claim
  /// retried after `DirectoryUnavailable` may fail as taken by its own first
  /// attempt: the error names the holder's client, which tells the two apart.
  fn claim(
    &self,
    record: SessionRecord,
    max_per_client: Option<usize>,
  ) -> impl Future<Output = Result<(), Error>> + Send;

  /// Removes a session and returns what was recorded; `None` when it is not
  /// recorded. Idempotent: releasing again returns `None` and changes
  /// nothing.
  fn release(
    &self,
    session_id: SessionId,
  ) -> impl Future<Output = Result<Option<SessionRecord>, Error>> + Send;

  /// Removes every session of a client and returns them in the client's
  /// order; empty for a client that holds none. Idempotent.
  fn release_client(
    &self,
    client_id: ClientId,
  ) -> impl Future<Output = Result<Vec<SessionRecord>, Error>> + Send;

  /// The record of a session, if it is recorded.
  fn session(
    &self,
    session_id: SessionId,
  ) -> impl Future<Output = Result<Option<SessionRecord>, Error>> + Send;

  /// A client's sessions in the order they were recorded; empty for a client
  /// that holds none.
  fn client_sessions(
    &self,
    client_id: ClientId,
  ) -> impl Future<Output = Result<Vec<SessionRecord>, Error>> + Send;

  /// The number of sessions, and every client with its count.
  fn stats(&self) -> impl Future<Output = Result<DirectoryStats, Error>> + Send;

  /// Applies changes drained from a registry, in order, and returns the
  /// claims that lost to another registration of the same id.
  ///
  /// - [`DirectoryChange::Claimed`] records the session, last in its
  ///   client's order, when the id is free; no per-client maximum applies
  ///   (the registry admitted it under its own policy). When the id holds
  ///   the very same registration, nothing changes. Otherwise nothing changes
  ///   and the claim is returned as a [`ClaimConflict`].
  /// - [`DirectoryChange::Released`] removes the session only while the
  ///   directory holds that very registration; a release of an id that is
  ///   gone, or that now belongs to another registration, changes nothing.
  ///
  /// A registration is told apart from another by its session id, client
  /// id and registration time (bit for bit); the node that holds it will
  /// join these.
  ///
  /// Each change is atomic; the batch as a whole may not be (a reader of a
  /// shared directory may see part of it). Applying a batch again, after a
  /// failure left it unknown how much of it took effect, ends in the same
  /// state as applying it once, provided no other writer took the same ids
  /// in between and the registry's clock moved between releasing an id and
  /// registering it again for the same client (otherwise the two
  /// registrations look the same and the replay may leave that session at
  /// the end of its client's order). A replay may report conflicts with
  /// registrations that the batch itself made later: act on a conflict only
  /// if the registry still holds `published` ([`Registry::holds`]).
  ///
  /// [`Registry::holds`]: crate::Registry::holds
  fn apply(
    &self,
    changes: Vec<DirectoryChange>,
  ) -> impl Future<Output = Result<Vec<ClaimConflict>, Error>> + Send;
}

/// The in-process [`Directory`]: every future it returns is ready when
/// created, the call having taken effect already. Share it between threads
/// behind an `Arc`; calls are serialised by a mutex, and a batch passed to
/// [`Directory::apply`] is applied under one lock, so readers never see part
/// of it.
#[derive(Default)]
pub struct MemoryDirectory {
  state: Mutex<State>,
}

#[derive(Default)]
struct State {
  sessions: HashMap<SessionId, Entry>,
  /// Each client's sessions by registration number; a client is present
  /// exactly while it holds at least one session.
  clients: HashMap<ClientId, BTreeMap<u64, SessionId>>,
  next_seq: u64,
}

struct Entry {
  record: SessionRecord,
  /// Its key in the client's order.
  seq: u64,
}

impl MemoryDirectory {
  pub fn new() -> Self {
    Self::default()
  }

  fn state(&self) -> MutexGuard<'_, State> {
    // Every change checks before it writes and cannot panic half way, so the
    // state behind a lock poisoned by a panicking caller is still whole.
    self.state.lock().unwrap_or_else(PoisonError::into_inner)
  }
}

impl State {
  fn claim(&mut self, record: SessionRecord, max_per_client: Option<usize>) -> Result<(), Error> {
    if let Some(held) = self.sessions.get(&record.session_id) {
      return Err(Error::AlreadyRegistered {
        session_id: record.session_id.into_string(),
        client_id: held.record.client_id.0.clone(),
        slot: NO_SLOT,
      });
    }
    if let Some(max) = max_per_client {
      if self.client_len(record.client_id.as_str()) >= max {
        return Err(Error::ClientSessionLimit {
          client_id: record.client_id.into_string(),
          max,
        });
      }
    }
    self.insert(record);
    Ok(())
  }

  /// Records a session whose id the caller checked is free.
  fn insert(&mut self, record: SessionRecord) {
    self.next_seq += 1;
    let seq = self.next_seq;
    self
      .clients
      .entry(record.client_id.clone())
      .or_default()
      .insert(seq, record.session_id.clone());
    self
      .sessions
      .insert(record.session_id.clone(), Entry { record, seq });
  }

  fn remove(&mut self, session_id: &str) -> Option<SessionRecord> {
    let Entry { record, seq } = self.sessions.remove(session_id)?;
    if let Some(order) = self.clients.get_mut(record.client_id.as_str()) {
      order.remove(&seq);
      if order.is_empty() {
        self.clients.remove(record.client_id.as_str());
      }
    }
    Some(record)
  }

  fn remove_client(&mut self, client_id: &str) -> Vec<SessionRecord> {
    let Some(order) = self.clients.remove(client_id) else {
      return Vec::new();
    };
    order
      .into_values()
      .filter_map(|session_id| self.sessions.remove(&session_id))
      .map(|entry| entry.record)
      .collect()
  }

  fn client_len(&self, client_id: &str) -> usize {
    self.clients.get(client_id).map_or(0, BTreeMap::len)
  }

  fn client_sessions(&self, client_id: &str) -> Vec<SessionRecord> {
    self.clients.get(client_id).map_or_else(Vec::new, |order| {
      order
        .values()
        .filter_map(|session_id| self.sessions.get(session_id))
        .map(|entry| entry.record.clone())
        .collect()
    })
  }

  fn stats(&self) -> DirectoryStats {
    let mut clients: Vec<(ClientId, usize)> = self
      .clients
      .iter()
      .map(|(client_id, order)| (client_id.clone(), order.len()))
      .collect();
    clients.sort_unstable();
    DirectoryStats {
      sessions: self.sessions.len(),
      clients,
    }
  }

  fn apply(&mut self, changes: Vec<DirectoryChange>) -> Vec<ClaimConflict> {
    let mut conflicts = Vec::new();
    for change in changes {
      match change {
        DirectoryChange::Claimed(record) => match self.sessions.get(&record.session_id) {
          None => self.insert(record),
          Some(held) if held.record.same_registration(&record) => {}
          Some(held) => conflicts.push(ClaimConflict {
            holder: held.record.clone(),
            published: record,
          }),
        },
        DirectoryChange::Released(record) => {
          let held = self.sessions.get(&record.session_id);
          if held.is_some_and(|held| held.record.same_registration(&record)) {
            self.remove(record.session_id.as_str());
          }
        }
      }
    }
    conflicts
  }
}

impl Directory for MemoryDirectory {
  fn claim(
    &self,
    record: SessionRecord,
    max_per_client: Option<usize>,
  ) -> impl Future<Output = Result<(), Error>> + Send {
    ready(self.state().claim(record, max_per_client))
  }

  fn release(
    &self,
    session_id: SessionId,
  ) -> impl Future<Output = Result<Option<SessionRecord>, Error>> + Send {
    ready(Ok(self.state().remove(session_id.as_str())))
  }

  fn release_client(
    &self,
    client_id: ClientId,
  ) -> impl Future<Output = Result<Vec<SessionRecord>, Error>> + Send {
    ready(Ok(self.state().remove_client(client_id.as_str())))
  }

  fn session(
    &self,
    session_id: SessionId,
  ) -> impl Future<Output = Result<Option<SessionRecord>, Error>> + Send {
    let state = self.state();
    let record = state
      .sessions
      .get(session_id.as_str())
      .map(|entry| entry.record.clone());
    ready(Ok(record))
  }

  fn client_sessions(
    &self,
    client_id: ClientId,
  ) -> impl Future<Output = Result<Vec<SessionRecord>, Error>> + Send {
    ready(Ok(self.state().client_sessions(client_id.as_str())))
  }

  fn stats(&self) -> impl Future<Output = Result<DirectoryStats, Error>> + Send {
    ready(Ok(self.state().stats()))
  }

  fn apply(
    &self,
    changes: Vec<DirectoryChange>,
  ) -> impl Future<Output = Result<Vec<ClaimConflict>, Error>> + Send {
    ready(Ok(self.state().apply(changes)))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::{CloseReason, Registry, Unregister};
  use std::pin::pin;
  use std::sync::Arc;
  use std::task::{Context, Poll, Waker};

  /// The output of a future that is ready on its first poll.
  fn now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
      Poll::Ready(output) => output,
      Poll::Pending => panic!("a MemoryDirectory future was not ready"),
    }
  }

  fn record(session: &str, client: &str) -> SessionRecord {
    SessionRecord::new(session, client, 0.0)
  }

  fn ids(records: &[SessionRecord]) -> Vec<&str> {
    records.iter().map(|r| r.session_id.as_str()).collect()
  }

  #[test]
  fn is_send_and_sync_with_send_futures() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let directory = MemoryDirectory::new();
    send_sync(&directory);
    send(&directory.claim(record("a", "c"), None));
    send(&directory.apply(Vec::new()));
    send_sync(&record("a", "c"));
    send_sync(&DirectoryChange::Claimed(record("a", "c")));
  }

  #[test]
  fn claims_once_and_names_the_holder() {
    let directory = MemoryDirectory::new();
    now(directory.claim(SessionRecord::new("a", "c1", 1.0), None)).unwrap();
    let err = now(directory.claim(SessionRecord::new("a", "c2", 2.0), None)).unwrap_err();
    assert_eq!(
      err,
      Error::AlreadyRegistered {
        session_id: "a".into(),
        client_id: "c1".into(),
        slot: NO_SLOT,
      }
    );
    let held = now(directory.session("a".into())).unwrap().unwrap();
    assert_eq!(held, SessionRecord::new("a", "c1", 1.0));
  }

  #[test]
  fn the_client_maximum_is_checked_after_the_id() {
    let directory = MemoryDirectory::new();
    now(directory.claim(record("a", "c"), Some(2))).unwrap();
    now(directory.claim(record("b", "c"), Some(2))).unwrap();
    assert_eq!(
      now(directory.claim(record("x", "c"), Some(2))),
      Err(Error::ClientSessionLimit {
        client_id: "c".into(),
        max: 2
      })
    );
    assert!(matches!(
      now(directory.claim(record("a", "c"), Some(2))),
      Err(Error::AlreadyRegistered { .. })
    ));
    // Another client is not limited by this one's sessions.
    now(directory.claim(record("x", "d"), Some(2))).unwrap();
    assert_eq!(
      now(directory.claim(record("y", "d"), Some(0))),
      Err(Error::ClientSessionLimit {
        client_id: "d".into(),
        max: 0
      })
    );
    let stats = now(directory.stats()).unwrap();
    assert_eq!(stats.sessions, 3);
  }

  #[test]
  fn release_is_idempotent_and_drops_an_empty_client() {
    let directory = MemoryDirectory::new();
    now(directory.claim(record("a", "c"), None)).unwrap();
    assert_eq!(
      now(directory.release("a".into())).unwrap(),
      Some(record("a", "c"))
    );
    assert_eq!(now(directory.release("a".into())).unwrap(), None);
    assert_eq!(now(directory.release("never".into())).unwrap(), None);
    assert_eq!(now(directory.stats()).unwrap(), DirectoryStats::default());
    // A freed place counts again under the maximum.
    now(directory.claim(record("b", "c"), Some(1))).unwrap();
  }

  #[test]
  fn keeps_each_clients_order_across_releases() {
    let directory = MemoryDirectory::new();
    for id in ["a", "b", "c", "d"] {
      now(directory.claim(record(id, "c1"), None)).unwrap();
    }
    now(directory.claim(record("z", "c2"), None)).unwrap();
    now(directory.release("b".into())).unwrap();
    now(directory.claim(record("b", "c1"), None)).unwrap();
    let sessions = now(directory.client_sessions("c1".into())).unwrap();
    assert_eq!(ids(&sessions), ["a", "c", "d", "b"]);
    let removed = now(directory.release_client("c1".into())).unwrap();
    assert_eq!(ids(&removed), ["a", "c", "d", "b"]);
    assert!(now(directory.release_client("c1".into()))
      .unwrap()
      .is_empty());
    let stats = now(directory.stats()).unwrap();
    assert_eq!(stats.sessions, 1);
    assert_eq!(stats.clients, [(ClientId::from("c2"), 1)]);
  }

  #[test]
  fn stats_list_clients_in_id_order() {
    let directory = MemoryDirectory::new();
    for (session, client) in [("1", "b"), ("2", "a"), ("3", "b"), ("4", "é")] {
      now(directory.claim(record(session, client), None)).unwrap();
    }
    let stats = now(directory.stats()).unwrap();
    assert_eq!(stats.sessions, 4);
    let clients: Vec<(&str, usize)> = stats
      .clients
      .iter()
      .map(|(client, count)| (client.as_str(), *count))
      .collect();
    assert_eq!(clients, [("a", 1), ("b", 2), ("é", 1)]);
  }

  #[test]
  fn ids_with_pattern_characters_are_plain_keys() {
    let directory = MemoryDirectory::new();
    let sessions = ["*", "a*", "a:b", "{t}", "[x]", "%", "?", " ", "é ☃"];
    for id in sessions {
      now(directory.claim(record(id, "c:*"), None)).unwrap();
    }
    assert_eq!(now(directory.session("a".into())).unwrap(), None);
    assert!(now(directory.client_sessions("c:".into()))
      .unwrap()
      .is_empty());
    let listed = now(directory.client_sessions("c:*".into())).unwrap();
    assert_eq!(ids(&listed), sessions);
  }

  #[test]
  fn apply_reports_conflicts_and_keeps_later_registrations() {
    let directory = MemoryDirectory::new();
    now(directory.claim(SessionRecord::new("a", "other", 1.0), None)).unwrap();
    let ours = SessionRecord::new("a", "mine", 2.0);
    let conflicts = now(directory.apply(vec![
      DirectoryChange::Claimed(ours.clone()),
      // Releasing what was never recorded must not remove the holder.
      DirectoryChange::Released(ours.clone()),
    ]))
    .unwrap();
    assert_eq!(
      conflicts,
      [ClaimConflict {
        published: ours,
        holder: SessionRecord::new("a", "other", 1.0),
      }]
    );
    assert_eq!(
      now(directory.session("a".into())).unwrap(),
      Some(SessionRecord::new("a", "other", 1.0))
    );
  }

  #[test]
  fn applying_a_batch_again_ends_in_the_same_state() {
    let first = SessionRecord::new("s", "c", 1.0);
    let second = SessionRecord::new("s", "c", 2.0);
    let batch = vec![
      DirectoryChange::Claimed(record("keep", "c")),
      DirectoryChange::Claimed(first.clone()),
      DirectoryChange::Released(first.clone()),
      DirectoryChange::Claimed(second.clone()),
    ];
    let directory = MemoryDirectory::new();
    assert!(now(directory.apply(batch.clone())).unwrap().is_empty());
    for _ in 0..2 {
      // The replayed claim of `first` meets the batch's own later
      // registration: a stale conflict, and no change.
      assert_eq!(
        now(directory.apply(batch.clone())).unwrap(),
        [ClaimConflict {
          published: first.clone(),
          holder: second.clone(),
        }]
      );
      let sessions = now(directory.client_sessions("c".into())).unwrap();
      assert_eq!(ids(&sessions), ["keep", "s"]);
      assert_eq!(sessions[1], second);
    }
  }

  #[test]
  fn a_release_matches_a_nan_time_bit_for_bit() {
    let odd = SessionRecord::new("s", "c", f64::NAN);
    let directory = MemoryDirectory::new();
    let batch = vec![
      DirectoryChange::Claimed(odd.clone()),
      DirectoryChange::Claimed(odd.clone()),
    ];
    assert!(now(directory.apply(batch)).unwrap().is_empty());
    let released = vec![DirectoryChange::Released(odd)];
    assert!(now(directory.apply(released)).unwrap().is_empty());
    assert_eq!(now(directory.stats()).unwrap(), DirectoryStats::default());
  }

  #[test]
  fn racing_threads_never_exceed_the_maximum() {
    let directory = Arc::new(MemoryDirectory::new());
    let won: usize = std::thread::scope(|scope| {
      let workers: Vec<_> = (0..8)
        .map(|worker| {
          let directory = Arc::clone(&directory);
          scope.spawn(move || {
            (0..50)
              .filter(|i| {
                let id = format!("s{}", (i * 7 + worker) % 40);
                now(directory.claim(record(&id, "c"), Some(25))).is_ok()
              })
              .count()
          })
        })
        .collect();
      workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let stats = now(directory.stats()).unwrap();
    assert_eq!(won, 25);
    assert_eq!(stats.sessions, 25);
  }

  #[test]
  fn the_registry_feed_is_off_until_enabled_and_seeds_what_exists() {
    let mut registry = Registry::new();
    registry.register("c", "before", 1.0).unwrap();
    assert!(!registry.directory_changes_enabled());
    assert!(registry.take_directory_changes().is_empty());

    registry.set_directory_changes(true);
    assert_eq!(registry.directory_changes_pending(), 1);
    registry.register("c", "after", 2.0).unwrap();
    let Unregister::Close(_) = registry.unregister("before", 3.0) else {
      panic!("registered");
    };
    assert_eq!(
      registry.take_directory_changes(),
      [
        DirectoryChange::Claimed(SessionRecord::new("before", "c", 1.0)),
        DirectoryChange::Claimed(SessionRecord::new("after", "c", 2.0)),
        DirectoryChange::Released(SessionRecord::new("before", "c", 1.0)),
      ]
    );
    assert!(registry.take_directory_changes().is_empty());

    // Enabling again changes nothing; a failed call records nothing.
    registry.set_directory_changes(true);
    assert!(registry.register("d", "after", 4.0).is_err());
    assert_eq!(registry.directory_changes_pending(), 0);

    let (slot, seq) = registry.registrations()[0];
    registry.close_registration(slot, seq, CloseReason::Idle, 5.0);
    assert_eq!(registry.directory_changes_pending(), 1);
    registry.set_directory_changes(false);
    assert_eq!(registry.directory_changes_pending(), 0);
    registry.register("c", "off", 6.0).unwrap();
    assert!(registry.take_directory_changes().is_empty());
  }
}
