//! Random operation sequences against the registry and a deliberately naive
//! model; after every step both must agree on everything observable.
//!
//! The core keeps no session ids: like the TypeScript surface, the harness
//! keeps the one index id -> (client, slot), tells `register` who holds an
//! id, and turns ids into slots. Every step runs on two registries in
//! lockstep, one made with `Registry::new()` and one with
//! `Registry::keeping_ids()`; they must answer alike, and the second one's
//! change feed, applied to a naive map, must always hold exactly the live
//! sessions.

use nity_registry_core::{
  Change, CloseOrder, CloseOutcome, CloseReason, CloseReport, Error, HealthReading, HealthState,
  Registry, SessionRecord, Slot, StaleReading, Ticket, DEFAULT_MAX_CONCURRENT_CLOSES,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;

/// Few ids, some with characters other registries treat as patterns, so that
/// collisions, reuse and "looks like a prefix" cases come up often.
const CLIENTS: &[&str] = &["c1", "c2", "c:*", "c/3", ""];
const SESSIONS: &[&str] = &["a", "b", "c", "a*", "a:b", "x/y", "*", ""];

#[derive(Debug, Clone)]
enum Op {
  Register(usize, usize),
  /// Unregister by id, through the harness's index (an unknown id: no call).
  Unregister(usize),
  /// Unregister whatever is in a slot (perhaps nothing), as a remote close.
  UnregisterSlot(u32),
  CleanupClient(usize, usize),
  /// Snapshot the registrations, then close the n-th if still current.
  StaleClose(usize),
  /// Close the n-th registration ever made, perhaps removed or replaced since.
  ClosePast(usize, usize),
  /// A stale scan's verdict on registrations ever made.
  CloseStale(Vec<(usize, HealthReading, Option<bool>)>),
  CloseAll,
  /// Settle the n-th close in flight (if any), twice.
  Settle(usize, bool),
  /// Turn the change feed on or off, then perhaps take the changes at once.
  Feed(bool, bool),
  TakeChanges,
  /// Turn the feed off and on again and take the changes: exactly the live
  /// sessions, in registration order.
  Reseed,
}

fn health() -> impl Strategy<Value = HealthReading> {
  let state = prop_oneof![
    Just(HealthState::Idle),
    Just(HealthState::Active),
    Just(HealthState::Completed),
    Just(HealthState::Error),
    Just(HealthState::Unknown),
  ];
  prop_oneof![
    4 => (state, any::<bool>()).prop_map(|(state, timed_out)| HealthReading::Reported { state, timed_out }),
    1 => Just(HealthReading::Failed),
    1 => Just(HealthReading::Unavailable),
  ]
}

fn op() -> impl Strategy<Value = Op> {
  let readings = proptest::collection::vec(
    (
      any::<usize>(),
      health(),
      proptest::option::of(any::<bool>()),
    ),
    0..5,
  );
  prop_oneof![
    8 => (0..CLIENTS.len(), 0..SESSIONS.len()).prop_map(|(c, s)| Op::Register(c, s)),
    4 => (0..SESSIONS.len()).prop_map(Op::Unregister),
    1 => (0..8u32).prop_map(Op::UnregisterSlot),
    2 => (0..CLIENTS.len(), 0..CloseReason::ALL.len()).prop_map(|(c, r)| Op::CleanupClient(c, r)),
    2 => (0..8usize).prop_map(Op::StaleClose),
    2 => (any::<usize>(), 0..CloseReason::ALL.len()).prop_map(|(n, r)| Op::ClosePast(n, r)),
    2 => readings.prop_map(Op::CloseStale),
    1 => Just(Op::CloseAll),
    4 => (0..8usize, any::<bool>()).prop_map(|(n, ok)| Op::Settle(n, ok)),
    2 => (any::<bool>(), any::<bool>()).prop_map(|(on, take)| Op::Feed(on, take)),
    3 => Just(Op::TakeChanges),
    1 => Just(Op::Reseed),
  ]
}

#[derive(Debug, Clone)]
struct Live {
  id: String,
  client: String,
  slot: Slot,
  seq: u64,
  registered_at: f64,
}

#[derive(Debug, Clone)]
struct Closing {
  /// The embedder's business now: the core no longer names closes by id.
  #[allow(dead_code)]
  id: String,
  reason: CloseReason,
  since: f64,
  started: bool,
  registered_at: f64,
}

#[derive(Default)]
struct Model {
  /// Registration order.
  live: Vec<Live>,
  /// Every registration ever made, as `(slot, seq)`.
  history: Vec<(Slot, u64)>,
  next_seq: u64,
  last_ticket: u64,
  /// Closes in flight.
  closing: BTreeMap<Ticket, Closing>,
  disposed: bool,
  registered: u64,
  removed: u64,
  /// Whether the change feed of the id-keeping registry is on.
  feed_on: bool,
  /// The changes it must hand out at the next take.
  pending: Vec<Change>,
}

impl Model {
  fn position(&self, session: &str) -> Option<usize> {
    self.live.iter().position(|s| s.id == session)
  }

  fn client_slots(&self, client: &str) -> Vec<Slot> {
    self
      .live
      .iter()
      .filter(|s| s.client == client)
      .map(|s| s.slot)
      .collect()
  }

  fn record(s: &Live) -> Change {
    Change::Registered(SessionRecord {
      session_id: s.id.clone(),
      client_id: s.client.clone(),
      registered_at: s.registered_at,
    })
  }

  fn insert(&mut self, client: &str, session: &str, slot: Slot, now: f64) {
    assert!(
      self.live.iter().all(|s| s.slot != slot),
      "{slot} handed out while in use"
    );
    self.next_seq += 1;
    let live = Live {
      id: session.to_owned(),
      client: client.to_owned(),
      slot,
      seq: self.next_seq,
      registered_at: now,
    };
    if self.feed_on {
      self.pending.push(Model::record(&live));
    }
    self.history.push((slot, live.seq));
    self.live.push(live);
    self.registered += 1;
  }

  /// Removes `live[i]` for closing; the order the registry must hand out.
  fn remove(&mut self, i: usize, reason: CloseReason, now: f64, started: bool) -> CloseOrder {
    let s = self.live.remove(i);
    self.removed += 1;
    if self.feed_on {
      self.pending.push(Change::Removed {
        session_id: s.id.clone(),
        client_id: s.client.clone(),
      });
    }
    self.last_ticket += 1;
    let ticket = Ticket(self.last_ticket);
    self.closing.insert(
      ticket,
      Closing {
        id: s.id,
        reason,
        since: now,
        started,
        registered_at: s.registered_at,
      },
    );
    CloseOrder {
      ticket,
      slot: s.slot,
    }
  }

  fn live_map(&self) -> HashMap<String, (String, f64)> {
    self
      .live
      .iter()
      .map(|s| (s.id.clone(), (s.client.clone(), s.registered_at)))
      .collect()
  }
}

/// What stale cleanup does with a reading, written out naively.
fn stale_reason(health: HealthReading, running: Option<bool>) -> Option<CloseReason> {
  let stale = match health {
    HealthReading::Reported { state, timed_out } => timed_out || state == HealthState::Error,
    HealthReading::Failed => true,
    HealthReading::Unavailable => false,
  };
  if stale {
    Some(CloseReason::CleanupStale)
  } else if running == Some(false) {
    Some(CloseReason::Idle)
  } else {
    None
  }
}

struct Harness {
  /// Keeps no ids: no change feed.
  plain: Registry,
  /// Keeps ids: its change feed is followed into `copy`.
  keeping: Registry,
  /// The embedder's index: session id -> (client, slot).
  index: HashMap<String, (String, Slot)>,
  /// The keeping registry's feed applied to a naive map: id -> (client,
  /// registered_at).
  copy: HashMap<String, (String, f64)>,
  model: Model,
  /// Every close order ever handed out, to prove none repeats.
  tickets: HashSet<Ticket>,
}

impl Harness {
  fn new(feed: bool) -> Self {
    let mut harness = Harness {
      plain: Registry::new(),
      keeping: Registry::keeping_ids(),
      index: HashMap::new(),
      copy: HashMap::new(),
      model: Model::default(),
      tickets: HashSet::new(),
    };
    if feed {
      harness.feed(true);
    }
    harness
  }

  /// Runs `f` on both registries; they must answer alike.
  fn both<T: PartialEq + Debug>(&mut self, what: &str, mut f: impl FnMut(&mut Registry) -> T) -> T {
    let plain = f(&mut self.plain);
    let keeping = f(&mut self.keeping);
    assert_eq!(plain, keeping, "{what}: the two registries disagree");
    plain
  }

  /// The embedder drops removed sessions from its index by their slots.
  fn forget(&mut self, orders: &[CloseOrder]) {
    for order in orders {
      assert!(
        self.tickets.insert(order.ticket),
        "{} handed out twice",
        order.ticket
      );
      let before = self.index.len();
      self.index.retain(|_, (_, slot)| *slot != order.slot);
      assert_eq!(
        self.index.len() + 1,
        before,
        "{} held no session",
        order.slot
      );
    }
  }

  fn feed(&mut self, on: bool) {
    assert!(!self.plain.set_change_feed(on), "no feed without ids");
    assert!(self.plain.take_changes().is_empty());
    assert!(self.keeping.set_change_feed(on));
    let m = &mut self.model;
    match (on, m.feed_on) {
      (true, false) => {
        // The feed starts with the sessions registered now, for a copy that
        // starts empty.
        m.pending = m.live.iter().map(Model::record).collect();
        m.feed_on = true;
        self.copy.clear();
      }
      (false, true) => {
        m.pending.clear();
        m.feed_on = false;
      }
      _ => {}
    }
  }

  fn take_changes(&mut self) {
    assert!(self.plain.take_changes().is_empty());
    let changes = self.keeping.take_changes();
    let expected = std::mem::take(&mut self.model.pending);
    assert_eq!(changes, expected, "changes");
    if !self.model.feed_on {
      assert!(changes.is_empty(), "changes while the feed is off");
      return;
    }
    for change in changes {
      match change {
        Change::Registered(record) => {
          let old = self.copy.insert(
            record.session_id.clone(),
            (record.client_id, record.registered_at),
          );
          assert_eq!(old, None, "{} registered twice", record.session_id);
        }
        Change::Removed {
          session_id,
          client_id,
        } => {
          let removed = self.copy.remove(&session_id);
          assert!(removed.is_some(), "{session_id} removed but not registered");
          assert_eq!(
            removed.map(|(client, _)| client),
            Some(client_id),
            "{session_id} removed under another client"
          );
        }
      }
    }
    assert_eq!(self.copy, self.model.live_map(), "the feed's copy");
  }

  fn apply(&mut self, op: Op, now: f64) {
    match op {
      Op::Register(c, s) => {
        let (client, session) = (CLIENTS[c], SESSIONS[s]);
        let held_by = self.index.get(session).map(|(owner, _)| owner.clone());
        let result = self.both("register", |r| {
          r.register(client, session, held_by.as_deref(), now)
        });
        let expected = if client.is_empty() {
          Err(Error::EmptyClientId)
        } else if session.is_empty() {
          Err(Error::EmptySessionId)
        } else if self.model.disposed {
          Err(Error::Disposed)
        } else if let Some(i) = self.model.position(session) {
          Err(Error::AlreadyRegistered {
            session_id: session.to_owned(),
            client_id: self.model.live[i].client.clone(),
          })
        } else {
          Ok(())
        };
        match expected {
          Err(error) => assert_eq!(result, Err(error), "register({client:?}, {session:?})"),
          Ok(()) => {
            let slot = result.expect("registers");
            self.model.insert(client, session, slot, now);
            self
              .index
              .insert(session.to_owned(), (client.to_owned(), slot));
          }
        }
      }
      Op::Unregister(s) => {
        let session = SESSIONS[s];
        let Some(&(_, slot)) = self.index.get(session) else {
          assert!(self.model.position(session).is_none());
          return;
        };
        let order = self.both("unregister", |r| {
          r.unregister(slot, CloseReason::Unregister, now)
        });
        let i = self.model.position(session).expect("was registered");
        let expected = self.model.remove(i, CloseReason::Unregister, now, true);
        assert_eq!(order, Some(expected), "unregister({session})");
        self.forget(&[expected]);
        // The slot is free now: nothing to unregister again.
        let again = self.both("unregister again", |r| {
          r.unregister(slot, CloseReason::Unregister, now)
        });
        assert_eq!(again, None);
      }
      Op::UnregisterSlot(n) => {
        let slot = Slot(n);
        let order = self.both("unregister slot", |r| {
          r.unregister(slot, CloseReason::Remote, now)
        });
        let expected = self
          .model
          .live
          .iter()
          .position(|s| s.slot == slot)
          .map(|i| self.model.remove(i, CloseReason::Remote, now, true));
        assert_eq!(order, expected, "unregister({slot})");
        self.forget(&Vec::from_iter(order));
      }
      Op::CleanupClient(c, reason) => {
        let (client, reason) = (CLIENTS[c], CloseReason::ALL[reason]);
        let orders = self.both("cleanup_client", |r| r.cleanup_client(client, reason, now));
        let slots: Vec<Slot> = orders.iter().map(|o| o.slot).collect();
        assert_eq!(
          slots,
          self.model.client_slots(client),
          "cleanup_client({client:?})"
        );
        let mut expected = Vec::new();
        while let Some(i) = self.model.live.iter().position(|s| s.client == client) {
          expected.push(self.model.remove(i, reason, now, false));
        }
        assert_eq!(orders, expected, "cleanup_client({client:?})");
        self.forget(&orders);
      }
      Op::StaleClose(n) => {
        let seen = self.both("registrations", |r| r.registrations());
        let expected: Vec<(Slot, u64)> = self.model.live.iter().map(|s| (s.slot, s.seq)).collect();
        assert_eq!(seen, expected);
        if seen.is_empty() {
          return;
        }
        let (slot, seq) = seen[n % seen.len()];
        let order = self.both("close_registration", |r| {
          r.close_registration(slot, seq, CloseReason::CleanupStale, now)
        });
        let i = self.model.live.iter().position(|s| s.slot == slot).unwrap();
        let expected = self.model.remove(i, CloseReason::CleanupStale, now, false);
        assert_eq!(order, Some(expected));
        self.forget(&[expected]);
        let again = self.both("close_registration again", |r| {
          r.close_registration(slot, seq, CloseReason::CleanupStale, now)
        });
        assert_eq!(again, None);
      }
      Op::ClosePast(n, reason) => {
        if self.model.history.is_empty() {
          return;
        }
        let (slot, seq) = self.model.history[n % self.model.history.len()];
        let reason = CloseReason::ALL[reason];
        let order = self.both("close_registration", |r| {
          r.close_registration(slot, seq, reason, now)
        });
        let expected = self
          .model
          .live
          .iter()
          .position(|s| s.slot == slot && s.seq == seq)
          .map(|i| self.model.remove(i, reason, now, false));
        assert_eq!(order, expected, "close_registration({slot}, {seq})");
        self.forget(&Vec::from_iter(order));
      }
      Op::CloseStale(readings) => {
        if self.model.history.is_empty() {
          return;
        }
        let readings: Vec<StaleReading> = readings
          .into_iter()
          .map(|(n, health, running)| {
            let (slot, _) = self.model.history[n % self.model.history.len()];
            StaleReading {
              slot,
              health,
              running,
            }
          })
          .collect();
        let orders = self.both("close_stale", |r| {
          r.close_stale(readings.iter().copied(), now)
        });
        let mut expected = Vec::new();
        for reading in &readings {
          let Some(reason) = stale_reason(reading.health, reading.running) else {
            continue;
          };
          // A reading is of the session in its slot now (the embedder
          // vouches for that); a free slot closes nothing.
          if let Some(i) = self.model.live.iter().position(|s| s.slot == reading.slot) {
            expected.push(self.model.remove(i, reason, now, false));
          }
        }
        assert_eq!(orders, expected, "close_stale({readings:?})");
        self.forget(&orders);
      }
      Op::CloseAll => {
        let orders = self.both("close_all", |r| r.close_all(now));
        let mut expected = Vec::new();
        while !self.model.live.is_empty() {
          expected.push(self.model.remove(0, CloseReason::Shutdown, now, false));
        }
        assert_eq!(orders, expected, "close_all");
        self.forget(&orders);
        assert!(self.index.is_empty());
      }
      Op::Settle(n, ok) => {
        let Some((&ticket, _)) = self
          .model
          .closing
          .iter()
          .nth(n % self.model.closing.len().max(1))
        else {
          return;
        };
        let outcome = if ok {
          CloseOutcome::Closed
        } else {
          CloseOutcome::Failed
        };
        let report = self.both("settle", |r| r.settle(ticket, outcome, now));
        let closing = self.model.closing.remove(&ticket).unwrap();
        let expected = CloseReport {
          reason: closing.reason,
          outcome,
          duration_ms: (now - closing.since).max(0.0),
          registered_at: closing.registered_at,
        };
        assert_eq!(report, Some(expected), "settle({ticket})");
        let again = self.both("settle again", |r| r.settle(ticket, outcome, now));
        assert_eq!(again, None);
        assert!(!self.plain.is_closing(ticket));
      }
      Op::Feed(on, take) => {
        self.feed(on);
        if take {
          self.take_changes();
        }
      }
      Op::TakeChanges => self.take_changes(),
      Op::Reseed => {
        self.feed(false);
        self.feed(true);
        // Exactly the live sessions, in registration order, and nothing else
        // (take_changes compares what the registry hands out with this).
        let live: Vec<Change> = self.model.live.iter().map(Model::record).collect();
        assert_eq!(self.model.pending, live);
        self.take_changes();
      }
    }
  }

  fn check(&self) {
    let m = &self.model;
    // The harness's index follows the registry's answers; it must hold
    // exactly the model's sessions.
    let index: HashMap<String, (String, Slot)> = m
      .live
      .iter()
      .map(|s| (s.id.clone(), (s.client.clone(), s.slot)))
      .collect();
    assert_eq!(self.index, index, "the embedder's index");
    for registry in [&self.plain, &self.keeping] {
      let store = registry.store();
      assert_eq!(store.session_count(), m.live.len());
      assert_eq!(
        registry.registrations(),
        m.live.iter().map(|s| (s.slot, s.seq)).collect::<Vec<_>>()
      );
      let views: Vec<(String, Slot, u64, f64, f64)> = store
        .sessions()
        .map(|v| {
          (
            v.client_id.to_owned(),
            v.slot,
            v.seq,
            v.registered_at,
            v.last_activity,
          )
        })
        .collect();
      let expected: Vec<(String, Slot, u64, f64, f64)> = m
        .live
        .iter()
        .map(|s| {
          (
            s.client.clone(),
            s.slot,
            s.seq,
            s.registered_at,
            s.registered_at,
          )
        })
        .collect();
      assert_eq!(views, expected, "sessions");
      for s in &m.live {
        let view = store.get(s.slot).expect("slot occupied");
        assert_eq!((view.client_id, view.seq), (s.client.as_str(), s.seq));
      }
      for n in 0..8 {
        let slot = Slot(n);
        let live = m.live.iter().any(|s| s.slot == slot);
        assert_eq!(store.get(slot).is_some(), live, "{slot}");
      }
      let mut counts: HashMap<&str, usize> = HashMap::new();
      for s in &m.live {
        *counts.entry(&s.client).or_default() += 1;
      }
      assert_eq!(store.client_count(), counts.len());
      let reported: HashMap<&str, usize> = store.clients().collect();
      assert_eq!(reported, counts);
      for client in CLIENTS {
        let got: Vec<Slot> = store.client_slots(client).collect();
        assert_eq!(got, m.client_slots(client), "sessions of {client:?}");
        assert_eq!(store.client_len(client), got.len());
      }
      assert_eq!(registry.closes_in_flight(), m.closing.len());
      for &ticket in m.closing.keys() {
        assert!(registry.is_closing(ticket), "{ticket} in flight");
      }
      assert!(!registry.is_closing(Ticket(m.last_ticket + 1)));
      let running = m.closing.values().filter(|c| c.started).count();
      assert_eq!(
        registry.close_capacity(),
        DEFAULT_MAX_CONCURRENT_CLOSES.saturating_sub(running),
        "close capacity"
      );
      assert_eq!(registry.is_disposed(), m.disposed);
      let metrics = registry.metrics();
      assert_eq!(
        (metrics.sessions_registered, metrics.sessions_closed),
        (m.registered, m.removed)
      );
    }
  }
}

proptest! {
  #![proptest_config(ProptestConfig::with_cases(512))]

  #[test]
  fn registry_agrees_with_model(
    feed in any::<bool>(),
    dispose_at in proptest::option::of(0usize..120),
    ops in proptest::collection::vec(op(), 1..80),
  ) {
    let mut harness = Harness::new(feed);
    harness.check();
    let mut now = 0.0;
    for (n, op) in ops.into_iter().enumerate() {
      now += 1.0;
      if dispose_at == Some(n) {
        // Idempotent; the closes in flight and the feed go on.
        harness.both("dispose", Registry::dispose);
        harness.both("dispose", Registry::dispose);
        harness.model.disposed = true;
      }
      harness.apply(op, now);
      harness.check();
    }
    // Whatever the feed holds now brings the copy up to date.
    harness.take_changes();
  }
}

/// The feed names a session by its own id even when a stale close aims at
/// the slot a later session reuses, and a feed turned off and on again
/// starts over from exactly what is registered.
#[test]
fn the_feed_follows_slot_reuse_and_reseeds() {
  let mut registry = Registry::keeping_ids();
  assert!(registry.set_change_feed(true));
  let a = registry.register("c1", "a", None, 1.0).unwrap();
  let seen = registry.registrations();
  registry.cleanup_client("c1", CloseReason::CleanupClient, 2.0);
  let b = registry.register("c2", "b", None, 3.0).unwrap();
  assert_eq!(a, b, "the freed slot is reused");
  let (slot, seq) = seen[0];
  assert_eq!(
    registry.close_registration(slot, seq, CloseReason::CleanupStale, 4.0),
    None
  );
  let record = |id: &str, client: &str, at| {
    Change::Registered(SessionRecord {
      session_id: id.into(),
      client_id: client.into(),
      registered_at: at,
    })
  };
  assert_eq!(
    registry.take_changes(),
    vec![
      record("a", "c1", 1.0),
      Change::Removed {
        session_id: "a".into(),
        client_id: "c1".into()
      },
      record("b", "c2", 3.0),
    ]
  );
  registry.register("c1", "c", None, 5.0).unwrap();
  assert!(registry.set_change_feed(false));
  assert!(registry.take_changes().is_empty());
  registry.close_all(6.0);
  registry.register("c1", "d", None, 7.0).unwrap();
  assert!(registry.set_change_feed(true));
  assert_eq!(registry.take_changes(), vec![record("d", "c1", 7.0)]);
}
