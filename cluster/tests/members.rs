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
              member.publish(Change::Removed {
                session_id: id.clone(),
              });
            }
            closes2.lock().unwrap().extend(closed.iter().cloned());
            member.answer(&request_id, closed.len()).await.unwrap();
          }
          Event::NodeDown { node_id, sessions } => downs2.lock().unwrap().push((node_id, sessions)),
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
    for n in 0..count {
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
  nodes[0].hold("kilo", 2).await;
  nodes[1].hold("kilo", 3).await;
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
