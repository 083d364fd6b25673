//! Random operation sequences against a registry with a lifecycle policy
//! (limits, eviction, the activity order, lookups, paging, metrics, close
//! capacity) and a deliberately naive model; after every step both must
//! agree on everything observable.
//!
//! The harness plays the embedder: it keeps the one index session id ->
//! (client, slot), passes who holds an id to `register`, turns ids into
//! slots, and keeps the slot-indexed lookup times the registry reads
//! activity with. The eviction search folds those lookups into the activity
//! order as it walks, so the model replays every search the harness makes,
//! folds included.

use std::collections::{BTreeMap, HashMap, HashSet};

use nity_registry_core::{
  CloseOrder, CloseOutcome, CloseReason, CloseReport, Cursor, Error, LimitScope, Metrics, Policy,
  Registry, Slot, Ticket,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Few ids, so that duplicates, full clients and reuse come up often.
const CLIENTS: &[&str] = &["c1", "c2", "c3"];
const SESSIONS: &[&str] = &["s1", "s2", "s3", "s4", "s5", "s6"];
const METRIC_NAMES: &[&str] = &["cpu", "mem", "io"];
const OUTCOMES: [CloseOutcome; 3] = [
  CloseOutcome::Closed,
  CloseOutcome::Failed,
  CloseOutcome::TimedOut,
];

/// A registration `(slot, seq)` to aim at: a live one, any one ever made
/// (perhaps removed or replaced since), or made up.
#[derive(Debug, Clone, Copy)]
enum Pick {
  Live(usize),
  Past(usize),
  Raw(Slot, u64),
}

#[derive(Debug, Clone, Copy)]
enum Victim {
  /// The n-th of `eviction_candidates` for the registering client.
  Candidate(usize),
  Pick(Pick),
  /// No victim at all.
  Nothing,
}

#[derive(Debug, Clone, Copy)]
enum TicketPick {
  /// The n-th close in flight.
  Pending(usize),
  /// Any ticket handed out so far, or the next one.
  Any(usize),
}

/// A session to aim at: by id through the harness's index (an unknown id
/// means no call), or by a registration's slot.
#[derive(Debug, Clone, Copy)]
enum Target {
  Id(usize),
  Pick(Pick),
}

/// The time a lookup writes into the lookup array.
#[derive(Debug, Clone, Copy)]
enum LookupAt {
  /// The call's clock (which may have stepped back).
  Now,
  /// Further back than that.
  Earlier(u8),
  /// Later than the call's clock (a clock that will step back).
  Later(u8),
  Nan,
  /// What the embedder writes for "no lookup".
  Never,
}

#[derive(Debug, Clone)]
enum Op {
  Register(usize, usize),
  RegisterEvicting(usize, usize, Victim),
  /// Unregister by id, through the index.
  Unregister(usize),
  /// Unregister whatever is in a registration's slot (perhaps nothing).
  UnregisterSlot(Pick, usize),
  CleanupClient(usize, usize),
  CloseRegistration(Pick, usize),
  CloseAll,
  Touch(Target),
  /// A lookup hands a session (by id) out.
  Lookup(usize, LookupAt),
  UpdateMetrics(Target, Vec<(usize, i8)>),
  StartClose(TicketPick),
  /// Settle a close, then settle it again with another outcome.
  Settle(TicketPick, usize),
  /// One eviction search call for a client: after a registration (or
  /// none), at most `take`.
  Candidates(usize, Option<Pick>, usize),
  /// Page through `list(client, .., limit)` to the end, doing the n-th
  /// action after the n-th page.
  List(Option<usize>, usize, Vec<Between>),
  SetPolicy(Policy),
}

/// What happens between two pages of a listing.
#[derive(Debug, Clone)]
enum Between {
  Nothing,
  /// Unregister the session the cursor points at.
  RemoveCursor,
  Do(Op),
}

fn pick() -> impl Strategy<Value = Pick> {
  prop_oneof![
    3 => any::<usize>().prop_map(Pick::Live),
    2 => any::<usize>().prop_map(Pick::Past),
    1 => (0..8u32, 0..24u64).prop_map(|(slot, seq)| Pick::Raw(Slot(slot), seq)),
  ]
}

fn ticket_pick() -> impl Strategy<Value = TicketPick> {
  prop_oneof![
    3 => any::<usize>().prop_map(TicketPick::Pending),
    1 => any::<usize>().prop_map(TicketPick::Any),
  ]
}

fn victim() -> impl Strategy<Value = Victim> {
  prop_oneof![
    4 => any::<usize>().prop_map(Victim::Candidate),
    2 => pick().prop_map(Victim::Pick),
    1 => Just(Victim::Nothing),
  ]
}

fn target() -> impl Strategy<Value = Target> {
  prop_oneof![
    2 => (0..SESSIONS.len()).prop_map(Target::Id),
    1 => pick().prop_map(Target::Pick),
  ]
}

fn lookup_at() -> impl Strategy<Value = LookupAt> {
  prop_oneof![
    8 => Just(LookupAt::Now),
    2 => (1u8..=6).prop_map(LookupAt::Earlier),
    2 => (1u8..=6).prop_map(LookupAt::Later),
    1 => Just(LookupAt::Nan),
    1 => Just(LookupAt::Never),
  ]
}

fn policy() -> impl Strategy<Value = Policy> {
  (
    option::of(1usize..=4),
    option::of(1usize..=3),
    any::<bool>(),
    option::of(1u8..=6),
    0usize..=3,
  )
    .prop_map(|(max, per_client, evict_idle, idle, concurrent)| Policy {
      max_sessions: max,
      max_sessions_per_client: per_client,
      evict_idle,
      idle_timeout_ms: idle.map(f64::from),
      max_concurrent_closes: concurrent,
    })
}

fn basic_op() -> impl Strategy<Value = Op> {
  let client = 0..CLIENTS.len();
  let session = 0..SESSIONS.len();
  let reason = 0..CloseReason::ALL.len();
  let take = prop_oneof![4 => 0usize..=3, 1 => Just(usize::MAX)];
  prop_oneof![
    4 => (client.clone(), session.clone()).prop_map(|(c, s)| Op::Register(c, s)),
    4 => (client.clone(), session.clone(), victim())
      .prop_map(|(c, s, v)| Op::RegisterEvicting(c, s, v)),
    2 => session.clone().prop_map(Op::Unregister),
    1 => (pick(), reason.clone()).prop_map(|(p, r)| Op::UnregisterSlot(p, r)),
    1 => (client.clone(), reason.clone()).prop_map(|(c, r)| Op::CleanupClient(c, r)),
    1 => (pick(), reason).prop_map(|(p, r)| Op::CloseRegistration(p, r)),
    1 => Just(Op::CloseAll),
    4 => target().prop_map(Op::Touch),
    5 => (session.clone(), lookup_at()).prop_map(|(s, at)| Op::Lookup(s, at)),
    2 => (target(), vec((0..METRIC_NAMES.len(), -5i8..=5), 0..3))
      .prop_map(|(t, updates)| Op::UpdateMetrics(t, updates)),
    2 => ticket_pick().prop_map(Op::StartClose),
    2 => (ticket_pick(), 0..OUTCOMES.len()).prop_map(|(t, o)| Op::Settle(t, o)),
    3 => (client, option::of(pick()), take).prop_map(|(c, p, t)| Op::Candidates(c, p, t)),
  ]
}

fn op(policy_changes: bool) -> BoxedStrategy<Op> {
  let between = prop_oneof![
    2 => Just(Between::Nothing),
    2 => Just(Between::RemoveCursor),
    3 => basic_op().prop_map(Between::Do),
  ];
  let list = (option::of(0..CLIENTS.len()), 1usize..=4, vec(between, 0..6))
    .prop_map(|(c, limit, between)| Op::List(c, limit, between));
  let ops = prop_oneof![12 => basic_op(), 2 => list].boxed();
  if policy_changes {
    prop_oneof![12 => ops, 2 => policy().prop_map(Op::SetPolicy)].boxed()
  } else {
    ops
  }
}

#[derive(Debug, Clone)]
struct Session {
  id: String,
  client: String,
  slot: Slot,
  seq: u64,
  registered_at: f64,
  /// The activity the registry records: registration, touches, and the
  /// lookups an eviction search folded in.
  last_activity: f64,
  /// Latest value of each metric, in the order first set.
  metrics: Vec<(String, f64)>,
}

#[derive(Debug, Clone)]
struct Closing {
  /// The embedder's business now: the core no longer names closes by id.
  #[allow(dead_code)]
  session: String,
  reason: CloseReason,
  /// Removal time, or the first `start_close` time.
  since: f64,
  started: bool,
  registered_at: f64,
}

#[derive(Default)]
struct Counters {
  registered: u64,
  closed: u64,
  by_reason: BTreeMap<&'static str, (CloseReason, u64)>,
  failures: u64,
  timeouts: u64,
  ended: u64,
  duration_total: f64,
  duration_max: f64,
  lifetime_total: f64,
}

/// The lookup time the embedder keeps for `slot` (none past the array's end).
fn lookup_of(lookups: &[f64], slot: Slot) -> f64 {
  lookups
    .get(slot.0 as usize)
    .copied()
    .unwrap_or(f64::NEG_INFINITY)
}

struct Model {
  policy: Policy,
  /// In registration order.
  live: Vec<Session>,
  /// Seqs of the live sessions in the registry's activity order, least
  /// recently active first.
  activity: Vec<u64>,
  /// Every registration ever made, as `(slot, seq)`.
  history: Vec<(Slot, u64)>,
  next_seq: u64,
  /// The number of the last ticket handed out.
  last_ticket: u64,
  closing: BTreeMap<Ticket, Closing>,
  disposed: bool,
  counters: Counters,
  /// The latest metrics of every session removed so far.
  gone_metrics: Vec<Vec<(String, f64)>>,
  /// Metric names in the order first set on any session.
  metric_names: Vec<String>,
}

impl Model {
  fn new(policy: Policy) -> Self {
    Model {
      policy,
      live: Vec::new(),
      activity: Vec::new(),
      history: Vec::new(),
      next_seq: 1,
      last_ticket: 0,
      closing: BTreeMap::new(),
      disposed: false,
      counters: Counters::default(),
      gone_metrics: Vec::new(),
      metric_names: Vec::new(),
    }
  }

  fn find(&self, session: &str) -> Option<usize> {
    self.live.iter().position(|s| s.id == session)
  }

  fn find_slot(&self, slot: Slot) -> Option<usize> {
    self.live.iter().position(|s| s.slot == slot)
  }

  fn find_seq(&self, seq: u64) -> usize {
    self.live.iter().position(|s| s.seq == seq).unwrap()
  }

  fn find_registration(&self, (slot, seq): (Slot, u64)) -> Option<usize> {
    self
      .live
      .iter()
      .position(|s| s.slot == slot && s.seq == seq)
  }

  fn client_len(&self, client: &str) -> usize {
    self.live.iter().filter(|s| s.client == client).count()
  }

  /// The later of the recorded activity and the lookup; a lookup not later
  /// than the recorded activity (NaN included) is none.
  fn effective(s: &Session, lookups: &[f64]) -> f64 {
    let at = lookup_of(lookups, s.slot);
    if at > s.last_activity {
      at
    } else {
      s.last_activity
    }
  }

  /// The limit that refuses a new session of `client` in a registry of
  /// `total` where it owns `own`: the client's own first.
  fn full_at(&self, total: usize, own: usize) -> Option<LimitScope> {
    if self
      .policy
      .max_sessions_per_client
      .is_some_and(|max| own >= max)
    {
      Some(LimitScope::Client)
    } else if self.policy.max_sessions.is_some_and(|max| total >= max) {
      Some(LimitScope::Registry)
    } else {
      None
    }
  }

  fn full(&self, client: &str) -> Option<LimitScope> {
    self.full_at(self.live.len(), self.client_len(client))
  }

  /// Whether removing `live[i]` leaves room for a session of `client`.
  fn makes_room(&self, i: usize, client: &str) -> bool {
    let own = self.client_len(client) - usize::from(self.live[i].client == client);
    self.full_at(self.live.len() - 1, own).is_none()
  }

  fn limit_error(&self, scope: LimitScope, client: &str) -> Error {
    match scope {
      LimitScope::Registry => Error::SessionLimit {
        max: self.policy.max_sessions.unwrap(),
      },
      LimitScope::Client => Error::ClientSessionLimit {
        client_id: client.to_owned(),
        max: self.policy.max_sessions_per_client.unwrap(),
      },
    }
  }

  /// What refuses a registration before limits are looked at.
  fn admit(&self, session: &str) -> Result<(), Error> {
    if self.disposed {
      return Err(Error::Disposed);
    }
    match self.find(session) {
      Some(i) => Err(Error::AlreadyRegistered {
        session_id: session.to_owned(),
        client_id: self.live[i].client.clone(),
      }),
      None => Ok(()),
    }
  }

  fn insert(&mut self, client: &str, session: &str, slot: Slot, now: f64) {
    assert!(
      self.live.iter().all(|s| s.slot != slot),
      "slot {slot} handed out while in use"
    );
    let seq = self.next_seq;
    self.next_seq += 1;
    self.live.push(Session {
      id: session.to_owned(),
      client: client.to_owned(),
      slot,
      seq,
      registered_at: now,
      last_activity: now,
      metrics: Vec::new(),
    });
    self.activity.push(seq);
    self.history.push((slot, seq));
    self.counters.registered += 1;
  }

  /// Removes `live[i]` for closing and returns the order the registry must
  /// give; `started` when its close counts as started at once.
  fn remove(&mut self, i: usize, reason: CloseReason, now: f64, started: bool) -> CloseOrder {
    let session = self.live.remove(i);
    self.activity.retain(|&seq| seq != session.seq);
    self.counters.closed += 1;
    self
      .counters
      .by_reason
      .entry(reason.as_str())
      .or_insert((reason, 0))
      .1 += 1;
    self.counters.lifetime_total += (now - session.registered_at).max(0.0);
    self.last_ticket += 1;
    self.closing.insert(
      Ticket(self.last_ticket),
      Closing {
        session: session.id,
        reason,
        since: now,
        started,
        registered_at: session.registered_at,
      },
    );
    self.gone_metrics.push(session.metrics);
    CloseOrder {
      ticket: Ticket(self.last_ticket),
      slot: session.slot,
    }
  }

  /// Activity of `live[i]`: the time never goes back, and it becomes the
  /// most recently active.
  fn touch(&mut self, i: usize, now: f64) {
    let session = &mut self.live[i];
    session.last_activity = session.last_activity.max(now);
    let seq = session.seq;
    self.activity.retain(|&s| s != seq);
    self.activity.push(seq);
  }

  fn slot_of_seq(&self, seq: u64) -> Slot {
    self.live[self.find_seq(seq)].slot
  }

  /// The seq after `seq` in the activity order.
  fn next_by_activity(&self, seq: u64) -> Option<u64> {
    let at = self.activity.iter().position(|&s| s == seq).unwrap();
    self.activity.get(at + 1).copied()
  }

  /// A lookup at `at`, later than the recorded activity, learned late: the
  /// session takes it as its activity and moves to behind the last session,
  /// counted from the most recently active end, that was active no later
  /// than `at`, but never in front of where it was.
  fn fold(&mut self, seq: u64, at: f64) {
    let i = self.find_seq(seq);
    self.live[i].last_activity = at;
    let was = self.activity.iter().position(|&s| s == seq).unwrap();
    self.activity.remove(was);
    let mut place = self.activity.len();
    while place > was && self.live[self.find_seq(self.activity[place - 1])].last_activity > at {
      place -= 1;
    }
    self.activity.insert(place, seq);
  }

  /// The eviction search, written out naively: candidates under the limit
  /// that binds now, after the registration `after`, at most `take`.
  fn eviction_candidates(
    &mut self,
    client: &str,
    after: Option<(Slot, u64)>,
    take: usize,
    lookups: &[f64],
  ) -> Vec<(Slot, u64)> {
    match self.full(client) {
      None => Vec::new(),
      Some(LimitScope::Registry) => {
        let mut next = match after.and_then(|r| self.find_registration(r)) {
          Some(i) => self.next_by_activity(self.live[i].seq),
          None => self.activity.first().copied(),
        };
        let mut found = Vec::new();
        while let Some(seq) = next {
          if found.len() >= take {
            break;
          }
          next = self.next_by_activity(seq);
          let s = &self.live[self.find_seq(seq)];
          let (slot, at) = (s.slot, lookup_of(lookups, s.slot));
          if at > s.last_activity {
            self.fold(seq, at);
            // Folded to right before where the walk goes on: met again now.
            if self.next_by_activity(seq) == next {
              next = Some(seq);
            }
          } else {
            found.push((slot, seq));
          }
        }
        found
      }
      Some(LimitScope::Client) => {
        let mut own: Vec<(f64, u64, Slot)> = self
          .live
          .iter()
          .filter(|s| s.client == client)
          .map(|s| (Model::effective(s, lookups), s.seq, s.slot))
          .collect();
        own.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
        let start = after
          .and_then(|(slot, seq)| own.iter().position(|s| s.2 == slot && s.1 == seq))
          .map_or(0, |at| at + 1);
        own
          .iter()
          .skip(start)
          .take(take)
          .map(|&(_, seq, slot)| (slot, seq))
          .collect()
      }
    }
  }

  fn running_closes(&self) -> usize {
    self.closing.values().filter(|c| c.started).count()
  }

  fn metrics(&self) -> Metrics {
    let c = &self.counters;
    let average = |total: f64, n: u64| if n == 0 { 0.0 } else { total / n as f64 };
    let metric_totals = self
      .metric_names
      .iter()
      .map(|name| {
        let total: f64 = self
          .live
          .iter()
          .map(|s| &s.metrics)
          .chain(self.gone_metrics.iter())
          .flat_map(|metrics| metrics.iter())
          .filter(|(n, _)| n == name)
          .map(|(_, v)| v)
          .sum();
        (name.clone(), total)
      })
      .collect();
    Metrics {
      sessions_registered: c.registered,
      sessions_closed: c.closed,
      closes_by_reason: c.by_reason.values().copied().collect(),
      close_failures: c.failures,
      close_timeouts: c.timeouts,
      average_close_duration_ms: average(c.duration_total, c.ended),
      max_close_duration_ms: c.duration_max,
      average_session_lifetime_ms: average(c.lifetime_total, c.closed),
      metric_totals,
    }
  }
}

struct Harness {
  registry: Registry,
  model: Model,
  /// The embedder's index: session id -> (client, slot), following the
  /// registry's answers.
  index: HashMap<String, (String, Slot)>,
  /// The embedder's lookup times by slot; minus infinity: none.
  lookups: Vec<f64>,
  /// Policies may change mid-run: sessions above a lowered limit stay, so
  /// limits hold only for what each registration admits.
  policy_changes: bool,
  /// The last recorded activity seen per registration, to prove it never
  /// goes back.
  seen_recorded: HashMap<u64, f64>,
  /// The same for the reported activity, forgotten when the embedder
  /// overwrites a lookup with an earlier time.
  seen_reported: HashMap<u64, f64>,
}

impl Harness {
  fn new(policy: Policy, policy_changes: bool) -> Self {
    let mut registry = Registry::new();
    registry.set_policy(policy.clone());
    Harness {
      registry,
      model: Model::new(policy),
      index: HashMap::new(),
      lookups: Vec::new(),
      policy_changes,
      seen_recorded: HashMap::new(),
      seen_reported: HashMap::new(),
    }
  }

  fn resolve(&self, pick: Pick) -> (Slot, u64) {
    let m = &self.model;
    match pick {
      Pick::Live(k) if !m.live.is_empty() => {
        let s = &m.live[k % m.live.len()];
        (s.slot, s.seq)
      }
      Pick::Past(k) if !m.history.is_empty() => m.history[k % m.history.len()],
      Pick::Raw(slot, seq) => (slot, seq),
      _ => (Slot(0), 0),
    }
  }

  /// The slot a target names; `None` for an id the index does not hold
  /// (the embedder makes no call then).
  fn target(&self, target: Target) -> Option<Slot> {
    match target {
      Target::Id(s) => {
        let slot = self.index.get(SESSIONS[s]).map(|&(_, slot)| slot);
        assert_eq!(slot.is_some(), self.model.find(SESSIONS[s]).is_some());
        slot
      }
      Target::Pick(pick) => Some(self.resolve(pick).0),
    }
  }

  fn held_by(&self, session: &str) -> Option<String> {
    self.index.get(session).map(|(client, _)| client.clone())
  }

  fn ticket(&self, pick: TicketPick) -> Ticket {
    match pick {
      TicketPick::Pending(k) if !self.model.closing.is_empty() => *self
        .model
        .closing
        .keys()
        .nth(k % self.model.closing.len())
        .unwrap(),
      TicketPick::Pending(_) => Ticket(self.model.last_ticket + 1),
      TicketPick::Any(k) => Ticket((k as u64) % (self.model.last_ticket + 1) + 1),
    }
  }

  /// The embedder drops what the registry removed from its index, by slot.
  fn forget(&mut self, orders: &[CloseOrder]) {
    for order in orders {
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

  /// The embedder records a new session in its index and forgets the
  /// lookups of whatever had its slot before.
  fn remember(&mut self, client: &str, session: &str, slot: Slot) {
    let at = slot.0 as usize;
    if self.lookups.len() <= at {
      self.lookups.resize(at + 1, f64::NEG_INFINITY);
    }
    self.lookups[at] = f64::NEG_INFINITY;
    let old = self
      .index
      .insert(session.to_owned(), (client.to_owned(), slot));
    assert_eq!(old, None);
  }

  /// One eviction search call, on the registry and on the model alike.
  fn candidates(
    &mut self,
    client: &str,
    after: Option<(Slot, u64)>,
    take: usize,
  ) -> Vec<(Slot, u64)> {
    let got = self
      .registry
      .eviction_candidates(client, after, take, &self.lookups);
    let expected = self
      .model
      .eviction_candidates(client, after, take, &self.lookups);
    assert_eq!(
      got, expected,
      "eviction_candidates({client}, {after:?}, {take})"
    );
    got
  }

  /// A successful registration of `client` never leaves a count above its limit.
  fn assert_admitted_within_limits(&self, client: &str) {
    let policy = self.registry.policy();
    let store = self.registry.store();
    if let Some(max) = policy.max_sessions {
      assert!(
        store.session_count() <= max,
        "{} sessions, max {max}",
        store.session_count()
      );
    }
    if let Some(max) = policy.max_sessions_per_client {
      let len = store.client_len(client);
      assert!(len <= max, "client {client} holds {len}, max {max}");
    }
  }

  fn apply(&mut self, op: Op, now: f64, deep: bool) {
    match op {
      Op::Register(c, s) => self.register(CLIENTS[c], SESSIONS[s], now),
      Op::RegisterEvicting(c, s, victim) => {
        self.register_evicting(CLIENTS[c], SESSIONS[s], victim, now)
      }
      Op::Unregister(s) => self.unregister(SESSIONS[s], now),
      Op::UnregisterSlot(pick, reason) => {
        let reason = CloseReason::ALL[reason];
        let (slot, _) = self.resolve(pick);
        let got = self.registry.unregister(slot, reason, now);
        let expected = self
          .model
          .find_slot(slot)
          .map(|i| self.model.remove(i, reason, now, true));
        assert_eq!(got, expected, "unregister({slot}, {reason:?})");
        self.forget(&Vec::from_iter(got));
      }
      Op::CleanupClient(c, reason) => {
        let (client, reason) = (CLIENTS[c], CloseReason::ALL[reason]);
        let orders = self.registry.cleanup_client(client, reason, now);
        let mut expected = Vec::new();
        while let Some(i) = self.model.live.iter().position(|s| s.client == client) {
          expected.push(self.model.remove(i, reason, now, false));
        }
        assert_eq!(orders, expected, "cleanup_client({client}, {reason:?})");
        self.forget(&orders);
      }
      Op::CloseRegistration(pick, reason) => {
        let reason = CloseReason::ALL[reason];
        let registration = self.resolve(pick);
        let got = self
          .registry
          .close_registration(registration.0, registration.1, reason, now);
        let expected = self
          .model
          .find_registration(registration)
          .map(|i| self.model.remove(i, reason, now, false));
        assert_eq!(got, expected, "close_registration{registration:?}");
        self.forget(&Vec::from_iter(got));
      }
      Op::CloseAll => {
        let orders = self.registry.close_all(now);
        let mut expected = Vec::new();
        while !self.model.live.is_empty() {
          expected.push(self.model.remove(0, CloseReason::Shutdown, now, false));
        }
        assert_eq!(orders, expected, "close_all");
        self.forget(&orders);
        assert!(self.index.is_empty());
      }
      Op::Touch(target) => {
        let Some(slot) = self.target(target) else {
          return;
        };
        self.registry.touch(slot, now);
        if let Some(i) = self.model.find_slot(slot) {
          self.model.touch(i, now);
        }
      }
      Op::Lookup(s, at) => {
        let Some(&(_, slot)) = self.index.get(SESSIONS[s]) else {
          return;
        };
        let at = match at {
          LookupAt::Now => now,
          LookupAt::Earlier(n) => now - f64::from(n),
          LookupAt::Later(n) => now + f64::from(n),
          LookupAt::Nan => f64::NAN,
          LookupAt::Never => f64::NEG_INFINITY,
        };
        let i = self.model.find_slot(slot).expect("indexed");
        let before = Model::effective(&self.model.live[i], &self.lookups);
        self.lookups[slot.0 as usize] = at;
        // The lookup array keeps one time per slot: an earlier time written
        // over a later one loses it, and the reported activity goes back.
        if Model::effective(&self.model.live[i], &self.lookups) < before {
          self.seen_reported.remove(&self.model.live[i].seq);
        }
      }
      Op::UpdateMetrics(target, updates) => {
        let Some(slot) = self.target(target) else {
          return;
        };
        let updates: Vec<(&str, f64)> = updates
          .iter()
          .map(|&(name, value)| (METRIC_NAMES[name], f64::from(value)))
          .collect();
        let done = self.registry.update_metrics(slot, &updates);
        let i = self.model.find_slot(slot);
        assert_eq!(done, i.is_some(), "update_metrics({slot})");
        if let Some(i) = i {
          for (name, value) in updates {
            let metrics = &mut self.model.live[i].metrics;
            match metrics.iter_mut().find(|(n, _)| n == name) {
              Some(entry) => entry.1 = value,
              None => metrics.push((name.to_owned(), value)),
            }
            if !self.model.metric_names.iter().any(|n| n == name) {
              self.model.metric_names.push(name.to_owned());
            }
          }
        }
      }
      Op::StartClose(pick) => {
        let ticket = self.ticket(pick);
        self.registry.start_close(ticket, now);
        if let Some(closing) = self.model.closing.get_mut(&ticket) {
          if !closing.started {
            closing.started = true;
            closing.since = now;
          }
        }
      }
      Op::Settle(pick, outcome) => {
        let ticket = self.ticket(pick);
        let outcome = OUTCOMES[outcome];
        let report = self.registry.settle(ticket, outcome, now);
        let expected = self.model.closing.remove(&ticket).map(|closing| {
          let duration_ms = (now - closing.since).max(0.0);
          let c = &mut self.model.counters;
          c.ended += 1;
          c.duration_total += duration_ms;
          c.duration_max = c.duration_max.max(duration_ms);
          match outcome {
            CloseOutcome::Closed => {}
            CloseOutcome::Failed => c.failures += 1,
            CloseOutcome::TimedOut => c.timeouts += 1,
          }
          CloseReport {
            reason: closing.reason,
            outcome,
            duration_ms,
            registered_at: closing.registered_at,
          }
        });
        assert_eq!(report, expected, "settle({ticket}, {outcome:?})");
        // Only the first report of a close counts.
        let again = OUTCOMES[(OUTCOMES.iter().position(|&o| o == outcome).unwrap() + 1) % 3];
        assert_eq!(self.registry.settle(ticket, again, now + 1.0), None);
      }
      Op::Candidates(c, after, take) => {
        let after = after.map(|pick| self.resolve(pick));
        let found = self.candidates(CLIENTS[c], after, take);
        assert!(found.len() <= take);
      }
      Op::List(client, limit, between) => {
        self.list_walk(client.map(|c| CLIENTS[c]), limit, &between, now, deep)
      }
      Op::SetPolicy(policy) => {
        self.registry.set_policy(policy.clone());
        assert_eq!(self.registry.policy(), &policy);
        self.model.policy = policy;
      }
    }
  }

  fn register(&mut self, client: &str, session: &str, now: f64) {
    let held_by = self.held_by(session);
    let result = self
      .registry
      .register(client, session, held_by.as_deref(), now);
    let expected = self
      .model
      .admit(session)
      .and_then(|()| match self.model.full(client) {
        Some(scope) => Err(self.model.limit_error(scope, client)),
        None => Ok(()),
      });
    match expected {
      Err(error) => assert_eq!(result, Err(error), "register({client}, {session})"),
      Ok(()) => {
        let slot = result.unwrap_or_else(|e| panic!("register({client}, {session}): {e:?}"));
        self.model.insert(client, session, slot, now);
        self.remember(client, session, slot);
        self.assert_admitted_within_limits(client);
      }
    }
  }

  fn register_evicting(&mut self, client: &str, session: &str, victim: Victim, now: f64) {
    let victim = match victim {
      Victim::Candidate(k) => {
        let candidates = self.candidates(client, None, usize::MAX);
        match candidates.len() {
          0 => None,
          n => Some(candidates[k % n]),
        }
      }
      Victim::Pick(pick) => Some(self.resolve(pick)),
      Victim::Nothing => None,
    };
    let held_by = self.held_by(session);
    let result = self
      .registry
      .register_evicting(client, session, held_by.as_deref(), victim, now);
    let what = format!("register_evicting({client}, {session}, {victim:?})");
    let admitted = result.is_ok();
    if let Err(error) = self.model.admit(session) {
      assert_eq!(result, Err(error), "{what}");
      return;
    }
    match self.model.full(client) {
      None => {
        let (slot, order) = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(order, None, "{what}: room without evicting");
        self.model.insert(client, session, slot, now);
        self.remember(client, session, slot);
      }
      Some(scope) => {
        let evictable = victim
          .and_then(|v| self.model.find_registration(v))
          .filter(|&i| {
            (scope == LimitScope::Registry || self.model.live[i].client == client)
              && self.model.makes_room(i, client)
          });
        match evictable {
          None => assert_eq!(result, Err(self.model.limit_error(scope, client)), "{what}"),
          Some(i) => {
            let (slot, order) = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let expected = self.model.remove(i, CloseReason::Evicted, now, false);
            assert_eq!(order, Some(expected), "{what}");
            // The victim leaves the index before its slot is handed out again.
            self.forget(&[expected]);
            self.model.insert(client, session, slot, now);
            self.remember(client, session, slot);
          }
        }
      }
    }
    // A refused call leaves the registry as it was, which may be above a
    // limit lowered since; only an admission must respect the limits.
    if admitted {
      self.assert_admitted_within_limits(client);
    }
  }

  /// Unregisters by id, through the index: an unknown id means no call.
  fn unregister(&mut self, session: &str, now: f64) {
    let Some(&(_, slot)) = self.index.get(session) else {
      assert_eq!(self.model.find(session), None, "{session} not in the index");
      return;
    };
    let result = self.registry.unregister(slot, CloseReason::Unregister, now);
    let i = self.model.find(session).expect("registered");
    let expected = self.model.remove(i, CloseReason::Unregister, now, true);
    assert_eq!(result, Some(expected), "unregister({session})");
    self.forget(&[expected]);
    assert_eq!(
      self.registry.unregister(slot, CloseReason::Unregister, now),
      None,
      "unregister({session}) again"
    );
  }

  /// Pages through `list` to the end with `between[n]` done after page n;
  /// every page must be what the model lists then, and the whole walk must
  /// visit every session exactly once, in registration order.
  fn list_walk(
    &mut self,
    client: Option<&str>,
    limit: usize,
    between: &[Between],
    now: f64,
    deep: bool,
  ) {
    let matches = |s: &Session| client.is_none_or(|c| s.client == c);
    let mut ever: HashSet<u64> = self
      .model
      .live
      .iter()
      .filter(|s| matches(s))
      .map(|s| s.seq)
      .collect();
    let mut visited: Vec<u64> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for page_no in 0.. {
      assert!(page_no < 100, "list never ends");
      let (page, next) = self.registry.list(client, cursor, limit);
      let after = cursor.map_or(0, |c| c.seq);
      let rest: Vec<&Session> = self
        .model
        .live
        .iter()
        .filter(|s| matches(s) && s.seq > after)
        .collect();
      let expected_page: Vec<Slot> = rest.iter().take(limit).map(|s| s.slot).collect();
      let expected_next = (rest.len() > limit).then(|| Cursor {
        seq: rest[limit - 1].seq,
        slot: rest[limit - 1].slot,
      });
      assert_eq!(
        (&page, next),
        (&expected_page, expected_next),
        "list({client:?}, {cursor:?}, {limit})"
      );
      visited.extend(rest.iter().take(limit).map(|s| s.seq));
      let Some(next) = next else { break };
      let decoded = Cursor::decode(&next.encode());
      assert_eq!(
        decoded,
        Ok(next),
        "cursor {next:?} encoded as {}",
        next.encode()
      );
      cursor = Some(next);
      match between.get(page_no) {
        None | Some(Between::Nothing) => {}
        Some(Between::RemoveCursor) => {
          if let Some(i) = self.model.live.iter().position(|s| s.seq == next.seq) {
            let id = self.model.live[i].id.clone();
            self.unregister(&id, now);
          }
        }
        Some(Between::Do(op)) => self.apply(op.clone(), now, deep),
      }
      self.check(now, deep);
      ever.extend(self.model.live.iter().filter(|s| matches(s)).map(|s| s.seq));
    }
    assert!(
      visited.windows(2).all(|w| w[0] < w[1]),
      "visited out of registration order or twice: {visited:?}"
    );
    assert!(visited.iter().all(|seq| ever.contains(seq)));
    for s in self.model.live.iter().filter(|s| matches(s)) {
      assert!(
        visited.contains(&s.seq),
        "walk of {client:?} missed {} (seq {}): {visited:?}",
        s.id,
        s.seq
      );
    }
  }

  /// The eviction search of every client, paged every way. Each call may
  /// fold lookups into the activity order; the model replays each one.
  fn check_candidates(&mut self) {
    for client in CLIENTS {
      let scope = self.model.full(client);
      // A first pass meets every session and so folds every lookup in; the
      // order stays put from then on.
      let first = self.candidates(client, None, usize::MAX);
      let all = self.candidates(client, None, usize::MAX);
      match scope {
        None => assert!(all.is_empty(), "no limit binds {client}"),
        Some(LimitScope::Client) => {
          assert_eq!(first, all, "without folding, searches agree");
          assert_eq!(all.len(), self.model.client_len(client));
        }
        Some(LimitScope::Registry) => {
          assert_eq!(all.len(), self.model.live.len());
          for s in &self.model.live {
            assert_eq!(
              Model::effective(s, &self.lookups),
              s.last_activity,
              "a lookup of {} left unfolded by a whole search",
              s.id
            );
          }
        }
      }
      for take in [0, 1, 2, 3] {
        // Page through with the cursor: every candidate once, in order.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
          let page = self.candidates(client, after, take.max(1));
          if page.is_empty() {
            break;
          }
          after = page.last().copied();
          paged.extend(page);
        }
        assert_eq!(paged, all, "eviction_candidates({client}) paged by {take}");
        let first: Vec<(Slot, u64)> = all.iter().copied().take(take).collect();
        assert_eq!(self.candidates(client, None, take), first);
      }
      // A cursor whose registration is gone or was replaced starts over.
      let first: Vec<(Slot, u64)> = all.iter().copied().take(2).collect();
      let gone = (Slot(u32::MAX - 1), u64::MAX);
      assert_eq!(self.candidates(client, Some(gone), 2), first);
      if let Some(s) = self.model.live.first() {
        let replaced = (s.slot, s.seq + 1000);
        assert_eq!(self.candidates(client, Some(replaced), 2), first);
      }
    }
  }

  /// Compares everything observable; `deep` adds the eviction searches,
  /// which fold lookups (so they are not run after every step, or no
  /// lookup would ever wait to be folded).
  fn check(&mut self, now: f64, deep: bool) {
    if deep {
      self.check_candidates();
    }
    let registry = &self.registry;
    let model = &self.model;
    let lookups = &self.lookups[..];
    let store = registry.store();

    assert_eq!(store.session_count(), model.live.len());
    assert_eq!(
      registry.registrations(),
      model
        .live
        .iter()
        .map(|s| (s.slot, s.seq))
        .collect::<Vec<_>>()
    );
    let index: HashMap<String, (String, Slot)> = model
      .live
      .iter()
      .map(|s| (s.id.clone(), (s.client.clone(), s.slot)))
      .collect();
    assert_eq!(self.index, index, "the embedder's index");
    for s in &model.live {
      let info = registry
        .session_info(s.slot, lookups)
        .expect("slot occupied");
      let view = info.view;
      assert_eq!(
        (view.client_id, view.slot, view.seq),
        (s.client.as_str(), s.slot, s.seq)
      );
      assert_eq!(
        view.registered_at, s.registered_at,
        "registered_at of {}",
        s.id
      );
      let reported = Model::effective(s, lookups);
      assert_eq!(view.last_activity, reported, "last activity of {}", s.id);
      let recorded = registry
        .session_info(s.slot, &[])
        .expect("slot occupied")
        .view
        .last_activity;
      assert_eq!(recorded, s.last_activity, "recorded activity of {}", s.id);
      assert_eq!(store.get(s.slot).unwrap().last_activity, s.last_activity);
      for (seen, now_seen, what) in [
        (&mut self.seen_recorded, recorded, "recorded"),
        (&mut self.seen_reported, reported, "reported"),
      ] {
        let seen = seen.entry(s.seq).or_insert(now_seen);
        assert!(
          now_seen >= *seen,
          "{what} activity of {} went back from {seen} to {now_seen}",
          s.id
        );
        *seen = now_seen;
      }
      let metrics: Vec<(&str, f64)> = info.metrics.iter().map(|(n, v)| (&**n, *v)).collect();
      let expected: Vec<(&str, f64)> = s.metrics.iter().map(|(n, v)| (n.as_str(), *v)).collect();
      assert_eq!(metrics, expected, "metrics of {}", s.id);
      let idle = |at: f64| model.policy.idle_timeout_ms.is_some_and(|t| now - at > t);
      assert_eq!(
        registry.idle_expired(s.slot, now, lookups),
        idle(reported),
        "idle of {}",
        s.id
      );
      assert_eq!(
        registry.idle_expired(s.slot, now, &[]),
        idle(s.last_activity),
        "idle of {} without lookups",
        s.id
      );
    }
    for n in 0..8 {
      let slot = Slot(n);
      if model.find_slot(slot).is_none() {
        assert!(
          registry.session_info(slot, lookups).is_none(),
          "{slot} is free"
        );
        assert!(!registry.idle_expired(slot, f64::INFINITY, lookups));
      }
    }

    let by_activity: Vec<Slot> = store.by_activity().collect();
    let expected: Vec<Slot> = model
      .activity
      .iter()
      .map(|&seq| model.slot_of_seq(seq))
      .collect();
    assert_eq!(by_activity, expected, "activity order");
    assert_eq!(store.least_active(), expected.first().copied());

    let mut clients = 0;
    for client in CLIENTS {
      let own: Vec<Slot> = model
        .live
        .iter()
        .filter(|s| s.client == *client)
        .map(|s| s.slot)
        .collect();
      clients += usize::from(!own.is_empty());
      assert_eq!(store.client_slots(client).collect::<Vec<_>>(), own);
      assert_eq!(store.client_len(client), own.len());
      assert_eq!(registry.full(client), model.full(client), "full({client})");
      if !self.policy_changes {
        if let Some(max) = model.policy.max_sessions_per_client {
          assert!(
            own.len() <= max,
            "client {client} holds {}, max {max}",
            own.len()
          );
        }
      }
    }
    assert_eq!(store.client_count(), clients);
    if !self.policy_changes {
      if let Some(max) = model.policy.max_sessions {
        assert!(model.live.len() <= max);
      }
    }

    assert_eq!(registry.metrics(), model.metrics(), "metrics");

    assert_eq!(registry.closes_in_flight(), model.closing.len());
    for &ticket in model.closing.keys() {
      assert!(registry.is_closing(ticket), "{ticket} in flight");
    }
    assert!(!registry.is_closing(Ticket(model.last_ticket + 1)));
    assert_eq!(
      registry.close_capacity(),
      model
        .policy
        .max_concurrent_closes
        .saturating_sub(model.running_closes()),
      "close capacity"
    );
    assert_eq!(registry.is_disposed(), model.disposed);
  }
}

fn run(policy: Policy, dispose_at: Option<usize>, ops: Vec<(Op, i8, bool)>, policy_changes: bool) {
  let mut harness = Harness::new(policy, policy_changes);
  harness.check(0.0, true);
  let mut clock = 0.0;
  for (n, (op, jitter, deep)) in ops.into_iter().enumerate() {
    clock += 1.0;
    // Some calls come with a clock that stepped back.
    let now = clock + f64::from(jitter);
    if dispose_at == Some(n) {
      harness.registry.dispose();
      harness.registry.dispose();
      harness.model.disposed = true;
    }
    harness.apply(op, now, deep);
    harness.check(now, deep);
  }
  harness.check(clock, true);
}

proptest! {
  // Failures are reported, not persisted: this file is the whole test.
  #![proptest_config(ProptestConfig {
    cases: 512,
    failure_persistence: None,
    ..ProptestConfig::default()
  })]

  /// A fixed policy: no count ever exceeds its limit.
  #[test]
  fn policy_registry_agrees_with_model(
    policy in policy(),
    dispose_at in option::of(0usize..120),
    ops in vec((op(false), -4i8..=2, prop::bool::weighted(0.3)), 1..80),
  ) {
    run(policy, dispose_at, ops, false);
  }

  /// Limits lowered below the sessions already registered: those stay, but a
  /// registration, evicting or not, is admitted only within the limits.
  #[test]
  fn changed_policy_admits_only_within_limits(
    policy in policy(),
    ops in vec((op(true), -4i8..=2, prop::bool::weighted(0.3)), 1..80),
  ) {
    run(policy, None, ops, true);
  }
}

/// The shortest sequence the second property above shrinks to: a per-client
/// limit lowered below what a client holds, then a registration evicting one
/// of that client's sessions. The registry documents that it fails "if the
/// victim would not make room", yet it evicted and registered anyway.
#[test]
fn evicting_under_a_lowered_limit_does_not_admit_past_it() {
  let mut registry = Registry::new();
  registry.register("c", "a", None, 0.0).unwrap();
  registry.register("c", "b", None, 0.0).unwrap();
  registry.set_policy(Policy {
    max_sessions_per_client: Some(1),
    ..Policy::default()
  });
  let victim = registry.eviction_candidates("c", None, 1, &[])[0];
  let result = registry.register_evicting("c", "d", None, Some(victim), 1.0);
  assert_eq!(
    result,
    Err(Error::ClientSessionLimit {
      client_id: "c".into(),
      max: 1
    })
  );
  assert_eq!(registry.store().client_len("c"), 2);
  assert_eq!(registry.metrics().sessions_closed, 0);
}

/// Without a victim, a full registry refuses and changes nothing; one with
/// room registers and leaves the victim alone.
#[test]
fn evicting_without_a_victim_only_registers_with_room() {
  let mut registry = Registry::new();
  registry.set_policy(Policy {
    max_sessions: Some(2),
    evict_idle: true,
    ..Policy::default()
  });
  let a = registry.register("c", "a", None, 0.0).unwrap();
  let a_seq = registry.store().get(a).unwrap().seq;
  let (b, order) = registry
    .register_evicting("c", "b", None, Some((a, a_seq)), 1.0)
    .unwrap();
  assert_eq!(order, None, "room without evicting");
  assert_ne!(a, b);
  assert_eq!(
    registry.register_evicting("c", "d", None, None, 2.0),
    Err(Error::SessionLimit { max: 2 })
  );
  assert_eq!(
    registry.register_evicting("c", "d", Some("c2"), None, 2.0),
    Err(Error::AlreadyRegistered {
      session_id: "d".into(),
      client_id: "c2".into()
    }),
    "a taken id is refused before the limit"
  );
  assert_eq!(registry.store().session_count(), 2);
  assert_eq!(registry.metrics().sessions_closed, 0);
  // No limit binds: nothing to search.
  registry.set_policy(Policy::default());
  assert!(registry
    .eviction_candidates("c", None, usize::MAX, &[])
    .is_empty());
}

/// The eviction search folds a lookup into the activity order as it meets
/// it, and meets the folded session again when it lands right there.
#[test]
fn the_eviction_search_folds_lookups_as_it_walks() {
  let mut registry = Registry::new();
  registry.set_policy(Policy {
    max_sessions: Some(3),
    evict_idle: true,
    ..Policy::default()
  });
  let [a, b, c] = [1.0, 2.0, 3.0].map(|t| registry.register("c", "x", None, t).unwrap());
  let mut lookups = vec![f64::NEG_INFINITY; 3];
  // `a` looked up at 2.5: between `b` and `c`; `b` at 2 (no later than its
  // activity): no lookup.
  lookups[a.0 as usize] = 2.5;
  lookups[b.0 as usize] = 2.0;
  let first = registry.eviction_candidates("c", None, 1, &lookups);
  assert_eq!(first.iter().map(|&(s, _)| s).collect::<Vec<_>>(), [b]);
  let order: Vec<Slot> = registry.store().by_activity().collect();
  assert_eq!(order, [b, a, c], "folded on the way");
  assert_eq!(registry.store().get(a).unwrap().last_activity, 2.5);
  // Folded to the very place the walk was at: met again at once.
  lookups[b.0 as usize] = 2.2;
  let all = registry.eviction_candidates("c", None, usize::MAX, &lookups);
  assert_eq!(all.iter().map(|&(s, _)| s).collect::<Vec<_>>(), [b, a, c]);
  assert_eq!(registry.store().get(b).unwrap().last_activity, 2.2);
  // Folded further on: met again there.
  lookups[b.0 as usize] = 2.7;
  let all = registry.eviction_candidates("c", None, usize::MAX, &lookups);
  assert_eq!(all.iter().map(|&(s, _)| s).collect::<Vec<_>>(), [a, b, c]);
  // Resuming after a candidate goes on in the order as it is now.
  let rest = registry.eviction_candidates("c", Some(all[0]), usize::MAX, &lookups);
  assert_eq!(rest, all[1..]);
}

/// `list` with the largest limit (a natural "no limit") lists everything.
#[test]
fn list_with_the_largest_limit_lists_everything() {
  let mut registry = Registry::new();
  let a = registry.register("c", "a", None, 0.0).unwrap();
  let b = registry.register("c", "b", None, 0.0).unwrap();
  assert_eq!(registry.list(None, None, usize::MAX), (vec![a, b], None));
  assert_eq!(
    registry.list(Some("c"), None, usize::MAX),
    (vec![a, b], None)
  );
}
