//! One node's view of the shared directory: announcing itself, renewing its
//! lease, publishing what it registers and removes, the strict claim, reaping
//! dead nodes, leaving, and the fleet-wide lookups.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Value};
use serde::Deserialize;

use crate::digest::Digest;
use crate::keys::{length_prefixed, Namespace};
use crate::scripts::Scripts;
use crate::{ClusterError, Result};
use nity_registry_core::Change;

/// How a node joins a namespace.
#[derive(Debug, Clone)]
pub struct NodeConfig {
  /// `redis://` or `rediss://`, with `user:password@` for ACL users.
  pub redis_url: String,
  pub namespace: String,
  pub node_id: String,
  /// A node silent this long is dead and its records go.
  pub lease_ms: u64,
  /// How long one request to Redis may take before it fails.
  pub request_timeout_ms: u64,
  /// When the node started, on the caller's clock (ms since the epoch).
  pub started_at: f64,
}

/// A session as the directory records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSession {
  pub session_id: String,
  pub client_id: String,
  pub node_id: String,
  pub registered_at: f64,
}

/// A live node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
  pub node_id: String,
  pub sessions: usize,
  pub started_at: f64,
  /// Its last heartbeat, on the Redis server's clock.
  pub last_seen_at: f64,
}

/// The fleet-wide counts, over live nodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterStats {
  pub total_sessions: usize,
  pub active_clients: usize,
  /// By client id, in id order.
  pub sessions_by_client: Vec<(String, usize)>,
  pub nodes: usize,
  /// By node id, in id order, every live node included.
  pub sessions_by_node: Vec<(String, usize)>,
}

/// What publishing a batch did.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
  /// Applied, but for ids another live node holds (left to it).
  Applied { conflicts: Vec<String> },
  /// The node was reaped or announced again: nothing was applied. Announce
  /// anew and publish everything it holds.
  Fenced,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
  /// The lease is renewed; the digest of what Redis holds for the node,
  /// `None` when it cannot be trusted (a key holding its records is gone).
  Renewed(Option<Digest>),
  /// The node was reaped or announced again: announce anew.
  Fenced,
}

/// The answer to a strict claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
  Claimed,
  /// A live node holds the id.
  Taken {
    node_id: String,
    client_id: String,
  },
  /// The client holds this many live sessions fleet-wide, the maximum.
  Limit {
    count: usize,
  },
  Fenced,
}

#[derive(Deserialize)]
struct Record {
  c: String,
  n: String,
  t: f64,
}

#[derive(Deserialize)]
struct Info {
  e: u64,
  s: f64,
  t: f64,
  /// How many records the node holds (its digest's count).
  #[serde(default)]
  dc: u64,
}

/// A node of the fleet, connected to the namespace's Redis.
pub struct ClusterNode {
  ns: Namespace,
  node_id: String,
  lease_ms: u64,
  started_at: f64,
  con: ConnectionManager,
  scripts: Scripts,
  epoch: AtomicU64,
  /// How many times the node announced itself. Epochs start over when Redis
  /// loses its data, so a new announcement is told by this count, not by
  /// the epoch's value.
  announcements: AtomicU64,
  /// Records and node entries in the namespace that this directory did not
  /// write (they are ignored).
  malformed: AtomicU64,
}

impl ClusterNode {
  /// Connects and announces the node under a new epoch.
  pub async fn connect(config: NodeConfig) -> Result<ClusterNode> {
    let ns = Namespace::new(&config.namespace)?;
    // rediss:// goes through rustls; its crypto is ring's. Installing the
    // process-wide default fails harmlessly when one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let printable = !config.node_id.is_empty()
      && config.node_id.len() <= 256
      && !config.node_id.chars().any(char::is_control);
    if !printable {
      return Err(ClusterError::InvalidNodeId(config.node_id));
    }
    let client =
      redis::Client::open(config.redis_url.as_str()).map_err(ClusterError::from_redis)?;
    let timeout = Duration::from_millis(config.request_timeout_ms.max(1));
    let manager = ConnectionManagerConfig::new()
      .set_response_timeout(Some(timeout))
      .set_connection_timeout(Some(timeout))
      .set_number_of_retries(1);
    let con = client
      .get_connection_manager_with_config(manager)
      .await
      .map_err(ClusterError::from_redis)?;
    let node = ClusterNode {
      ns,
      node_id: config.node_id,
      lease_ms: config.lease_ms,
      started_at: config.started_at,
      con,
      scripts: Scripts::new(),
      epoch: AtomicU64::new(0),
      announcements: AtomicU64::new(0),
      malformed: AtomicU64::new(0),
    };
    node.announce().await?;
    Ok(node)
  }

  pub fn node_id(&self) -> &str {
    &self.node_id
  }

  pub fn namespace(&self) -> &Namespace {
    &self.ns
  }

  /// The epoch of the node's current announcement.
  pub fn epoch(&self) -> u64 {
    self.epoch.load(Ordering::Acquire)
  }

  /// How many times the node announced itself so far.
  pub fn announcements(&self) -> u64 {
    self.announcements.load(Ordering::Acquire)
  }

  /// Records and node entries ignored so far because this directory did not write them.
  pub fn malformed(&self) -> u64 {
    self.malformed.load(Ordering::Relaxed)
  }

  fn invocation<'a>(&'a self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    for key in self.ns.keys() {
      invocation.key(key);
    }
    invocation
  }

  /// Announces the node under a new epoch; records an earlier incarnation
  /// left are removed. Returns the epoch. The first announcement fails with
  /// [`ClusterError::NodeIdInUse`] while a live node goes by the same id
  /// (its lease runs); a node announcing again after being fenced off is
  /// that node.
  pub async fn announce(&self) -> Result<u64> {
    let mut con = self.con.clone();
    let first = self.announcements() == 0;
    let epoch: i64 = self
      .invocation(&self.scripts.announce)
      .arg(&self.node_id)
      .arg(self.lease_ms)
      .arg(self.started_at)
      .arg(if first { "1" } else { "0" })
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    let Ok(epoch) = u64::try_from(epoch) else {
      return Err(ClusterError::NodeIdInUse(self.node_id.clone()));
    };
    self.epoch.store(epoch, Ordering::Release);
    self.announcements.fetch_add(1, Ordering::AcqRel);
    Ok(epoch)
  }

  /// Renews the node's lease and reads the digest of its records.
  /// [`Beat::Fenced`] when it was fenced off (reaped, or its records lost
  /// with a Redis that restarted empty): announce again and publish
  /// everything it holds.
  pub async fn heartbeat(&self) -> Result<Beat> {
    let mut con = self.con.clone();
    let reply: Vec<i64> = self
      .invocation(&self.scripts.heartbeat)
      .arg(&self.node_id)
      .arg(self.epoch())
      .arg(self.lease_ms)
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    match reply.as_slice() {
      [0] => Ok(Beat::Fenced),
      [1, count, sum, intact] => Ok(Beat::Renewed((*intact == 1).then(|| Digest {
        count: u64::try_from(*count).unwrap_or(u64::MAX),
        sum: u64::try_from(*sum).unwrap_or(u64::MAX),
      }))),
      _ => Err(ClusterError::Protocol("heartbeat".to_owned())),
    }
  }

  /// One batch of a resync of this node's own records (see `resync.lua`):
  /// `reset` starts the digest over; `drop` are ids the node does not hold,
  /// `assert` records it does.
  pub async fn resync(
    &self,
    reset: bool,
    drop: &[String],
    assert: &[&nity_registry_core::SessionRecord],
  ) -> Result<Published> {
    let mut con = self.con.clone();
    let mut invocation = self.invocation(&self.scripts.resync);
    invocation
      .arg(&self.node_id)
      .arg(self.epoch())
      .arg(if reset { "1" } else { "0" });
    for id in drop {
      invocation.arg("d").arg(id);
    }
    for record in assert {
      invocation
        .arg("A")
        .arg(&record.session_id)
        .arg(&record.client_id)
        .arg(record.registered_at);
    }
    let reply: Vec<Value> = invocation
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    published(reply, "resync")
  }

  /// Up to `take` ids of this node's index entries after `after` (an id
  /// returned before), in order.
  pub async fn own_ids(&self, after: Option<&str>, take: usize) -> Result<Vec<String>> {
    let prefix = length_prefixed(&self.node_id);
    let start = match after {
      Some(id) => format!("({prefix}{id}").into_bytes(),
      None => format!("[{prefix}").into_bytes(),
    };
    let mut end = format!("[{prefix}").into_bytes();
    // 0xFF sorts after every byte of UTF-8 text.
    end.push(0xff);
    let mut con = self.con.clone();
    let members: Vec<Vec<u8>> = redis::cmd("ZRANGEBYLEX")
      .arg(self.ns.by_node())
      .arg(start)
      .arg(end)
      .arg("LIMIT")
      .arg(0)
      .arg(take)
      .query_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    Ok(
      members
        .into_iter()
        .filter_map(|member| String::from_utf8(member.get(prefix.len()..)?.to_vec()).ok())
        // The node's marker (see common.lua) names no session.
        .filter(|id| !id.is_empty())
        .collect(),
    )
  }

  /// Publishes local changes in order, in one atomic step.
  pub async fn publish(&self, changes: &[Change]) -> Result<Published> {
    let mut con = self.con.clone();
    let mut invocation = self.invocation(&self.scripts.publish);
    invocation.arg(&self.node_id).arg(self.epoch());
    for change in changes {
      match change {
        Change::Registered(record) => {
          invocation
            .arg("a")
            .arg(&record.session_id)
            .arg(&record.client_id)
            .arg(record.registered_at);
        }
        Change::Removed { session_id, .. } => {
          invocation.arg("r").arg(session_id);
        }
      }
    }
    let reply: Vec<Value> = invocation
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    published(reply, "publish")
  }

  /// The strict register: claims `session_id` for this node fleet-wide in
  /// one step, unless a live node holds it or the client would go over
  /// `max_per_client` live sessions.
  pub async fn claim(
    &self,
    session_id: &str,
    client_id: &str,
    registered_at: f64,
    max_per_client: Option<usize>,
  ) -> Result<Claim> {
    let mut con = self.con.clone();
    let reply: Vec<Value> = self
      .invocation(&self.scripts.claim)
      .arg(&self.node_id)
      .arg(self.epoch())
      .arg(session_id)
      .arg(client_id)
      .arg(registered_at)
      .arg(max_per_client.unwrap_or(0))
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    let mut reply = reply.into_iter();
    let kind = reply.next().and_then(string);
    match kind.as_deref() {
      Some("ok") => Ok(Claim::Claimed),
      Some("fenced") => Ok(Claim::Fenced),
      Some("taken") => {
        let node_id = reply.next().and_then(string).unwrap_or_default();
        let client_id = reply.next().and_then(string).unwrap_or_default();
        Ok(Claim::Taken { node_id, client_id })
      }
      Some("limit") => {
        let count = reply.next().and_then(integer).unwrap_or(0);
        Ok(Claim::Limit { count })
      }
      _ => Err(ClusterError::Protocol("claim".to_owned())),
    }
  }

  /// Removes every node whose lease lapsed, with its records: the dead nodes,
  /// how many records each left, and the epoch it died in. Reaps nothing
  /// when this node is itself fenced off or its own lease lapsed.
  pub async fn reap(&self) -> Result<Option<Vec<(String, usize, u64)>>> {
    let mut con = self.con.clone();
    let reply: Vec<Value> = self
      .invocation(&self.scripts.reap)
      .arg(&self.node_id)
      .arg(self.epoch())
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    let mut reply = reply.into_iter();
    match reply.next().and_then(string).as_deref() {
      Some("fenced") => Ok(None),
      Some("ok") => {
        let mut dead = Vec::new();
        while let (Some(node), Some(count), Some(epoch)) =
          (reply.next(), reply.next(), reply.next())
        {
          if let (Some(node), Some(count), Some(epoch)) =
            (string(node), integer(count), integer(epoch))
          {
            dead.push((node, count, epoch as u64));
          }
        }
        Ok(Some(dead))
      }
      _ => Err(ClusterError::Protocol("reap".to_owned())),
    }
  }

  /// Removes the node and its records at once. How many records went;
  /// `None` when it was fenced off already.
  pub async fn leave(&self) -> Result<Option<usize>> {
    let mut con = self.con.clone();
    let removed: i64 = self
      .invocation(&self.scripts.leave)
      .arg(&self.node_id)
      .arg(self.epoch())
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    Ok(usize::try_from(removed).ok())
  }

  /// Removes the record of `session_id` when the node holding it is dead
  /// (the reaper's work, done early). `Some(true)` when it went, `Some(false)`
  /// when there was none, `None` when a live node holds it.
  pub async fn drop_dead(&self, session_id: &str) -> Result<Option<bool>> {
    let mut con = self.con.clone();
    let outcome: i64 = self
      .invocation(&self.scripts.drop_dead)
      .arg(session_id)
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    Ok(match outcome {
      -1 => None,
      0 => Some(false),
      _ => Some(true),
    })
  }

  /// Records a remote request (`message`, naming this node as its sender
  /// under `request_id`) and publishes it; `false` when this node is fenced
  /// off, and so not allowed to ask.
  pub async fn request(&self, request_id: &str, message: &str) -> Result<bool> {
    let mut con = self.con.clone();
    let recorded: i64 = self
      .invocation(&self.scripts.request)
      .arg(&self.node_id)
      .arg(self.epoch())
      .arg(request_id)
      .arg(message)
      .arg(self.ns.channel())
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    Ok(recorded == 1)
  }

  /// Publishes the answer to a request and records it while the request is
  /// on record; `false` when its requester had given up already.
  pub async fn answer(&self, request_id: &str, closed: usize, message: &str) -> Result<bool> {
    let mut con = self.con.clone();
    let recorded: i64 = self
      .invocation(&self.scripts.answer)
      .arg(request_id)
      .arg(closed)
      .arg(message)
      .arg(self.ns.channel())
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    Ok(recorded == 1)
  }

  /// Whether a request with this id and exactly this message is on record.
  pub async fn request_on_record(&self, request_id: &str, message: &[u8]) -> Result<bool> {
    let mut con = self.con.clone();
    let recorded: Option<Vec<u8>> = con
      .hget(self.ns.requests(), request_id)
      .await
      .map_err(ClusterError::from_redis)?;
    Ok(recorded.as_deref() == Some(message))
  }

  /// Whether `node` was declared down in `epoch` (by a reap or its leaving)
  /// in the last minute.
  pub async fn down_on_record(&self, node: &str, epoch: u64) -> Result<bool> {
    let mut con = self.con.clone();
    let recorded: bool = con
      .hexists(self.ns.downs(), format!("{node}\n{epoch}"))
      .await
      .map_err(ClusterError::from_redis)?;
    Ok(recorded)
  }

  /// A connection to the namespace's Redis, for the member's own commands.
  pub(crate) fn connection(&self) -> ConnectionManager {
    self.con.clone()
  }

  /// The session with this id on a live node.
  pub async fn session(&self, session_id: &str) -> Result<Option<ClusterSession>> {
    Ok(self.lookup("session", session_id).await?.into_iter().next())
  }

  /// The client's sessions on every live node, oldest first.
  pub async fn client_sessions(&self, client_id: &str) -> Result<Vec<ClusterSession>> {
    let mut sessions = self.lookup("client", client_id).await?;
    sessions.retain(|s| s.client_id == client_id);
    sessions.sort_by(|a, b| {
      a.registered_at
        .total_cmp(&b.registered_at)
        .then_with(|| a.session_id.cmp(&b.session_id))
    });
    Ok(sessions)
  }

  async fn lookup(&self, kind: &str, subject: &str) -> Result<Vec<ClusterSession>> {
    let mut con = self.con.clone();
    let reply: Vec<Vec<u8>> = self
      .invocation(&self.scripts.lookup)
      .arg(kind)
      .arg(subject)
      .invoke_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    let mut sessions = Vec::with_capacity(reply.len() / 2);
    for pair in reply.chunks_exact(2) {
      match (String::from_utf8(pair[0].clone()), self.record(&pair[1])) {
        (Ok(session_id), Some(record)) => sessions.push(ClusterSession {
          session_id,
          client_id: record.c,
          node_id: record.n,
          registered_at: record.t,
        }),
        _ => {
          self.malformed.fetch_add(1, Ordering::Relaxed);
        }
      }
    }
    Ok(sessions)
  }

  fn record(&self, raw: &[u8]) -> Option<Record> {
    serde_json::from_slice(raw).ok()
  }

  /// The live nodes and their entries, on the server's clock.
  async fn live_nodes(&self) -> Result<(BTreeMap<String, (u64, Info)>, f64)> {
    let mut con = self.con.clone();
    let (nodes, leases, (seconds, micros)): NodesReply = redis::pipe()
      .hgetall(self.ns.nodes())
      .zrange_withscores(self.ns.leases(), 0, -1)
      .cmd("TIME")
      .query_async(&mut con)
      .await
      .map_err(ClusterError::from_redis)?;
    let now = (seconds * 1000 + micros / 1000) as f64;
    let leases: HashMap<String, f64> = leases.into_iter().collect();
    let mut live = BTreeMap::new();
    for (node, raw) in nodes {
      let Ok(info) = serde_json::from_slice::<Info>(&raw) else {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        continue;
      };
      if leases.get(&node).is_some_and(|&deadline| deadline >= now) {
        live.insert(node, (info.e, info));
      }
    }
    Ok((live, now))
  }

  /// The live nodes, in id order, with the count their entries keep (the
  /// digest's, maintained with the records): no record is read.
  pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
    let (live, _) = self.live_nodes().await?;
    Ok(
      live
        .into_iter()
        .map(|(node_id, (_, info))| NodeInfo {
          node_id,
          sessions: usize::try_from(info.dc).unwrap_or(usize::MAX),
          started_at: info.s,
          last_seen_at: info.t,
        })
        .collect(),
    )
  }

  /// Fleet-wide counts over the sessions of live nodes.
  pub async fn stats(&self) -> Result<ClusterStats> {
    let (live, _) = self.live_nodes().await?;
    let mut con = self.con.clone();
    let records: HashMap<Vec<u8>, Vec<u8>> = con
      .hgetall(self.ns.sessions())
      .await
      .map_err(ClusterError::from_redis)?;
    let mut by_client: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_node: BTreeMap<String, usize> = live.keys().map(|node| (node.clone(), 0)).collect();
    let mut total = 0;
    for (id, raw) in &records {
      // The markers' field (see common.lua), not a record.
      if id.is_empty() {
        continue;
      }
      let Some(record) = serde_json::from_slice::<RecordWithEpoch>(raw).ok() else {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        continue;
      };
      let alive = live
        .get(&record.n)
        .is_some_and(|(epoch, _)| *epoch == record.e);
      if !alive {
        continue;
      }
      total += 1;
      *by_client.entry(record.c).or_default() += 1;
      *by_node.entry(record.n).or_default() += 1;
    }
    Ok(ClusterStats {
      total_sessions: total,
      active_clients: by_client.len(),
      sessions_by_client: by_client.into_iter().collect(),
      nodes: live.len(),
      sessions_by_node: by_node.into_iter().collect(),
    })
  }
}

/// `HGETALL nodes`, `ZRANGE leases WITHSCORES` and `TIME`, in one round trip.
type NodesReply = (HashMap<String, Vec<u8>>, Vec<(String, f64)>, (u64, u64));

#[derive(Deserialize)]
struct RecordWithEpoch {
  c: String,
  n: String,
  e: u64,
}

/// A publication's or resync's reply.
fn published(reply: Vec<Value>, script: &str) -> Result<Published> {
  let mut reply = reply.into_iter();
  match reply.next() {
    Some(Value::Int(-1)) => Ok(Published::Fenced),
    Some(Value::Int(_)) => Ok(Published::Applied {
      conflicts: reply.filter_map(string).collect(),
    }),
    _ => Err(ClusterError::Protocol(script.to_owned())),
  }
}

fn string(value: Value) -> Option<String> {
  match value {
    Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
    Value::SimpleString(text) => Some(text),
    _ => None,
  }
}

fn integer(value: Value) -> Option<usize> {
  match value {
    Value::Int(n) => usize::try_from(n).ok(),
    _ => None,
  }
}
