//! `NativeCluster`: a node's membership of the fleet (the cluster crate's
//! `Member`) as a napi-rs class. Its methods are async and run on napi-rs's
//! tokio runtime, off the JavaScript thread; what the member has to tell
//! JavaScript (a close request, a node that died) goes through one
//! threadsafe function that does not keep the process alive.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use nity_registry_cluster::{Claim, Event, Member, NodeConfig};
use tokio::sync::mpsc;

use crate::cluster_reports::{
  ClaimReport, ClusterDiagnostics, ClusterEvent, ClusterNodeReport, ClusterSessionReport,
  ClusterStatsReport,
};
use crate::error::{from_cluster, not_connected};
use napi::Result;

/// How a node joins the fleet; the surface has checked every value.
#[napi(object)]
pub struct ClusterOptions {
  pub redis: String,
  pub namespace: String,
  pub node_id: String,
  pub lease_ms: u32,
  pub request_timeout_ms: u32,
  pub started_at: f64,
}

type EventSink = ThreadsafeFunction<ClusterEvent, (), ClusterEvent, napi::Status, false, true>;

/// One node of the fleet.
#[napi]
pub struct NativeCluster {
  config: NodeConfig,
  sink: Arc<EventSink>,
  member: Arc<Mutex<Option<Arc<Member>>>>,
}

impl NativeCluster {
  /// The running member, for the registry that publishes through it.
  pub fn member(&self) -> Option<Arc<Member>> {
    lock(&self.member).clone()
  }

  fn running(&self) -> Result<Arc<Member>> {
    self.member().ok_or_else(not_connected)
  }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
  mutex
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[napi]
impl NativeCluster {
  /// `onEvent` is told of close requests and dead nodes once connected.
  #[napi(constructor)]
  pub fn new(options: ClusterOptions, on_event: Function<ClusterEvent, ()>) -> Result<Self> {
    let sink = on_event
      .build_threadsafe_function::<ClusterEvent>()
      .callee_handled::<false>()
      .weak::<true>()
      .build()?;
    let config = NodeConfig {
      redis_url: options.redis,
      namespace: options.namespace,
      node_id: options.node_id,
      lease_ms: u64::from(options.lease_ms),
      request_timeout_ms: u64::from(options.request_timeout_ms),
      started_at: options.started_at,
    };
    Ok(NativeCluster {
      config,
      sink: Arc::new(sink),
      member: Arc::new(Mutex::new(None)),
    })
  }

  /// Connects and announces the node, then starts its background work.
  /// Connecting again after a failure tries again; once connected, it does
  /// nothing.
  #[napi]
  pub async fn connect(&self) -> Result<()> {
    if self.member().is_some() {
      return Ok(());
    }
    let sink = Arc::clone(&self.sink);
    let (events, mut received) = mpsc::unbounded_channel();
    let member = Member::start(self.config.clone(), events)
      .await
      .map_err(from_cluster)?;
    let member = Arc::new(member);
    *lock(&self.member) = Some(Arc::clone(&member));
    tokio::spawn(async move {
      while let Some(event) = received.recv().await {
        sink.call(
          ClusterEvent::from(event),
          ThreadsafeFunctionCallMode::NonBlocking,
        );
      }
    });
    Ok(())
  }

  #[napi]
  pub async fn flush(&self) -> Result<()> {
    self.running()?.flush().await.map_err(from_cluster)
  }

  #[napi]
  pub async fn session(&self, session_id: String) -> Result<Option<ClusterSessionReport>> {
    let member = self.running()?;
    let found = member
      .node()
      .session(&session_id)
      .await
      .map_err(from_cluster)?;
    Ok(found.map(ClusterSessionReport::from))
  }

  #[napi]
  pub async fn client_sessions(&self, client_id: String) -> Result<Vec<ClusterSessionReport>> {
    let member = self.running()?;
    let found = member
      .node()
      .client_sessions(&client_id)
      .await
      .map_err(from_cluster)?;
    Ok(found.into_iter().map(ClusterSessionReport::from).collect())
  }

  #[napi]
  pub async fn stats(&self) -> Result<ClusterStatsReport> {
    let member = self.running()?;
    Ok(member.node().stats().await.map_err(from_cluster)?.into())
  }

  #[napi]
  pub async fn nodes(&self) -> Result<Vec<ClusterNodeReport>> {
    let member = self.running()?;
    let nodes = member.node().nodes().await.map_err(from_cluster)?;
    Ok(nodes.into_iter().map(ClusterNodeReport::from).collect())
  }

  /// The strict register's fleet-wide claim. `maxPerClient` 0: no limit.
  #[napi]
  pub async fn claim(
    &self,
    session_id: String,
    client_id: String,
    registered_at: f64,
    max_per_client: u32,
  ) -> Result<ClaimReport> {
    let member = self.running()?;
    let max = (max_per_client > 0).then_some(max_per_client as usize);
    let claim = member
      .claim(&session_id, &client_id, registered_at, max)
      .await
      .map_err(from_cluster)?;
    Ok(match claim {
      Claim::Claimed => ClaimReport::outcome("claimed"),
      Claim::Fenced => ClaimReport::outcome("fenced"),
      Claim::Taken { node_id, client_id } => ClaimReport {
        node_id: Some(node_id),
        client_id: Some(client_id),
        ..ClaimReport::outcome("taken")
      },
      Claim::Limit { count } => ClaimReport {
        count: Some(count as u32),
        ..ClaimReport::outcome("limit")
      },
    })
  }

  /// Gives up a claim whose local registration failed.
  #[napi]
  pub fn release(&self, session_id: String, client_id: String) -> Result<()> {
    self.running()?.release(&session_id, &client_id);
    Ok(())
  }

  #[napi]
  pub async fn unregister(&self, session_id: String) -> Result<bool> {
    let member = self.running()?;
    member.unregister(&session_id).await.map_err(from_cluster)
  }

  #[napi]
  pub async fn cleanup_client(&self, client_id: String) -> Result<u32> {
    let member = self.running()?;
    let total = member
      .cleanup_client(&client_id)
      .await
      .map_err(from_cluster)?;
    Ok(u32::try_from(total).unwrap_or(u32::MAX))
  }

  /// Answers a close request this node carried out.
  #[napi]
  pub async fn answer(&self, request_id: String, closed: u32) -> Result<()> {
    let member = self.running()?;
    member
      .answer(&request_id, closed as usize)
      .await
      .map_err(from_cluster)
  }

  /// Removes the node and its records at once, then stops its background work.
  #[napi]
  pub async fn leave(&self) -> Result<()> {
    let Some(member) = lock(&self.member).take() else {
      return Ok(());
    };
    member.flush().await.ok();
    member.leave().await.map_err(from_cluster)
  }

  #[napi]
  pub fn diagnostics(&self) -> ClusterDiagnostics {
    match self.member() {
      Some(member) => ClusterDiagnostics::from(&*member),
      None => ClusterDiagnostics::default(),
    }
  }
}

impl From<Event> for ClusterEvent {
  fn from(event: Event) -> ClusterEvent {
    match event {
      Event::CloseRequest {
        request_id,
        session_id,
        client_id,
      } => ClusterEvent {
        kind: "close".to_owned(),
        request_id: Some(request_id),
        session_id,
        client_id,
        node_id: None,
        sessions: None,
        session_ids: None,
      },
      Event::NodeDown { node_id, sessions } => ClusterEvent {
        kind: "nodeDown".to_owned(),
        request_id: None,
        session_id: None,
        client_id: None,
        node_id: Some(node_id),
        sessions: Some(u32::try_from(sessions).unwrap_or(u32::MAX)),
        session_ids: None,
      },
      Event::Resync => ClusterEvent {
        kind: "resync".to_owned(),
        request_id: None,
        session_id: None,
        client_id: None,
        node_id: None,
        sessions: None,
        session_ids: None,
      },
      Event::Conflict { session_ids } => ClusterEvent {
        kind: "conflict".to_owned(),
        request_id: None,
        session_id: None,
        client_id: None,
        node_id: None,
        sessions: None,
        session_ids: Some(session_ids),
      },
    }
  }
}
