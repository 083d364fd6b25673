//! Members at work against a real `redis-server`: remote closes, node-down
//! news, re-assertion after Redis restarts empty, lost subscriptions.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nity_registry_cluster::{Change, Event, Member, SessionRecord};
use support::{config, RedisServer};
use tokio::sync::mpsc;

/// A member with a stand-in for the registry that embeds it: the sessions it
/// holds, closing them when asked and publishing the removals, and seeding
/// the member from them when it asks.
struct Node {
  member: Arc<Member>,
  held: Arc<Mutex<HashSet<String>>>,
  closes: Arc<Mutex<Vec<String>>>,
  downs: Arc<Mutex<Vec<(String, usize)>>>,
}

impl Node {
  async fn start(url: &str, namespace: &str, id: &str, lease_ms: u64) -> Node {
    let (events, mut received) = mpsc::unbounded_channel();
    let member = Arc::new(
      Member::start(config(url, namespace, id, lease_ms), events)
        .await
        .unwrap(),
    );
    let held: Arc<Mutex<HashSet<String>>> = Arc::default();
    let closes: Arc<Mutex<Vec<String>>> = Arc::default();
    let downs: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
    let (weak, held2, closes2, downs2) = (
      Arc::downgrade(&member),
      Arc::clone(&held),
      Arc::clone(&closes),
      Arc::clone(&downs),
    );
    tokio::spawn(async move {
      while let Some(event) = received.recv().await {
        let Some(member) = weak.upgrade() else { break };
        match event {
          Event::CloseRequest {
            request_id,
            session_id,
            client_id,
          } => {
            let mut closed = Vec::new();
            {
              let mut held = held2.lock().unwrap();
              if let Some(id) = session_id {
                if held.remove(&id) {
                  closed.push(id);
                }
              }
              if let Some(client) = client_id {
                let prefix = format!("{client}/");
                let mine: Vec<String> = held
                  .iter()
                  .filter(|s| s.starts_with(&prefix))
                  .cloned()
                  .collect();
                for id in mine {
                  held.remove(&id);
                  closed.push(id);
                }
              }
            }
            for id in &closed {
              let (client, _) = id.split_once('/').unwrap();
              member.publish(Change::Removed {
                session_id: id.clone(),
                client_id: client.to_owned(),
              });
            }
            closes2.lock().unwrap().extend(closed.iter().cloned());
            member.answer(&request_id, closed.len()).await.unwrap();
          }
          Event::NodeDown { node_id, sessions } => downs2.lock().unwrap().push((node_id, sessions)),
          Event::Conflict { session_ids } => {
            let mut held = held2.lock().unwrap();
            for id in session_ids {
              if held.remove(&id) {
                let (client, _) = id.split_once('/').unwrap();
                member.publish(Change::Removed {
                  session_id: id.clone(),
                  client_id: client.to_owned(),
                });
              }
            }
          }
          // The stand-in's ids are `client/n`, registered at time n.
          Event::Resync => {
            let seed = held2
              .lock()
              .unwrap()
              .iter()
              .map(|id| {
                let (client, n) = id.split_once('/').unwrap();
                Change::Registered(SessionRecord {
                  session_id: id.clone(),
                  client_id: client.to_owned(),
                  registered_at: n.parse().unwrap(),
                })
              })
              .collect();
            member.seed(seed);
          }
        }
      }
    });
    Node {
      member,
      held,
      closes,
      downs,
    }
  }

  /// Registers `client/n` sessions here and publishes them.
  async fn hold(&self, client: &str, count: usize) {
    self.hold_range(client, 0..count).await;
  }

  /// Registers `client/n` sessions for each `n` in `range` and publishes them.
  async fn hold_range(&self, client: &str, range: std::ops::Range<usize>) {
    for n in range {
      let id = format!("{client}/{n}");
      self.held.lock().unwrap().insert(id.clone());
      self.member.publish(Change::Registered(SessionRecord {
        session_id: id,
        client_id: client.to_owned(),
        registered_at: n as f64,
      }));
    }
    self.member.flush().await.unwrap();
  }
}

async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
  let deadline = Instant::now() + within;
  while !check() {
    assert!(
      Instant::now() < deadline,
      "{what} did not happen within {within:?}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_unregister_is_carried_out_once_by_the_owner() {
  let redis = RedisServer::start(&[]);
  let owner = Node::start(&redis.url(), "remote", "owner", 3_000).await;
  let a = Node::start(&redis.url(), "remote", "a", 3_000).await;
  let b = Node::start(&redis.url(), "remote", "b", 3_000).await;
  owner.hold("kilo", 1).await;
  let (x, y) = tokio::join!(a.member.unregister("kilo/0"), b.member.unregister("kilo/0"));
  let answers = [x.unwrap(), y.unwrap()];
  assert_eq!(
    answers.iter().filter(|closed| **closed).count(),
    1,
    "{answers:?}"
  );
  assert_eq!(*owner.closes.lock().unwrap(), ["kilo/0"]);
  owner.member.flush().await.unwrap();
  assert_eq!(a.member.node().session("kilo/0").await.unwrap(), None);
  assert!(
    !a.member.unregister("kilo/0").await.unwrap(),
    "nobody holds it any more"
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_client_closes_on_every_node_and_counts_them_all() {
  let redis = RedisServer::start(&[]);
  let nodes = [
    Node::start(&redis.url(), "cleanup", "a", 3_000).await,
    Node::start(&redis.url(), "cleanup", "b", 3_000).await,
    Node::start(&redis.url(), "cleanup", "c", 3_000).await,
  ];
  // Distinct ids: an id held by two live nodes is a conflict.
  nodes[0].hold_range("kilo", 0..2).await;
  nodes[1].hold_range("kilo", 2..5).await;
  nodes[2].hold("cursor", 1).await;
  assert_eq!(nodes[2].member.cleanup_client("kilo").await.unwrap(), 5);
  assert_eq!(
    nodes[0].closes.lock().unwrap().len() + nodes[1].closes.lock().unwrap().len(),
    5
  );
  for node in &nodes {
    node.member.flush().await.unwrap();
  }
  assert_eq!(
    nodes[2]
      .member
      .node()
      .client_sessions("kilo")
      .await
      .unwrap(),
    vec![]
  );
  assert_eq!(
    nodes[0]
      .member
      .node()
      .client_sessions("cursor")
      .await
      .unwrap()
      .len(),
    1
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_is_reaped_and_every_node_hears_of_it() {
  let redis = RedisServer::start(&[]);
  let lease = 600;
  let dying = Node::start(&redis.url(), "down", "dying", lease).await;
  let a = Node::start(&redis.url(), "down", "a", lease).await;
  let b = Node::start(&redis.url(), "down", "b", lease).await;
  dying.hold("kilo", 2).await;
  let stopped = Instant::now();
  drop(dying);
  let heard = |node: &Node| {
    node
      .downs
      .lock()
      .unwrap()
      .contains(&("dying".to_owned(), 2))
  };
  eventually("the reaping", Duration::from_millis(lease + 3_000), || {
    heard(&a) && heard(&b)
  })
  .await;
  assert!(
    stopped.elapsed() >= Duration::from_millis(lease - 100),
    "not before the lease lapsed"
  );
  assert_eq!(
    a.member.node().client_sessions("kilo").await.unwrap(),
    vec![]
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_is_gone_at_once() {
  let redis = RedisServer::start(&[]);
  let leaving = Node::start(&redis.url(), "leave", "leaving", 3_000).await;
  let a = Node::start(&redis.url(), "leave", "a", 3_000).await;
  leaving.hold("kilo", 3).await;
  leaving.member.leave().await.unwrap();
  eventually("the news", Duration::from_secs(2), || {
    a.downs.lock().unwrap().contains(&("leaving".to_owned(), 3))
  })
  .await;
  assert_eq!(a.member.node().stats().await.unwrap().total_sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_empty_every_node_re_asserts_what_it_holds() {
  let mut redis = RedisServer::start(&[]);
  let a = Node::start(&redis.url(), "restart", "a", 600).await;
  let b = Node::start(&redis.url(), "restart", "b", 600).await;
  a.hold("kilo", 3).await;
  b.hold("cursor", 2).await;
  redis.restart_empty();
  let restarted = Instant::now();
  let mut total = 0;
  while restarted.elapsed() < Duration::from_secs(10) {
    if let Ok(stats) = a.member.node().stats().await {
      total = stats.total_sessions;
      if total == 5 {
        break;
      }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
  }
  assert_eq!(total, 5, "every live session is visible again");
  assert!(
    a.member
      .diagnostics()
      .reannounced
      .load(std::sync::atomic::Ordering::Relaxed)
      >= 1
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_after_the_subscriptions_are_killed() {
  let redis = RedisServer::start(&[]);
  let owner = Node::start(&redis.url(), "killed", "owner", 3_000).await;
  let asker = Node::start(&redis.url(), "killed", "asker", 3_000).await;
  owner.hold("kilo", 2).await;
  redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
  assert!(asker.member.unregister("kilo/0").await.unwrap());
  redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
  assert!(asker.member.unregister("kilo/1").await.unwrap());
  assert_eq!(owner.closes.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_ignored_and_counted() {
  let redis = RedisServer::start(&[]);
  let a = Node::start(&redis.url(), "junk", "a", 3_000).await;
  let owner = Node::start(&redis.url(), "junk", "owner", 3_000).await;
  owner.hold("kilo", 1).await;
  for junk in [
    "garbage",
    "{\"t\":\"req\"}",
    "{\"t\":\"req\",\"id\":\"x\",\"to\":\"owner\",\"from\":\"a\"}",
    "[1,2]",
  ] {
    redis.command(&["PUBLISH", "nity:{junk}:bus", junk]);
  }
  eventually("counting", Duration::from_secs(2), || {
    owner
      .member
      .diagnostics()
      .malformed_messages
      .load(std::sync::atomic::Ordering::Relaxed)
      >= 4
  })
  .await;
  assert!(
    a.member.unregister("kilo/0").await.unwrap(),
    "the node still works"
  );
}

/// The ids the directory holds for `member`'s node under `clients`, sorted.
async fn directory_of(member: &Member, clients: &[&str]) -> Vec<String> {
  let mut ids = Vec::new();
  for client in clients {
    for session in member.node().client_sessions(client).await.unwrap() {
      if session.node_id == member.node().node_id() {
        ids.push(session.session_id);
      }
    }
  }
  ids.sort();
  ids
}

fn sorted(held: &Mutex<HashSet<String>>) -> Vec<String> {
  let mut ids: Vec<String> = held.lock().unwrap().iter().cloned().collect();
  ids.sort();
  ids
}

/// Waits until the directory holds exactly what `node` holds.
async fn converges(node: &Node, clients: &[&str], within: Duration) {
  let deadline = Instant::now() + within;
  loop {
    let shown = directory_of(&node.member, clients).await;
    let held = sorted(&node.held);
    if shown == held {
      return;
    }
    assert!(
      Instant::now() < deadline,
      "the directory shows {} sessions, the node holds {} (after {within:?})",
      shown.len(),
      held.len()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_behind_the_nodes_back_come_back_within_a_lease() {
  let redis = RedisServer::start(&[]);
  let node = Node::start(&redis.url(), "lost", "a", 900).await;
  node.hold("kilo", 40).await;
  node.hold("cursor", 3).await;
  converges(&node, &["kilo", "cursor"], Duration::from_secs(2)).await;
  // A stray delete of every key that holds records (or their eviction).
  redis.command(&[
    "DEL",
    "nity:{lost}:sessions",
    "nity:{lost}:by-client",
    "nity:{lost}:by-node",
  ]);
  assert!(directory_of(&node.member, &["kilo", "cursor"])
    .await
    .is_empty());
  // The heartbeat (every third of the lease) finds the digest untrustworthy
  // and the node resyncs: back within a lease and a resync.
  converges(
    &node,
    &["kilo", "cursor"],
    Duration::from_millis(900 + 1_500),
  )
  .await;
  let diagnostics = node.member.diagnostics();
  assert!(
    diagnostics
      .digest_mismatches
      .load(std::sync::atomic::Ordering::Relaxed)
      >= 1
  );
  assert!(
    diagnostics
      .resyncs
      .load(std::sync::atomic::Ordering::Relaxed)
      >= 1
  );
  let nodes = node.member.node().nodes().await.unwrap();
  assert_eq!(nodes[0].sessions, 43, "the maintained count is whole again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_node_does_not_hold_are_removed_within_a_lease() {
  let redis = RedisServer::start(&[]);
  let node = Node::start(&redis.url(), "ghosts", "a", 900).await;
  node.hold("kilo", 5).await;
  // A publication that ran in Redis after the node gave up on it: records
  // the node no longer holds (written here behind the member's back), and
  // one of its own removed.
  node
    .member
    .node()
    .publish(&[
      Change::Registered(SessionRecord {
        session_id: "kilo/ghost".into(),
        client_id: "kilo".into(),
        registered_at: 0.0,
      }),
      Change::Removed {
        session_id: "kilo/1".into(),
        client_id: "kilo".into(),
      },
    ])
    .await
    .unwrap();
  assert!(directory_of(&node.member, &["kilo"])
    .await
    .contains(&"kilo/ghost".to_owned()));
  converges(&node, &["kilo"], Duration::from_millis(900 + 1_500)).await;
  assert!(!directory_of(&node.member, &["kilo"])
    .await
    .contains(&"kilo/ghost".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_rest_whose_records_are_whole_never_resyncs() {
  let redis = RedisServer::start(&[]);
  let node = Node::start(&redis.url(), "rest", "a", 300).await;
  node.hold("kilo", 20).await;
  let before = node
    .member
    .diagnostics()
    .resyncs
    .load(std::sync::atomic::Ordering::Relaxed);
  // Ten heartbeats with everything in place.
  tokio::time::sleep(Duration::from_millis(1_000)).await;
  let diagnostics = node.member.diagnostics();
  assert_eq!(
    diagnostics
      .digest_mismatches
      .load(std::sync::atomic::Ordering::Relaxed),
    0
  );
  assert_eq!(
    diagnostics
      .resyncs
      .load(std::sync::atomic::Ordering::Relaxed),
    before
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_node_closes_its_copy_of_an_id_another_live_node_claimed() {
  let redis = RedisServer::start(&[]);
  let a = Node::start(&redis.url(), "conflict", "a", 3_000).await;
  let b = Node::start(&redis.url(), "conflict", "b", 3_000).await;
  a.hold("kilo", 2).await;
  // While `a` was cut off and reaped, `b` claimed one of its ids.
  b.member.node().reap().await.unwrap();
  redis.command(&["ZADD", "nity:{conflict}:leases", "0", "a"]);
  b.member.node().reap().await.unwrap();
  assert_eq!(
    b.member
      .node()
      .claim("kilo/0", "kilo", 5.0, None)
      .await
      .unwrap(),
    nity_registry_cluster::Claim::Claimed
  );
  b.held.lock().unwrap().insert("kilo/0".into());
  // `a` comes back: fenced, announces, resyncs, and meets the conflict.
  eventually("a closes its copy", Duration::from_secs(5), || {
    !a.held.lock().unwrap().contains("kilo/0")
  })
  .await;
  assert_eq!(
    a.member
      .diagnostics()
      .conflicts
      .load(std::sync::atomic::Ordering::Relaxed),
    1
  );
  let owner = a.member.node().session("kilo/0").await.unwrap().unwrap();
  assert_eq!(owner.node_id, "b", "the directory's record won");
  converges(&a, &["kilo"], Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_directory_has_no_record_of_are_not_obeyed() {
  let redis = RedisServer::start(&[]);
  let owner = Node::start(&redis.url(), "forged", "owner", 3_000).await;
  let other = Node::start(&redis.url(), "forged", "other", 3_000).await;
  owner.hold("kilo", 2).await;
  let channel = "nity:{forged}:bus";
  // A close request and a node-down nobody recorded: published by anyone
  // who can publish on the channel.
  redis.command(&[
    "PUBLISH",
    channel,
    r#"{"t":"req","id":"x:1:1","to":"owner","from":"other","s":"kilo/0"}"#,
  ]);
  redis.command(&[
    "PUBLISH",
    channel,
    r#"{"t":"down","node":"other","n":12345}"#,
  ]);
  redis.command(&[
    "PUBLISH",
    channel,
    r#"{"t":"down","node":"other","n":1,"e":1}"#,
  ]);
  let malformed = || {
    owner
      .member
      .diagnostics()
      .malformed_messages
      .load(std::sync::atomic::Ordering::Relaxed)
  };
  eventually(
    "the forged messages counted",
    Duration::from_secs(3),
    || malformed() >= 3,
  )
  .await;
  assert!(owner.held.lock().unwrap().contains("kilo/0"), "not closed");
  assert!(owner.closes.lock().unwrap().is_empty());
  assert!(
    owner.downs.lock().unwrap().is_empty(),
    "no node-down for a live node"
  );
  // Real ones still work: a recorded request, a real leave.
  assert!(other.member.unregister("kilo/0").await.unwrap());
  assert_eq!(*owner.closes.lock().unwrap(), ["kilo/0"]);
  other.member.leave().await.unwrap();
  eventually("the real node-down told", Duration::from_secs(3), || {
    owner.downs.lock().unwrap().len() == 1
  })
  .await;
  assert_eq!(owner.downs.lock().unwrap()[0].0, "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_left_never_comes_back_by_itself() {
  let redis = RedisServer::start(&[]);
  let leaving = Node::start(&redis.url(), "final", "leaving", 300).await;
  let other = Node::start(&redis.url(), "final", "other", 300).await;
  leaving.hold("kilo", 3).await;
  leaving.member.leave().await.unwrap();
  // Still running, still held by its embedder, still told of changes.
  leaving.hold("kilo-later", 1).await;
  // Several heartbeats and reaps later, nothing of it is back.
  tokio::time::sleep(Duration::from_millis(1_200)).await;
  let nodes: Vec<String> = other
    .member
    .node()
    .nodes()
    .await
    .unwrap()
    .into_iter()
    .map(|node| node.node_id)
    .collect();
  assert_eq!(nodes, ["other"]);
  assert!(other
    .member
    .node()
    .client_sessions("kilo")
    .await
    .unwrap()
    .is_empty());
  assert!(other
    .member
    .node()
    .client_sessions("kilo-later")
    .await
    .unwrap()
    .is_empty());
  assert_eq!(
    leaving
      .member
      .diagnostics()
      .reannounced
      .load(std::sync::atomic::Ordering::Relaxed),
    0
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stalls_of_twice_the_lease_declare_no_healthy_node_dead() {
  let redis = RedisServer::start(&[]);
  let lease = 300;
  let nodes = [
    Node::start(&redis.url(), "stalls", "a", lease).await,
    Node::start(&redis.url(), "stalls", "b", lease).await,
    Node::start(&redis.url(), "stalls", "c", lease).await,
  ];
  nodes[0].hold("kilo", 3).await;
  for _ in 0..20 {
    // Every other client's commands wait twice the lease, then run in the
    // order they came: heartbeats and reaps of every node, interleaved.
    redis.command(&["CLIENT", "PAUSE", &(2 * lease).to_string(), "ALL"]);
    tokio::time::sleep(Duration::from_millis(2 * lease + 150)).await;
  }
  for node in &nodes {
    assert_eq!(
      *node.downs.lock().unwrap(),
      Vec::<(String, usize)>::new(),
      "no node was declared dead"
    );
    assert_eq!(
      node
        .member
        .diagnostics()
        .reannounced
        .load(std::sync::atomic::Ordering::Relaxed),
      0,
      "no node was fenced"
    );
  }
  let live = nodes[1].member.node().nodes().await.unwrap();
  assert_eq!(live.len(), 3);
  assert_eq!(
    nodes[1]
      .member
      .node()
      .client_sessions("kilo")
      .await
      .unwrap()
      .len(),
    3
  );
  // A node that really dies is still reaped, within its lease and slack.
  let dead = nodes;
  let [a, b, c] = dead;
  drop(c);
  eventually("c reaped", Duration::from_millis(5 * lease + 2_000), || {
    a.downs.lock().unwrap().iter().any(|(node, _)| node == "c")
  })
  .await;
  assert!(b.downs.lock().unwrap().iter().all(|(node, _)| node == "c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_subscribe_does_not_start_and_leaves_nothing_behind() {
  let redis = RedisServer::start(&[]);
  // Keys but no channel: commands work, SUBSCRIBE is refused.
  redis.command(&[
    "ACL",
    "SETUSER",
    "deaf",
    "on",
    ">s3cret",
    "~nity:{deaf}:*",
    "resetchannels",
    "+@all",
  ]);
  let url = format!("redis://deaf:s3cret@127.0.0.1:{}/0", redis.port);
  let (events, _received) = mpsc::unbounded_channel();
  let started = Member::start(config(&url, "deaf", "a", 3_000), events).await;
  assert!(
    matches!(
      started,
      Err(nity_registry_cluster::ClusterError::Unavailable(_))
    ),
    "{:?}",
    started.as_ref().err()
  );
  let watcher = support::node(&redis.url(), "deaf", "watcher", 3_000).await;
  let nodes: Vec<String> = watcher
    .nodes()
    .await
    .unwrap()
    .into_iter()
    .map(|node| node.node_id)
    .collect();
  assert_eq!(
    nodes,
    ["watcher"],
    "the node that could not listen left again"
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_message_is_lost_is_found_on_record_within_a_tenth_of_the_lease() {
  let redis = RedisServer::start(&[]);
  let requester = Node::start(&redis.url(), "lost-answer", "requester", 300).await;
  // The owner is played by the test: a node that records its answer but
  // whose message never arrives.
  let owner = support::node(&redis.url(), "lost-answer", "mute", 60_000).await;
  owner
    .publish(&[Change::Registered(SessionRecord {
      session_id: "m/1".into(),
      client_id: "m".into(),
      registered_at: 0.0,
    })])
    .await
    .unwrap();
  let member = Arc::clone(&requester.member);
  let asked = tokio::spawn(async move { member.unregister("m/1").await });
  let id = loop {
    let recorded = redis.command(&["HKEYS", "nity:{lost-answer}:requests"]);
    if let redis::Value::Array(ids) = recorded {
      if let Some(redis::Value::BulkString(id)) = ids.into_iter().next() {
        break String::from_utf8(id).unwrap();
      }
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
  };
  redis.command(&["HSET", "nity:{lost-answer}:answers", &id, "1"]);
  let answered = Instant::now();
  assert!(
    asked.await.unwrap().unwrap(),
    "the recorded answer says it was closed"
  );
  // The request timeout is 2 s; a tenth of the lease is 30 ms.
  assert!(
    answered.elapsed() < Duration::from_millis(1_000),
    "found after {:?}",
    answered.elapsed()
  );
  // The requester cleans up after itself.
  assert_eq!(
    redis.command(&["HLEN", "nity:{lost-answer}:answers"]),
    redis::Value::Int(0)
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_after_its_requester_gave_up_leaves_nothing_behind() {
  let redis = RedisServer::start(&[]);
  let owner = Node::start(&redis.url(), "late", "owner", 3_000).await;
  owner
    .member
    .answer("requester:1:7\nrequester", 1)
    .await
    .unwrap();
  assert_eq!(
    redis.command(&["HLEN", "nity:{late}:answers"]),
    redis::Value::Int(0)
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_claim_comes_after_the_nodes_own_queued_changes() {
  let redis = RedisServer::start(&[]);
  let node = Node::start(&redis.url(), "ordered", "a", 3_000).await;
  node.hold("kilo", 1).await;
  // A backlog of this node's own changes, the last of them the removal of
  // kilo/0; then a strict claim of kilo/0. The claim must come after the
  // removal, not overtake the backlog and find this node's own record.
  for n in 0..20_000 {
    node.member.publish(Change::Registered(SessionRecord {
      session_id: format!("filler/{n}"),
      client_id: "filler".into(),
      registered_at: 0.0,
    }));
  }
  node.member.publish(Change::Removed {
    session_id: "kilo/0".into(),
    client_id: "kilo".into(),
  });
  node.held.lock().unwrap().remove("kilo/0");
  let claimed = node
    .member
    .claim("kilo/0", "kilo", 1.0, None)
    .await
    .unwrap();
  assert_eq!(claimed, nity_registry_cluster::Claim::Claimed);
}
