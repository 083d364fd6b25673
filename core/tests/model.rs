//! Random operation sequences against the registry and a deliberately naive
//! model; after every step both must agree on everything observable.

use nity_registry_core::{CloseOutcome, CloseReason, Error, Registry, Slot, Ticket, Unregister};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Few ids, some with characters other registries treat as patterns, so that
/// collisions, reuse and "looks like a prefix" cases come up often.
const CLIENTS: &[&str] = &["c1", "c2", "c:*", "c/3", ""];
const SESSIONS: &[&str] = &["a", "b", "c", "a*", "a:b", "x/y", "*", ""];

#[derive(Debug, Clone)]
enum Op {
  Register(usize, usize),
  Unregister(usize),
  CleanupClient(usize),
  /// Snapshot the registrations, then close the n-th if still current.
  StaleClose(usize),
  /// Settle the n-th close in flight (if any), twice.
  Settle(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
  prop_oneof![
    4 => (0..CLIENTS.len(), 0..SESSIONS.len()).prop_map(|(c, s)| Op::Register(c, s)),
    2 => (0..SESSIONS.len()).prop_map(Op::Unregister),
    1 => (0..CLIENTS.len()).prop_map(Op::CleanupClient),
    1 => (0..8usize).prop_map(Op::StaleClose),
    2 => (0..8usize, any::<bool>()).prop_map(|(n, ok)| Op::Settle(n, ok)),
  ]
}

#[derive(Default)]
struct Model {
  /// Registration order: (session, client, slot).
  live: Vec<(String, String, Slot)>,
  /// Closes in flight: ticket -> session id, in start order.
  closing: BTreeMap<Ticket, String>,
}

impl Model {
  fn position(&self, session: &str) -> Option<usize> {
    self.live.iter().position(|(s, _, _)| s == session)
  }

  fn client_sessions(&self, client: &str) -> Vec<String> {
    self
      .live
      .iter()
      .filter(|(_, c, _)| c == client)
      .map(|(s, _, _)| s.clone())
      .collect()
  }

  fn latest_close(&self, session: &str) -> Option<Ticket> {
    self
      .closing
      .iter()
      .rev()
      .find(|(_, s)| s.as_str() == session)
      .map(|(t, _)| *t)
  }
}

fn check(registry: &Registry, model: &Model) {
  let store = registry.store();
  assert_eq!(store.session_count(), model.live.len());
  let mut counts: HashMap<&str, usize> = HashMap::new();
  for (session, client, slot) in &model.live {
    *counts.entry(client).or_default() += 1;
    assert_eq!(
      registry.session(session),
      Some(*slot),
      "lookup of {session}"
    );
    let view = store.get(*slot).expect("slot occupied");
    assert_eq!(view.session_id, session);
    assert_eq!(view.client_id, client);
  }
  for session in SESSIONS {
    if model.position(session).is_none() {
      assert_eq!(registry.session(session), None);
    }
  }
  assert_eq!(store.client_count(), counts.len());
  let reported: HashMap<&str, usize> = store.clients().collect();
  assert_eq!(reported, counts);
  for client in CLIENTS {
    let got: Vec<String> = store
      .client_slots(client)
      .map(|slot| store.get(slot).unwrap().session_id.to_owned())
      .collect();
    assert_eq!(got, model.client_sessions(client), "sessions of {client:?}");
    assert_eq!(store.client_len(client), got.len());
  }
  assert_eq!(registry.closes_in_flight(), model.closing.len());
}

proptest! {
  #![proptest_config(ProptestConfig::with_cases(512))]

  #[test]
  fn registry_agrees_with_model(ops in proptest::collection::vec(op(), 1..80)) {
    let mut registry = Registry::new();
    let mut model = Model::default();
    // Every close order ever handed out, to prove none repeats.
    let mut closed_tickets: HashSet<Ticket> = HashSet::new();
    let mut now = 0.0;

    for op in ops {
      now += 1.0;
      match op {
        Op::Register(c, s) => {
          let (client, session) = (CLIENTS[c], SESSIONS[s]);
          let result = registry.register(client, session, now);
          if client.is_empty() {
            prop_assert_eq!(result, Err(Error::EmptyClientId));
          } else if session.is_empty() {
            prop_assert_eq!(result, Err(Error::EmptySessionId));
          } else if let Some(i) = model.position(session) {
            let (_, owner, slot) = &model.live[i];
            prop_assert_eq!(result, Err(Error::AlreadyRegistered {
              session_id: session.to_owned(),
              client_id: owner.clone(),
              slot: *slot,
            }));
          } else {
            let slot = result.expect("registers");
            prop_assert!(model.live.iter().all(|(_, _, s)| *s != slot), "slot in use");
            model.live.push((session.to_owned(), client.to_owned(), slot));
          }
        }
        Op::Unregister(s) => {
          let session = SESSIONS[s];
          let expected_in_flight = model.latest_close(session);
          match registry.unregister(session, now) {
            Unregister::Close(order) => {
              let i = model.position(session).expect("was registered");
              let (_, client, slot) = model.live.remove(i);
              let (closing_session, closing_client) = registry.closing_session(order.ticket).unwrap();
              prop_assert_eq!(closing_session, session);
              prop_assert_eq!(closing_client, client.as_str());
              prop_assert_eq!(order.slot, slot);
              prop_assert!(closed_tickets.insert(order.ticket));
              model.closing.insert(order.ticket, session.to_owned());
            }
            Unregister::AlreadyClosing(ticket) => {
              prop_assert!(model.position(session).is_none());
              prop_assert_eq!(Some(ticket), expected_in_flight);
            }
            Unregister::NotRegistered => {
              prop_assert!(model.position(session).is_none());
              prop_assert_eq!(expected_in_flight, None);
            }
          }
        }
        Op::CleanupClient(c) => {
          let client = CLIENTS[c];
          let orders = registry.cleanup_client(client, now);
          let expected = model.client_sessions(client);
          let got: Vec<String> = orders
            .iter()
            .map(|o| registry.closing_session(o.ticket).unwrap().0.to_owned())
            .collect();
          prop_assert_eq!(got, expected);
          model.live.retain(|(_, owner, _)| owner != client);
          for order in orders {
            prop_assert!(closed_tickets.insert(order.ticket));
            let session = registry.closing_session(order.ticket).unwrap().0.to_owned();
            model.closing.insert(order.ticket, session);
          }
        }
        Op::StaleClose(n) => {
          let seen = registry.registrations();
          prop_assert_eq!(seen.len(), model.live.len());
          if !seen.is_empty() {
            let (slot, seq) = seen[n % seen.len()];
            prop_assert!(registry.is_registered(slot, seq));
            let order = registry
              .close_registration(slot, seq, CloseReason::CleanupStale, now)
              .expect("still current");
            prop_assert!(registry.close_registration(slot, seq, CloseReason::CleanupStale, now).is_none());
            let i = model.live.iter().position(|(_, _, s)| *s == slot).unwrap();
            model.live.remove(i);
            prop_assert!(closed_tickets.insert(order.ticket));
            let session = registry.closing_session(order.ticket).unwrap().0.to_owned();
            model.closing.insert(order.ticket, session);
          }
        }
        Op::Settle(n, ok) => {
          if let Some((&ticket, session)) = model.closing.iter().nth(n % model.closing.len().max(1)) {
            let session = session.clone();
            let outcome = if ok { CloseOutcome::Closed } else { CloseOutcome::Failed };
            let report = registry.settle(ticket, outcome, now).expect("first settle counts");
            prop_assert_eq!(report.session_id, session);
            prop_assert_eq!(report.outcome, outcome);
            prop_assert!(report.duration_ms >= 0.0);
            prop_assert_eq!(registry.settle(ticket, outcome, now), None);
            prop_assert!(!registry.is_closing(ticket));
            model.closing.remove(&ticket);
          }
        }
      }
      check(&registry, &model);
    }
  }
}
