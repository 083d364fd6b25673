//! A node at work in the fleet: the background tasks that keep its lease,
//! publish its local changes, reap dead nodes, and carry requests between
//! nodes over the namespace's channel.
//!
//! - **Heartbeat**: renews the lease every third of it. When the node was
//!   fenced off (reaped while paused, or Redis lost its data) it announces
//!   again, and the publisher re-asserts every session the node holds. It
//!   also reads the digest Redis keeps of the node's records (see
//!   [`crate::digest`]); when everything the node published has landed and
//!   the digest differs from the node's own, the node resyncs.
//! - **Publisher**: local changes (the registry's change feed) arrive on a
//!   channel and are published in batches, in order. It keeps no copy of
//!   what the node holds: when what Redis holds for the node can no longer
//!   be trusted (a new epoch, a publication that failed), it asks the
//!   embedder for a seed ([`Event::Resync`]), a snapshot of every session
//!   the registry holds taken from the registry itself ([`Member::seed`]),
//!   and publishes that instead of the changes queued before it: a resync
//!   of the node's own records in bounded batches, which removes from Redis
//!   what the node does not hold and adds what is missing.
//! - **Reaper**: every quarter lease (at most 400 ms), removes the nodes whose lease lapsed
//!   and tells every node (`down` message); a node whose own lease lapsed
//!   reaps nobody.
//! - **Requests**: a remote close is recorded in the `requests` hash and
//!   published; the owner carries it out, records the answer in `answers`
//!   and publishes it. Pub/sub delivers at most once: a node that
//!   (re)subscribes reads the requests addressed to it, and a requester whose
//!   answer was lost reads `answers`.
//!
//! Messages on the channel that are not the cluster's are ignored and
//! counted; nothing a message says can crash a node.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::digest::Digest;
use crate::node::{Beat, Claim, ClusterNode, NodeConfig, Published};
use crate::{ClusterError, Result};
use nity_registry_core::{Change, SessionRecord};

/// What the member tells its embedder.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
  /// Close a session held here (`session_id`), or every session of a client
  /// held here (`client_id`), then call [`Member::answer`] with the count.
  CloseRequest {
    request_id: String,
    session_id: Option<String>,
    client_id: Option<String>,
  },
  /// A node was declared dead (or left) and its records were removed.
  NodeDown { node_id: String, sessions: usize },
  /// Call [`Member::seed`] with every session the registry holds: what
  /// Redis holds for this node is to be re-asserted from it.
  Resync,
  /// Sessions this node holds whose ids another live node holds in the
  /// directory (claimed while this node was cut off): the directory's
  /// record wins, so close this node's copies.
  Conflict { session_ids: Vec<String> },
}

/// Counters for operations.
#[derive(Debug, Default)]
pub struct Diagnostics {
  pub malformed_messages: AtomicU64,
  pub reannounced: AtomicU64,
  pub pending_changes: AtomicU64,
  /// Resyncs of this node's records run to the end.
  pub resyncs: AtomicU64,
  /// Heartbeats that found Redis's digest of this node's records different
  /// from what the node holds.
  pub digest_mismatches: AtomicU64,
  /// Sessions found held by another live node when published (see
  /// [`Event::Conflict`]).
  pub conflicts: AtomicU64,
}

/// The node's own digest of what it holds, as the publisher follows it, and
/// whether it is comparable with Redis's now.
#[derive(Debug, Default, Clone, Copy)]
struct Holding {
  digest: Digest,
  /// Changes to what the node holds, or publications, since the start.
  generation: u64,
  /// Everything taken in has landed in Redis, and no seed is awaited.
  settled: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t")]
enum Message {
  #[serde(rename = "req")]
  Request {
    id: String,
    to: String,
    from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
  },
  #[serde(rename = "ans")]
  Answer { id: String, to: String, n: usize },
  /// A node declared down by a reap or its leaving, in epoch `e`: believed
  /// only when the directory has it on record.
  #[serde(rename = "down")]
  Down {
    node: String,
    n: usize,
    #[serde(default)]
    e: u64,
  },
}

enum Command {
  Change(Change),
  /// Every session the registry holds, as [`Change::Registered`]: it stands
  /// for every change queued before it.
  Seed(Vec<Change>),
  Flush(oneshot::Sender<Result<()>>),
  /// What Redis holds for the node differs from what it holds: resync.
  Resync,
  /// A claim given up: its record goes, and the node never held it.
  Release(Change),
  /// A strict claim, run after every change queued before it has landed.
  Claim(ClaimOrder),
}

struct ClaimOrder {
  session_id: String,
  client_id: String,
  registered_at: f64,
  max_per_client: Option<usize>,
  reply: oneshot::Sender<Result<Claim>>,
}

struct Shared {
  node: ClusterNode,
  client: redis::Client,
  events: mpsc::UnboundedSender<Event>,
  /// Requests this node sent, waiting for their answer.
  waiting: Mutex<HashMap<String, oneshot::Sender<usize>>>,
  /// Requests this node carried out or is carrying out, so a request seen
  /// twice (by message and by the read after a resubscription) runs once.
  handled: Mutex<HashSet<String>>,
  diagnostics: Diagnostics,
  request_timeout: Duration,
  lease: Duration,
  /// Wakes the heartbeat before its time: the subscription was lost and
  /// regained, so Redis may have restarted empty.
  check_now: tokio::sync::Notify,
  next_request: AtomicU64,
  /// Whether the last heartbeat reached Redis: a seed is asked for only
  /// then, so a Redis that is away costs no snapshots.
  reachable: AtomicBool,
  holding: Mutex<Holding>,
  /// The node left the fleet: nothing of it may come back (no heartbeat,
  /// announcement, publication or reap) unless a new member joins.
  left: AtomicBool,
}

/// A running member of the fleet. Dropping it stops its tasks; `leave`
/// also removes it from the directory at once.
pub struct Member {
  shared: Arc<Shared>,
  commands: mpsc::UnboundedSender<Command>,
  tasks: Vec<JoinHandle<()>>,
}

const BATCH: usize = 512;
/// The longest wait between two looks for dead nodes.
const REAP_AT_MOST_EVERY: Duration = Duration::from_millis(400);
/// Batches sent together before waiting for their answers.
const IN_FLIGHT: usize = 8;
/// Request ids remembered as taken, against a request seen twice.
const HANDLED_KEPT: usize = 10_000;

impl Member {
  /// Connects, announces the node, and starts its tasks on the current
  /// tokio runtime.
  pub async fn start(config: NodeConfig, events: mpsc::UnboundedSender<Event>) -> Result<Member> {
    let client =
      redis::Client::open(config.redis_url.as_str()).map_err(ClusterError::from_redis)?;
    let request_timeout = Duration::from_millis(config.request_timeout_ms.max(1));
    let lease = Duration::from_millis(config.lease_ms.max(3));
    let node = ClusterNode::connect(config).await?;
    let shared = Arc::new(Shared {
      node,
      client,
      events,
      waiting: Mutex::new(HashMap::new()),
      handled: Mutex::new(HashSet::new()),
      diagnostics: Diagnostics::default(),
      request_timeout,
      lease,
      check_now: tokio::sync::Notify::new(),
      next_request: AtomicU64::new(0),
      reachable: AtomicBool::new(true),
      holding: Mutex::new(Holding {
        settled: true,
        ..Holding::default()
      }),
      left: AtomicBool::new(false),
    });
    let (commands, receiver) = mpsc::unbounded_channel();
    let subscribed = oneshot::channel();
    let tasks = vec![
      tokio::spawn(publisher(Arc::clone(&shared), receiver)),
      tokio::spawn(heartbeat(Arc::clone(&shared), commands.clone())),
      tokio::spawn(reaper(Arc::clone(&shared))),
      tokio::spawn(subscriber(Arc::clone(&shared), subscribed.0)),
    ];
    let member = Member {
      shared,
      commands,
      tasks,
    };
    // Requests can only be answered once the node listens for them: a node
    // that cannot subscribe leaves again and does not count as started.
    match tokio::time::timeout(request_timeout, subscribed.1).await {
      Ok(Ok(())) => Ok(member),
      _ => {
        let _ = member.leave().await;
        Err(ClusterError::Unavailable(
          "could not subscribe to the namespace's channel in time".to_owned(),
        ))
      }
    }
  }

  pub fn node(&self) -> &ClusterNode {
    &self.shared.node
  }

  pub fn diagnostics(&self) -> &Diagnostics {
    &self.shared.diagnostics
  }

  /// Queues a local change for publication; never blocks.
  pub fn publish(&self, change: Change) {
    self
      .shared
      .diagnostics
      .pending_changes
      .fetch_add(1, Ordering::Relaxed);
    let _ = self.commands.send(Command::Change(change));
  }

  /// The strict register's fleet-wide claim (see [`ClusterNode::claim`]),
  /// in order with this node's own changes: it runs once every change
  /// queued before it has landed, so an id this node just removed is not
  /// refused as held by itself.
  pub async fn claim(
    &self,
    session_id: &str,
    client_id: &str,
    registered_at: f64,
    max_per_client: Option<usize>,
  ) -> Result<Claim> {
    let (reply, answer) = oneshot::channel();
    let order = ClaimOrder {
      session_id: session_id.to_owned(),
      client_id: client_id.to_owned(),
      registered_at,
      max_per_client,
      reply,
    };
    self
      .through_publisher(
        Command::Claim(order),
        answer,
        "the claim could not be made in time",
      )
      .await
  }

  /// Hands `command` to the publisher's ordered path and waits, at most the
  /// request timeout, for what it sends back on `answer`.
  async fn through_publisher<T>(
    &self,
    command: Command,
    answer: oneshot::Receiver<Result<T>>,
    late: &str,
  ) -> Result<T> {
    self
      .commands
      .send(command)
      .map_err(|_| ClusterError::Unavailable("the member stopped".to_owned()))?;
    match tokio::time::timeout(self.shared.request_timeout, answer).await {
      Ok(Ok(outcome)) => outcome,
      _ => Err(ClusterError::Unavailable(late.to_owned())),
    }
  }

  /// Gives up a claim (see [`ClusterNode::claim`]) whose local
  /// registration failed: its record goes, in order with the changes.
  pub fn release(&self, session_id: &str, client_id: &str) {
    self
      .shared
      .diagnostics
      .pending_changes
      .fetch_add(1, Ordering::Relaxed);
    let _ = self.commands.send(Command::Release(Change::Removed {
      session_id: session_id.to_owned(),
      client_id: client_id.to_owned(),
    }));
  }

  /// Queues a seed: every session the registry holds, taken from it after
  /// an [`Event::Resync`]. It replaces every change queued before it.
  pub fn seed(&self, sessions: Vec<Change>) {
    let _ = self.commands.send(Command::Seed(sessions));
  }

  /// Resolves once every change queued before the call is published.
  pub async fn flush(&self) -> Result<()> {
    let (done, wait) = oneshot::channel();
    self
      .through_publisher(
        Command::Flush(done),
        wait,
        "changes could not be published in time",
      )
      .await
  }

  /// Closes a session wherever it lives: `true` when it was closed, `false`
  /// when no live node held it (a dead node's leftover record is removed).
  pub async fn unregister(&self, session_id: &str) -> Result<bool> {
    let Some(held) = self.shared.node.session(session_id).await? else {
      self.shared.node.drop_dead(session_id).await?;
      return Ok(false);
    };
    let closed = self
      .request(&held.node_id, Some(session_id.to_owned()), None)
      .await?;
    Ok(closed > 0)
  }

  /// Closes a client's sessions on every live node that holds some; the
  /// total count.
  pub async fn cleanup_client(&self, client_id: &str) -> Result<usize> {
    let sessions = self.shared.node.client_sessions(client_id).await?;
    let mut owners: Vec<String> = sessions.into_iter().map(|s| s.node_id).collect();
    owners.sort();
    owners.dedup();
    let requests = owners
      .iter()
      .map(|owner| self.request(owner, None, Some(client_id.to_owned())));
    let mut total = 0;
    for answer in join_all(requests).await {
      total += answer?;
    }
    Ok(total)
  }

  /// Carries `session_id` or `client_id` to `owner` and waits for its answer.
  async fn request(
    &self,
    owner: &str,
    session_id: Option<String>,
    client_id: Option<String>,
  ) -> Result<usize> {
    let shared = &self.shared;
    let number = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}:{}:{number}", shared.node.node_id(), shared.node.epoch());
    let (answered, answer) = oneshot::channel();
    lock(&shared.waiting).insert(id.clone(), answered);
    let message = Message::Request {
      id: id.clone(),
      to: owner.to_owned(),
      from: shared.node.node_id().to_owned(),
      s: session_id,
      c: client_id,
    };
    let outcome = match send_request(shared, &id, &message).await {
      Err(error) => Err(error),
      Ok(()) => wait_for_answer(shared, &id, owner, answer).await,
    };
    lock(&shared.waiting).remove(&id);
    forget_request(shared, &id).await;
    outcome
  }

  /// Answers a [`Event::CloseRequest`] this node carried out (`request_id`
  /// as the event gave it): `closed` sessions were closed here.
  pub async fn answer(&self, request_id: &str, closed: usize) -> Result<()> {
    let Some((id, requester)) = request_id.split_once('\n') else {
      return Err(ClusterError::Protocol(format!("request id '{request_id}'")));
    };
    answer(&self.shared, id, requester, closed).await
  }

  /// Removes the node and its records at once and tells every node. Final:
  /// the member stops its work, and nothing of the node comes back (a
  /// heartbeat that finds it gone does not announce it again; later changes
  /// are not published).
  pub async fn leave(&self) -> Result<()> {
    let shared = &self.shared;
    shared.left.store(true, Ordering::SeqCst);
    let epoch = shared.node.epoch();
    if let Some(removed) = shared.node.leave().await? {
      let message = Message::Down {
        node: shared.node.node_id().to_owned(),
        n: removed,
        e: epoch,
      };
      publish_message(shared, &message).await?;
    }
    Ok(())
  }
}

impl Drop for Member {
  fn drop(&mut self) {
    for task in &self.tasks {
      task.abort();
    }
  }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
  mutex
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn publish_message(shared: &Shared, message: &Message) -> Result<()> {
  let text = serde_json::to_string(message).map_err(|e| ClusterError::Protocol(e.to_string()))?;
  let mut con = shared.node.connection();
  let _: i64 = con
    .publish(shared.node.namespace().channel(), text)
    .await
    .map_err(ClusterError::from_redis)?;
  Ok(())
}

async fn send_request(shared: &Shared, id: &str, message: &Message) -> Result<()> {
  let text = serde_json::to_string(message).map_err(|e| ClusterError::Protocol(e.to_string()))?;
  if shared.node.request(id, &text).await? {
    Ok(())
  } else {
    Err(ClusterError::Unavailable(
      "this node is fenced off and announcing itself again".to_owned(),
    ))
  }
}

async fn read_answer(shared: &Shared, id: &str) -> Result<Option<usize>> {
  let mut con = shared.node.connection();
  con
    .hget(shared.node.namespace().answers(), id)
    .await
    .map_err(ClusterError::from_redis)
}

async fn forget_request(shared: &Shared, id: &str) {
  let mut con = shared.node.connection();
  let _: std::result::Result<(), _> = redis::pipe()
    .hdel(shared.node.namespace().requests(), id)
    .ignore()
    .hdel(shared.node.namespace().answers(), id)
    .ignore()
    .query_async(&mut con)
    .await;
}

async fn answer(shared: &Shared, request_id: &str, requester: &str, closed: usize) -> Result<()> {
  let message = Message::Answer {
    id: request_id.to_owned(),
    to: requester.to_owned(),
    n: closed,
  };
  let text = serde_json::to_string(&message).map_err(|e| ClusterError::Protocol(e.to_string()))?;
  shared.node.answer(request_id, closed, &text).await?;
  Ok(())
}

/// Waits for the answer to request `id`: its message, or its record, read
/// every tenth of the lease (pub/sub may lose the message, during a
/// resubscription for one), until the request timeout.
async fn wait_for_answer(
  shared: &Shared,
  id: &str,
  owner: &str,
  mut answer: oneshot::Receiver<usize>,
) -> Result<usize> {
  let deadline = tokio::time::Instant::now() + shared.request_timeout;
  let look_every = (shared.lease / 10).max(Duration::from_millis(10));
  loop {
    let now = tokio::time::Instant::now();
    let wait = look_every.min(deadline.saturating_duration_since(now));
    match tokio::time::timeout(wait, &mut answer).await {
      Ok(Ok(count)) => return Ok(count),
      // The sender went away: only the record can tell now.
      Ok(Err(_)) => tokio::time::sleep(wait).await,
      Err(_) => {}
    }
    if let Some(count) = read_answer(shared, id).await? {
      return Ok(count);
    }
    if tokio::time::Instant::now() >= deadline {
      return Err(ClusterError::Timeout(owner.to_owned()));
    }
  }
}

/// Acts on one message of the channel. A request or a `down` is believed
/// only when the directory has it on record (see `request.lua` and
/// `reap.lua`): anyone who can publish on the channel could send one.
fn receive(shared: &Arc<Shared>, payload: &[u8]) {
  let Ok(message) = serde_json::from_slice::<Message>(payload) else {
    shared
      .diagnostics
      .malformed_messages
      .fetch_add(1, Ordering::Relaxed);
    return;
  };
  let me = shared.node.node_id();
  match message {
    Message::Request { id, to, from, s, c } if to == me => {
      let shared = Arc::clone(shared);
      let payload = payload.to_vec();
      tokio::spawn(async move {
        match shared.node.request_on_record(&id, &payload).await {
          Ok(true) => take_request(&shared, id, from, s, c),
          Ok(false) => forged(&shared),
          Err(_) => {}
        }
      });
    }
    Message::Answer { id, to, n } if to == me => {
      if let Some(waiting) = lock(&shared.waiting).remove(&id) {
        let _ = waiting.send(n);
      }
    }
    // A node is not told of its own leaving.
    Message::Down { node, n, e } if node != me => {
      let shared = Arc::clone(shared);
      tokio::spawn(async move {
        match shared.node.down_on_record(&node, e).await {
          Ok(true) => {
            let _ = shared.events.send(Event::NodeDown {
              node_id: node,
              sessions: n,
            });
          }
          Ok(false) => forged(&shared),
          Err(_) => {}
        }
      });
    }
    _ => {}
  }
}

/// A message that claims what the directory has no record of.
fn forged(shared: &Shared) {
  shared
    .diagnostics
    .malformed_messages
    .fetch_add(1, Ordering::Relaxed);
}

fn take_request(shared: &Shared, id: String, from: String, s: Option<String>, c: Option<String>) {
  if s.is_none() == c.is_none() {
    shared
      .diagnostics
      .malformed_messages
      .fetch_add(1, Ordering::Relaxed);
    return;
  }
  {
    let mut handled = lock(&shared.handled);
    if handled.len() >= HANDLED_KEPT {
      // Ids only come back while a request is fresh; old ones can go.
      handled.clear();
    }
    if !handled.insert(id.clone()) {
      return;
    }
  }
  // The embedder answers with the request id as given: the requester's
  // node id is folded into it.
  let _ = shared.events.send(Event::CloseRequest {
    request_id: format!("{}\n{from}", id),
    session_id: s,
    client_id: c,
  });
}

/// Reads the requests addressed to this node that it has not taken yet.
async fn take_recorded_requests(shared: &Shared) -> Result<()> {
  let mut con = shared.node.connection();
  let recorded: HashMap<String, Vec<u8>> = con
    .hgetall(shared.node.namespace().requests())
    .await
    .map_err(ClusterError::from_redis)?;
  for (id, payload) in &recorded {
    // On record already: no second look.
    if let Ok(Message::Request { to, from, s, c, .. }) = serde_json::from_slice::<Message>(payload)
    {
      if to == shared.node.node_id() {
        take_request(shared, id.clone(), from, s, c);
      }
    }
  }
  Ok(())
}

async fn subscriber(shared: Arc<Shared>, subscribed: oneshot::Sender<()>) {
  let mut subscribed = Some(subscribed);
  loop {
    let connected = async {
      let mut pubsub = shared
        .client
        .get_async_pubsub()
        .await
        .map_err(ClusterError::from_redis)?;
      pubsub
        .subscribe(shared.node.namespace().channel())
        .await
        .map_err(ClusterError::from_redis)?;
      Ok::<_, ClusterError>(pubsub)
    }
    .await;
    match connected {
      Ok(mut pubsub) => {
        match subscribed.take() {
          Some(done) => {
            let _ = done.send(());
          }
          // Subscribed again after losing the connection: Redis may have
          // restarted empty; the heartbeat checks at once.
          None => shared.check_now.notify_one(),
        }
        // What was sent while nobody listened is on record.
        let _ = take_recorded_requests(&shared).await;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
          receive(&shared, message.get_payload_bytes());
        }
      }
      // Redis is away: try again soon, so that a restarted Redis is
      // noticed (and re-asserted into) within a fraction of a second.
      Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}

async fn heartbeat(shared: Arc<Shared>, commands: mpsc::UnboundedSender<Command>) {
  let every = shared.lease / 3;
  loop {
    tokio::select! {
      _ = tokio::time::sleep(every) => {}
      _ = shared.check_now.notified() => {}
    }
    let before = *lock(&shared.holding);
    if shared.left.load(Ordering::SeqCst) {
      return;
    }
    let beat = shared.node.heartbeat().await;
    let after = *lock(&shared.holding);
    shared.reachable.store(beat.is_ok(), Ordering::Relaxed);
    match beat {
      Ok(Beat::Fenced) => {
        // Fenced off: announce anew; the publisher re-asserts what the node
        // holds.
        if reannounce(&shared).await {
          let (done, _) = oneshot::channel();
          let _ = commands.send(Command::Flush(done));
        }
      }
      Ok(Beat::Renewed(redis_digest)) => {
        // Comparable only when nothing was in flight around the heartbeat:
        // then Redis's digest is of everything the node took in.
        let quiet = before.settled
          && after.settled
          && before.generation == after.generation
          && shared.diagnostics.pending_changes.load(Ordering::Relaxed) == 0;
        if quiet && redis_digest != Some(after.digest) {
          shared
            .diagnostics
            .digest_mismatches
            .fetch_add(1, Ordering::Relaxed);
          let _ = commands.send(Command::Resync);
        }
      }
      Err(_) => {}
    }
  }
}

async fn reaper(shared: Arc<Shared>) {
  // A dead node is reaped within its lease and half a second: the reaper
  // looks every quarter lease, and never less often than every 400 ms.
  let every = (shared.lease / 4).min(REAP_AT_MOST_EVERY);
  loop {
    if shared.left.load(Ordering::SeqCst) {
      return;
    }
    tokio::time::sleep(every).await;
    if let Ok(Some(dead)) = shared.node.reap().await {
      for (node, sessions, epoch) in dead {
        let message = Message::Down {
          node,
          n: sessions,
          e: epoch,
        };
        let _ = publish_message(&shared, &message).await;
      }
    }
  }
}

async fn publisher(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
  let mut published_announcement = shared.node.announcements();
  // Set while what Redis holds for this node cannot be trusted: the next
  // publication is a seed from the registry.
  let mut needs_seed = false;
  let mut seed_asked: Option<tokio::time::Instant> = None;
  // Flushes that wait for a seed to be published.
  let mut waiting_flushes: Vec<oneshot::Sender<Result<()>>> = Vec::new();
  loop {
    // While a seed is needed, wake up now and then to ask for it again.
    let first = if needs_seed {
      match tokio::time::timeout(shared.lease / 3, commands.recv()).await {
        Ok(Some(command)) => Some(command),
        Ok(None) => return,
        Err(_) => None,
      }
    } else {
      match commands.recv().await {
        Some(command) => Some(command),
        None => return,
      }
    };
    let mut batch = Vec::new();
    let mut seeded = false;
    // Queued changes in `batch` (a seed's entries are not queued changes),
    // and queued changes a seed stands for.
    let mut queued = 0u64;
    let mut covered = 0u64;
    let mut next = first;
    // A claim ends the batch: what came before it is published first.
    let mut claim: Option<ClaimOrder> = None;
    while let Some(command) = next {
      match command {
        Command::Change(change) => {
          hold(&shared, |holding| holding.digest.apply(&change));
          batch.push(change);
          queued += 1;
        }
        Command::Seed(sessions) => {
          // The seed was taken after every change queued before it.
          let digest = Digest::of(&sessions);
          hold(&shared, |holding| holding.digest = digest);
          covered += queued;
          queued = 0;
          batch = sessions;
          seeded = true;
        }
        Command::Flush(done) => waiting_flushes.push(done),
        Command::Resync => {
          needs_seed = true;
          hold(&shared, |_| {});
        }
        Command::Release(change) => {
          // Claimed in Redis, never held here: not in the node's digest.
          hold(&shared, |_| {});
          batch.push(change);
          queued += 1;
        }
        Command::Claim(order) => {
          claim = Some(order);
          break;
        }
      }
      next = if batch.len() < BATCH * IN_FLIGHT {
        commands.try_recv().ok()
      } else {
        None
      };
    }
    if shared.left.load(Ordering::SeqCst) {
      // Left the fleet: nothing is published any more.
      settle_pending(&shared, covered + queued);
      for done in waiting_flushes.drain(..) {
        let _ = done.send(Ok(()));
      }
      run_claim(&shared, claim.take()).await;
      continue;
    }
    let announcement = shared.node.announcements();
    if announcement != published_announcement {
      needs_seed = true;
    }
    if needs_seed && !seeded {
      // Changes queued now are covered by the seed to come.
      settle_pending(&shared, covered + queued);
      let due = seed_asked.is_none_or(|at| at.elapsed() >= shared.lease / 3);
      if due && shared.reachable.load(Ordering::Relaxed) {
        let _ = shared.events.send(Event::Resync);
        seed_asked = Some(tokio::time::Instant::now());
      }
      run_claim(&shared, claim.take()).await;
      continue;
    }
    settle_pending(&shared, covered);
    let publication = if seeded {
      resync_all(&shared, &batch).await
    } else {
      publish_all(&shared, &batch).await
    };
    let outcome = match publication {
      Ok(Published::Applied { conflicts }) => {
        if !conflicts.is_empty() {
          shared
            .diagnostics
            .conflicts
            .fetch_add(conflicts.len() as u64, Ordering::Relaxed);
          let _ = shared.events.send(Event::Conflict {
            session_ids: conflicts,
          });
        }
        Ok(())
      }
      Ok(Published::Fenced) => {
        // Fenced off between two heartbeats: announce anew and re-seed.
        reannounce(&shared).await;
        Err(ClusterError::Unavailable(
          "fenced off while publishing; re-asserting".to_owned(),
        ))
      }
      Err(error) => Err(error),
    };
    settle_pending(&shared, queued);
    match &outcome {
      Ok(()) => {
        published_announcement = announcement;
        if seeded {
          needs_seed = false;
          seed_asked = None;
          shared.diagnostics.resyncs.fetch_add(1, Ordering::Relaxed);
        }
      }
      Err(_) => {
        needs_seed = true;
        seed_asked = None;
      }
    }
    let settled = !needs_seed;
    hold(&shared, |holding| holding.settled = settled);
    for done in waiting_flushes.drain(..) {
      let _ = done.send(outcome.clone());
    }
    run_claim(&shared, claim.take()).await;
    if outcome.is_err() {
      tokio::time::sleep(shared.lease / 6).await;
    }
  }
}

/// Runs a strict claim the publisher reached in its queue, and answers it.
async fn run_claim(shared: &Shared, order: Option<ClaimOrder>) {
  let Some(order) = order else { return };
  let outcome = if shared.left.load(Ordering::SeqCst) {
    Err(ClusterError::Unavailable(
      "this node left the fleet".to_owned(),
    ))
  } else {
    shared
      .node
      .claim(
        &order.session_id,
        &order.client_id,
        order.registered_at,
        order.max_per_client,
      )
      .await
  };
  let _ = order.reply.send(outcome);
}

/// Announces a fenced-off node anew (a node that left stays gone); whether
/// it did.
async fn reannounce(shared: &Shared) -> bool {
  if shared.left.load(Ordering::SeqCst) || shared.node.announce().await.is_err() {
    return false;
  }
  shared
    .diagnostics
    .reannounced
    .fetch_add(1, Ordering::Relaxed);
  true
}

/// Changes what the node holds, or whether it landed, as the publisher learns it.
fn hold(shared: &Shared, change: impl FnOnce(&mut Holding)) {
  let mut holding = lock(&shared.holding);
  holding.generation += 1;
  holding.settled = false;
  change(&mut holding);
}

/// Resyncs the node's records with `seed`, every session it holds: walks
/// its index entries in Redis in batches, dropping ids it does not hold and
/// asserting those it does, then asserts the rest; the digest starts over
/// with the first batch and ends as that of the seed (but for conflicts).
async fn resync_all(shared: &Shared, seed: &[Change]) -> Result<Published> {
  let held: HashMap<&str, &SessionRecord> = seed
    .iter()
    .filter_map(|change| match change {
      Change::Registered(record) => Some((record.session_id.as_str(), record)),
      Change::Removed { .. } => None,
    })
    .collect();
  let node = &shared.node;
  let mut asserted: HashSet<&str> = HashSet::with_capacity(held.len());
  let mut fenced = false;
  let mut conflicts = Vec::new();
  collect(
    node.resync(true, &[], &[]).await?,
    &mut fenced,
    &mut conflicts,
  );
  let mut after: Option<String> = None;
  while !fenced {
    let ids = node.own_ids(after.as_deref(), BATCH).await?;
    let Some(last) = ids.last().cloned() else {
      break;
    };
    let mut drop = Vec::new();
    let mut assert = Vec::new();
    for id in ids.iter() {
      match held.get_key_value(id.as_str()) {
        Some((&key, &record)) if asserted.insert(key) => assert.push(record),
        Some(_) => {}
        None => drop.push(id.clone()),
      }
    }
    collect(
      node.resync(false, &drop, &assert).await?,
      &mut fenced,
      &mut conflicts,
    );
    if ids.len() < BATCH {
      break;
    }
    after = Some(last);
  }
  let rest: Vec<&SessionRecord> = held
    .iter()
    .filter(|(id, _)| !asserted.contains(*id))
    .map(|(_, &record)| record)
    .collect();
  for group in rest.chunks(BATCH * IN_FLIGHT) {
    if fenced {
      break;
    }
    let sent = group
      .chunks(BATCH)
      .map(|batch| node.resync(false, &[], batch));
    for outcome in join_all(sent).await {
      collect(outcome?, &mut fenced, &mut conflicts);
    }
  }
  Ok(if fenced {
    Published::Fenced
  } else {
    Published::Applied { conflicts }
  })
}

/// `count` queued changes left the queue (published, or covered by a seed).
fn settle_pending(shared: &Shared, count: u64) {
  if count > 0 {
    shared
      .diagnostics
      .pending_changes
      .fetch_sub(count, Ordering::Relaxed);
  }
}

/// Publishes `changes` in batches sent together on the one connection
/// (Redis runs them in the order sent), so a large publication costs a few
/// round trips, not one per batch. `Fenced` if any batch was refused.
async fn publish_all(shared: &Shared, changes: &[Change]) -> Result<Published> {
  let mut fenced = false;
  let mut conflicts = Vec::new();
  for group in changes.chunks(BATCH * IN_FLIGHT) {
    let sent = group.chunks(BATCH).map(|batch| shared.node.publish(batch));
    for outcome in join_all(sent).await {
      collect(outcome?, &mut fenced, &mut conflicts);
    }
  }
  Ok(if fenced {
    Published::Fenced
  } else {
    Published::Applied { conflicts }
  })
}

fn collect(outcome: Published, fenced: &mut bool, conflicts: &mut Vec<String>) {
  match outcome {
    Published::Fenced => *fenced = true,
    Published::Applied { conflicts: found } => conflicts.extend(found),
  }
}
