//! The directory against a real `redis-server`, several nodes per test.

mod support;

use std::sync::Arc;
use std::time::Duration;

use nity_registry_cluster::{
  Beat, Change, Claim, ClusterError, ClusterNode, ClusterSession, Digest, Published, SessionRecord,
};
use support::{node, RedisServer};

fn registered(session_id: &str, client_id: &str, registered_at: f64) -> Change {
  Change::Registered(SessionRecord {
    session_id: session_id.to_owned(),
    client_id: client_id.to_owned(),
    registered_at,
  })
}

/// A removal; the directory reads the client from the record it removes.
fn removed(session_id: &str) -> Change {
  Change::Removed {
    session_id: session_id.to_owned(),
    client_id: String::new(),
  }
}

/// Keeps the namespace busy for `duration`, as a live member's heartbeats
/// do: the directory takes a namespace where no script runs for a third of a
/// lease for a stalled Redis, and gives every lease the time back.
async fn keep_busy(node: &ClusterNode, duration: Duration) {
  let until = std::time::Instant::now() + duration;
  while std::time::Instant::now() < until {
    node.heartbeat().await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
  }
}

fn applied() -> Published {
  Published::Applied { conflicts: vec![] }
}

fn ids(sessions: &[ClusterSession]) -> Vec<&str> {
  sessions.iter().map(|s| s.session_id.as_str()).collect()
}

#[tokio::test]
async fn what_one_node_publishes_every_node_sees() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "bridge", "a", 3_000).await;
  let b = node(&redis.url(), "bridge", "b", 3_000).await;
  let changes = [
    registered("s1", "kilo", 10.0),
    registered("s2", "kilo", 20.0),
    registered("s3", "cursor", 30.0),
  ];
  assert_eq!(a.publish(&changes).await.unwrap(), applied());
  assert_eq!(
    b.publish(&[registered("s4", "kilo", 5.0)]).await.unwrap(),
    applied()
  );

  let s1 = b.session("s1").await.unwrap().unwrap();
  assert_eq!(
    s1,
    ClusterSession {
      session_id: "s1".into(),
      client_id: "kilo".into(),
      node_id: "a".into(),
      registered_at: 10.0
    }
  );
  assert_eq!(
    ids(&b.client_sessions("kilo").await.unwrap()),
    ["s4", "s1", "s2"],
    "oldest first, across nodes"
  );
  let stats = a.stats().await.unwrap();
  assert_eq!(stats.total_sessions, 4);
  assert_eq!(stats.active_clients, 2);
  assert_eq!(
    stats.sessions_by_client,
    vec![("cursor".into(), 1), ("kilo".into(), 3)]
  );
  assert_eq!(stats.nodes, 2);
  assert_eq!(
    stats.sessions_by_node,
    vec![("a".into(), 3), ("b".into(), 1)]
  );
  let nodes = b.nodes().await.unwrap();
  assert_eq!(
    nodes
      .iter()
      .map(|n| (n.node_id.as_str(), n.sessions))
      .collect::<Vec<_>>(),
    [("a", 3), ("b", 1)]
  );

  assert_eq!(
    a.publish(&[removed("s1"), removed("s1")]).await.unwrap(),
    applied()
  );
  assert_eq!(b.session("s1").await.unwrap(), None);
  // A node cannot remove another node's record.
  assert_eq!(b.publish(&[removed("s2")]).await.unwrap(), applied());
  assert!(a.session("s2").await.unwrap().is_some());
}

#[tokio::test]
async fn a_batch_replayed_changes_nothing_more_and_a_live_holder_keeps_its_id() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "ns", "a", 3_000).await;
  let b = node(&redis.url(), "ns", "b", 3_000).await;
  let batch = [
    registered("s", "c", 1.0),
    registered("t", "c", 2.0),
    removed("t"),
  ];
  assert_eq!(a.publish(&batch).await.unwrap(), applied());
  assert_eq!(a.publish(&batch).await.unwrap(), applied());
  assert_eq!(ids(&b.client_sessions("c").await.unwrap()), ["s"]);
  assert_eq!(
    b.publish(&[registered("s", "other", 3.0)]).await.unwrap(),
    Published::Applied {
      conflicts: vec!["s".into()]
    }
  );
  assert_eq!(b.session("s").await.unwrap().unwrap().node_id, "a");
}

#[tokio::test]
async fn ids_with_pattern_characters_spaces_and_unicode_stay_distinct() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "ids", "a", 3_000).await;
  let special = [
    "*",
    "?",
    "[a]",
    "a/b",
    "a:b",
    "a\\b",
    "{tag}",
    "100%",
    "a b",
    "ünï 🚀",
    "a",
    "a:",
    ":a",
    "1:a",
  ];
  let changes: Vec<Change> = special
    .iter()
    .enumerate()
    .map(|(i, id)| registered(id, id, i as f64))
    .collect();
  assert_eq!(a.publish(&changes).await.unwrap(), applied());
  for id in special {
    let found = a.session(id).await.unwrap().unwrap();
    assert_eq!(found.session_id, id);
    assert_eq!(
      ids(&a.client_sessions(id).await.unwrap()),
      [id],
      "client {id:?} sees only its own session"
    );
  }
  assert_eq!(a.stats().await.unwrap().total_sessions, special.len());
}

#[tokio::test]
async fn two_namespaces_on_one_server_never_see_each_other() {
  let redis = RedisServer::start(&[]);
  let one = node(&redis.url(), "one", "a", 3_000).await;
  let two = node(&redis.url(), "two", "a", 3_000).await;
  one.publish(&[registered("s", "c", 1.0)]).await.unwrap();
  assert_eq!(two.session("s").await.unwrap(), None);
  assert_eq!(two.stats().await.unwrap().total_sessions, 0);
  assert_eq!(two.nodes().await.unwrap().len(), 1);
  assert!(
    ClusterNode::connect(support::config(&redis.url(), "a}b", "x", 3_000))
      .await
      .is_err()
  );
}

#[tokio::test]
async fn racing_strict_claims_of_one_id_admit_exactly_one() {
  let redis = RedisServer::start(&[]);
  let a = Arc::new(node(&redis.url(), "race", "a", 3_000).await);
  let b = Arc::new(node(&redis.url(), "race", "b", 3_000).await);
  for round in 0..20 {
    let id = format!("s{round}");
    let (x, y) = tokio::join!(a.claim(&id, "c", 1.0, None), b.claim(&id, "c", 1.0, None));
    let outcomes = [x.unwrap(), y.unwrap()];
    assert_eq!(
      outcomes.iter().filter(|o| **o == Claim::Claimed).count(),
      1,
      "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|o| matches!(o, Claim::Taken { .. })));
  }
}

#[tokio::test]
async fn the_fleet_wide_limit_holds_under_racing_claims() {
  let redis = RedisServer::start(&[]);
  let mut nodes = Vec::new();
  for name in ["a", "b", "c"] {
    nodes.push(Arc::new(node(&redis.url(), "limit", name, 3_000).await));
  }
  let mut tasks = Vec::new();
  for (n, node) in nodes.iter().enumerate() {
    for i in 0..10 {
      let node = Arc::clone(node);
      tasks.push(tokio::spawn(async move {
        node
          .claim(&format!("{n}-{i}"), "client", i as f64, Some(5))
          .await
      }));
    }
  }
  let mut claimed = 0;
  for task in tasks {
    match task.await.unwrap().unwrap() {
      Claim::Claimed => claimed += 1,
      Claim::Limit { count } => assert_eq!(count, 5),
      other => panic!("unexpected {other:?}"),
    }
  }
  assert_eq!(claimed, 5);
  assert_eq!(nodes[0].client_sessions("client").await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_silent_node_is_reaped_with_its_records_once_its_lease_lapses() {
  let redis = RedisServer::start(&[]);
  let dead = node(&redis.url(), "reap", "dead", 300).await;
  let alive = node(&redis.url(), "reap", "alive", 10_000).await;
  dead
    .publish(&[registered("d1", "c", 1.0), registered("d2", "c", 2.0)])
    .await
    .unwrap();
  alive.publish(&[registered("a1", "c", 3.0)]).await.unwrap();
  assert_eq!(
    alive.reap().await.unwrap(),
    Some(vec![]),
    "nobody is dead yet"
  );
  keep_busy(&alive, Duration::from_millis(400)).await;
  // Lookups hide a lapsed node's records even before it is reaped.
  assert_eq!(ids(&alive.client_sessions("c").await.unwrap()), ["a1"]);
  let dead_epoch = dead.epoch();
  assert_eq!(
    alive.reap().await.unwrap(),
    Some(vec![("dead".into(), 2, dead_epoch)]),
    "the dead node, its records, and the epoch it died in"
  );
  assert!(alive.down_on_record("dead", dead_epoch).await.unwrap());
  assert!(!alive.down_on_record("dead", dead_epoch + 1).await.unwrap());
  assert!(!alive.down_on_record("alive", alive.epoch()).await.unwrap());
  assert_eq!(
    alive.reap().await.unwrap(),
    Some(vec![]),
    "reaping is idempotent"
  );
  assert_eq!(alive.nodes().await.unwrap().len(), 1);

  // The dead node comes back: fenced off, then it announces and re-asserts.
  assert_eq!(dead.heartbeat().await.unwrap(), Beat::Fenced);
  assert_eq!(
    dead.publish(&[registered("d3", "c", 4.0)]).await.unwrap(),
    Published::Fenced
  );
  assert_eq!(
    dead.claim("d4", "c", 5.0, None).await.unwrap(),
    Claim::Fenced
  );
  let old = dead.epoch();
  assert!(dead.announce().await.unwrap() > old);
  assert_eq!(
    dead.publish(&[registered("d1", "c", 1.0)]).await.unwrap(),
    applied()
  );
  assert_eq!(
    ids(&alive.client_sessions("c").await.unwrap()),
    ["d1", "a1"]
  );
}

#[tokio::test]
async fn a_node_whose_own_lease_lapsed_reaps_nobody() {
  let redis = RedisServer::start(&[]);
  let stalled = node(&redis.url(), "stall", "stalled", 200).await;
  let other = node(&redis.url(), "stall", "other", 200).await;
  other.publish(&[registered("o", "c", 1.0)]).await.unwrap();
  // The stalled node is silent while the other renews: its own lease lapses,
  // and it must not reap (it may be the one that was cut off).
  keep_busy(&other, Duration::from_millis(300)).await;
  assert_eq!(stalled.reap().await.unwrap(), None);
  assert!(
    matches!(stalled.heartbeat().await.unwrap(), Beat::Renewed(_)),
    "still announced: it may renew"
  );
  // Once renewed, it reaps a node that went silent.
  keep_busy(&stalled, Duration::from_millis(300)).await;
  assert_eq!(
    stalled.reap().await.unwrap(),
    Some(vec![("other".into(), 1, other.epoch())])
  );
}

#[tokio::test]
async fn after_redis_restarts_empty_a_node_is_fenced_and_re_asserts() {
  let mut redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "restart", "a", 3_000).await;
  a.publish(&[registered("s", "c", 1.0)]).await.unwrap();
  redis.restart_empty();
  // The first request after the drop may fail while the manager reconnects.
  let mut renewed = a.heartbeat().await;
  for _ in 0..20 {
    if renewed.is_ok() {
      break;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    renewed = a.heartbeat().await;
  }
  assert_eq!(
    renewed,
    Ok(Beat::Fenced),
    "its node entry went with the data"
  );
  a.announce().await.unwrap();
  a.publish(&[registered("s", "c", 1.0)]).await.unwrap();
  assert_eq!(a.session("s").await.unwrap().unwrap().node_id, "a");
}

#[tokio::test]
async fn leaving_removes_the_node_and_its_records_at_once() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "leave", "a", 3_000).await;
  let b = node(&redis.url(), "leave", "b", 3_000).await;
  a.publish(&[registered("s", "c", 1.0), registered("t", "c", 2.0)])
    .await
    .unwrap();
  assert_eq!(a.leave().await.unwrap(), Some(2));
  assert_eq!(a.leave().await.unwrap(), None);
  assert_eq!(b.stats().await.unwrap().total_sessions, 0);
  assert_eq!(b.nodes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn records_someone_else_wrote_are_ignored_and_counted() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "junk", "a", 3_000).await;
  a.publish(&[registered("good", "c", 1.0)]).await.unwrap();
  redis.command(&["HSET", "nity:{junk}:sessions", "bad", "not json"]);
  redis.command(&["HSET", "nity:{junk}:nodes", "ghost", "{\"e\":\"x\"}"]);
  redis.command(&["ZADD", "nity:{junk}:by-client", "0", "1:cbad"]);
  assert_eq!(ids(&a.client_sessions("c").await.unwrap()), ["good"]);
  assert_eq!(a.stats().await.unwrap().total_sessions, 1);
  assert!(a.malformed() >= 1);
  assert_eq!(a.nodes().await.unwrap().len(), 1);
  assert_eq!(a.reap().await.unwrap(), Some(vec![]));
}

#[tokio::test]
async fn acl_users_log_in_with_a_password() {
  let redis = RedisServer::start(&[]);
  redis.command(&[
    "ACL",
    "SETUSER",
    "bridge",
    "on",
    ">s3cret",
    "~nity:{acl}:*",
    "&nity:{acl}:*",
    "+@all",
  ]);
  let url = format!("redis://bridge:s3cret@127.0.0.1:{}/0", redis.port);
  let a = node(&url, "acl", "a", 3_000).await;
  a.publish(&[registered("s", "c", 1.0)]).await.unwrap();
  assert!(a.session("s").await.unwrap().is_some());
  let wrong = format!("redis://bridge:nope@127.0.0.1:{}/0", redis.port);
  let refused = ClusterNode::connect(support::config(&wrong, "acl", "b", 3_000)).await;
  assert!(matches!(refused, Err(ClusterError::Unavailable(_))));
}

#[tokio::test]
async fn an_unreachable_redis_is_an_unavailable_error_in_time() {
  let port = std::net::TcpListener::bind("127.0.0.1:0")
    .unwrap()
    .local_addr()
    .unwrap()
    .port();
  let started = std::time::Instant::now();
  let refused = ClusterNode::connect(support::config(
    &format!("redis://127.0.0.1:{port}/0"),
    "x",
    "a",
    3_000,
  ))
  .await;
  assert!(matches!(refused, Err(ClusterError::Unavailable(_))));
  assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn rediss_urls_speak_tls() {
  let dir = std::env::temp_dir().join(format!("nity-tls-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let (redis, ca) = RedisServer::start_tls(&dir);
  // rustls reads the trusted roots from SSL_CERT_FILE when it is set.
  // No other test of this file makes TLS connections, so the setting is theirs to ignore.
  std::env::set_var("SSL_CERT_FILE", &ca);
  let url = format!("rediss://127.0.0.1:{}/0", redis.port);
  let a = node(&url, "tls", "a", 3_000).await;
  a.publish(&[registered("s", "c", 1.0)]).await.unwrap();
  assert_eq!(a.session("s").await.unwrap().unwrap().node_id, "a");
  drop(redis);
  let _ = std::fs::remove_dir_all(&dir);
}

/// What a heartbeat reports of `node`'s digest.
async fn digest_of(node: &ClusterNode) -> Option<Digest> {
  match node.heartbeat().await.unwrap() {
    Beat::Renewed(digest) => digest,
    Beat::Fenced => panic!("fenced"),
  }
}

#[tokio::test]
async fn the_digest_follows_every_script_that_writes_or_removes_records() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "digest", "a", 3_000).await;
  let b = node(&redis.url(), "digest", "b", 3_000).await;
  assert_eq!(digest_of(&a).await, Some(Digest::default()));
  a.publish(&[
    registered("s1", "c", 1.0),
    registered("s2", "c", 2.0),
    registered("s3", "k", 3.0),
    removed("s1"),
    // Registered again under another client: the record changes.
    removed("s3"),
    registered("s3", "c", 4.0),
  ])
  .await
  .unwrap();
  assert_eq!(a.claim("s4", "k", 5.0, None).await.unwrap(), Claim::Claimed);
  // Replays change nothing.
  a.publish(&[registered("s2", "c", 2.0)]).await.unwrap();
  let mut expected = Digest::default();
  expected.add("s2", "c");
  expected.add("s3", "c");
  expected.add("s4", "k");
  assert_eq!(digest_of(&a).await, Some(expected));
  assert_eq!(a.nodes().await.unwrap()[0].sessions, 3);
  // Another node's records are in its own digest only.
  b.publish(&[registered("t1", "c", 1.0)]).await.unwrap();
  assert_eq!(digest_of(&a).await, Some(expected));
  let mut of_b = Digest::default();
  of_b.add("t1", "c");
  assert_eq!(digest_of(&b).await, Some(of_b));
  // A key holding records deleted whole: the digest says it cannot be trusted.
  redis.command(&["DEL", "nity:{digest}:by-client"]);
  assert_eq!(digest_of(&a).await, None);
}

#[tokio::test]
async fn node_counts_are_exact_for_ids_beyond_latin_1() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "wide", "a", 3_000).await;
  let ids = ["plain", "\u{ff}y", "\u{100}x", "\u{4e16}", "\u{1f600}"];
  let changes: Vec<Change> = ids.iter().map(|id| registered(id, "c", 1.0)).collect();
  a.publish(&changes).await.unwrap();
  assert_eq!(a.nodes().await.unwrap()[0].sessions, ids.len());
  let mut own = a.own_ids(None, 2).await.unwrap();
  while own.len() < ids.len() {
    let next = a.own_ids(own.last().map(String::as_str), 2).await.unwrap();
    assert!(!next.is_empty(), "the walk of own ids stopped at {own:?}");
    own.extend(next);
  }
  let mut expected: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
  expected.sort();
  assert_eq!(own, expected, "every own id, in byte order, once");
}

#[tokio::test]
async fn junk_in_the_namespace_never_blocks_a_join() {
  let redis = RedisServer::start(&[]);
  let a = node(&redis.url(), "junk", "a", 3_000).await;
  let first = a.epoch();
  // An epoch counter that is not a counter: the next join starts above
  // every epoch in use.
  redis.command(&["SET", "nity:{junk}:epoch", "abc"]);
  let b = node(&redis.url(), "junk", "b", 3_000).await;
  assert!(
    b.epoch() > first,
    "b joined under {} (a has {first})",
    b.epoch()
  );
  // Keys of a type the directory never writes are removed on a join.
  redis.command(&["DEL", "nity:{junk}:epoch", "nity:{junk}:downs"]);
  redis.command(&["HSET", "nity:{junk}:epoch", "x", "y"]);
  redis.command(&["SET", "nity:{junk}:downs", "z"]);
  let c = node(&redis.url(), "junk", "c", 3_000).await;
  c.publish(&[registered("s", "k", 1.0)]).await.unwrap();
  assert_eq!(c.session("s").await.unwrap().unwrap().node_id, "c");
  // The nodes that were there before keep working (fenced by the repair at
  // worst, then announced again).
  assert!(matches!(a.heartbeat().await.unwrap(), Beat::Renewed(_)));
}

#[tokio::test]
async fn a_node_id_a_live_node_goes_by_is_refused_until_its_lease_lapses() {
  let redis = RedisServer::start(&[]);
  let first = node(&redis.url(), "ids", "same", 300).await;
  let second = ClusterNode::connect(support::config(&redis.url(), "ids", "same", 300)).await;
  assert!(
    matches!(second, Err(ClusterError::NodeIdInUse(ref id)) if id == "same"),
    "{:?}",
    second.as_ref().err()
  );
  // The first node announcing again (fenced off) is that node, not a newcomer.
  first.announce().await.unwrap();
  // Once its lease lapsed (the process died), the id is free again.
  let witness = node(&redis.url(), "ids", "witness", 3_000).await;
  keep_busy(&witness, Duration::from_millis(400)).await;
  ClusterNode::connect(support::config(&redis.url(), "ids", "same", 300))
    .await
    .expect("the id is free once its lease lapsed");
}

#[tokio::test]
async fn node_ids_are_printable_text_of_at_most_256_bytes() {
  let redis = RedisServer::start(&[]);
  for bad in ["", "a\nb", "tab\there", "nul\0", &"x".repeat(257)] {
    let refused = ClusterNode::connect(support::config(&redis.url(), "ids", bad, 3_000)).await;
    assert!(
      matches!(refused, Err(ClusterError::InvalidNodeId(_))),
      "{bad:?} was not refused"
    );
  }
  for good in ["é-ü 節點", &"x".repeat(256), "with spaces and : * { }"] {
    node(&redis.url(), "ids", good, 3_000).await;
  }
}
