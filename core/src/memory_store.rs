//! The registry's bookkeeping in this process: two slabs, two hash indexes and three
//! lists threaded through the session slab.
//!
//! Sessions live in a slab whose index is the session's [`Slot`]. Doubly
//! linked lists through that slab keep each client's sessions, all sessions
//! in registration order, and all sessions from least to most recently
//! active; so registering, removing, touching and listing cost the same at
//! ten sessions as at a hundred thousand. The hash indexes store only slab
//! indexes and compare against the ids kept in the slabs, so every id string
//! is stored once.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use crate::store::{RemovedSession, SessionView};
use crate::{Error, Slot};

/// Marks "no entry" in the links and free lists.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Links {
  prev: u32,
  next: u32,
}

const UNLINKED: Links = Links {
  prev: NIL,
  next: NIL,
};

#[derive(Clone, Copy)]
struct List {
  head: u32,
  tail: u32,
}

const EMPTY: List = List {
  head: NIL,
  tail: NIL,
};

/// Which of a session's list memberships an operation is about.
#[derive(Clone, Copy)]
enum Which {
  Client,
  Order,
  Activity,
}

/// A session's numeric metrics by name; few per session, so a list.
type SessionMetrics = Vec<(Box<str>, f64)>;

struct SessionEntry {
  id: Box<str>,
  /// Index of the owning client; `NIL` while the entry is free.
  client: u32,
  seq: u64,
  registered_at: f64,
  last_activity: f64,
  /// Numeric metrics, in the order they were first set.
  metrics: Option<Box<SessionMetrics>>,
  /// In the client's list. While the entry is free, `client_links.next`
  /// links the free list.
  client_links: Links,
  order_links: Links,
  activity_links: Links,
}

impl SessionEntry {
  fn links(&mut self, which: Which) -> &mut Links {
    match which {
      Which::Client => &mut self.client_links,
      Which::Order => &mut self.order_links,
      Which::Activity => &mut self.activity_links,
    }
  }
}

struct ClientEntry {
  id: Box<str>,
  sessions: List,
  /// Sessions owned; 0 exactly while the entry is free, when
  /// `sessions.head` links the free list.
  len: u32,
}

/// The default, in-process store. Not shared between threads: each registry
/// (and so each worker thread) has its own.
pub struct MemoryStore {
  sessions: Vec<SessionEntry>,
  free_session: u32,
  session_index: HashTable<u32>,
  session_count: usize,
  order: List,
  activity: List,
  clients: Vec<ClientEntry>,
  free_client: u32,
  client_index: HashTable<u32>,
  client_count: usize,
  hasher: DefaultHashBuilder,
  next_seq: u64,
}

impl Default for MemoryStore {
  fn default() -> Self {
    Self::new()
  }
}

impl MemoryStore {
  pub fn new() -> Self {
    MemoryStore {
      sessions: Vec::new(),
      free_session: NIL,
      session_index: HashTable::new(),
      session_count: 0,
      order: EMPTY,
      activity: EMPTY,
      clients: Vec::new(),
      free_client: NIL,
      client_index: HashTable::new(),
      client_count: 0,
      hasher: DefaultHashBuilder::default(),
      next_seq: 1,
    }
  }

  fn hash(&self, id: &str) -> u64 {
    self.hasher.hash_one(id)
  }

  fn find_session(&self, id: &str) -> Option<u32> {
    let sessions = &self.sessions;
    self
      .session_index
      .find(self.hash(id), |&i| &*sessions[i as usize].id == id)
      .copied()
  }

  fn find_client(&self, id: &str) -> Option<u32> {
    let clients = &self.clients;
    self
      .client_index
      .find(self.hash(id), |&i| &*clients[i as usize].id == id)
      .copied()
  }

  fn list(&mut self, which: Which, client: u32) -> &mut List {
    match which {
      Which::Client => &mut self.clients[client as usize].sessions,
      Which::Order => &mut self.order,
      Which::Activity => &mut self.activity,
    }
  }

  fn push_back(&mut self, which: Which, slot: u32) {
    let client = self.sessions[slot as usize].client;
    let tail = self.list(which, client).tail;
    *self.sessions[slot as usize].links(which) = Links {
      prev: tail,
      next: NIL,
    };
    if tail != NIL {
      self.sessions[tail as usize].links(which).next = slot;
    } else {
      self.list(which, client).head = slot;
    }
    self.list(which, client).tail = slot;
  }

  fn unlink(&mut self, which: Which, slot: u32) {
    let client = self.sessions[slot as usize].client;
    let Links { prev, next } = *self.sessions[slot as usize].links(which);
    if prev != NIL {
      self.sessions[prev as usize].links(which).next = next;
    } else {
      self.list(which, client).head = next;
    }
    if next != NIL {
      self.sessions[next as usize].links(which).prev = prev;
    } else {
      self.list(which, client).tail = prev;
    }
    *self.sessions[slot as usize].links(which) = UNLINKED;
  }

  /// The client entry for `id`, created (and indexed) if it does not exist.
  fn client_for_insert(&mut self, id: &str, hash: u64) -> u32 {
    if let Some(index) = self.find_client(id) {
      return index;
    }
    let entry = ClientEntry {
      id: id.into(),
      sessions: EMPTY,
      len: 0,
    };
    let index = if self.free_client != NIL {
      let index = self.free_client;
      self.free_client = self.clients[index as usize].sessions.head;
      self.clients[index as usize] = entry;
      index
    } else {
      self.clients.push(entry);
      (self.clients.len() - 1) as u32
    };
    let clients = &self.clients;
    let hasher = &self.hasher;
    self
      .client_index
      .insert_unique(hash, index, |&i| hasher.hash_one(&*clients[i as usize].id));
    self.client_count += 1;
    index
  }

  /// Drops an empty client from the index and frees its entry, handing back its id.
  fn release_client(&mut self, index: u32) -> Box<str> {
    let hash = self.hash(&self.clients[index as usize].id);
    if let Ok(found) = self.client_index.find_entry(hash, |&i| i == index) {
      found.remove();
    }
    self.client_count -= 1;
    let entry = &mut self.clients[index as usize];
    let id = std::mem::take(&mut entry.id);
    entry.sessions = List {
      head: self.free_client,
      tail: NIL,
    };
    entry.len = 0;
    self.free_client = index;
    id
  }

  /// Takes a session out of every list, the index and the slab. Releases
  /// the client when this was its last session.
  fn remove_at(&mut self, slot: u32) -> RemovedSession {
    let client = self.sessions[slot as usize].client;
    self.unlink(Which::Client, slot);
    self.clients[client as usize].len -= 1;
    let client_id = if self.clients[client as usize].len == 0 {
      self.release_client(client).into_string()
    } else {
      self.clients[client as usize].id.to_string()
    };
    self.free(slot, client_id)
  }

  /// Frees a session entry that is no longer in its client's list.
  fn free(&mut self, slot: u32, client_id: String) -> RemovedSession {
    self.unlink(Which::Order, slot);
    self.unlink(Which::Activity, slot);
    let hash = self.hash(&self.sessions[slot as usize].id);
    if let Ok(found) = self.session_index.find_entry(hash, |&i| i == slot) {
      found.remove();
    }
    self.session_count -= 1;
    let entry = &mut self.sessions[slot as usize];
    let removed = RemovedSession {
      session_id: std::mem::take(&mut entry.id).into_string(),
      client_id,
      slot: Slot(slot),
      seq: entry.seq,
      registered_at: entry.registered_at,
    };
    entry.client = NIL;
    entry.metrics = None;
    entry.client_links = Links {
      prev: NIL,
      next: self.free_session,
    };
    self.free_session = slot;
    removed
  }

  fn view(&self, slot: u32) -> SessionView<'_> {
    let entry = &self.sessions[slot as usize];
    SessionView {
      session_id: &entry.id,
      client_id: &self.clients[entry.client as usize].id,
      slot: Slot(slot),
      seq: entry.seq,
      registered_at: entry.registered_at,
      last_activity: entry.last_activity,
    }
  }

  fn walk(&self, which: Which, head: u32) -> Walk<'_> {
    Walk {
      sessions: &self.sessions,
      which,
      next: head,
    }
  }

  fn occupied(&self, slot: Slot) -> bool {
    self
      .sessions
      .get(slot.0 as usize)
      .is_some_and(|e| e.client != NIL)
  }
}

/// Walks one of the lists.
struct Walk<'a> {
  sessions: &'a [SessionEntry],
  which: Which,
  next: u32,
}

impl Iterator for Walk<'_> {
  type Item = Slot;

  fn next(&mut self) -> Option<Slot> {
    if self.next == NIL {
      return None;
    }
    let slot = self.next;
    let entry = &self.sessions[slot as usize];
    self.next = match self.which {
      Which::Client => entry.client_links.next,
      Which::Order => entry.order_links.next,
      Which::Activity => entry.activity_links.next,
    };
    Some(Slot(slot))
  }
}

/// What the registry asks of its store. Every operation is O(1) but the
/// walks, which are linear in what they yield.
impl MemoryStore {
  /// Records `session_id` as owned by `client_id` and returns its slot and
  /// registration number. Ids are taken as given (the registry validates
  /// them). Fails with [`Error::AlreadyRegistered`] when the id is taken.
  pub fn insert(
    &mut self,
    client_id: &str,
    session_id: &str,
    now: f64,
  ) -> Result<(Slot, u64), Error> {
    let session_hash = self.hash(session_id);
    if let Some(existing) = self.find_session(session_id) {
      let view = self.view(existing);
      return Err(Error::AlreadyRegistered {
        session_id: session_id.to_owned(),
        client_id: view.client_id.to_owned(),
        slot: Slot(existing),
      });
    }
    let client_hash = self.hash(client_id);
    let client = self.client_for_insert(client_id, client_hash);
    let seq = self.next_seq;
    self.next_seq += 1;
    let entry = SessionEntry {
      id: session_id.into(),
      client,
      seq,
      registered_at: now,
      last_activity: now,
      metrics: None,
      client_links: UNLINKED,
      order_links: UNLINKED,
      activity_links: UNLINKED,
    };
    let slot = if self.free_session != NIL {
      let slot = self.free_session;
      self.free_session = self.sessions[slot as usize].client_links.next;
      self.sessions[slot as usize] = entry;
      slot
    } else {
      self.sessions.push(entry);
      (self.sessions.len() - 1) as u32
    };
    self.push_back(Which::Client, slot);
    self.push_back(Which::Order, slot);
    self.push_back(Which::Activity, slot);
    self.clients[client as usize].len += 1;
    let sessions = &self.sessions;
    let hasher = &self.hasher;
    self.session_index.insert_unique(session_hash, slot, |&i| {
      hasher.hash_one(&*sessions[i as usize].id)
    });
    self.session_count += 1;
    Ok((Slot(slot), seq))
  }

  /// The slot of a registered session.
  pub fn slot_of(&self, session_id: &str) -> Option<Slot> {
    self.find_session(session_id).map(Slot)
  }

  /// The session in `slot`, if the slot is occupied.
  pub fn get(&self, slot: Slot) -> Option<SessionView<'_>> {
    self.occupied(slot).then(|| self.view(slot.0))
  }

  /// Records activity: sets the session's last activity (never backwards)
  /// and makes it the most recently active. Does nothing for a free slot.
  pub fn touch(&mut self, slot: Slot, now: f64) {
    if !self.occupied(slot) {
      return;
    }
    let entry = &mut self.sessions[slot.0 as usize];
    // A clock that steps back never makes a session look older than it is.
    entry.last_activity = entry.last_activity.max(now);
    if self.activity.tail != slot.0 {
      self.unlink(Which::Activity, slot.0);
      self.push_back(Which::Activity, slot.0);
    }
  }

  /// Sets the session's last activity (never backwards) without changing
  /// its place in the activity order.
  pub fn mark_active(&mut self, slot: Slot, now: f64) {
    if self.occupied(slot) {
      let entry = &mut self.sessions[slot.0 as usize];
      entry.last_activity = entry.last_activity.max(now);
    }
  }

  /// The session's numeric metrics, in the order they were first set.
  pub fn metrics(&self, slot: Slot) -> &[(Box<str>, f64)] {
    match self.sessions.get(slot.0 as usize) {
      Some(entry) if entry.client != NIL => entry.metrics.as_deref().map_or(&[], |m| m.as_slice()),
      _ => &[],
    }
  }

  /// Sets one metric and returns its previous value. Does nothing for a
  /// free slot.
  pub fn set_metric(&mut self, slot: Slot, name: &str, value: f64) -> Option<f64> {
    if !self.occupied(slot) {
      return None;
    }
    let metrics = self.sessions[slot.0 as usize]
      .metrics
      .get_or_insert_with(Default::default);
    match metrics.iter_mut().find(|(key, _)| &**key == name) {
      Some((_, old)) => Some(std::mem::replace(old, value)),
      None => {
        metrics.push((name.into(), value));
        None
      }
    }
  }

  /// Removes one session; `None` when it is not registered.
  pub fn remove(&mut self, session_id: &str) -> Option<RemovedSession> {
    let slot = self.find_session(session_id)?;
    Some(self.remove_at(slot))
  }

  /// Removes the session in `slot` only if it is still registration `seq`.
  pub fn remove_registration(&mut self, slot: Slot, seq: u64) -> Option<RemovedSession> {
    match self.sessions.get(slot.0 as usize) {
      Some(entry) if entry.client != NIL && entry.seq == seq => Some(self.remove_at(slot.0)),
      _ => None,
    }
  }

  /// Removes every session of a client, in registration order.
  pub fn remove_client(&mut self, client_id: &str) -> Vec<RemovedSession> {
    let Some(client) = self.find_client(client_id) else {
      return Vec::new();
    };
    let slots: Vec<u32> = self
      .walk(Which::Client, self.clients[client as usize].sessions.head)
      .map(|slot| slot.0)
      .collect();
    let removed = slots
      .into_iter()
      .map(|slot| self.free(slot, client_id.to_owned()))
      .collect();
    self.release_client(client);
    removed
  }

  /// Removes every session, in registration order.
  pub fn remove_all(&mut self) -> Vec<RemovedSession> {
    let slots: Vec<u32> = self
      .walk(Which::Order, self.order.head)
      .map(|slot| slot.0)
      .collect();
    slots.into_iter().map(|slot| self.remove_at(slot)).collect()
  }

  /// The slots of a client's sessions, in registration order.
  pub fn client_slots(&self, client_id: &str) -> impl Iterator<Item = Slot> + '_ {
    let head = match self.find_client(client_id) {
      Some(client) => self.clients[client as usize].sessions.head,
      None => NIL,
    };
    self.walk(Which::Client, head)
  }

  /// How many sessions a client owns (0 for an unknown client).
  pub fn client_len(&self, client_id: &str) -> usize {
    self
      .find_client(client_id)
      .map_or(0, |client| self.clients[client as usize].len as usize)
  }

  /// Every registered session, in registration order.
  pub fn sessions(&self) -> impl Iterator<Item = SessionView<'_>> + '_ {
    self
      .walk(Which::Order, self.order.head)
      .map(|slot| self.view(slot.0))
  }

  /// The slots registered after registration `(slot, seq)`, in registration
  /// order; `None` when that registration is gone.
  pub fn sessions_after(&self, slot: Slot, seq: u64) -> Option<impl Iterator<Item = Slot> + '_> {
    match self.sessions.get(slot.0 as usize) {
      Some(entry) if entry.client != NIL && entry.seq == seq => {
        Some(self.walk(Which::Order, entry.order_links.next))
      }
      _ => None,
    }
  }

  /// Every session's slot, least recently active first.
  pub fn by_activity(&self) -> impl Iterator<Item = Slot> + '_ {
    self.walk(Which::Activity, self.activity.head)
  }

  /// The slots after registration `(slot, seq)` in the activity order
  /// (least recently active first); `None` when that registration is gone.
  /// O(1) to start.
  pub fn by_activity_after(&self, slot: Slot, seq: u64) -> Option<impl Iterator<Item = Slot> + '_> {
    match self.sessions.get(slot.0 as usize) {
      Some(entry) if entry.client != NIL && entry.seq == seq => {
        Some(self.walk(Which::Activity, entry.activity_links.next))
      }
      _ => None,
    }
  }

  /// Every client with its session count, in no particular order.
  pub fn clients(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
    self
      .clients
      .iter()
      .filter(|client| client.len > 0)
      .map(|client| (&*client.id, client.len as usize))
  }

  pub fn session_count(&self) -> usize {
    self.session_count
  }

  pub fn client_count(&self) -> usize {
    self.client_count
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn ids(store: &MemoryStore, client: &str) -> Vec<String> {
    store
      .client_slots(client)
      .map(|slot| store.get(slot).unwrap().session_id.to_owned())
      .collect()
  }

  #[test]
  fn keeps_client_sessions_in_registration_order_across_removals() {
    let mut store = MemoryStore::new();
    for id in ["a", "b", "c", "d"] {
      store.insert("c1", id, 0.0).unwrap();
    }
    store.remove("b").unwrap();
    store.insert("c1", "e", 0.0).unwrap();
    assert_eq!(ids(&store, "c1"), ["a", "c", "d", "e"]);
    store.remove("a").unwrap();
    store.remove("e").unwrap();
    assert_eq!(ids(&store, "c1"), ["c", "d"]);
  }

  #[test]
  fn drops_a_client_with_its_last_session_and_reuses_slots() {
    let mut store = MemoryStore::new();
    let (first, _) = store.insert("c1", "a", 0.0).unwrap();
    assert_eq!(store.client_count(), 1);
    let removed = store.remove("a").unwrap();
    assert_eq!(&*removed.client_id, "c1");
    assert_eq!(store.client_count(), 0);
    assert_eq!(store.client_len("c1"), 0);
    let (again, _) = store.insert("c2", "b", 0.0).unwrap();
    assert_eq!(first, again, "a freed slot is reused");
  }

  #[test]
  fn a_duplicate_id_changes_nothing() {
    let mut store = MemoryStore::new();
    let (slot, _) = store.insert("c1", "a", 1.0).unwrap();
    let err = store.insert("c2", "a", 2.0).unwrap_err();
    assert_eq!(
      err,
      Error::AlreadyRegistered {
        session_id: "a".into(),
        client_id: "c1".into(),
        slot
      }
    );
    assert_eq!(store.client_count(), 1);
    assert_eq!(store.get(slot).unwrap().registered_at, 1.0);
  }

  #[test]
  fn remove_registration_ignores_a_later_registration_in_the_same_slot() {
    let mut store = MemoryStore::new();
    let (slot, seq) = store.insert("c1", "a", 0.0).unwrap();
    store.remove("a").unwrap();
    let (reused, newer) = store.insert("c1", "b", 0.0).unwrap();
    assert_eq!(slot, reused);
    assert!(store.remove_registration(slot, seq).is_none());
    assert_eq!(
      store.remove_registration(slot, newer).unwrap().session_id,
      "b"
    );
  }

  #[test]
  fn ids_with_pattern_characters_are_plain_keys() {
    let mut store = MemoryStore::new();
    for id in ["*", "a*", "a/b", "a:b", "", " "] {
      store.insert("c:*", id, 0.0).unwrap();
    }
    assert_eq!(store.slot_of("a"), None);
    assert_eq!(store.client_len("c:*"), 6);
    assert_eq!(store.client_len("c:"), 0);
  }
}
