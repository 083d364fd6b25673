//! The registry's bookkeeping in this process: two slabs, one hash index of
//! clients and three lists threaded through the session slab.
//!
//! Sessions live in a slab whose index is the session's [`Slot`], and are
//! addressed by it alone: the session ids are the embedder's (it keeps the
//! one index by id, next to the handles), so no id is stored here. Doubly
//! linked lists through the slab keep each client's sessions, all sessions
//! in registration order, and all sessions from least to most recently
//! active; so registering, removing, touching and listing cost the same at
//! ten sessions as at a hundred thousand. Clients are few next to sessions
//! and are found by id: a hash index that stores client slab indexes and
//! compares against the ids in the client slab, so each client id is stored
//! once.

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::hash::BuildHasher;

use crate::store::{RemovedSession, SessionView};
use crate::Slot;

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

/// 56 bytes a session: the whole of what the core keeps for one (metrics
/// aside, which few sessions have).
struct SessionEntry {
  /// Index of the owning client; `NIL` while the entry is free.
  client: u32,
  seq: u64,
  registered_at: f64,
  last_activity: f64,
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
  session_count: usize,
  /// Numeric metrics of the sessions that have any, by slot, in the order
  /// they were first set.
  metrics: HashMap<u32, SessionMetrics>,
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
      session_count: 0,
      metrics: HashMap::new(),
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

  /// Drops an empty client from the index and frees its entry.
  fn release_client(&mut self, index: u32) {
    let hash = self.hash(&self.clients[index as usize].id);
    if let Ok(found) = self.client_index.find_entry(hash, |&i| i == index) {
      found.remove();
    }
    self.client_count -= 1;
    let entry = &mut self.clients[index as usize];
    entry.id = Box::default();
    entry.sessions = List {
      head: self.free_client,
      tail: NIL,
    };
    entry.len = 0;
    self.free_client = index;
  }

  /// Takes a session out of every list and the slab. Releases the client
  /// when this was its last session.
  fn remove_at(&mut self, slot: u32) -> RemovedSession {
    let client = self.sessions[slot as usize].client;
    self.unlink(Which::Client, slot);
    self.clients[client as usize].len -= 1;
    if self.clients[client as usize].len == 0 {
      self.release_client(client);
    }
    self.free(slot)
  }

  /// Frees a session entry that is no longer in its client's list.
  fn free(&mut self, slot: u32) -> RemovedSession {
    self.unlink(Which::Order, slot);
    self.unlink(Which::Activity, slot);
    self.session_count -= 1;
    self.metrics.remove(&slot);
    let entry = &mut self.sessions[slot as usize];
    let removed = RemovedSession {
      slot: Slot(slot),
      seq: entry.seq,
      registered_at: entry.registered_at,
    };
    entry.client = NIL;
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
  /// Records a new session of `client_id` and returns its slot and
  /// registration number. The client id is taken as given (the registry
  /// validates it).
  pub fn insert(&mut self, client_id: &str, now: f64) -> (Slot, u64) {
    let client_hash = self.hash(client_id);
    let client = self.client_for_insert(client_id, client_hash);
    let seq = self.next_seq;
    self.next_seq += 1;
    let entry = SessionEntry {
      client,
      seq,
      registered_at: now,
      last_activity: now,
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
    self.session_count += 1;
    (Slot(slot), seq)
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

  /// Moves the session's last activity forward to `at`, a time the
  /// registry learned late (a lookup the embedder kept), and gives it its
  /// place in the activity order: behind every session active no later than
  /// `at`, but never in front of where it was (a clock that stepped back can
  /// leave the order out of time order; a session only ever moves towards
  /// the most recently active end). The walk starts at that end, where a
  /// late lookup usually belongs. Does nothing for a free slot or a time not
  /// later than the recorded one.
  pub fn fold_activity(&mut self, slot: Slot, at: f64) {
    if !self.occupied(slot) || at <= self.sessions[slot.0 as usize].last_activity {
      return;
    }
    self.sessions[slot.0 as usize].last_activity = at;
    let was_after = self.sessions[slot.0 as usize].activity_links.prev;
    self.unlink(Which::Activity, slot.0);
    let mut before = self.activity.tail;
    while before != NIL && before != was_after && self.sessions[before as usize].last_activity > at
    {
      before = self.sessions[before as usize].activity_links.prev;
    }
    let after = if before == NIL {
      self.activity.head
    } else {
      self.sessions[before as usize].activity_links.next
    };
    self.sessions[slot.0 as usize].activity_links = Links {
      prev: before,
      next: after,
    };
    if before == NIL {
      self.activity.head = slot.0;
    } else {
      self.sessions[before as usize].activity_links.next = slot.0;
    }
    if after == NIL {
      self.activity.tail = slot.0;
    } else {
      self.sessions[after as usize].activity_links.prev = slot.0;
    }
  }

  /// The slot after `slot` in the activity order (`None` at the end or for
  /// a free slot).
  pub fn next_by_activity(&self, slot: Slot) -> Option<Slot> {
    if !self.occupied(slot) {
      return None;
    }
    let next = self.sessions[slot.0 as usize].activity_links.next;
    (next != NIL).then_some(Slot(next))
  }

  /// The least recently active session's slot.
  pub fn least_active(&self) -> Option<Slot> {
    (self.activity.head != NIL).then_some(Slot(self.activity.head))
  }

  /// The session's numeric metrics, in the order they were first set.
  pub fn metrics(&self, slot: Slot) -> &[(Box<str>, f64)] {
    self.metrics.get(&slot.0).map_or(&[], Vec::as_slice)
  }

  /// Sets one metric and returns its previous value. Does nothing for a
  /// free slot.
  pub fn set_metric(&mut self, slot: Slot, name: &str, value: f64) -> Option<f64> {
    if !self.occupied(slot) {
      return None;
    }
    let metrics = self.metrics.entry(slot.0).or_default();
    match metrics.iter_mut().find(|(key, _)| &**key == name) {
      Some((_, old)) => Some(std::mem::replace(old, value)),
      None => {
        metrics.push((name.into(), value));
        None
      }
    }
  }

  /// Removes the session in `slot`; `None` when the slot is free.
  pub fn remove(&mut self, slot: Slot) -> Option<RemovedSession> {
    self.occupied(slot).then(|| self.remove_at(slot.0))
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
    let removed = slots.into_iter().map(|slot| self.free(slot)).collect();
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

  fn slots(store: &MemoryStore, client: &str) -> Vec<Slot> {
    store.client_slots(client).collect()
  }

  #[test]
  fn keeps_client_sessions_in_registration_order_across_removals() {
    let mut store = MemoryStore::new();
    let [a, b, c, d] = [0; 4].map(|_| store.insert("c1", 0.0).0);
    store.remove(b).unwrap();
    let (e, _) = store.insert("c1", 0.0);
    assert_eq!(slots(&store, "c1"), [a, c, d, e]);
    store.remove(a).unwrap();
    store.remove(e).unwrap();
    assert_eq!(slots(&store, "c1"), [c, d]);
  }

  #[test]
  fn drops_a_client_with_its_last_session_and_reuses_slots() {
    let mut store = MemoryStore::new();
    let (first, _) = store.insert("c1", 0.0);
    assert_eq!(store.client_count(), 1);
    let removed = store.remove(first).unwrap();
    assert_eq!(removed.slot, first);
    assert_eq!(store.client_count(), 0);
    assert_eq!(store.client_len("c1"), 0);
    assert!(
      store.remove(first).is_none(),
      "a free slot is not removed twice"
    );
    let (again, _) = store.insert("c2", 0.0);
    assert_eq!(first, again, "a freed slot is reused");
    assert_eq!(store.get(again).unwrap().client_id, "c2");
  }

  #[test]
  fn remove_registration_ignores_a_later_registration_in_the_same_slot() {
    let mut store = MemoryStore::new();
    let (slot, seq) = store.insert("c1", 0.0);
    store.remove(slot).unwrap();
    let (reused, newer) = store.insert("c1", 0.0);
    assert_eq!(slot, reused);
    assert!(store.remove_registration(slot, seq).is_none());
    assert_eq!(store.remove_registration(slot, newer).unwrap().seq, newer);
  }

  #[test]
  fn client_ids_with_pattern_characters_are_plain_keys() {
    let mut store = MemoryStore::new();
    for _ in 0..3 {
      store.insert("c:*", 0.0);
    }
    assert_eq!(store.client_len("c:*"), 3);
    assert_eq!(store.client_len("c:"), 0);
    assert_eq!(store.client_len("c"), 0);
  }

  #[test]
  fn a_late_activity_finds_its_place_in_the_activity_order() {
    let mut store = MemoryStore::new();
    let [a, b, c] = [1.0, 2.0, 3.0].map(|t| store.insert("c", t).0);
    store.touch(c, 10.0);
    // `a` was active at 5: after `b` (2), before `c` (10).
    store.fold_activity(a, 5.0);
    assert_eq!(store.by_activity().collect::<Vec<_>>(), [b, a, c]);
    assert_eq!(store.get(a).unwrap().last_activity, 5.0);
    // An earlier time changes nothing.
    store.fold_activity(a, 4.0);
    assert_eq!(store.by_activity().collect::<Vec<_>>(), [b, a, c]);
    // The latest time goes to the end; the oldest place is the head.
    store.fold_activity(b, 20.0);
    assert_eq!(store.by_activity().collect::<Vec<_>>(), [a, c, b]);
    assert_eq!(store.least_active(), Some(a));
    assert_eq!(store.next_by_activity(a), Some(c));
    assert_eq!(store.next_by_activity(b), None);
  }

  #[test]
  fn metrics_leave_with_their_session() {
    let mut store = MemoryStore::new();
    let (slot, _) = store.insert("c", 0.0);
    assert_eq!(store.set_metric(slot, "cpu", 1.0), None);
    assert_eq!(store.set_metric(slot, "cpu", 2.0), Some(1.0));
    store.remove(slot).unwrap();
    let (again, _) = store.insert("c", 0.0);
    assert_eq!(again, slot);
    assert!(
      store.metrics(again).is_empty(),
      "metrics are the session's, not the slot's"
    );
  }

  #[test]
  fn a_late_activity_never_moves_a_session_back() {
    let mut store = MemoryStore::new();
    // A clock that stepped back: the order is x (5), y (10), z (1).
    let [x, y, z] = [5.0, 10.0, 1.0].map(|t| store.insert("c", t).0);
    store.fold_activity(z, 7.0);
    assert_eq!(store.by_activity().collect::<Vec<_>>(), [x, y, z]);
    store.fold_activity(x, 6.0);
    assert_eq!(store.by_activity().collect::<Vec<_>>(), [x, y, z]);
  }
}
