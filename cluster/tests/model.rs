//! Random operation sequences against the Redis directory and a naive
//! in-memory model of its rules: who may write (fencing), what a claim
//! admits, what is visible (only records of live nodes), what reaping and
//! leaving remove. After every step both must agree on everything a node
//! can observe.
//!
//! Two nodes hold long leases (alive); a third announces with a lease of
//! one millisecond, so it is dead as soon as it exists: its writes are
//! accepted while it is announced, never visible, and reaped by the others.

mod support;

use std::collections::BTreeMap;

use nity_registry_cluster::{Change, Claim, ClusterNode, ClusterSession, Published, SessionRecord};
use proptest::prelude::*;
use support::{config, RedisServer};

const NODES: [&str; 3] = ["alive-1", "alive-2", "dying"];
const DYING: usize = 2;
const CLIENTS: [&str; 3] = ["c", "c:*", "ü c"];
const SESSIONS: [&str; 6] = ["a", "a*", "a:b", "[x]", "é", "1:a"];

#[derive(Debug, Clone)]
enum Op {
  Add {
    node: usize,
    session: usize,
    client: usize,
  },
  Remove {
    node: usize,
    session: usize,
  },
  Claim {
    node: usize,
    session: usize,
    client: usize,
    max: usize,
  },
  Reap {
    by: usize,
  },
  Leave {
    node: usize,
  },
  Announce {
    node: usize,
  },
}

fn op() -> impl Strategy<Value = Op> {
  prop_oneof![
    5 => (0..3usize, 0..SESSIONS.len(), 0..CLIENTS.len()).prop_map(|(node, session, client)| Op::Add { node, session, client }),
    2 => (0..3usize, 0..SESSIONS.len()).prop_map(|(node, session)| Op::Remove { node, session }),
    3 => (0..3usize, 0..SESSIONS.len(), 0..CLIENTS.len(), 0..4usize)
      .prop_map(|(node, session, client, max)| Op::Claim { node, session, client, max }),
    1 => (0..2usize).prop_map(|by| Op::Reap { by }),
    1 => (0..3usize).prop_map(|node| Op::Leave { node }),
    1 => (0..3usize).prop_map(|node| Op::Announce { node }),
  ]
}

/// What the rules say the directory holds.
#[derive(Default)]
struct Model {
  /// session -> (client, node, registered_at)
  records: BTreeMap<String, (String, usize, f64)>,
  /// Whether each node is announced (its writes accepted).
  announced: [bool; 3],
}

impl Model {
  fn live(&self, node: usize) -> bool {
    self.announced[node] && node != DYING
  }

  fn visible(&self) -> Vec<ClusterSession> {
    self
      .records
      .iter()
      .filter(|(_, (_, node, _))| self.live(*node))
      .map(|(id, (client, node, at))| ClusterSession {
        session_id: id.clone(),
        client_id: client.clone(),
        node_id: NODES[*node].to_owned(),
        registered_at: *at,
      })
      .collect()
  }

  fn forget_node(&mut self, node: usize) {
    self.records.retain(|_, (_, holder, _)| *holder != node);
  }
}

fn sorted(mut sessions: Vec<ClusterSession>) -> Vec<ClusterSession> {
  sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
  sessions
}

async fn run(url: String, ops: Vec<Op>, namespace: String) -> Result<(), TestCaseError> {
  let mut nodes = Vec::new();
  for (i, name) in NODES.iter().enumerate() {
    let lease = if i == DYING { 1 } else { 600_000 };
    nodes.push(
      ClusterNode::connect(config(&url, &namespace, name, lease))
        .await
        .unwrap(),
    );
  }
  // The dying node's lease lapses for good: its deadline goes to the
  // start of time (a lease that merely runs out after a millisecond could
  // be given time back by the directory, which takes a pause between two
  // scripts longer than a third of a lease for a stalled Redis).
  let lapse = |url: String, namespace: String| async move {
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("ZADD")
      .arg(format!("nity:{{{namespace}}}:leases"))
      .arg(0)
      .arg(NODES[DYING])
      .query_async(&mut con)
      .await
      .unwrap();
  };
  lapse(url.clone(), namespace.clone()).await;
  let mut model = Model {
    announced: [true; 3],
    ..Model::default()
  };

  for (step, op) in ops.into_iter().enumerate() {
    let at = step as f64;
    match op {
      Op::Add {
        node,
        session,
        client,
      } => {
        let (id, client) = (SESSIONS[session], CLIENTS[client]);
        let change = Change::Registered(SessionRecord {
          session_id: id.into(),
          client_id: client.into(),
          registered_at: at,
        });
        let published = nodes[node].publish(&[change]).await.unwrap();
        if !model.announced[node] {
          prop_assert_eq!(published, Published::Fenced);
          continue;
        }
        let held_by_other_live = model
          .records
          .get(id)
          .is_some_and(|(_, holder, _)| *holder != node && model.live(*holder));
        if held_by_other_live {
          prop_assert_eq!(
            published,
            Published::Applied {
              conflicts: vec![id.to_owned()]
            }
          );
        } else {
          prop_assert_eq!(published, Published::Applied { conflicts: vec![] });
          let same = model
            .records
            .get(id)
            .is_some_and(|(c, holder, _)| *holder == node && c == client);
          if !same {
            model
              .records
              .insert(id.to_owned(), (client.to_owned(), node, at));
          }
        }
      }
      Op::Remove { node, session } => {
        let id = SESSIONS[session];
        let published = nodes[node]
          .publish(&[Change::Removed {
            session_id: id.into(),
            client_id: String::new(),
          }])
          .await
          .unwrap();
        if !model.announced[node] {
          prop_assert_eq!(published, Published::Fenced);
          continue;
        }
        prop_assert_eq!(published, Published::Applied { conflicts: vec![] });
        if model
          .records
          .get(id)
          .is_some_and(|(_, holder, _)| *holder == node)
        {
          model.records.remove(id);
        }
      }
      Op::Claim {
        node,
        session,
        client,
        max,
      } => {
        let (id, client) = (SESSIONS[session], CLIENTS[client]);
        let max = (max > 0).then_some(max);
        let claim = nodes[node].claim(id, client, at, max).await.unwrap();
        if !model.announced[node] {
          prop_assert_eq!(claim, Claim::Fenced);
          continue;
        }
        if let Some((holder_client, holder, _)) =
          model.records.get(id).filter(|(_, h, _)| model.live(*h))
        {
          prop_assert_eq!(
            claim,
            Claim::Taken {
              node_id: NODES[*holder].to_owned(),
              client_id: holder_client.clone()
            }
          );
          continue;
        }
        let count = model
          .visible()
          .iter()
          .filter(|s| s.client_id == client)
          .count();
        if max.is_some_and(|max| count >= max) {
          prop_assert_eq!(claim, Claim::Limit { count });
        } else {
          prop_assert_eq!(claim, Claim::Claimed);
          model
            .records
            .insert(id.to_owned(), (client.to_owned(), node, at));
        }
      }
      Op::Reap { by } => {
        // Which epoch each dead node died in is checked by the directory tests.
        let reaped = nodes[by].reap().await.unwrap().map(|dead| {
          dead
            .into_iter()
            .map(|(node, held, _)| (node, held))
            .collect::<Vec<_>>()
        });
        if !model.announced[by] {
          prop_assert_eq!(reaped, None, "a node that is not announced reaps nobody");
          continue;
        }
        let expected: Vec<(String, usize)> = if model.announced[DYING] {
          let held = model
            .records
            .values()
            .filter(|(_, holder, _)| *holder == DYING)
            .count();
          model.forget_node(DYING);
          model.announced[DYING] = false;
          vec![(NODES[DYING].to_owned(), held)]
        } else {
          vec![]
        };
        prop_assert_eq!(reaped, Some(expected));
      }
      Op::Leave { node } => {
        let left = nodes[node].leave().await.unwrap();
        if model.announced[node] {
          let held = model
            .records
            .values()
            .filter(|(_, holder, _)| *holder == node)
            .count();
          prop_assert_eq!(left, Some(held));
          model.forget_node(node);
          model.announced[node] = false;
        } else {
          prop_assert_eq!(left, None);
        }
      }
      Op::Announce { node } => {
        nodes[node].announce().await.unwrap();
        model.forget_node(node);
        model.announced[node] = true;
        if node == DYING {
          lapse(url.clone(), namespace.clone()).await;
        }
      }
    }

    // Everything a node can observe agrees with the model.
    let observer = &nodes[0];
    let visible = model.visible();
    for id in SESSIONS {
      let expected = visible.iter().find(|s| s.session_id == id).cloned();
      prop_assert_eq!(
        observer.session(id).await.unwrap(),
        expected,
        "session {:?}",
        id
      );
    }
    for client in CLIENTS {
      let mut expected: Vec<ClusterSession> = visible
        .iter()
        .filter(|s| s.client_id == client)
        .cloned()
        .collect();
      expected.sort_by(|a, b| {
        a.registered_at
          .total_cmp(&b.registered_at)
          .then_with(|| a.session_id.cmp(&b.session_id))
      });
      prop_assert_eq!(
        observer.client_sessions(client).await.unwrap(),
        expected,
        "client {:?}",
        client
      );
    }
    let stats = observer.stats().await.unwrap();
    prop_assert_eq!(stats.total_sessions, visible.len());
    prop_assert_eq!(sorted(visible.clone()).len(), visible.len());
  }
  Ok(())
}

#[test]
fn the_directory_follows_its_rules() {
  // One server for every case (each in a namespace of its own), stopped by
  // its process id when the test ends, however it ends.
  let redis = RedisServer::start(&[]);
  let url = redis.url();
  let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
    cases: 24,
    ..ProptestConfig::default()
  });
  let case = std::cell::Cell::new(0u64);
  let outcome = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
    case.set(case.get() + 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
      .enable_all()
      .build()
      .unwrap();
    runtime.block_on(run(url.clone(), ops, format!("model-{}", case.get())))
  });
  drop(redis);
  if let Err(failure) = outcome {
    panic!("{failure}");
  }
}
