//! Random operation sequences against a registry with a lifecycle policy
//! (limits, eviction, the activity order, paging, metrics, close capacity)
//! and a deliberately naive model; after every step both must agree on
//! everything observable.

use std::collections::{BTreeMap, HashMap, HashSet};

use nity_registry_core::{
  CloseOrder, CloseOutcome, CloseReason, CloseReport, Cursor, Error, LimitScope, Metrics, Policy,
  Registry, Slot, Ticket, Unregister,
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
  /// The n-th of `eviction_candidates` for the scope the registry is full in.
  Candidate(usize),
  Pick(Pick),
}

#[derive(Debug, Clone, Copy)]
enum TicketPick {
  /// The n-th close in flight.
  Pending(usize),
  /// Any ticket handed out so far, or the next one.
  Any(usize),
}

#[derive(Debug, Clone)]
enum Op {
  Register(usize, usize),
  RegisterEvicting(usize, usize, Victim),
  Unregister(usize),
  CleanupClient(usize),
  CloseRegistration(Pick, usize),
  CloseAll,
  Touch(Pick),
  TouchSession(usize),
  NoteLookup(Pick),
  UpdateMetrics(usize, Vec<(usize, i8)>),
  StartClose(TicketPick),
  /// Settle a close, then settle it again with another outcome.
  Settle(TicketPick, usize),
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
    2 => any::<usize>().prop_map(Victim::Candidate),
    1 => pick().prop_map(Victim::Pick),
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
  prop_oneof![
    4 => (client.clone(), session.clone()).prop_map(|(c, s)| Op::Register(c, s)),
    4 => (client.clone(), session.clone(), victim())
      .prop_map(|(c, s, v)| Op::RegisterEvicting(c, s, v)),
    2 => session.clone().prop_map(Op::Unregister),
    1 => client.prop_map(Op::CleanupClient),
    1 => (pick(), 0..CloseReason::ALL.len()).prop_map(|(p, r)| Op::CloseRegistration(p, r)),
    1 => Just(Op::CloseAll),
    3 => pick().prop_map(Op::Touch),
    2 => session.clone().prop_map(Op::TouchSession),
    2 => pick().prop_map(Op::NoteLookup),
    2 => (session, vec((0..METRIC_NAMES.len(), -5i8..=5), 0..3))
      .prop_map(|(s, updates)| Op::UpdateMetrics(s, updates)),
    2 => ticket_pick().prop_map(Op::StartClose),
    2 => (ticket_pick(), 0..OUTCOMES.len()).prop_map(|(t, o)| Op::Settle(t, o)),
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
  last_activity: f64,
  /// Latest value of each metric, in the order first set.
  metrics: Vec<(String, f64)>,
}

#[derive(Debug, Clone)]
struct Closing {
  session: String,
  client: String,
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

struct Model {
  policy: Policy,
  /// In registration order.
  live: Vec<Session>,
  /// Seqs of the live sessions, least recently touched or registered first.
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

  fn find_registration(&self, (slot, seq): (Slot, u64)) -> Option<usize> {
    self
      .live
      .iter()
      .position(|s| s.slot == slot && s.seq == seq)
  }

  fn client_len(&self, client: &str) -> usize {
    self.live.iter().filter(|s| s.client == client).count()
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
        slot: self.live[i].slot,
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

  /// Removes `live[i]` for closing and returns the order the registry must give.
  fn remove(&mut self, i: usize, reason: CloseReason, now: f64) -> CloseOrder {
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
        client: session.client,
        reason,
        since: now,
        started: false,
        registered_at: session.registered_at,
      },
    );
    self.gone_metrics.push(session.metrics);
    CloseOrder {
      ticket: Ticket(self.last_ticket),
      slot: session.slot,
    }
  }

  /// Activity of `live[i]`: the time never goes back; `reorder` makes it
  /// the most recently active.
  fn touch(&mut self, i: usize, now: f64, reorder: bool) {
    let session = &mut self.live[i];
    session.last_activity = session.last_activity.max(now);
    if reorder {
      let seq = session.seq;
      self.activity.retain(|&s| s != seq);
      self.activity.push(seq);
    }
  }

  fn slot_of_seq(&self, seq: u64) -> Slot {
    self.live.iter().find(|s| s.seq == seq).unwrap().slot
  }

  fn eviction_candidates(&self, scope: LimitScope, client: &str) -> Vec<(Slot, u64)> {
    match scope {
      LimitScope::Registry => self
        .activity
        .iter()
        .map(|&seq| (self.slot_of_seq(seq), seq))
        .collect(),
      LimitScope::Client => {
        let mut own: Vec<&Session> = self.live.iter().filter(|s| s.client == client).collect();
        own.sort_by(|a, b| {
          a.last_activity
            .partial_cmp(&b.last_activity)
            .unwrap()
            .then(a.seq.cmp(&b.seq))
        });
        own.iter().map(|s| (s.slot, s.seq)).collect()
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
  /// Policies may change mid-run: sessions above a lowered limit stay, so
  /// limits hold only for what each registration admits.
  policy_changes: bool,
  /// The last activity seen per registration, to prove it never goes back.
  seen_activity: HashMap<u64, f64>,
}

impl Harness {
  fn new(policy: Policy, policy_changes: bool) -> Self {
    let mut registry = Registry::new();
    registry.set_policy(policy.clone());
    Harness {
      registry,
      model: Model::new(policy),
      policy_changes,
      seen_activity: HashMap::new(),
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

  fn apply(&mut self, op: Op, now: f64) {
    match op {
      Op::Register(c, s) => self.register(CLIENTS[c], SESSIONS[s], now),
      Op::RegisterEvicting(c, s, victim) => {
        self.register_evicting(CLIENTS[c], SESSIONS[s], victim, now)
      }
      Op::Unregister(s) => self.unregister(SESSIONS[s], now),
      Op::CleanupClient(c) => {
        let client = CLIENTS[c];
        let orders = self.registry.cleanup_client(client, now);
        let mut expected = Vec::new();
        while let Some(i) = self.model.live.iter().position(|s| s.client == client) {
          expected.push(self.model.remove(i, CloseReason::CleanupClient, now));
        }
        assert_eq!(orders, expected, "cleanup_client({client})");
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
          .map(|i| self.model.remove(i, reason, now));
        assert_eq!(got, expected, "close_registration{registration:?}");
      }
      Op::CloseAll => {
        let orders = self.registry.close_all(now);
        let mut expected = Vec::new();
        while !self.model.live.is_empty() {
          expected.push(self.model.remove(0, CloseReason::Shutdown, now));
        }
        assert_eq!(orders, expected, "close_all");
      }
      Op::Touch(pick) => {
        let (slot, _) = self.resolve(pick);
        self.registry.touch(slot, now);
        if let Some(i) = self.model.find_slot(slot) {
          self.model.touch(i, now, true);
        }
      }
      Op::TouchSession(s) => {
        let session = SESSIONS[s];
        let found = self.registry.touch_session(session, now);
        let i = self.model.find(session);
        assert_eq!(found, i.is_some(), "touch_session({session})");
        if let Some(i) = i {
          self.model.touch(i, now, true);
        }
      }
      Op::NoteLookup(pick) => {
        let (slot, _) = self.resolve(pick);
        self.registry.note_lookup(slot, now);
        let reorder = self.model.policy.evict_idle && self.model.policy.max_sessions.is_some();
        if let Some(i) = self.model.find_slot(slot) {
          self.model.touch(i, now, reorder);
        }
      }
      Op::UpdateMetrics(s, updates) => {
        let session = SESSIONS[s];
        let updates: Vec<(&str, f64)> = updates
          .iter()
          .map(|&(name, value)| (METRIC_NAMES[name], f64::from(value)))
          .collect();
        let done = self.registry.update_metrics(session, &updates);
        let i = self.model.find(session);
        assert_eq!(done, i.is_some(), "update_metrics({session})");
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
            session_id: closing.session,
            client_id: closing.client,
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
      Op::List(client, limit, between) => {
        self.list_walk(client.map(|c| CLIENTS[c]), limit, &between, now)
      }
      Op::SetPolicy(policy) => {
        self.registry.set_policy(policy.clone());
        assert_eq!(self.registry.policy(), &policy);
        self.model.policy = policy;
      }
    }
  }

  fn register(&mut self, client: &str, session: &str, now: f64) {
    let result = self.registry.register(client, session, now);
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
        self.assert_admitted_within_limits(client);
      }
    }
  }

  fn register_evicting(&mut self, client: &str, session: &str, victim: Victim, now: f64) {
    let victim = match victim {
      Victim::Candidate(k) => {
        let scope = self.model.full(client).unwrap_or(LimitScope::Registry);
        let candidates = self
          .registry
          .eviction_candidates(scope, client, None, usize::MAX);
        match candidates.len() {
          0 => (Slot(0), 0),
          n => candidates[k % n],
        }
      }
      Victim::Pick(pick) => self.resolve(pick),
    };
    let result = self
      .registry
      .register_evicting(client, session, victim, now);
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
      }
      Some(scope) => {
        let evictable = self.model.find_registration(victim).filter(|&i| {
          (scope == LimitScope::Registry || self.model.live[i].client == client)
            && self.model.makes_room(i, client)
        });
        match evictable {
          None => assert_eq!(result, Err(self.model.limit_error(scope, client)), "{what}"),
          Some(i) => {
            let (slot, order) = result.unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let expected = self.model.remove(i, CloseReason::Evicted, now);
            assert_eq!(order, Some(expected), "{what}");
            self.model.insert(client, session, slot, now);
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

  fn unregister(&mut self, session: &str, now: f64) {
    let result = self.registry.unregister(session, now);
    let expected = match self.model.find(session) {
      Some(i) => Unregister::Close(self.model.remove(i, CloseReason::Unregister, now)),
      None => match self
        .model
        .closing
        .iter()
        .rev()
        .find(|(_, c)| c.session == session)
      {
        Some((&ticket, _)) => Unregister::AlreadyClosing(ticket),
        None => Unregister::NotRegistered,
      },
    };
    assert_eq!(result, expected, "unregister({session})");
  }

  /// Pages through `list` to the end with `between[n]` done after page n;
  /// every page must be what the model lists then, and the whole walk must
  /// visit every session exactly once, in registration order.
  fn list_walk(&mut self, client: Option<&str>, limit: usize, between: &[Between], now: f64) {
    let matches = |s: &Session| client.is_none_or(|c| s.client == c);
    let ever: HashSet<u64> = self
      .model
      .live
      .iter()
      .filter(|s| matches(s))
      .map(|s| s.seq)
      .collect();
    let mut ever = ever;
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
        Some(Between::Do(op)) => self.apply(op.clone(), now),
      }
      self.check(now);
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

  fn check(&mut self, now: f64) {
    let registry = &self.registry;
    let model = &self.model;
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
    for s in &model.live {
      assert_eq!(registry.session(&s.id), Some(s.slot), "lookup of {}", s.id);
      let info = registry.session_info(s.slot).expect("slot occupied");
      let view = info.view;
      assert_eq!(
        (view.session_id, view.client_id, view.slot, view.seq),
        (s.id.as_str(), s.client.as_str(), s.slot, s.seq)
      );
      assert_eq!(
        view.registered_at, s.registered_at,
        "registered_at of {}",
        s.id
      );
      let seen = self
        .seen_activity
        .entry(s.seq)
        .or_insert(view.last_activity);
      assert!(
        view.last_activity >= *seen,
        "last activity of {} went back from {seen} to {}",
        s.id,
        view.last_activity
      );
      *seen = view.last_activity;
      assert_eq!(
        view.last_activity, s.last_activity,
        "last activity of {}",
        s.id
      );
      let metrics: Vec<(&str, f64)> = info.metrics.iter().map(|(n, v)| (&**n, *v)).collect();
      let expected: Vec<(&str, f64)> = s.metrics.iter().map(|(n, v)| (n.as_str(), *v)).collect();
      assert_eq!(metrics, expected, "metrics of {}", s.id);
      let idle = model
        .policy
        .idle_timeout_ms
        .is_some_and(|t| now - s.last_activity > t);
      assert_eq!(registry.idle_expired(s.slot, now), idle, "idle of {}", s.id);
    }
    for id in SESSIONS {
      if model.find(id).is_none() {
        assert_eq!(registry.session(id), None, "{id} is gone");
      }
    }

    let by_activity: Vec<Slot> = store.by_activity().collect();
    let expected: Vec<Slot> = model
      .activity
      .iter()
      .map(|&seq| model.slot_of_seq(seq))
      .collect();
    assert_eq!(by_activity, expected, "activity order");

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
      for scope in [LimitScope::Registry, LimitScope::Client] {
        let all = model.eviction_candidates(scope, client);
        assert_eq!(
          registry.eviction_candidates(scope, client, None, usize::MAX),
          all,
          "eviction_candidates({scope:?}, {client}, None, all)"
        );
        for take in [0, 1, 2, 3] {
          // Page through with the cursor: every candidate once, in order.
          let mut paged = Vec::new();
          let mut after = None;
          loop {
            let page = registry.eviction_candidates(scope, client, after, take.max(1));
            if page.is_empty() {
              break;
            }
            after = page.last().copied();
            paged.extend(page);
          }
          assert_eq!(
            paged, all,
            "eviction_candidates({scope:?}, {client}) paged by {take}"
          );
          let first: Vec<(Slot, u64)> = all.iter().copied().take(take).collect();
          assert_eq!(
            registry.eviction_candidates(scope, client, None, take),
            first
          );
        }
        // A cursor whose registration is gone starts over.
        let gone = (Slot(u32::MAX - 1), u64::MAX);
        let first: Vec<(Slot, u64)> = all.iter().copied().take(2).collect();
        assert_eq!(
          registry.eviction_candidates(scope, client, Some(gone), 2),
          first
        );
      }
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
    for (&ticket, closing) in &model.closing {
      assert!(registry.is_closing(ticket));
      assert_eq!(
        registry.closing_session(ticket),
        Some((closing.session.as_str(), closing.client.as_str()))
      );
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

fn run(policy: Policy, dispose_at: Option<usize>, ops: Vec<(Op, i8)>, policy_changes: bool) {
  let mut harness = Harness::new(policy, policy_changes);
  harness.check(0.0);
  let mut clock = 0.0;
  for (n, (op, jitter)) in ops.into_iter().enumerate() {
    clock += 1.0;
    // Some calls come with a clock that stepped back.
    let now = clock + f64::from(jitter);
    if dispose_at == Some(n) {
      harness.registry.dispose();
      harness.registry.dispose();
      harness.model.disposed = true;
    }
    harness.apply(op, now);
    harness.check(now);
  }
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
    ops in vec((op(false), -4i8..=2), 1..80),
  ) {
    run(policy, dispose_at, ops, false);
  }

  /// Limits lowered below the sessions already registered: those stay, but a
  /// registration, evicting or not, is admitted only within the limits.
  #[test]
  fn changed_policy_admits_only_within_limits(
    policy in policy(),
    ops in vec((op(true), -4i8..=2), 1..80),
  ) {
    run(policy, None, ops, true);
  }
}

/// The shortest sequence the second property above shrinks to: a per-client
/// limit lowered below what a client holds, then a registration evicting one
/// of that client's sessions. The registry documents that it fails "if the
/// victim would not make room", yet it evicts and registers anyway.
#[test]
fn evicting_under_a_lowered_limit_does_not_admit_past_it() {
  let mut registry = Registry::new();
  registry.register("c", "a", 0.0).unwrap();
  registry.register("c", "b", 0.0).unwrap();
  registry.set_policy(Policy {
    max_sessions_per_client: Some(1),
    ..Policy::default()
  });
  let victim = registry.eviction_candidates(LimitScope::Client, "c", None, 1)[0];
  let result = registry.register_evicting("c", "d", victim, 1.0);
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

/// `list` with the largest limit (a natural "no limit") lists everything.
#[test]
fn list_with_the_largest_limit_lists_everything() {
  let mut registry = Registry::new();
  let a = registry.register("c", "a", 0.0).unwrap();
  let b = registry.register("c", "b", 0.0).unwrap();
  assert_eq!(registry.list(None, None, usize::MAX), (vec![a, b], None));
  assert_eq!(
    registry.list(Some("c"), None, usize::MAX),
    (vec![a, b], None)
  );
}
