//! Random operation sequences against a registry whose directory changes are
//! drained into a `MemoryDirectory` after every step; the directory, the
//! registry and a deliberately naive model must agree on every session's
//! client, each client's sessions in registration order, and the counts.
//! A second directory gets the same changes in batches of several steps,
//! sometimes sent twice after an interruption, as a background publisher
//! would. Then claims, in sequence and racing on threads, against the
//! directory's per-client maximum.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use nity_registry_core::{
  CloseReason, Directory, DirectoryChange, Error, MemoryDirectory, Registry, SessionRecord,
  SessionStore, Unregister, NO_SLOT,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Few ids, many of them with characters that a key-value store treats as
/// patterns, separators or hash tags, so collisions and reuse come up often.
const CLIENTS: &[&str] = &["c1", "c 2", "c:*", "{c}", "ü/ç?", "%[x]", ""];
const SESSIONS: &[&str] = &[
  "a", "*", "a*", "a:b", "x/y?", "[1]", "{t}", "%20", " ", "é ☃", "",
];

/// The output of a future that is ready on its first poll, as every future
/// of `MemoryDirectory` is.
fn ready<F: Future>(future: F) -> F::Output {
  let mut cx = Context::from_waker(Waker::noop());
  match pin!(future).poll(&mut cx) {
    Poll::Ready(output) => output,
    Poll::Pending => panic!("a MemoryDirectory future was not ready"),
  }
}

#[derive(Debug, Clone)]
enum Op {
  Register(usize, usize),
  Unregister(usize),
  CleanupClient(usize),
  /// Close the n-th registration as a stale scan would.
  StaleClose(usize),
  CloseAll,
}

fn op() -> impl Strategy<Value = Op> {
  prop_oneof![
    6 => (0..CLIENTS.len(), 0..SESSIONS.len()).prop_map(|(c, s)| Op::Register(c, s)),
    2 => (0..SESSIONS.len()).prop_map(Op::Unregister),
    1 => (0..CLIENTS.len()).prop_map(Op::CleanupClient),
    1 => (0..8usize).prop_map(Op::StaleClose),
    1 => Just(Op::CloseAll),
  ]
}

/// Registrations in registration order: (session, client, registered at).
#[derive(Default)]
struct Model {
  live: Vec<(String, String, f64)>,
}

impl Model {
  fn record(&self, session: &str) -> Option<SessionRecord> {
    self
      .live
      .iter()
      .find(|(s, _, _)| s == session)
      .map(|(s, c, at)| SessionRecord::new(s.as_str(), c.as_str(), *at))
  }

  fn client_sessions(&self, client: &str) -> Vec<SessionRecord> {
    self
      .live
      .iter()
      .filter(|(_, c, _)| c == client)
      .map(|(s, c, at)| SessionRecord::new(s.as_str(), c.as_str(), *at))
      .collect()
  }

  fn clients(&self) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, client, _) in &self.live {
      *counts.entry(client.clone()).or_default() += 1;
    }
    counts.into_iter().collect()
  }

  fn remove(&mut self, session: &str) {
    self.live.retain(|(s, _, _)| s != session);
  }
}

/// The registry's own view as records, in registration order.
fn registry_records(registry: &Registry) -> Vec<SessionRecord> {
  registry
    .store()
    .sessions()
    .map(|view| SessionRecord::new(view.session_id, view.client_id, view.registered_at))
    .collect()
}

fn registry_client_sessions(registry: &Registry, client: &str) -> Vec<SessionRecord> {
  let store = registry.store();
  store
    .client_slots(client)
    .filter_map(|slot| store.get(slot))
    .map(|view| SessionRecord::new(view.session_id, view.client_id, view.registered_at))
    .collect()
}

fn check_registry(registry: &Registry, model: &Model) -> Result<(), TestCaseError> {
  let expected: Vec<SessionRecord> = model
    .live
    .iter()
    .map(|(s, c, at)| SessionRecord::new(s.as_str(), c.as_str(), *at))
    .collect();
  prop_assert_eq!(registry_records(registry), expected);
  for client in CLIENTS {
    prop_assert_eq!(
      registry_client_sessions(registry, client),
      model.client_sessions(client)
    );
  }
  let mut clients: Vec<(String, usize)> = registry
    .store()
    .clients()
    .map(|(client, count)| (client.to_owned(), count))
    .collect();
  clients.sort();
  prop_assert_eq!(clients, model.clients());
  Ok(())
}

fn check_directory(directory: &MemoryDirectory, model: &Model) -> Result<(), TestCaseError> {
  for session in SESSIONS {
    let recorded = ready(directory.session((*session).into())).map_err(fail)?;
    prop_assert_eq!(recorded, model.record(session), "session {:?}", session);
  }
  for client in CLIENTS {
    let listed = ready(directory.client_sessions((*client).into())).map_err(fail)?;
    prop_assert_eq!(listed, model.client_sessions(client), "client {:?}", client);
  }
  let stats = ready(directory.stats()).map_err(fail)?;
  prop_assert_eq!(stats.sessions, model.live.len());
  let clients: Vec<(String, usize)> = stats
    .clients
    .into_iter()
    .map(|(client, count)| (client.into_string(), count))
    .collect();
  prop_assert_eq!(clients, model.clients());
  Ok(())
}

fn fail(error: Error) -> TestCaseError {
  TestCaseError::fail(format!("the memory directory failed: {error}"))
}

/// Applies a batch as a publisher would: once, or, when `interrupted_after`
/// says so, a prefix first (an attempt that failed part way) and then the
/// whole batch again.
fn publish(
  registry: &Registry,
  directory: &MemoryDirectory,
  batch: Vec<DirectoryChange>,
  interrupted_after: Option<usize>,
) -> Result<(), TestCaseError> {
  match interrupted_after {
    None => {
      let conflicts = ready(directory.apply(batch)).map_err(fail)?;
      prop_assert!(conflicts.is_empty(), "conflicts: {:?}", conflicts);
    }
    Some(n) => {
      let prefix = batch[..n.min(batch.len())].to_vec();
      let first = ready(directory.apply(prefix)).map_err(fail)?;
      prop_assert!(first.is_empty(), "conflicts: {:?}", first);
      for conflict in ready(directory.apply(batch)).map_err(fail)? {
        // Only the batch's own later registrations may stand in the way of a
        // replayed claim, and the registry no longer holds such a claim.
        prop_assert!(!registry.holds(&conflict.published), "{:?}", conflict);
      }
    }
  }
  Ok(())
}

/// When the lagging directory gets the changes piled up so far: not this
/// step, now, or now after an interrupted first attempt.
fn flush() -> impl Strategy<Value = Option<Option<usize>>> {
  option::weighted(0.3, option::weighted(0.5, 0..16usize))
}

proptest! {
  #![proptest_config(ProptestConfig::with_cases(512))]

  #[test]
  fn the_directory_mirrors_the_registry(
    steps in vec((op(), flush()), 1..80),
    enable_at in 0..12usize,
  ) {
    let mut registry = Registry::new();
    let directory = MemoryDirectory::new();
    let lagging = MemoryDirectory::new();
    let mut backlog: Vec<DirectoryChange> = Vec::new();
    let mut model = Model::default();
    let last = steps.len() - 1;
    for (step, (op, flush)) in steps.into_iter().enumerate() {
      if step == enable_at {
        // Turning the feed on seeds what already exists.
        registry.set_directory_changes(true);
      }
      // Every step has its own time, so every registration is distinct.
      let now = step as f64;
      match op {
        Op::Register(c, s) => {
          let (client, session) = (CLIENTS[c], SESSIONS[s]);
          let result = registry.register(client, session, now);
          let valid = !client.is_empty() && !session.is_empty();
          match model.record(session) {
            Some(held) if valid => prop_assert_eq!(
              result,
              Err(Error::AlreadyRegistered {
                session_id: session.to_owned(),
                client_id: held.client_id.into_string(),
                slot: registry.session(session).unwrap_or(NO_SLOT),
              })
            ),
            None if valid => {
              prop_assert!(result.is_ok());
              model.live.push((session.to_owned(), client.to_owned(), now));
            }
            _ => prop_assert!(result.is_err()),
          }
        }
        Op::Unregister(s) => {
          let session = SESSIONS[s];
          let found = registry.unregister(session, now);
          if model.record(session).is_some() {
            prop_assert!(matches!(found, Unregister::Close(_)));
            model.remove(session);
          } else {
            prop_assert!(!matches!(found, Unregister::Close(_)));
          }
        }
        Op::CleanupClient(c) => {
          let client = CLIENTS[c];
          let orders = registry.cleanup_client(client, now);
          prop_assert_eq!(orders.len(), model.client_sessions(client).len());
          model.live.retain(|(_, owner, _)| owner != client);
        }
        Op::StaleClose(n) => {
          let registrations = registry.registrations();
          if let Some(&(slot, seq)) = registrations.get(n) {
            let closed = registry.close_registration(slot, seq, CloseReason::CleanupStale, now);
            prop_assert!(closed.is_some());
            model.live.remove(n);
          }
        }
        Op::CloseAll => {
          let orders = registry.close_all(now);
          prop_assert_eq!(orders.len(), model.live.len());
          model.live.clear();
        }
      }
      check_registry(&registry, &model)?;
      let batch = registry.take_directory_changes();
      prop_assert_eq!(registry.directory_changes_pending(), 0);
      if !registry.directory_changes_enabled() {
        prop_assert!(batch.is_empty());
        continue;
      }
      backlog.extend(batch.iter().cloned());
      publish(&registry, &directory, batch, None)?;
      check_directory(&directory, &model)?;
      let flush = if step == last { Some(flush.flatten()) } else { flush };
      if let Some(interrupted_after) = flush {
        publish(&registry, &lagging, std::mem::take(&mut backlog), interrupted_after)?;
        check_directory(&lagging, &model)?;
      }
    }
  }

  #[test]
  fn claims_in_sequence_respect_ids_and_the_maximum(
    max in option::of(0..4usize),
    steps in vec((0..CLIENTS.len(), 0..SESSIONS.len(), 0..8u8), 1..80),
  ) {
    let directory = MemoryDirectory::new();
    // session -> client, and each client's sessions in claim order.
    let mut owners: HashMap<&str, &str> = HashMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for (step, (c, s, action)) in steps.into_iter().enumerate() {
      let (client, session) = (CLIENTS[c], SESSIONS[s]);
      match action {
        0 => {
          let released = ready(directory.release(session.into())).map_err(fail)?;
          let expected = owners.remove(session);
          prop_assert_eq!(released.map(|r| r.client_id.into_string()), expected.map(str::to_owned));
          order.retain(|(s, _)| *s != session);
        }
        1 => {
          let released = ready(directory.release_client(client.into())).map_err(fail)?;
          let expected: Vec<&str> =
            order.iter().filter(|(_, c)| *c == client).map(|(s, _)| *s).collect();
          let got: Vec<&str> = released.iter().map(|r| r.session_id.as_str()).collect();
          prop_assert_eq!(got, expected);
          order.retain(|(_, c)| *c != client);
          owners.retain(|_, c| *c != client);
        }
        _ => {
          let result = ready(directory.claim(SessionRecord::new(session, client, step as f64), max));
          let held = order.iter().filter(|(_, c)| *c == client).count();
          match owners.get(session) {
            Some(holder) => prop_assert_eq!(
              result,
              Err(Error::AlreadyRegistered {
                session_id: session.to_owned(),
                client_id: (*holder).to_owned(),
                slot: NO_SLOT,
              })
            ),
            None if max.is_some_and(|max| held >= max) => prop_assert_eq!(
              result,
              Err(Error::ClientSessionLimit {
                client_id: client.to_owned(),
                max: max.unwrap_or(0),
              })
            ),
            None => {
              prop_assert_eq!(result, Ok(()));
              owners.insert(session, client);
              order.push((session, client));
            }
          }
        }
      }
      let stats = ready(directory.stats()).map_err(fail)?;
      prop_assert_eq!(stats.sessions, owners.len());
      for (client, count) in &stats.clients {
        prop_assert!(max.is_none_or(|max| *count <= max));
        let listed = ready(directory.client_sessions(client.clone())).map_err(fail)?;
        let expected: Vec<&str> =
          order.iter().filter(|(_, c)| *c == client.as_str()).map(|(s, _)| *s).collect();
        let got: Vec<&str> = listed.iter().map(|r| r.session_id.as_str()).collect();
        prop_assert_eq!(got, expected);
      }
    }
  }
}

/// One racer's claim: client, session, and what the directory answered.
type Outcome = (&'static str, &'static str, Result<(), Error>);

proptest! {
  #![proptest_config(ProptestConfig::with_cases(64))]

  #[test]
  fn racing_claims_never_take_an_id_twice_or_exceed_the_maximum(
    max in 1..4usize,
    plans in vec(vec((0..3usize, 0..SESSIONS.len()), 1..24), 2..6),
  ) {
    let directory = Arc::new(MemoryDirectory::new());
    let outcomes: Vec<Vec<Outcome>> = std::thread::scope(|scope| {
      let racers: Vec<_> = plans
        .iter()
        .map(|plan| {
          let directory = Arc::clone(&directory);
          scope.spawn(move || {
            plan
              .iter()
              .map(|&(c, s)| {
                let (client, session) = (CLIENTS[c], SESSIONS[s]);
                let record = SessionRecord::new(session, client, 0.0);
                (client, session, ready(directory.claim(record, Some(max))))
              })
              .collect::<Vec<_>>()
          })
        })
        .collect();
      racers
        .into_iter()
        .map(|racer| racer.join().unwrap_or_default())
        .collect()
    });
    prop_assert_eq!(outcomes.len(), plans.len(), "a racer panicked");

    let mut won: HashSet<(&str, &str)> = HashSet::new();
    for &(client, session, ref result) in outcomes.iter().flatten() {
      if result.is_ok() {
        prop_assert!(won.insert((session, client)), "{:?} claimed twice", session);
      }
    }
    let ids: HashSet<&str> = won.iter().map(|(session, _)| *session).collect();
    prop_assert_eq!(ids.len(), won.len(), "one id won by two clients");

    // What the directory holds is exactly what the claims won.
    let mut held: HashSet<(&str, &str)> = HashSet::new();
    for client in &CLIENTS[..3] {
      let listed = ready(directory.client_sessions((*client).into())).map_err(fail)?;
      prop_assert!(listed.len() <= max);
      for record in listed {
        let session = SESSIONS
          .iter()
          .find(|s| record.session_id == **s)
          .copied()
          .unwrap_or_default();
        held.insert((session, client));
      }
    }
    prop_assert_eq!(&held, &won);

    // Nothing is released here, so every refusal still has its reason.
    for &(client, session, ref result) in outcomes.iter().flatten() {
      match result {
        Ok(()) => {}
        Err(Error::AlreadyRegistered { client_id, slot, .. }) => {
          prop_assert_eq!(*slot, NO_SLOT);
          prop_assert!(won.contains(&(session, client_id.as_str())));
        }
        Err(Error::ClientSessionLimit { max: limit, .. }) => {
          prop_assert_eq!(*limit, max);
          prop_assert_eq!(won.iter().filter(|(_, c)| *c == client).count(), max);
        }
        Err(other) => prop_assert!(false, "unexpected {:?}", other),
      }
    }
  }
}
